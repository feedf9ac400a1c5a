//! [`TestCluster`]: a local broker or an external cluster named in the environment.

use std::time::Duration;

use super::{BlockingClient, BrokerKind, Capability, TestBroker, TestkitError, BOOTSTRAP_ENV};

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
}
