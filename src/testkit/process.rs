//! Broker processes: free ports, temporary directories, and the `sh` wrapper
//! whose lifeline stops a broker when the test process goes away.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::io_err;
use super::{BrokerKind, TestkitError};

/// How long a stopped broker gets between `SIGTERM` and `SIGKILL` (brokers
/// wait for open client connections on `SIGTERM`; tests should not wait long).
pub(super) const STOP_GRACE: Duration = Duration::from_secs(1);

/// A port on 127.0.0.1 that was free a moment ago and that this process has
/// not handed out before.
pub(super) fn pick_port() -> Result<u16, TestkitError> {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..50 {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(io_err("binding 127.0.0.1:0"))?;
        let port = listener
            .local_addr()
            .map_err(io_err("reading a local address"))?
            .port();
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(TestkitError::Io {
        context: "picking a free port".into(),
        source: io::Error::new(io::ErrorKind::AddrInUse, "no fresh port after 50 tries"),
    })
}

pub(super) fn make_temp_dir(kind: BrokerKind) -> Result<PathBuf, TestkitError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!(
            "ferrokafka-{}-{}-{n}-{nanos:08x}",
            kind.name(),
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(format!("creating {}", dir.display()))(e)),
        }
    }
}

/// The last `lines` lines of a file, for error messages.
pub(super) fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let out = all[start..].join("\n");
    if out.is_empty() {
        "(no output)".to_owned()
    } else {
        out
    }
}

// ---------------------------------------------------------------------------
// The broker process
// ---------------------------------------------------------------------------

/// Runs the broker (`$3...`) with its output appended to `$1`, prints its pid,
/// and stops it when standard input (the lifeline) reaches end of file.
/// `$2` is the grace period in tenths of a second before `SIGKILL`.
pub(super) const WRAPPER: &str = r#"
log="$1"; grace="$2"; shift 2
"$@" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid"
exec 3<&0
(
    while IFS= read -r _line <&3; do :; done
    kill -TERM "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt "$grace" ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$pid" 2>/dev/null
) &
watcher=$!
exec 3<&-
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

pub(super) struct Process {
    pub(super) wrapper: Child,
    pub(super) lifeline: Option<ChildStdin>,
    pub(super) pid: u32,
}

impl Process {
    /// Closes the lifeline and waits for the broker to be gone.
    pub(super) fn stop(mut self) -> Result<(), TestkitError> {
        drop(self.lifeline.take());
        let deadline = Instant::now() + STOP_GRACE + Duration::from_secs(5);
        loop {
            match self.wrapper.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        // The wrapper did not finish: kill both the broker and the wrapper.
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.wrapper.kill();
        self.wrapper
            .wait()
            .map(|_| ())
            .map_err(io_err("waiting for the broker wrapper"))
    }

    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.wrapper.try_wait().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = make_temp_dir(BrokerKind::Tansu).unwrap();
        let path = dir.join("log");
        fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&path, 2), "c\nd");
        assert_eq!(tail(&dir.join("missing"), 2), "(no output)");
        fs::remove_dir_all(&dir).unwrap();
    }
}
