//! Kafka's protocol error codes as a typed enum.
//!
//! Every code Apache Kafka 3.9 defines (`-1` to `127`) lives in one table below,
//! together with its Kafka constant name, whether the Java client treats it as
//! retriable (its exception class derives from `RetriableException`) and a short
//! description. Codes this library does not know decode to
//! [`ErrorCode::Unknown`] rather than failing, so newer brokers stay readable.

use std::fmt;

/// Defines [`ErrorCode`] and all of its lookups from a single table of
/// `Variant = code, "KAFKA_NAME", retriable, "description";` rows.
macro_rules! error_codes {
    ($($variant:ident = $code:literal, $name:literal, $retriable:literal, $desc:literal;)+) => {
        /// An error code from a Kafka response.
        ///
        /// `ErrorCode::None` (code 0) means success. Codes outside the table
        /// are kept as [`ErrorCode::Unknown`] with their raw value.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = $desc]
                $variant,
            )+
            /// A code that Kafka 3.9 does not define, kept verbatim.
            Unknown(i16),
        }

        impl ErrorCode {
            /// Every code Kafka 3.9 defines, in ascending order of code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// Maps a wire value to its code; values outside the table become
            /// [`ErrorCode::Unknown`].
            pub const fn from_code(code: i16) -> Self {
                match code {
                    $($code => ErrorCode::$variant,)+
                    other => ErrorCode::Unknown(other),
                }
            }

            /// The wire value of this code.
            pub const fn code(self) -> i16 {
                match self {
                    $(ErrorCode::$variant => $code,)+
                    ErrorCode::Unknown(code) => code,
                }
            }

            /// Kafka's constant name for this code, e.g. `NOT_LEADER_OR_FOLLOWER`.
            /// Unknown codes are named `UNKNOWN_ERROR_CODE`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                    ErrorCode::Unknown(_) => "UNKNOWN_ERROR_CODE",
                }
            }

            /// Whether retrying the same request may succeed: true exactly for
            /// the codes whose Java exception is a `RetriableException`.
            /// Unknown codes are not retriable, as in the Java client.
            pub const fn is_retriable(self) -> bool {
                match self {
                    $(ErrorCode::$variant => $retriable,)+
                    ErrorCode::Unknown(_) => false,
                }
            }

            /// A one-line, human-readable explanation of the code.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $desc,)+
                    ErrorCode::Unknown(_) => "The broker returned an error code this library does not know.",
                }
            }
        }
    };
}

