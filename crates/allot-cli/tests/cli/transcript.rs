//! What a person sees, as a terminal session: each command (`$ allot …`)
//! followed by what it printed, held in an insta snapshot with ids, keys
//! and times masked. Both backends compare against the same snapshot, so
//! they also print the same.

use crate::common::Service;

pub struct Transcript<'a> {
    service: &'a Service,
    key: String,
    text: String,
}

/// Ids (`acc_` + 26 hex digits), key secrets and timestamps vary by run;
/// each is masked by text as wide, so tables stay aligned.
const MASKS: &[(&str, &str)] = &[
    (
        r"\b(acc|aud|cas|con|ent|evt|key|prd|req|res|tim|use)_[0-9a-f]{26}\b",
        "${1}_xxxxxxxxxxxxxxxxxxxxxxxxxx",
    ),
    (r"\ballot_[0-9a-f]{48}\b", "allot_<secret>"),
    (
        r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
        "YYYY-MM-DDThh:mm:ssZ",
    ),
];

impl<'a> Transcript<'a> {
    pub fn new(service: &'a Service) -> Transcript<'a> {
        Transcript {
            service,
            key: service.admin.clone(),
            text: String::new(),
        }
    }

    /// The commands after this run with `key`.
    pub fn with_key(&mut self, key: &str) {
        self.key = key.to_string();
    }

    fn command_line(&mut self, args: &[&str]) {
        let quoted: Vec<String> = args
            .iter()
            .map(|a| {
                if a.contains(' ') || a.is_empty() {
                    format!("\"{a}\"")
                } else {
                    a.to_string()
                }
            })
            .collect();
        self.text
            .push_str(&format!("$ allot {}\n", quoted.join(" ")));
    }

    /// Runs a command that must succeed; its output, for the next steps.
    pub async fn ok(&mut self, args: &[&str]) -> String {
        let out = self.service.allot_as(&self.key, args).await.ok(args);
        self.command_line(args);
        self.text.push_str(&out);
        out
    }

    /// Runs a command that must fail with `code`; the transcript shows
    /// what it said and the exit code.
    pub async fn fails(&mut self, args: &[&str], code: i32) {
        let run = self.service.allot_as(&self.key, args).await;
        run.failed(args, code);
        self.command_line(args);
        self.text.push_str(&run.stderr);
        self.text.push_str(&format!("[exit {code}]\n"));
    }

    pub fn assert_snapshot(self, name: &str) {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        for (pattern, replacement) in MASKS {
            settings.add_filter(pattern, *replacement);
        }
        settings.bind(|| insta::assert_snapshot!(name, self.text));
    }
}

/// The first id with `prefix` in a command's output.
pub fn id_in(out: &str, prefix: &str) -> String {
    let start = out
        .find(&format!("{prefix}_"))
        .unwrap_or_else(|| panic!("no {prefix}_ id in {out}"));
    out[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}
