//! Every command's `--help` ends with examples of that very command.

use crate::common::allot;

/// The subcommands a `--help` lists (clap's `Commands:` section; a wrapped
/// description continues on a line indented further).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Widest line an example may take: clap wraps help at 100 columns when
/// the workspace build turns `wrap_help` on, and a wrapped command cannot
/// be pasted.
const WIDTH: usize = 100;

/// The examples of the `Examples:` section, each with its continuation
/// lines (after a trailing `\`, indented further) joined.
fn examples(help: &str) -> Vec<String> {
    let mut examples: Vec<String> = Vec::new();
    let section = help
        .lines()
        .skip_while(|line| *line != "Examples:")
        .skip(1)
        .take_while(|line| line.starts_with("  "));
    for line in section {
        assert!(line.chars().count() <= WIDTH, "wider than {WIDTH}: {line}");
        match examples.last_mut() {
            Some(last) if line.starts_with("   ") => {
                assert!(last.ends_with('\\'), "a wrapped example: {last} / {line}");
                last.pop();
                last.push_str(line.trim());
            }
            _ => examples.push(line.trim().to_string()),
        }
    }
    examples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_has_examples_in_its_help() {
    let dir = tempfile::tempdir().unwrap();
    let top = allot(&["--help"], &[], dir.path()).await.ok(&["--help"]);
    assert!(
        top.contains("Exit codes:") && top.contains("3  refused by a rule"),
        "{top}"
    );
    let mut waiting: Vec<Vec<String>> = subcommands(&top).into_iter().map(|c| vec![c]).collect();
    let mut seen = 0;
    while let Some(path) = waiting.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = allot(&args, &[], dir.path()).await.ok(&args);
        let command = format!("allot {}", path.join(" "));
        let lines = examples(&help);
        assert!(
            !lines.is_empty(),
            "`{command} --help` has no Examples section:\n{help}"
        );
        for line in lines {
            assert!(
                line.contains(&command),
                "`{command} --help` shows an example of something else: {line}"
            );
        }
        waiting.extend(
            subcommands(&help)
                .into_iter()
                .map(|c| [path.clone(), vec![c]].concat()),
        );
        seen += 1;
    }
    assert!(seen >= 50, "only {seen} commands walked");
}
