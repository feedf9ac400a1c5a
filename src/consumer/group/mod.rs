//! Consumer groups: partition assignors and the `consumer` protocol type's
//! metadata formats (ConsumerProtocolSubscription / ConsumerProtocolAssignment).
//!
//! The group leader, whichever client it runs in, decodes every member's
//! [`Subscription`], runs the chosen [`Assignor`] and encodes one
//! [`Assignment`] per member. The built-in assignors follow the Java client:
//! [`RangeAssignor`], [`RoundRobinAssignor`], [`StickyAssignor`] and
//! [`CooperativeStickyAssignor`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use ferrokafka::consumer::group::{Assignor, GroupMember, RangeAssignor, Subscription};
//!
//! let partitions = BTreeMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
//! let members = vec![
//!     GroupMember::new("C0", Subscription::new(["t0", "t1"])),
//!     GroupMember::new("C1", Subscription::new(["t0", "t1"])),
//! ];
//! let assignment = RangeAssignor.assign(&partitions, &members).unwrap();
//! assert_eq!(assignment["C0"].partitions.len(), 4);
//! assert_eq!(assignment["C1"].partitions.len(), 2);
//! ```

mod assignor;
pub(crate) mod coordinator;
mod protocol;
mod range;
mod round_robin;
pub(crate) mod session;
mod sticky;
mod strategy;

#[cfg(test)]
mod tests;

pub use assignor::{AssignError, Assignor, GroupAssignment, GroupMember, RebalanceProtocol};
pub use coordinator::{GroupMembership, MemberState};
pub use protocol::{Assignment, GroupProtocolError, Subscription, CONSUMER_PROTOCOL_VERSION};
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use sticky::{CooperativeStickyAssignor, StickyAssignor};
pub use strategy::{
    choose_group_protocol, parse_assignment_strategy, rebalance_protocol, Strategy,
    DEFAULT_ASSIGNMENT_STRATEGY,
};
