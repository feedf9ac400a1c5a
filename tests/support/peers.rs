//! Driving the Python peer clients from tests: librdkafka (confluent-kafka)
//! and kafka-python, installed in the brokers' venv by
//! `scripts/brokers.sh install clients`. Their absence is a failure, never a
//! skip.
//!
//! - [`run_script`] / [`run_peer_script`]: run one of `scripts/interop/*.py`
//!   to completion and get its stdout (it must exit 0).
//! - [`consume`]: read a topic from offset 0 with a peer
//!   (`scripts/interop/consume.py`), as [`PeerRecord`]s.
//! - [`GroupMember`]: a long-running consumer-group member
//!   (`scripts/interop/group_member.py`) whose assignment, records and
//!   commits are followed as it reports them; stopped gracefully (LeaveGroup)
//!   or killed (SIGKILL: the session has to time out).
//!
//! Included by test crates as `mod support;` (or by `#[path]`); each crate
//! uses part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrokafka::testkit::brokers_dir;
use serde_json::Value;

/// A third-party client the tests run beside ferrokafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// librdkafka through confluent-kafka.
    Librdkafka,
    /// kafka-python.
    KafkaPython,
}

impl Peer {
    /// Both peers.
    pub const ALL: [Peer; 2] = [Peer::Librdkafka, Peer::KafkaPython];

    /// The `--client` value the scripts take.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Librdkafka => "librdkafka",
            Peer::KafkaPython => "kafka-python",
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The venv's Python, which has both clients.
pub fn python() -> PathBuf {
    let python = brokers_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/brokers.sh install clients",
        python.display()
    );
    python
}

