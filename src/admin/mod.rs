//! The admin client: topics, partitions, configs, consumer groups and their
//! offsets, offsets and records, cluster description, ACLs, SCRAM
//! credentials, log dirs, producers, transactions and client quotas.
//!
//! Every call is routed to the broker that must answer it (the controller,
//! a partition leader, a group coordinator, or every broker), retried with
//! backoff on retriable errors within the call's timeout, and returns typed
//! results. Where one request covers several resources, each resource gets
//! its own `Result`, so that one failing topic does not hide the others.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferrokafka::admin::Error> {
//! use ferrokafka::admin::{Admin, NewTopic};
//! use ferrokafka::network::ClientConfig;
//!
//! let admin = Admin::connect(ClientConfig::builder().bootstrap_servers(["127.0.0.1:9092"]).build()?).await?;
//! let created = admin.create_topics(&[NewTopic::new("events", 3, 1)], Default::default()).await?;
//! created["events"].as_ref().expect("topic created");
//! # Ok(()) }
//! ```
//!
//! This module depends on [`crate::network`] and [`crate::protocol`] only.

mod acls;
mod cluster_info;
mod common;
mod configs;
#[cfg(test)]
mod coordinator_tests;
mod groups;
mod offsets;
mod producers;
mod quotas;
mod scram;
#[cfg(test)]
mod tests;
mod topics;
mod transactions;

pub use acls::*;
pub use cluster_info::*;
pub use common::{AuthorizedOperations, TopicPartition};
pub use configs::*;
pub use groups::*;
pub use offsets::*;
pub use producers::*;
pub use quotas::*;
pub use scram::*;
pub use topics::*;
pub use transactions::*;

use std::time::Duration;

pub use crate::network::Error;
use crate::network::{ClientConfig, Cluster};

/// The result of an admin call.
pub type Result<T> = std::result::Result<T, Error>;

/// A Kafka admin client, the equivalent of the Java `Admin`/`AdminClient`.
///
/// Cheap to clone: clones share connections and the metadata cache.
#[derive(Clone)]
pub struct Admin {
    cluster: Cluster,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Connects to the cluster named by `config.bootstrap_servers`.
    pub async fn connect(config: ClientConfig) -> Result<Admin> {
        Ok(Admin {
            cluster: Cluster::connect(config).await?,
        })
    }

    /// An admin client over an existing cluster client (sharing its connections).
    pub fn from_cluster(cluster: Cluster) -> Admin {
        Admin { cluster }
    }

    /// The cluster client underneath, for requests this API does not wrap.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The overall time limit of a call: the option's, or `default.api.timeout.ms`.
    pub(crate) fn timeout(&self, option: Option<Duration>) -> Duration {
        option.unwrap_or(self.cluster.config().default_api_timeout)
    }
}
