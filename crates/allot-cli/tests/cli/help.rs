//! Every command's `--help` ends with examples of that very command.

use crate::common::allot;

/// The subcommands a `--help` lists (clap's `Commands:` section).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The lines of the `Examples:` section.
fn examples(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Examples:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .map(|line| line.trim().to_string())
        .collect()
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
