//! Access control lists: creating, describing and deleting ACL bindings.

use crate::network::RequestOptions;
use std::time::Duration;

use tracing::Instrument;

use super::{Admin, Error, Result};
use crate::protocol::messages::create_acls_request::AclCreation;
use crate::protocol::messages::delete_acls_request::DeleteAclsFilter;
use crate::protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use crate::protocol::ApiKey;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The protocol's code; `Unknown` has code 0.
            pub const fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            /// The value of a protocol code; codes this client does not
            /// know map to `Unknown`.
            pub const fn from_code(code: i8) -> Self {
                match code {
                    $($code => $name::$variant,)+
                    #[allow(unreachable_patterns)]
                    _ => $name::Unknown,
                }
            }
        }
    };
}

wire_enum! {
    /// The type of a resource an ACL applies to.
    ResourceType {
        /// A type this client does not know (never valid in a request).
        Unknown = 0,
        /// Any type (filters only).
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster.
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user (for delegation tokens).
        User = 7,
    }
}

wire_enum! {
    /// How a resource name in an ACL is matched.
    PatternType {
        /// A pattern type this client does not know.
        Unknown = 0,
        /// Any pattern type (filters only).
        Any = 1,
        /// Every binding that would apply to the named resource: literal,
        /// wildcard and prefixed matches (filters only).
        Match = 2,
        /// The name is an exact resource name (or `*`).
        Literal = 3,
        /// The name is a prefix of resource names.
        Prefixed = 4,
    }
}

wire_enum! {
    /// An operation an ACL allows or denies.
    AclOperation {
        /// An operation this client does not know.
        Unknown = 0,
        /// Any operation (filters only).
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Cluster actions (inter-broker).
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent writes.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
        /// Two-phase commit of transactions (KIP-939).
        TwoPhaseCommit = 15,
    }
}

wire_enum! {
    /// Whether an ACL allows or denies.
    AclPermissionType {
        /// A permission type this client does not know.
        Unknown = 0,
        /// Any permission type (filters only).
        Any = 1,
        /// Deny.
        Deny = 2,
        /// Allow.
        Allow = 3,
    }
}

/// The resources an ACL applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name, or prefix for [`PatternType::Prefixed`]; `*` is
    /// the wildcard of literal patterns.
    pub name: String,
    /// How `name` matches.
    pub pattern_type: PatternType,
}

/// Who may (or may not) do what, from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    /// The principal, for example `User:alice` (`User:*` for everyone).
    pub principal: String,
    /// The host, or `*` for any.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission_type: AclPermissionType,
}

/// An ACL: an entry bound to a resource pattern.
///
/// ```
/// use ferrokafka::admin::{AclBinding, AclOperation, AclPermissionType, ResourceType};
///
/// let acl = AclBinding::literal(ResourceType::Topic, "orders", "User:alice", AclOperation::Read, AclPermissionType::Allow);
/// assert_eq!(acl.entry.host, "*");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The resources.
    pub pattern: ResourcePattern,
    /// The entry.
    pub entry: AccessControlEntry,
}

impl AclBinding {
    /// A binding on a literal resource name, from any host.
    pub fn literal(
        resource_type: ResourceType,
        name: impl Into<String>,
        principal: impl Into<String>,
        operation: AclOperation,
        permission_type: AclPermissionType,
    ) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type,
                name: name.into(),
                pattern_type: PatternType::Literal,
            },
            entry: AccessControlEntry {
                principal: principal.into(),
                host: "*".to_owned(),
                operation,
                permission_type,
            },
        }
    }

    /// The filter that matches exactly this binding.
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            pattern: ResourcePatternFilter {
                resource_type: self.pattern.resource_type,
                name: Some(self.pattern.name.clone()),
                pattern_type: self.pattern.pattern_type,
            },
            entry: AccessControlEntryFilter {
                principal: Some(self.entry.principal.clone()),
                host: Some(self.entry.host.clone()),
                operation: self.entry.operation,
                permission_type: self.entry.permission_type,
            },
        }
    }
}

/// Matches resource patterns; `None` and the `Any` variants match anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePatternFilter {
    /// The resource type, or [`ResourceType::Any`].
    pub resource_type: ResourceType,
    /// The name, or `None` for any.
    pub name: Option<String>,
    /// The pattern type: [`PatternType::Any`], [`PatternType::Match`] or an
    /// exact one.
    pub pattern_type: PatternType,
}

/// Matches access control entries; `None` and the `Any` variants match anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntryFilter {
    /// The principal, or `None` for any.
    pub principal: Option<String>,
    /// The host, or `None` for any.
    pub host: Option<String>,
    /// The operation, or [`AclOperation::Any`].
    pub operation: AclOperation,
    /// The permission type, or [`AclPermissionType::Any`].
    pub permission_type: AclPermissionType,
}

