//! Every command's `--help` ends with examples (`allot accounts create
//! --help`): `#[command(after_help = examples!("allot …", "allot …"))]`.
//! The CLI tests walk every command and hold each to it.

/// An `Examples:` section, one command a line.
macro_rules! examples {
    ($($line:literal),+ $(,)?) => {
        concat!("Examples:", $("\n  ", $line),+)
    };
}