error_codes! {
    UnknownServerError = -1, "UNKNOWN_SERVER_ERROR", false, "The broker hit an unexpected failure while handling the request.";
    None = 0, "NONE", false, "No error: the operation succeeded.";
    OffsetOutOfRange = 1, "OFFSET_OUT_OF_RANGE", false, "The asked-for offset lies outside the offsets the broker keeps for the partition.";
    CorruptMessage = 2, "CORRUPT_MESSAGE", true, "A message failed its checksum, is oversized, lacks a key on a compacted topic, or is otherwise damaged.";
    UnknownTopicOrPartition = 3, "UNKNOWN_TOPIC_OR_PARTITION", true, "The broker does not host the named topic-partition.";
    InvalidFetchSize = 4, "INVALID_FETCH_SIZE", false, "The fetch size in the request is not acceptable.";
    LeaderNotAvailable = 5, "LEADER_NOT_AVAILABLE", true, "The partition has no leader right now, usually because an election is under way.";
    NotLeaderOrFollower = 6, "NOT_LEADER_OR_FOLLOWER", true, "The broker is not the partition's leader (or, for replica-wide requests, not one of its replicas).";
    RequestTimedOut = 7, "REQUEST_TIMED_OUT", true, "The broker gave up on the request after its timeout elapsed.";
    BrokerNotAvailable = 8, "BROKER_NOT_AVAILABLE", false, "The addressed broker is not available.";
    ReplicaNotAvailable = 9, "REPLICA_NOT_AVAILABLE", true, "A replica needed for the topic-partition is not available.";
    MessageTooLarge = 10, "MESSAGE_TOO_LARGE", false, "A message exceeds the largest size the broker accepts.";
    StaleControllerEpoch = 11, "STALE_CONTROLLER_EPOCH", false, "The request came from a controller that has since been replaced.";
    OffsetMetadataTooLarge = 12, "OFFSET_METADATA_TOO_LARGE", false, "The metadata string attached to an offset commit is too long.";
    NetworkException = 13, "NETWORK_EXCEPTION", true, "The connection dropped before a response arrived.";
    CoordinatorLoadInProgress = 14, "COORDINATOR_LOAD_IN_PROGRESS", true, "The coordinator is still loading its state and cannot serve requests yet.";
    CoordinatorNotAvailable = 15, "COORDINATOR_NOT_AVAILABLE", true, "No coordinator is available for the group or transaction at the moment.";
    NotCoordinator = 16, "NOT_COORDINATOR", true, "The broker is not the coordinator for this group or transactional id.";
    InvalidTopicException = 17, "INVALID_TOPIC_EXCEPTION", false, "The request names a topic that is invalid for this operation.";
    RecordListTooLarge = 18, "RECORD_LIST_TOO_LARGE", false, "A record batch is bigger than the broker's configured segment size.";
    NotEnoughReplicas = 19, "NOT_ENOUGH_REPLICAS", true, "The write was refused because too few replicas are in sync.";
    NotEnoughReplicasAfterAppend = 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "The write reached the log but fewer in-sync replicas than required acknowledged it.";
    InvalidRequiredAcks = 21, "INVALID_REQUIRED_ACKS", false, "The produce request carries an acks value the broker does not accept.";
    IllegalGeneration = 22, "ILLEGAL_GENERATION", false, "The group generation id in the request is not the current one.";
    InconsistentGroupProtocol = 23, "INCONSISTENT_GROUP_PROTOCOL", false, "The member's protocol type or protocols do not fit those of the group (or are empty).";
    InvalidGroupId = 24, "INVALID_GROUP_ID", false, "The group id is not valid.";
    UnknownMemberId = 25, "UNKNOWN_MEMBER_ID", false, "The coordinator does not know the member id in the request.";
    InvalidSessionTimeout = 26, "INVALID_SESSION_TIMEOUT", false, "The session timeout is outside the range the broker allows.";
    RebalanceInProgress = 27, "REBALANCE_IN_PROGRESS", false, "The group is rebalancing; the member has to rejoin.";
    InvalidCommitOffsetSize = 28, "INVALID_COMMIT_OFFSET_SIZE", false, "The size of the offset commit data is not valid.";
    TopicAuthorizationFailed = 29, "TOPIC_AUTHORIZATION_FAILED", false, "The principal is not authorized for the topic.";
    GroupAuthorizationFailed = 30, "GROUP_AUTHORIZATION_FAILED", false, "The principal is not authorized for the group.";
    ClusterAuthorizationFailed = 31, "CLUSTER_AUTHORIZATION_FAILED", false, "The principal is not authorized for the cluster-level operation.";
    InvalidTimestamp = 32, "INVALID_TIMESTAMP", false, "A message timestamp falls outside the accepted range.";
    UnsupportedSaslMechanism = 33, "UNSUPPORTED_SASL_MECHANISM", false, "The broker does not offer the requested SASL mechanism.";
    IllegalSaslState = 34, "ILLEGAL_SASL_STATE", false, "The request does not fit the current state of the SASL exchange.";
    UnsupportedVersion = 35, "UNSUPPORTED_VERSION", false, "The broker does not support this version of the API.";
    TopicAlreadyExists = 36, "TOPIC_ALREADY_EXISTS", false, "A topic of that name exists already.";
    InvalidPartitions = 37, "INVALID_PARTITIONS", false, "The partition count is not valid.";
    InvalidReplicationFactor = 38, "INVALID_REPLICATION_FACTOR", false, "The replication factor is not valid for this cluster.";
    InvalidReplicaAssignment = 39, "INVALID_REPLICA_ASSIGNMENT", false, "The replica assignment is not valid.";
    InvalidConfig = 40, "INVALID_CONFIG", false, "A configuration value is not valid.";
    NotController = 41, "NOT_CONTROLLER", true, "The broker is not the cluster's active controller.";
    InvalidRequest = 42, "INVALID_REQUEST", false, "The request is malformed or went to a broker that cannot understand it.";
    UnsupportedForMessageFormat = 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false, "The message format version on the broker cannot serve this request.";
    PolicyViolation = 44, "POLICY_VIOLATION", false, "The request's parameters break a policy configured on the broker.";
    OutOfOrderSequenceNumber = 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false, "The broker saw a producer sequence number out of order.";
    DuplicateSequenceNumber = 46, "DUPLICATE_SEQUENCE_NUMBER", false, "The broker saw a producer sequence number it had already written.";
    InvalidProducerEpoch = 47, "INVALID_PRODUCER_EPOCH", false, "The producer used an epoch older than the current one.";
    InvalidTxnState = 48, "INVALID_TXN_STATE", false, "The transactional operation is not allowed in the transaction's current state.";
    InvalidProducerIdMapping = 49, "INVALID_PRODUCER_ID_MAPPING", false, "The producer id is not the one currently assigned to the transactional id.";
    InvalidTransactionTimeout = 50, "INVALID_TRANSACTION_TIMEOUT", false, "The transaction timeout exceeds the broker's maximum.";
    ConcurrentTransactions = 51, "CONCURRENT_TRANSACTIONS", true, "Another operation on the same transaction is still in progress.";
    TransactionCoordinatorFenced = 52, "TRANSACTION_COORDINATOR_FENCED", false, "The transaction coordinator sending the markers is no longer current for the producer.";
    TransactionalIdAuthorizationFailed = 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false, "The principal is not authorized for the transactional id.";
    SecurityDisabled = 54, "SECURITY_DISABLED", false, "Security features are turned off on the broker.";
    OperationNotAttempted = 55, "OPERATION_NOT_ATTEMPTED", false, "The broker skipped this operation, typically because another one in the same batch failed.";
    KafkaStorageError = 56, "KAFKA_STORAGE_ERROR", true, "The broker hit a disk error while accessing the log.";
    LogDirNotFound = 57, "LOG_DIR_NOT_FOUND", false, "The named log directory is not in the broker's configuration.";
    SaslAuthenticationFailed = 58, "SASL_AUTHENTICATION_FAILED", false, "SASL authentication did not succeed.";
    UnknownProducerId = 59, "UNKNOWN_PRODUCER_ID", false, "The broker holds no state for the producer id, e.g. after its records expired.";
    ReassignmentInProgress = 60, "REASSIGNMENT_IN_PROGRESS", false, "A partition reassignment is already running.";
    DelegationTokenAuthDisabled = 61, "DELEGATION_TOKEN_AUTH_DISABLED", false, "Delegation tokens are not enabled on the broker.";
    DelegationTokenNotFound = 62, "DELEGATION_TOKEN_NOT_FOUND", false, "The broker has no such delegation token.";
    DelegationTokenOwnerMismatch = 63, "DELEGATION_TOKEN_OWNER_MISMATCH", false, "The principal is neither the owner nor a renewer of the token.";
    DelegationTokenRequestNotAllowed = 64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false, "Delegation token requests are refused on this kind of connection.";
    DelegationTokenAuthorizationFailed = 65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false, "The principal is not authorized for the delegation token operation.";
    DelegationTokenExpired = 66, "DELEGATION_TOKEN_EXPIRED", false, "The delegation token has expired.";
    InvalidPrincipalType = 67, "INVALID_PRINCIPAL_TYPE", false, "The principal type is not supported.";
    NonEmptyGroup = 68, "NON_EMPTY_GROUP", false, "The group still has members.";
    GroupIdNotFound = 69, "GROUP_ID_NOT_FOUND", false, "No group with that id exists.";
    FetchSessionIdNotFound = 70, "FETCH_SESSION_ID_NOT_FOUND", true, "The broker has no fetch session with that id.";
    InvalidFetchSessionEpoch = 71, "INVALID_FETCH_SESSION_EPOCH", true, "The fetch session epoch is not the expected one.";
    ListenerNotFound = 72, "LISTENER_NOT_FOUND", true, "The leader has no listener matching the one the metadata request arrived on.";
    TopicDeletionDisabled = 73, "TOPIC_DELETION_DISABLED", false, "Deleting topics is turned off on the broker.";
    FencedLeaderEpoch = 74, "FENCED_LEADER_EPOCH", true, "The request's leader epoch is older than the broker's.";
    UnknownLeaderEpoch = 75, "UNKNOWN_LEADER_EPOCH", true, "The request's leader epoch is newer than the broker's.";
    UnsupportedCompressionType = 76, "UNSUPPORTED_COMPRESSION_TYPE", false, "The client cannot handle the partition's compression codec.";
    StaleBrokerEpoch = 77, "STALE_BROKER_EPOCH", false, "The broker epoch in the request is out of date.";
    OffsetNotAvailable = 78, "OFFSET_NOT_AVAILABLE", true, "The new leader's high watermark has not caught up, so offsets cannot be served yet.";
    MemberIdRequired = 79, "MEMBER_ID_REQUIRED", false, "The member must obtain a member id before it can join the group.";
    PreferredLeaderNotAvailable = 80, "PREFERRED_LEADER_NOT_AVAILABLE", true, "The preferred leader replica is not available.";
    GroupMaxSizeReached = 81, "GROUP_MAX_SIZE_REACHED", false, "The group already has its maximum number of members.";
    FencedInstanceId = 82, "FENCED_INSTANCE_ID", false, "Another member registered with the same group.instance.id, fencing this one.";
    EligibleLeadersNotAvailable = 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true, "No replica eligible to lead the partition is available.";
    ElectionNotNeeded = 84, "ELECTION_NOT_NEEDED", true, "The partition does not need a leader election.";
    NoReassignmentInProgress = 85, "NO_REASSIGNMENT_IN_PROGRESS", false, "There is no partition reassignment running.";
    GroupSubscribedToTopic = 86, "GROUP_SUBSCRIBED_TO_TOPIC", false, "Offsets cannot be deleted while the group is subscribed to the topic.";
    InvalidRecord = 87, "INVALID_RECORD", false, "A record failed broker-side validation and was rejected.";
    UnstableOffsetCommit = 88, "UNSTABLE_OFFSET_COMMIT", true, "Pending transactional offset commits have to resolve first.";
    ThrottlingQuotaExceeded = 89, "THROTTLING_QUOTA_EXCEEDED", true, "The request would exceed a throttling quota.";
    ProducerFenced = 90, "PRODUCER_FENCED", false, "A newer producer with the same transactional id has fenced this one.";
    ResourceNotFound = 91, "RESOURCE_NOT_FOUND", false, "The request refers to a resource that does not exist.";
    DuplicateResource = 92, "DUPLICATE_RESOURCE", false, "The request names the same resource more than once.";
    UnacceptableCredential = 93, "UNACCEPTABLE_CREDENTIAL", false, "The requested credential does not meet the acceptance criteria.";
    InconsistentVoterSet = 94, "INCONSISTENT_VOTER_SET", false, "The sender or receiver of a voter-only request is not an expected voter.";
    InvalidUpdateVersion = 95, "INVALID_UPDATE_VERSION", false, "The update version given is not valid.";
    FeatureUpdateFailed = 96, "FEATURE_UPDATE_FAILED", false, "Finalized features could not be updated because of a server-side failure.";
    PrincipalDeserializationFailure = 97, "PRINCIPAL_DESERIALIZATION_FAILURE", false, "A forwarded request's principal could not be deserialized.";
    SnapshotNotFound = 98, "SNAPSHOT_NOT_FOUND", false, "The requested snapshot does not exist.";
    PositionOutOfRange = 99, "POSITION_OUT_OF_RANGE", false, "The requested position is negative or beyond the end of the snapshot.";
    UnknownTopicId = 100, "UNKNOWN_TOPIC_ID", true, "The broker does not host a topic with this id.";
    DuplicateBrokerRegistration = 101, "DUPLICATE_BROKER_REGISTRATION", false, "Another broker is already registered with this id.";
    BrokerIdNotRegistered = 102, "BROKER_ID_NOT_REGISTERED", false, "No broker is registered with this id.";
    InconsistentTopicId = 103, "INCONSISTENT_TOPIC_ID", true, "The topic id in the request differs from the one in the log.";
    InconsistentClusterId = 104, "INCONSISTENT_CLUSTER_ID", false, "The cluster id in the request differs from the server's.";
    TransactionalIdNotFound = 105, "TRANSACTIONAL_ID_NOT_FOUND", false, "No transaction state exists for this transactional id.";
    FetchSessionTopicIdError = 106, "FETCH_SESSION_TOPIC_ID_ERROR", true, "Topic ids were used inconsistently within the fetch session.";
    IneligibleReplica = 107, "INELIGIBLE_REPLICA", false, "The proposed ISR includes a replica that is not eligible.";
    NewLeaderElected = 108, "NEW_LEADER_ELECTED", false, "The partition state changed, but a different leader has been elected meanwhile.";
    OffsetMovedToTieredStorage = 109, "OFFSET_MOVED_TO_TIERED_STORAGE", false, "The requested offset now lives in tiered storage.";
    FencedMemberEpoch = 110, "FENCED_MEMBER_EPOCH", false, "The coordinator fenced the member's epoch; it must give up its partitions and rejoin.";
    UnreleasedInstanceId = 111, "UNRELEASED_INSTANCE_ID", false, "Another member still holds this instance id and has to leave first.";
    UnsupportedAssignor = 112, "UNSUPPORTED_ASSIGNOR", false, "The group does not support the assignor or its version range.";
    StaleMemberEpoch = 113, "STALE_MEMBER_EPOCH", false, "The member epoch is out of date; retry after the heartbeat delivers the current one.";
    MismatchedEndpointType = 114, "MISMATCHED_ENDPOINT_TYPE", false, "The request reached an endpoint of the wrong kind.";
    UnsupportedEndpointType = 115, "UNSUPPORTED_ENDPOINT_TYPE", false, "This kind of endpoint is not supported yet.";
    UnknownControllerId = 116, "UNKNOWN_CONTROLLER_ID", false, "No controller with this id is known.";
    UnknownSubscriptionId = 117, "UNKNOWN_SUBSCRIPTION_ID", false, "The telemetry subscription id is unknown or out of date.";
    TelemetryTooLarge = 118, "TELEMETRY_TOO_LARGE", false, "The pushed telemetry exceeds the size the broker accepts.";
    InvalidRegistration = 119, "INVALID_REGISTRATION", false, "The controller judged the broker's registration invalid.";
    TransactionAbortable = 120, "TRANSACTION_ABORTABLE", false, "The transaction hit an error; aborting it lets the transactional id be used again.";
    InvalidRecordState = 121, "INVALID_RECORD_STATE", false, "The record's state does not allow the acknowledgement to complete.";
    ShareSessionNotFound = 122, "SHARE_SESSION_NOT_FOUND", true, "The broker has no such share session.";
    InvalidShareSessionEpoch = 123, "INVALID_SHARE_SESSION_EPOCH", true, "The share session epoch is not the expected one.";
    FencedStateEpoch = 124, "FENCED_STATE_EPOCH", false, "The share coordinator refused the request because the share-group state epoch differs.";
    InvalidVoterKey = 125, "INVALID_VOTER_KEY", false, "The voter key does not match the key of the receiving replica.";
    DuplicateVoter = 126, "DUPLICATE_VOTER", false, "The voter is already in the voter set.";
    VoterNotFound = 127, "VOTER_NOT_FOUND", false, "The voter is not in the voter set.";
}