/// Matches ACL bindings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBindingFilter {
    /// The resource part.
    pub pattern: ResourcePatternFilter,
    /// The entry part.
    pub entry: AccessControlEntryFilter,
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            pattern: ResourcePatternFilter {
                resource_type: ResourceType::Any,
                name: None,
                pattern_type: PatternType::Any,
            },
            entry: AccessControlEntryFilter {
                principal: None,
                host: None,
                operation: AclOperation::Any,
                permission_type: AclPermissionType::Any,
            },
        }
    }
}

impl Default for AclBindingFilter {
    fn default() -> Self {
        AclBindingFilter::any()
    }
}

/// Options of the ACL calls.
#[derive(Debug, Clone, Default)]
pub struct AclOptions {
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// One binding deleted by a filter of [`Admin::delete_acls`].
#[derive(Debug)]
pub struct DeletedAcl {
    /// The binding.
    pub binding: AclBinding,
    /// Whether this binding was deleted.
    pub result: Result<()>,
}

/// What one filter of [`Admin::delete_acls`] did.
#[derive(Debug)]
pub struct DeleteAclsFilterResult {
    /// The filter.
    pub filter: AclBindingFilter,
    /// The bindings it matched, or why the filter failed as a whole.
    pub result: Result<Vec<DeletedAcl>>,
}

fn binding(
    resource_type: i8,
    name: String,
    pattern_type: i8,
    principal: String,
    host: String,
    operation: i8,
    permission_type: i8,
) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(resource_type),
            name,
            pattern_type: PatternType::from_code(pattern_type),
        },
        entry: AccessControlEntry {
            principal,
            host,
            operation: AclOperation::from_code(operation),
            permission_type: AclPermissionType::from_code(permission_type),
        },
    }
}

impl Admin {
    /// Creates ACLs; each binding gets its own result, in order.
    ///
    /// Bindings must be concrete: no `Any`, `Match` or `Unknown` values
    /// (the broker rejects them with `INVALID_REQUEST`). Prefixed patterns
    /// need CreateAcls v1+.
    pub async fn create_acls(
        &self,
        bindings: &[AclBinding],
        options: AclOptions,
    ) -> Result<Vec<(AclBinding, Result<()>)>> {
        let span = tracing::info_span!("create_acls", bindings = bindings.len());
        async move {
            let timeout = self.timeout(options.timeout);
            let request = CreateAclsRequest::default().with_creations(
                bindings
                    .iter()
                    .map(|b| {
                        AclCreation::default()
                            .with_resource_type(b.pattern.resource_type.code())
                            .with_resource_name(b.pattern.name.clone())
                            .with_resource_pattern_type(b.pattern.pattern_type.code())
                            .with_principal(b.entry.principal.clone())
                            .with_host(b.entry.host.clone())
                            .with_operation(b.entry.operation.code())
                            .with_permission_type(b.entry.permission_type.code())
                    })
                    .collect(),
            );
            let cluster = self.cluster();
            let response = cluster
                .retry("CreateAcls", Some(timeout), || {
                    cluster.send_to_any(&request, RequestOptions::default())
                })
                .await?;
            if response.results.len() != bindings.len() {
                return Err(Error::Protocol {
                    broker: String::new(),
                    reason: format!(
                        "CreateAcls answered {} results for {} bindings",
                        response.results.len(),
                        bindings.len()
                    ),
                });
            }
            Ok(bindings
                .iter()
                .cloned()
                .zip(response.results)
                .map(|(b, r)| {
                    (
                        b,
                        Error::check(ApiKey::CreateAcls, r.error_code, r.error_message.as_deref()),
                    )
                })
                .collect())
        }
        .instrument(span)
        .await
    }

    /// The ACLs matching `filter`.
    pub async fn describe_acls(
        &self,
        filter: &AclBindingFilter,
        options: AclOptions,
    ) -> Result<Vec<AclBinding>> {
        let span = tracing::info_span!("describe_acls");
        async move {
            let timeout = self.timeout(options.timeout);
            let request = DescribeAclsRequest::default()
                .with_resource_type_filter(filter.pattern.resource_type.code())
                .with_resource_name_filter(filter.pattern.name.clone())
                .with_pattern_type_filter(filter.pattern.pattern_type.code())
                .with_principal_filter(filter.entry.principal.clone())
                .with_host_filter(filter.entry.host.clone())
                .with_operation(filter.entry.operation.code())
                .with_permission_type(filter.entry.permission_type.code());
            let cluster = self.cluster();
            cluster
                .retry("DescribeAcls", Some(timeout), || async {
                    let response = cluster
                        .send_to_any(&request, RequestOptions::default())
                        .await?;
                    Error::check(
                        ApiKey::DescribeAcls,
                        response.error_code,
                        response.error_message.as_deref(),
                    )?;
                    let mut out = Vec::new();
                    for resource in response.resources {
                        for acl in resource.acls {
                            out.push(binding(
                                resource.resource_type,
                                resource.resource_name.clone(),
                                resource.pattern_type,
                                acl.principal,
                                acl.host,
                                acl.operation,
                                acl.permission_type,
                            ));
                        }
                    }
                    Ok(out)
                })
                .await
        }
        .instrument(span)
        .await
    }

