//! `allot login` / `logout`: the service URL and an API key kept for the
//! client commands, in the user's config directory, readable by the user
//! alone (0600). Flags and `ALLOT_URL` / `ALLOT_KEY` still override it.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub url: String,
    pub key: String,
}

/// `$ALLOT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/allot`, else `~/.config/allot`.
fn dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("ALLOT_CONFIG_DIR")
        .or_else(|| from("XDG_CONFIG_HOME").map(|d| d.join("allot")))
        .or_else(|| from("HOME").map(|d| d.join(".config").join("allot")))
}

pub fn path() -> Option<PathBuf> {
    dir().map(|d| d.join("credentials.toml"))
}

/// What `allot login` stored, if anything readable is there.
pub fn stored() -> Option<Credentials> {
    let text = std::fs::read_to_string(path()?).ok()?;
    toml::from_str(&text).ok()
}

/// The key, from a prompt that does not echo on a terminal, else the first
/// line of standard input (for scripts: `echo "$KEY" | allot login`).
pub fn read_key() -> anyhow::Result<String> {
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("API key: ").context("reading the key")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    let key = key.trim().to_string();
    anyhow::ensure!(!key.is_empty(), "no API key given");
    Ok(key)
}

pub fn save(credentials: &Credentials) -> anyhow::Result<PathBuf> {
    let path = path().context("no config directory: set ALLOT_CONFIG_DIR or HOME")?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // Created 0600 from the start: the key is never readable by others,
    // not even for a moment.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(toml::to_string(credentials)?.as_bytes())?;
    Ok(path)
}

/// Removes what `login` stored; whether there was anything.
pub fn forget() -> anyhow::Result<bool> {
    let Some(path) = path() else {
        return Ok(false);
    };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}