/// The path of `scripts/interop/<name>`.
pub fn interop_script(name: &str) -> String {
    format!("{}/scripts/interop/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Installs the Python clients into the brokers' venv unless they are there
/// (a no-op once installed), so `cargo test` works after
/// `scripts/quickstart.sh` installed a broker alone.
pub fn install_python_clients() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/brokers.sh");
    let output = Command::new("bash")
        .args([script, "install", "clients"])
        .env("FERROKAFKA_BROKERS_DIR", brokers_dir())
        .output()
        .expect("run scripts/brokers.sh");
    assert!(
        output.status.success(),
        "scripts/brokers.sh install clients failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `scripts/interop/<script>` with `args` to completion; panics with its
/// stderr unless it exits 0; returns its stdout.
pub fn run_script(script: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg(interop_script(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `scripts/interop/<script> --client <client> --bootstrap <bootstrap>
/// --topic <topic> <extra...>` as [`run_script`] does.
pub fn run_peer_script(
    script: &str,
    client: &str,
    bootstrap: &str,
    topic: &str,
    extra: &[&str],
) -> String {
    let mut args = vec![
        "--client",
        client,
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
    ];
    args.extend_from_slice(extra);
    run_script(script, &args)
}

/// [`run_peer_script`] off the async runtime's threads.
pub async fn run_peer_script_async(
    script: &str,
    client: &str,
    bootstrap: &str,
    topic: &str,
    extra: &[&str],
) -> String {
    let owned: Vec<String> = [script, client, bootstrap, topic]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = owned[4..].iter().map(String::as_str).collect();
        run_peer_script(&owned[0], &owned[1], &owned[2], &owned[3], &extra)
    })
    .await
    .unwrap()
}

/// The JSON object on each line of a script's output.
pub fn json_lines(stdout: &str) -> impl Iterator<Item = Value> + '_ {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
}

/// Bytes the scripts print as hex (`null` stays `None`).
pub fn hex(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    })
}

/// A record as a peer printed it (`scripts/interop/*.py`: bytes as hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    pub partition: i32,
    pub offset: i64,
    /// Absent from the outputs that do not print it.
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl PeerRecord {
    /// Parses one output line's object.
    pub fn from_json(v: &Value) -> PeerRecord {
        PeerRecord {
            partition: v["partition"].as_i64().unwrap_or(0) as i32,
            offset: v["offset"].as_i64().unwrap_or(-1),
            timestamp: v["timestamp"].as_i64(),
            key: hex(&v["key"]),
            value: hex(&v["value"]),
            headers: v["headers"]
                .as_array()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h[0].as_str().unwrap().to_owned(), hex(&h[1])))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Reads `count` records of `topic`'s partitions `0..partitions` from offset
/// 0 with `peer` (`isolation`: `read_uncommitted` or `read_committed`).
pub async fn consume(
    peer: Peer,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    isolation: &str,
) -> Vec<PeerRecord> {
    let out = run_peer_script_async(
        "consume.py",
        peer.name(),
        bootstrap,
        topic,
        &[
            "--partitions",
            &partitions.to_string(),
            "--count",
            &count.to_string(),
            "--isolation",
            isolation,
        ],
    )
    .await;
    json_lines(&out)
        .map(|v| PeerRecord::from_json(&v))
        .collect()
}

/// Polls `done` every 20 ms until it holds; panics after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_until`] for tests without a runtime.
pub fn wait_until_blocking(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------ group members

/// A topic partition as the group tests name it.
pub type Tp = (String, i32);

/// How a [`GroupMember`] joins.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    pub peer: Peer,
    pub bootstrap: String,
    pub topics: Vec<String>,
    pub group: String,
    /// `range`, `roundrobin` or `cooperative-sticky`.
    pub strategy: String,
    /// `group.instance.id` for a static member.
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`, which is also the rebalance timeout the
    /// coordinator waits for members to rejoin (raised to the session
    /// timeout when shorter, as librdkafka requires).
    pub max_poll_interval: Duration,
    /// How often consumed positions are committed (besides on revoke and stop).
    pub commit_interval: Duration,
    pub max_poll_records: usize,
}

impl MemberOptions {
    /// A dynamic member of `group` subscribed to `topic`, with a 6 s session
    /// (the smallest noida-db accepts), 300 ms heartbeats, commits every
    /// 500 ms and a 10 s `max.poll.interval.ms` (the clients' default of
    /// 5 minutes would let one lost rejoin stall a test's group for that
    /// long; the members poll every 50 ms).
    pub fn new(peer: Peer, bootstrap: &str, topic: &str, group: &str, strategy: &str) -> Self {
        MemberOptions {
            peer,
            bootstrap: bootstrap.to_owned(),
            topics: vec![topic.to_owned()],
            group: group.to_owned(),
            strategy: strategy.to_owned(),
            instance_id: None,
            session_timeout: Duration::from_secs(6),
            heartbeat_interval: Duration::from_millis(300),
            max_poll_interval: Duration::from_secs(10),
            commit_interval: Duration::from_millis(500),
            max_poll_records: 500,
        }
    }

    pub fn instance_id(mut self, id: &str) -> Self {
        self.instance_id = Some(id.to_owned());
        self
    }

    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    pub fn max_poll_records(mut self, n: usize) -> Self {
        self.max_poll_records = n;
        self
    }
}

/// What a member's rebalance callbacks reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    Assigned(Vec<Tp>),
    Revoked(Vec<Tp>),
    Lost(Vec<Tp>),
}

/// A record a member consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub value: Option<String>,
    pub at: Instant,
}

/// Everything a member reported so far.
#[derive(Debug, Clone, Default)]
pub struct MemberLog {
    pub started: bool,
    pub closed: bool,
    /// The whole assignment, as of the last change.
    pub assignment: Vec<Tp>,
    /// What the rebalance callbacks say the member owns: added by
    /// `assigned` (all partitions under the eager protocol, the new ones
    /// under the cooperative one), removed by `revoked` and `lost` as soon
    /// as they run, before the poll loop reports the whole assignment.
    pub owned: BTreeSet<Tp>,
    /// Each whole-assignment change, with when it was reported.
    pub assignments: Vec<(Instant, Vec<Tp>)>,
    pub rebalances: Vec<(Instant, Rebalance)>,
    pub records: Vec<MemberRecord>,
    /// Accepted commits: (topic, partition, next offset), in order.
    pub commits: Vec<(Instant, Tp, i64)>,
    pub commit_failures: Vec<String>,
}

impl MemberLog {
    /// Notes the whole assignment when it changed.
    pub fn note_assignment(&mut self, mut assignment: Vec<Tp>) {
        assignment.sort();
        if assignment != self.assignment || self.assignments.is_empty() {
            self.assignment = assignment;
            self.assignments
                .push((Instant::now(), self.assignment.clone()));
        }
    }

    /// Notes a rebalance callback and applies it to [`MemberLog::owned`].
    pub fn note_rebalance(&mut self, rebalance: Rebalance) {
        match &rebalance {
            Rebalance::Assigned(tps) => self.owned.extend(tps.iter().cloned()),
            Rebalance::Revoked(tps) | Rebalance::Lost(tps) => {
                for tp in tps {
                    self.owned.remove(tp);
                }
            }
        }
        self.rebalances.push((Instant::now(), rebalance));
    }

    pub fn note_record(&mut self, topic: &str, partition: i32, offset: i64, value: Option<String>) {
        self.records.push(MemberRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            value,
            at: Instant::now(),
        });
    }

    pub fn note_commit(&mut self, tp: Tp, next_offset: i64) {
        self.commits.push((Instant::now(), tp, next_offset));
    }

    /// The last accepted commit for `tp` (the next offset to read).
    pub fn last_commit(&self, tp: &Tp) -> Option<i64> {
        self.commits
            .iter()
            .rev()
            .find(|(_, t, _)| t == tp)
            .map(|c| c.2)
    }

    fn apply(&mut self, v: &Value) {
        let tps = |v: &Value| -> Vec<Tp> {
            v["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_owned(),
                        p[1].as_i64().unwrap() as i32,
                    )
                })
                .collect()
        };
        match v["event"].as_str().unwrap_or_default() {
            "started" => self.started = true,
            "closed" => self.closed = true,
            "assignment" => self.note_assignment(tps(v)),
            "assigned" => self.note_rebalance(Rebalance::Assigned(tps(v))),
            "revoked" => self.note_rebalance(Rebalance::Revoked(tps(v))),
            "lost" => self.note_rebalance(Rebalance::Lost(tps(v))),
            "records" => {
                for r in v["records"].as_array().unwrap() {
                    let topic = r[0].as_str().unwrap();
                    let value = r[3].as_str().map(str::to_owned);
                    self.note_record(
                        topic,
                        r[1].as_i64().unwrap() as i32,
                        r[2].as_i64().unwrap(),
                        value,
                    );
                }
            }
            "commit" => {
                for o in v["offsets"].as_array().unwrap() {
                    let tp = (
                        o[0].as_str().unwrap().to_owned(),
                        o[1].as_i64().unwrap() as i32,
                    );
                    self.note_commit(tp, o[2].as_i64().unwrap());
                }
            }
            "commit_failed" => self
                .commit_failures
                .push(v["error"].as_str().unwrap_or_default().to_owned()),
            other => panic!("group_member.py reported an unknown event {other:?}: {v}"),
        }
    }
}

/// A consumer-group member run by a peer client in its own process
/// (`scripts/interop/group_member.py`), followed through what it reports.
pub struct GroupMember {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<MemberLog>>,
    stderr: Arc<Mutex<String>>,
}

impl GroupMember {
    /// Starts the member; it joins as soon as its client is up.
    pub fn start(name: &str, options: &MemberOptions) -> GroupMember {
        let mut command = Command::new(python());
        command
            .arg(interop_script("group_member.py"))
            .args(["--client", options.peer.name()])
            .args(["--bootstrap", &options.bootstrap])
            .args(["--group", &options.group])
            .args(["--strategy", &options.strategy])
            .args([
                "--session-timeout-ms",
                &options.session_timeout.as_millis().to_string(),
            ])
            .args([
                "--heartbeat-interval-ms",
                &options.heartbeat_interval.as_millis().to_string(),
            ])
            .args([
                "--max-poll-interval-ms",
                &options
                    .max_poll_interval
                    .max(options.session_timeout)
                    .as_millis()
                    .to_string(),
            ])
            .args([
                "--commit-interval-ms",
                &options.commit_interval.as_millis().to_string(),
            ])
            .args(["--max-poll-records", &options.max_poll_records.to_string()]);
        for topic in &options.topics {
            command.args(["--topic", topic]);
        }
        if let Some(id) = &options.instance_id {
            command.args(["--instance-id", id]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run scripts/interop/group_member.py");
        let log = Arc::new(Mutex::new(MemberLog::default()));
        let stdout = child.stdout.take().unwrap();
        let writer = Arc::clone(&log);
        let who = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{who}: {e}: {line}"));
                writer.lock().unwrap().apply(&v);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        GroupMember {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            log,
            stderr,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the log under its lock.
    pub fn with_log<R>(&self, f: impl FnOnce(&MemberLog) -> R) -> R {
        f(&self.log.lock().unwrap())
    }

    /// The shared log the reader thread writes into.
    pub fn log_handle(&self) -> Arc<Mutex<MemberLog>> {
        Arc::clone(&self.log)
    }

    /// A copy of everything reported so far.
    pub fn log(&self) -> MemberLog {
        self.log.lock().unwrap().clone()
    }

    /// The whole assignment as last reported.
    pub fn assignment(&self) -> Vec<Tp> {
        self.with_log(|l| l.assignment.clone())
    }

    /// The partition numbers of the assignment (for one-topic groups).
    pub fn partitions(&self) -> Vec<i32> {
        self.with_log(|l| l.assignment.iter().map(|tp| tp.1).collect())
    }

    pub fn records_consumed(&self) -> usize {
        self.with_log(|l| l.records.len())
    }

    /// The last few KiB of the member's stderr (client logs, tracebacks).
    pub fn stderr_tail(&self) -> String {
        let s = self.stderr.lock().unwrap();
        let start = s.len().saturating_sub(4000);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].to_owned()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops gracefully: closes its input, so the member commits what it
    /// consumed and closes (LeaveGroup unless static); waits for its exit.
    pub fn stop(mut self) -> MemberLog {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "{} exited with {status}:\n{}",
                        self.name,
                        self.stderr_tail()
                    );
                    break;
                }
                _ if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} did not exit within 30 s of its input closing:\n{}",
                        self.name,
                        self.stderr_tail()
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        // The reader thread may still be taking the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let log = self.log();
        assert!(log.closed, "{} exited without closing", self.name);
        log
    }

    /// [`GroupMember::stop`] off the async runtime's threads.
    pub async fn stop_async(self) -> MemberLog {
        tokio::task::spawn_blocking(move || self.stop())
            .await
            .unwrap()
    }

    /// SIGKILL: no commit, no LeaveGroup; the group notices only when the
    /// member's session times out.
    pub fn kill(mut self) -> MemberLog {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        self.log()
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether no partition appears in two members' assignments.
pub fn owned_at_most_once(assignments: &[Vec<Tp>]) -> bool {
    let total: usize = assignments.iter().map(Vec::len).sum();
    let union: BTreeSet<&Tp> = assignments.iter().flatten().collect();
    total == union.len()
}

/// Whether the assignments cover `expected` exactly, each partition owned by
/// exactly one of them, and none is empty when `every_member_owns` is set.
pub fn owned_exactly_once(
    assignments: &[Vec<Tp>],
    expected: &BTreeSet<Tp>,
    every_member_owns: bool,
) -> bool {
    let total: usize = assignments.iter().map(Vec::len).sum();
    let union: BTreeSet<Tp> = assignments.iter().flatten().cloned().collect();
    total == expected.len()
        && &union == expected
        && (!every_member_owns || assignments.iter().all(|a| !a.is_empty()))
}