    /// Deletes the ACLs matching each filter; each filter gets its own
    /// result listing the bindings it deleted.
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
        options: AclOptions,
    ) -> Result<Vec<DeleteAclsFilterResult>> {
        let span = tracing::info_span!("delete_acls", filters = filters.len());
        async move {
            let timeout = self.timeout(options.timeout);
            let request = DeleteAclsRequest::default().with_filters(
                filters
                    .iter()
                    .map(|f| {
                        DeleteAclsFilter::default()
                            .with_resource_type_filter(f.pattern.resource_type.code())
                            .with_resource_name_filter(f.pattern.name.clone())
                            .with_pattern_type_filter(f.pattern.pattern_type.code())
                            .with_principal_filter(f.entry.principal.clone())
                            .with_host_filter(f.entry.host.clone())
                            .with_operation(f.entry.operation.code())
                            .with_permission_type(f.entry.permission_type.code())
                    })
                    .collect(),
            );
            let cluster = self.cluster();
            let response = cluster
                .retry("DeleteAcls", Some(timeout), || {
                    cluster.send_to_any(&request, RequestOptions::default())
                })
                .await?;
            if response.filter_results.len() != filters.len() {
                return Err(Error::Protocol {
                    broker: String::new(),
                    reason: format!(
                        "DeleteAcls answered {} results for {} filters",
                        response.filter_results.len(),
                        filters.len()
                    ),
                });
            }
            Ok(filters
                .iter()
                .cloned()
                .zip(response.filter_results)
                .map(|(filter, r)| DeleteAclsFilterResult {
                    filter,
                    result: Error::check(
                        ApiKey::DeleteAcls,
                        r.error_code,
                        r.error_message.as_deref(),
                    )
                    .map(|()| {
                        r.matching_acls
                            .into_iter()
                            .map(|m| DeletedAcl {
                                result: Error::check(
                                    ApiKey::DeleteAcls,
                                    m.error_code,
                                    m.error_message.as_deref(),
                                ),
                                binding: binding(
                                    m.resource_type,
                                    m.resource_name,
                                    m.pattern_type,
                                    m.principal,
                                    m.host,
                                    m.operation,
                                    m.permission_type,
                                ),
                            })
                            .collect()
                    }),
                })
                .collect())
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_the_protocol() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(ResourceType::User.code(), 7);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(PatternType::Match.code(), 2);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclOperation::DescribeTokens.code(), 14);
        assert_eq!(AclPermissionType::Allow.code(), 3);
        for code in 0..16 {
            assert_eq!(AclOperation::from_code(code).code(), code);
        }
        for code in 0..8 {
            assert_eq!(ResourceType::from_code(code).code(), code);
        }
        assert_eq!(ResourceType::from_code(42), ResourceType::Unknown);
        assert_eq!(PatternType::from_code(-1), PatternType::Unknown);
        assert_eq!(AclPermissionType::from_code(9), AclPermissionType::Unknown);
    }

    #[test]
    fn a_binding_maps_onto_the_wire_and_back() {
        let b = AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::Group,
                name: "app-".into(),
                pattern_type: PatternType::Prefixed,
            },
            entry: AccessControlEntry {
                principal: "User:bob".into(),
                host: "10.0.0.1".into(),
                operation: AclOperation::Describe,
                permission_type: AclPermissionType::Deny,
            },
        };
        let back = binding(
            3,
            "app-".into(),
            4,
            "User:bob".into(),
            "10.0.0.1".into(),
            8,
            2,
        );
        assert_eq!(back, b);
        let f = b.to_filter();
        assert_eq!(f.pattern.name.as_deref(), Some("app-"));
        assert_eq!(f.entry.operation, AclOperation::Describe);
        assert_eq!(
            AclBindingFilter::default().pattern.resource_type,
            ResourceType::Any
        );
    }

    #[test]
    fn authorized_operations_bits_decode() {
        let bits = (1 << 3) | (1 << 8) | (1 << 6);
        let ops = super::super::groups::authorized_operations(bits).unwrap();
        let ops: Vec<_> = ops.into_iter().collect();
        assert_eq!(
            ops,
            vec![
                AclOperation::Read,
                AclOperation::Delete,
                AclOperation::Describe
            ]
        );
        assert!(super::super::groups::authorized_operations(i32::MIN).is_none());
        // -1 sets every bit: only real operations come back.
        let all = super::super::groups::authorized_operations(-1).unwrap();
        assert_eq!(all.len(), 13);
        assert!(!all.contains(&AclOperation::Unknown) && !all.contains(&AclOperation::All));
    }
}
