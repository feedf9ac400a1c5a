//! [`TestBroker`]: one broker process started, probed, stopped and restarted.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::io_err;
use super::install::broker_binary;
use super::process::{make_temp_dir, pick_port, tail, Process, STOP_GRACE, WRAPPER};
use super::tls_proxy::TlsProxy;
use super::{BlockingClient, BrokerKind, BrokerOptions, TestkitError, DEFAULT_START_TIMEOUT};

/// A broker process started by this harness, listening on `127.0.0.1`.
///
/// Dropping it stops the process and removes its temporary directory.
pub struct TestBroker {
    kind: BrokerKind,
    binary: PathBuf,
    /// The port clients connect to: the TLS proxy's when there is one.
    port: u16,
    /// The port the broker process itself listens on (plaintext).
    broker_port: u16,
    dir: PathBuf,
    process: Option<Process>,
    start_timeout: Duration,
    options: BrokerOptions,
    tls_proxy: Option<TlsProxy>,
}

impl fmt::Debug for TestBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestBroker")
            .field("kind", &self.kind)
            .field("addr", &self.bootstrap_servers())
            .field("pid", &self.pid())
            .field("broker_port", &self.broker_port)
            .field("tls_proxy_port", &self.tls_proxy.as_ref().map(|p| p.port))
            .field("options", &self.options)
            .field("dir", &self.dir)
            .finish()
    }
}

impl TestBroker {
    /// Starts a broker of `kind` on a free port and waits (up to
    /// [`DEFAULT_START_TIMEOUT`]) until it answers ApiVersions.
    pub fn start(kind: BrokerKind) -> Result<TestBroker, TestkitError> {
        TestBroker::start_with_timeout(kind, DEFAULT_START_TIMEOUT)
    }

    /// Like [`TestBroker::start`], waiting at most `timeout` for readiness.
    pub fn start_with_timeout(
        kind: BrokerKind,
        timeout: Duration,
    ) -> Result<TestBroker, TestkitError> {
        TestBroker::start_with_options(kind, BrokerOptions::default(), timeout)
    }

    /// Starts a broker of `kind` with TLS and required authentication as
    /// `options` asks, waiting up to [`DEFAULT_START_TIMEOUT`].
    ///
    /// Only Tansu takes options; noida-db answers
    /// [`TestkitError::Unsupported`] for anything but the defaults. See
    /// [`BrokerOptions`] for how each option is realised.
    pub fn start_with(
        kind: BrokerKind,
        options: BrokerOptions,
    ) -> Result<TestBroker, TestkitError> {
        TestBroker::start_with_options(kind, options, DEFAULT_START_TIMEOUT)
    }

    /// [`TestBroker::start_with`], waiting at most `timeout` for readiness.
    pub fn start_with_options(
        kind: BrokerKind,
        options: BrokerOptions,
        timeout: Duration,
    ) -> Result<TestBroker, TestkitError> {
        options.check(kind)?;
        let binary = broker_binary(kind)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let broker_port = pick_port()?;
            let dir = make_temp_dir(kind)?;
            let tls_proxy = match &options.tls {
                Some(files) => Some(TlsProxy::start(files, broker_port)?),
                None => None,
            };
            let port = tls_proxy.as_ref().map_or(broker_port, |p| p.port);
            let mut broker = TestBroker {
                kind,
                binary: binary.clone(),
                port,
                broker_port,
                dir,
                process: None,
                start_timeout: timeout,
                options: options.clone(),
                tls_proxy,
            };
            match broker.launch() {
                Ok(()) => return Ok(broker),
                // Another process took the port between our check and the
                // broker's bind: try another one.
                Err(TestkitError::Exited { ref output, .. })
                    if attempt < 3 && looks_like_port_clash(output) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The broker's kind.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// `127.0.0.1:PORT`, for a client's bootstrap servers.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port clients connect to (kept across [`TestBroker::restart`]):
    /// the TLS proxy's port when the broker was started with TLS.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port the broker process itself listens on, in plaintext. The same
    /// as [`TestBroker::port`] unless a TLS proxy fronts the broker.
    pub fn broker_port(&self) -> u16 {
        self.broker_port
    }

    /// The options the broker was started with.
    pub fn options(&self) -> &BrokerOptions {
        &self.options
    }

    /// The broker's socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        match self.process.as_mut() {
            Some(p) => p.exited().is_none(),
            None => false,
        }
    }

