//! Finding the broker binaries, installing them with `scripts/brokers.sh` when missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{BrokerKind, TestkitError, BROKERS_DIR_ENV};
#[cfg(doc)]
use super::{NOIDA_BIN_ENV, TANSU_BIN_ENV};

/// The directory the brokers are installed in: [`BROKERS_DIR_ENV`], else
/// `.brokers` in the crate under test (`CARGO_MANIFEST_DIR` at run time), else
/// `.brokers` in this crate's source directory.
pub fn brokers_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BROKERS_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    root.join(".brokers")
}

/// The install script: in the crate under test if it has one, else in this
/// crate's source directory.
fn install_script() -> Option<PathBuf> {
    let mut roots = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(dir));
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    roots
        .into_iter()
        .map(|r| r.join("scripts").join("brokers.sh"))
        .find(|p| p.is_file())
}

fn recorded_path(dir: &Path, kind: BrokerKind) -> Option<PathBuf> {
    let text = fs::read_to_string(dir.join(format!("{}-path", kind.name()))).ok()?;
    let path = PathBuf::from(text.trim());
    path.is_file().then_some(path)
}

/// Runs `scripts/brokers.sh install` at most once per process. The script
/// itself holds a file lock, so concurrent test binaries do not race either.
fn install_once() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let script = install_script().ok_or_else(|| {
                "scripts/brokers.sh not found next to the crate under test or ferrokafka's sources"
                    .to_owned()
            })?;
            let output = Command::new("bash")
                .arg(&script)
                .arg("install")
                .env(BROKERS_DIR_ENV, brokers_dir())
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("could not run {}: {e}", script.display()))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{} install failed ({}):\n{}{}",
                    script.display(),
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ))
            }
        })
        .clone()
}

/// The binary for `kind`: from its environment variable
/// ([`TANSU_BIN_ENV`] / [`NOIDA_BIN_ENV`]), else as recorded in
/// [`brokers_dir`], else after running `scripts/brokers.sh install` once.
pub fn broker_binary(kind: BrokerKind) -> Result<PathBuf, TestkitError> {
    if let Some(path) = std::env::var_os(kind.bin_env()).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(TestkitError::NotInstalled {
                kind,
                detail: format!("{} points at {path:?}, which is not a file", kind.bin_env()),
            })
        };
    }
    let dir = brokers_dir();
    if let Some(path) = recorded_path(&dir, kind) {
        return Ok(path);
    }
    install_once().map_err(|detail| TestkitError::NotInstalled { kind, detail })?;
    recorded_path(&dir, kind).ok_or_else(|| TestkitError::NotInstalled {
        kind,
        detail: format!(
            "install finished but {} has no {}-path",
            dir.display(),
            kind.name()
        ),
    })
}
