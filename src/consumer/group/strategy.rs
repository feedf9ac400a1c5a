//! `partition.assignment.strategy` and the choice of group protocol.

use std::sync::Arc;

use crate::network::ConfigError;

use super::assignor::{Assignor, RebalanceProtocol};
use super::range::RangeAssignor;
use super::round_robin::RoundRobinAssignor;
use super::sticky::{CooperativeStickyAssignor, StickyAssignor};

/// Java's default: `range` preferred, `cooperative-sticky` allowed, so a
/// group can be upgraded to cooperative-sticky by a rolling restart.
pub const DEFAULT_ASSIGNMENT_STRATEGY: &str = "range,cooperative-sticky";

const KEY: &str = "partition.assignment.strategy";

/// Parses `partition.assignment.strategy`: comma-separated names in
/// preference order, either the protocol names (`range`, `roundrobin`,
/// `sticky`, `cooperative-sticky`) or the Java class names
/// (`org.apache.kafka.clients.consumer.RangeAssignor`, ...).
///
/// ```
/// use ferrokafka::consumer::group::parse_assignment_strategy;
///
/// let assignors = parse_assignment_strategy(
///     "cooperative-sticky, org.apache.kafka.clients.consumer.RangeAssignor",
/// ).unwrap();
/// let names: Vec<&str> = assignors.iter().map(|a| a.name()).collect();
/// assert_eq!(names, ["cooperative-sticky", "range"]);
/// ```
pub fn parse_assignment_strategy(value: &str) -> Result<Vec<Arc<dyn Assignor>>, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidValue {
        key: KEY.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let mut out: Vec<Arc<dyn Assignor>> = Vec::new();
    for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let assignor: Arc<dyn Assignor> = match name {
            "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => Arc::new(RangeAssignor),
            "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                Arc::new(RoundRobinAssignor)
            }
            "sticky" | "org.apache.kafka.clients.consumer.StickyAssignor" => {
                Arc::new(StickyAssignor::default())
            }
            "cooperative-sticky"
            | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                Arc::new(CooperativeStickyAssignor)
            }
            other => return Err(invalid(format!("unknown assignor {other:?}"))),
        };
        if out.iter().any(|a| a.name() == assignor.name()) {
            return Err(invalid(format!(
                "assignor {:?} is listed more than once",
                assignor.name()
            )));
        }
        out.push(assignor);
    }
    if out.is_empty() {
        return Err(invalid("no assignor given".to_owned()));
    }
    Ok(out)
}

/// The rebalance protocol a consumer with these assignors uses, as Java
/// decides it: the highest protocol every assignor supports (cooperative
/// only when all of them support it). `None` when they share none.
pub fn rebalance_protocol(assignors: &[Arc<dyn Assignor>]) -> Option<RebalanceProtocol> {
    let first = assignors.first()?;
    first
        .supported_protocols()
        .iter()
        .copied()
        .filter(|p| {
            assignors
                .iter()
                .all(|a| a.supported_protocols().contains(p))
        })
        .max()
}

/// The protocol (assignor name) the coordinator picks for a classic group,
/// given each member's names in its preference order: among the names every
/// member supports, each member votes for its most preferred one, and the
/// name with most votes wins (ties go to the name the first member prefers).
/// `None` when the members share no name (the broker answers
/// INCONSISTENT_GROUP_PROTOCOL).
///
/// ```
/// use ferrokafka::consumer::group::choose_group_protocol;
///
/// let leader = ["cooperative-sticky", "range"];
/// let old_member = ["range"];
/// assert_eq!(choose_group_protocol(&[&leader[..], &old_member[..]]), Some("range"));
/// ```
pub fn choose_group_protocol<'a>(members: &[&[&'a str]]) -> Option<&'a str> {
    let (first, rest) = members.split_first()?;
    let candidates: Vec<&'a str> = first
        .iter()
        .copied()
        .filter(|name| rest.iter().all(|m| m.contains(name)))
        .collect();
    let mut votes = vec![0usize; candidates.len()];
    for member in members {
        if let Some(i) = member
            .iter()
            .find_map(|name| candidates.iter().position(|c| c == name))
        {
            votes[i] += 1;
        }
    }
    let best = votes.iter().copied().max()?;
    candidates
        .iter()
        .zip(&votes)
        .find(|(_, &v)| v == best)
        .map(|(c, _)| *c)
}

/// One entry of `partition.assignment.strategy`: a built-in assignor or a
/// custom one.
///
/// ```
/// use ferrokafka::consumer::group::Strategy;
///
/// let strategies = Strategy::parse_list("range, cooperative-sticky").unwrap();
/// assert_eq!(strategies, vec![Strategy::Range, Strategy::CooperativeSticky]);
/// assert_eq!(strategies[1].name(), "cooperative-sticky");
/// ```
#[derive(Clone, Debug)]
pub enum Strategy {
    /// [`RangeAssignor`] (`range`).
    Range,
    /// [`RoundRobinAssignor`] (`roundrobin`).
    RoundRobin,
    /// [`StickyAssignor`] (`sticky`).
    Sticky,
    /// [`CooperativeStickyAssignor`] (`cooperative-sticky`, KIP-429).
    CooperativeSticky,
    /// An application's own [`Assignor`].
    Custom(Arc<dyn Assignor>),
}

impl PartialEq for Strategy {
    /// Strategies are equal when their protocol names are.
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Strategy {}

impl Strategy {
    /// A custom assignor.
    pub fn custom(assignor: impl Assignor + 'static) -> Strategy {
        Strategy::Custom(Arc::new(assignor))
    }

    /// The protocol name members advertise.
    pub fn name(&self) -> &str {
        match self {
            Strategy::Range => "range",
            Strategy::RoundRobin => "roundrobin",
            Strategy::Sticky => "sticky",
            Strategy::CooperativeSticky => "cooperative-sticky",
            Strategy::Custom(a) => a.name(),
        }
    }

    /// A fresh assignor for this strategy (the custom one is shared). A
    /// consumer makes one per strategy and keeps it for its life, as the
    /// sticky assignor remembers the last assignment.
    pub fn assignor(&self) -> Arc<dyn Assignor> {
        match self {
            Strategy::Range => Arc::new(RangeAssignor),
            Strategy::RoundRobin => Arc::new(RoundRobinAssignor),
            Strategy::Sticky => Arc::new(StickyAssignor::default()),
            Strategy::CooperativeSticky => Arc::new(CooperativeStickyAssignor),
            Strategy::Custom(a) => a.clone(),
        }
    }

    /// Parses a `partition.assignment.strategy` value (see
    /// [`parse_assignment_strategy`]).
    pub fn parse_list(value: &str) -> Result<Vec<Strategy>, ConfigError> {
        Ok(parse_assignment_strategy(value)?
            .into_iter()
            .map(|a| match a.name() {
                "range" => Strategy::Range,
                "roundrobin" => Strategy::RoundRobin,
                "sticky" => Strategy::Sticky,
                "cooperative-sticky" => Strategy::CooperativeSticky,
                _ => Strategy::Custom(a),
            })
            .collect())
    }

    /// Java's default, `range` then `cooperative-sticky`.
    pub fn default_list() -> Vec<Strategy> {
        vec![Strategy::Range, Strategy::CooperativeSticky]
    }
}