    /// The binary that runs the broker.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The broker's temporary directory (its output log, and noida-db's data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last `lines` lines the broker wrote to stdout and stderr (across restarts).
    pub fn output_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    /// Stops the broker process and waits until it has exited. The port and
    /// temporary directory are kept, so [`TestBroker::restart`] can start it
    /// again; stopping a stopped broker does nothing.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        match self.process.take() {
            Some(p) => p.stop(),
            None => Ok(()),
        }
    }

    /// Stops the broker (if it runs) and starts a new process on the same port,
    /// returning once it answers ApiVersions.
    ///
    /// Tansu runs with memory storage, so a restart loses every topic and
    /// record; noida-db reuses its data directory and keeps them (see
    /// [`BrokerKind::keeps_data_across_restart`]).
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        self.launch_retrying()
    }

    /// [`TestBroker::launch`] on a port that was in use a moment ago: the old
    /// listener is closed once its process is gone, but retry briefly in case
    /// the port is still held.
    fn launch_retrying(&mut self) -> Result<(), TestkitError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Err(TestkitError::Exited { ref output, .. })
                    if looks_like_port_clash(output) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }

    fn command_args(&self, authentication: bool) -> Vec<String> {
        match self.kind {
            BrokerKind::Tansu => {
                let mut args = vec![
                    "broker".into(),
                    "--listener-url".into(),
                    format!("tcp://127.0.0.1:{}", self.broker_port),
                    // Clients are sent to the TLS proxy, when there is one.
                    "--advertised-listener-url".into(),
                    format!("tcp://127.0.0.1:{}", self.port),
                    "--storage-engine".into(),
                    "memory://tansu/".into(),
                ];
                if authentication {
                    args.push("--authentication".into());
                }
                args
            }
            BrokerKind::Noida => vec![
                "start".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--only".into(),
                "kafka".into(),
                "--kafka-port".into(),
                self.broker_port.to_string(),
                "--data-dir".into(),
                self.dir.join("data").to_string_lossy().into_owned(),
            ],
        }
    }

    /// Starts the broker and waits until it is ready.
    fn launch(&mut self) -> Result<(), TestkitError> {
        self.launch_process(self.options.authentication)
    }

    /// The broker process's own (plaintext) address.
    fn broker_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.broker_port))
    }

    /// Starts the process and waits until it is ready; on failure the process
    /// is stopped again.
    fn launch_process(&mut self, authentication: bool) -> Result<(), TestkitError> {
        let log = self.log_path();
        // Create the log (and mark restarts in it).
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io_err(format!("opening {}", log.display())))?;
        let _ = writeln!(f, "--- ferrokafka testkit: starting {} ---", self.kind);
        drop(f);
        if self.kind == BrokerKind::Noida {
            let data = self.dir.join("data");
            fs::create_dir_all(&data).map_err(io_err(format!("creating {}", data.display())))?;
        }
        let grace = (STOP_GRACE.as_millis() / 100).to_string();
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("ferrokafka-testkit")
            .arg(&log)
            .arg(grace)
            .arg(&self.binary)
            .args(self.command_args(authentication))
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                kind: self.kind,
                binary: self.binary.clone(),
                source,
            })?;
        let lifeline = wrapper.stdin.take();
        let mut line = String::new();
        if let Some(out) = wrapper.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let pid = match line.trim().parse::<u32>() {
            Ok(pid) => pid,
            Err(_) => {
                drop(lifeline);
                let status = wrapper.wait().map_err(io_err("waiting for the wrapper"))?;
                return Err(TestkitError::Exited {
                    kind: self.kind,
                    addr: self.bootstrap_servers(),
                    status: status.to_string(),
                    output: tail(&log, 30),
                });
            }
        };
        self.process = Some(Process {
            wrapper,
            lifeline,
            pid,
        });
        let result = self.wait_ready();
        if result.is_err() {
            let _ = self.stop();
        }
        result
    }

    fn wait_ready(&mut self) -> Result<(), TestkitError> {
        let started = Instant::now();
        let addr = self.bootstrap_servers();
        loop {
            if let Some(status) = self.process.as_mut().and_then(Process::exited) {
                return Err(TestkitError::Exited {
                    kind: self.kind,
                    addr,
                    status: status.to_string(),
                    output: self.output_tail(30),
                });
            }
            // Probe the broker itself: behind a TLS proxy it still speaks
            // plaintext, and Tansu answers ApiVersions before authentication.
            let last_error = match probe_ready(self.broker_addr()) {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= self.start_timeout {
                return Err(TestkitError::NotReady {
                    kind: self.kind,
                    addr,
                    waited: started.elapsed(),
                    last_error,
                    output: self.output_tail(30),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn looks_like_port_clash(output: &str) -> bool {
    let lower = output.to_ascii_lowercase();
    lower.contains("address already in use") || lower.contains("os error 98")
}

/// Connects and checks that the broker answers ApiVersions with no error.
fn probe_ready(addr: SocketAddr) -> Result<(), TestkitError> {
    let mut client = BlockingClient::connect_addr(addr, Duration::from_secs(2))?;
    let response = client.api_versions()?;
    if response.error_code != 0 {
        return Err(TestkitError::Request {
            addr: addr.to_string(),
            detail: format!("ApiVersions error code {}", response.error_code),
        });
    }
    if response.api_keys.is_empty() {
        return Err(TestkitError::Request {
            addr: addr.to_string(),
            detail: "ApiVersions listed no API".into(),
        });
    }
    Ok(())
}