impl ErrorCode {
    /// The highest code Kafka 3.9 defines (the last row of the table).
    pub const MAX_CODE: i16 = ErrorCode::ALL[ErrorCode::ALL.len() - 1].code();

    /// True only for [`ErrorCode::None`], the success code.
    pub const fn is_ok(self) -> bool {
        matches!(self, ErrorCode::None)
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode::from_code(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(error: ErrorCode) -> Self {
        error.code()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use std::collections::HashSet;

    #[test]
    fn known_codes_round_trip_with_name_and_retriability() {
        let cases: &[(i16, ErrorCode, &str, bool)] = &[
            (
                -1,
                ErrorCode::UnknownServerError,
                "UNKNOWN_SERVER_ERROR",
                false,
            ),
            (0, ErrorCode::None, "NONE", false),
            (
                3,
                ErrorCode::UnknownTopicOrPartition,
                "UNKNOWN_TOPIC_OR_PARTITION",
                true,
            ),
            (
                6,
                ErrorCode::NotLeaderOrFollower,
                "NOT_LEADER_OR_FOLLOWER",
                true,
            ),
            (7, ErrorCode::RequestTimedOut, "REQUEST_TIMED_OUT", true),
            (
                15,
                ErrorCode::CoordinatorNotAvailable,
                "COORDINATOR_NOT_AVAILABLE",
                true,
            ),
            (25, ErrorCode::UnknownMemberId, "UNKNOWN_MEMBER_ID", false),
            (
                36,
                ErrorCode::TopicAlreadyExists,
                "TOPIC_ALREADY_EXISTS",
                false,
            ),
            (79, ErrorCode::MemberIdRequired, "MEMBER_ID_REQUIRED", false),
            (
                122,
                ErrorCode::ShareSessionNotFound,
                "SHARE_SESSION_NOT_FOUND",
                true,
            ),
            (
                124,
                ErrorCode::FencedStateEpoch,
                "FENCED_STATE_EPOCH",
                false,
            ),
            (127, ErrorCode::VoterNotFound, "VOTER_NOT_FOUND", false),
        ];
        for &(code, variant, name, retriable) in cases {
            let decoded = ErrorCode::from_code(code);
            assert_eq!(decoded, variant, "code {code}");
            assert_eq!(decoded.code(), code);
            assert_eq!(decoded.name(), name);
            assert_eq!(decoded.is_retriable(), retriable, "{name}");
        }
    }

    #[test]
    fn table_codes_are_unique_and_map_back() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for &error in ErrorCode::ALL {
            assert!(
                codes.insert(error.code()),
                "duplicate code {}",
                error.code()
            );
            assert!(
                names.insert(error.name()),
                "duplicate name {}",
                error.name()
            );
            assert_eq!(ErrorCode::from_code(error.code()), error);
            assert!(!matches!(error, ErrorCode::Unknown(_)));
            assert!(!error.description().is_empty());
        }
    }

    #[test]
    fn codes_are_contiguous_from_minus_one_to_max() {
        let codes: Vec<i16> = ErrorCode::ALL.iter().map(|e| e.code()).collect();
        let expected: Vec<i16> = (-1..=ErrorCode::MAX_CODE).collect();
        assert_eq!(codes, expected);
        assert_eq!(ErrorCode::ALL.len(), 129);
        assert_eq!(ErrorCode::MAX_CODE, 127);
        assert_eq!(
            ErrorCode::from_code(ErrorCode::MAX_CODE + 1),
            ErrorCode::Unknown(ErrorCode::MAX_CODE + 1)
        );
        assert_eq!(ErrorCode::from_code(-2), ErrorCode::Unknown(-2));
    }

    #[test]
    fn retriable_set_matches_kafka() {
        let retriable: Vec<i16> = ErrorCode::ALL
            .iter()
            .filter(|e| e.is_retriable())
            .map(|e| e.code())
            .collect();
        let expected: &[i16] = &[
            2, 3, 5, 6, 7, 9, 13, 14, 15, 16, 19, 20, 41, 51, 56, 70, 71, 72, 74, 75, 78, 80, 83,
            84, 88, 89, 100, 103, 106, 122, 123,
        ];
        assert_eq!(retriable, expected);
    }

    #[test]
    fn unknown_code_is_preserved() {
        let unknown = ErrorCode::from_code(9999);
        assert_eq!(unknown, ErrorCode::Unknown(9999));
        assert_eq!(unknown.code(), 9999);
        assert!(!unknown.is_retriable());
        assert!(!unknown.is_ok());
        assert_eq!(unknown.name(), "UNKNOWN_ERROR_CODE");
        assert_eq!(unknown.to_string(), "UNKNOWN_ERROR_CODE (9999)");
    }

    #[test]
    fn is_ok_only_for_none() {
        assert!(ErrorCode::None.is_ok());
        let ok: Vec<ErrorCode> = ErrorCode::ALL
            .iter()
            .copied()
            .filter(|e| e.is_ok())
            .collect();
        assert_eq!(ok, [ErrorCode::None]);
    }

    #[test]
    fn display_conversions_and_error_trait() {
        assert_eq!(
            ErrorCode::NotLeaderOrFollower.to_string(),
            "NOT_LEADER_OR_FOLLOWER (6)"
        );
        assert_eq!(
            ErrorCode::UnknownServerError.to_string(),
            "UNKNOWN_SERVER_ERROR (-1)"
        );
        assert_eq!(ErrorCode::from(36i16), ErrorCode::TopicAlreadyExists);
        assert_eq!(i16::from(ErrorCode::RequestTimedOut), 7);
        let boxed: Box<dyn std::error::Error> = Box::new(ErrorCode::RequestTimedOut);
        assert_eq!(boxed.to_string(), "REQUEST_TIMED_OUT (7)");
        assert_eq!(format!("{:?}", ErrorCode::Unknown(5000)), "Unknown(5000)");
    }
}
