//! Client quotas (KIP-546): describing and altering quotas of users,
//! client ids and IPs.

use crate::network::RequestOptions;
use std::collections::BTreeMap;
use std::time::Duration;

use tracing::Instrument;

use super::{Admin, Error, Result};
use crate::protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use crate::protocol::messages::describe_client_quotas_request::ComponentData;
use crate::protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use crate::protocol::ApiKey;

/// The kind of entity a quota applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaEntityType {
    /// A user principal (`user`).
    User,
    /// A client id (`client-id`).
    ClientId,
    /// An IP address (`ip`).
    Ip,
    /// Another type, as the broker spells it.
    Other(String),
}

impl QuotaEntityType {
    /// The protocol's name of this type.
    pub fn as_str(&self) -> &str {
        match self {
            QuotaEntityType::User => "user",
            QuotaEntityType::ClientId => "client-id",
            QuotaEntityType::Ip => "ip",
            QuotaEntityType::Other(s) => s,
        }
    }

    /// The type of a protocol name.
    pub fn parse(name: &str) -> QuotaEntityType {
        match name {
            "user" => QuotaEntityType::User,
            "client-id" => QuotaEntityType::ClientId,
            "ip" => QuotaEntityType::Ip,
            other => QuotaEntityType::Other(other.to_owned()),
        }
    }
}

/// The entity a quota applies to: a name (or `None`, the default entity) per
/// entity type.
///
/// ```
/// use ferrokafka::admin::{ClientQuotaEntity, QuotaEntityType};
///
/// // The quota of client id "app" of user "alice".
/// let entity = ClientQuotaEntity::new()
///     .with(QuotaEntityType::User, Some("alice"))
///     .with(QuotaEntityType::ClientId, Some("app"));
/// assert_eq!(entity.parts.len(), 2);
/// // The default quota of every user.
/// let default_user = ClientQuotaEntity::new().with(QuotaEntityType::User, None::<&str>);
/// assert_eq!(default_user.parts[&QuotaEntityType::User], None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientQuotaEntity {
    /// Entity type → name; `None` is the type's default entity.
    pub parts: BTreeMap<QuotaEntityType, Option<String>>,
}

impl ClientQuotaEntity {
    /// An entity with no parts.
    pub fn new() -> ClientQuotaEntity {
        ClientQuotaEntity::default()
    }

    /// Adds a part.
    #[must_use]
    pub fn with(mut self, entity_type: QuotaEntityType, name: Option<impl Into<String>>) -> Self {
        self.parts.insert(entity_type, name.map(Into::into));
        self
    }

    fn to_wire(&self) -> Vec<EntityData> {
        self.parts
            .iter()
            .map(|(t, name)| {
                EntityData::default()
                    .with_entity_type(t.as_str().to_owned())
                    .with_entity_name(name.clone())
            })
            .collect()
    }

    fn from_wire<'a>(parts: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        ClientQuotaEntity {
            parts: parts
                .map(|(t, n)| (QuotaEntityType::parse(t), n.map(str::to_owned)))
                .collect(),
        }
    }
}

/// How a filter component matches names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaMatch {
    /// Exactly this name (match type 0).
    Exact(String),
    /// The default entity (match type 1).
    Default,
    /// Any specified name, not the default (match type 2).
    Any,
}

/// One component of a [`ClientQuotaFilter`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientQuotaFilterComponent {
    /// The entity type.
    pub entity_type: QuotaEntityType,
    /// How names of that type match.
    pub matching: QuotaMatch,
}

/// Which quotas [`Admin::describe_client_quotas`] describes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ClientQuotaFilter {
    /// The components; every one must match.
    pub components: Vec<ClientQuotaFilterComponent>,
    /// Only entities with no parts besides the components' types.
    pub strict: bool,
}

impl ClientQuotaFilter {
    /// Every quota.
    pub fn all() -> ClientQuotaFilter {
        ClientQuotaFilter::default()
    }

    fn to_wire(&self) -> Vec<ComponentData> {
        self.components
            .iter()
            .map(|c| {
                let (match_type, name) = match &c.matching {
                    QuotaMatch::Exact(n) => (0, Some(n.clone())),
                    QuotaMatch::Default => (1, None),
                    QuotaMatch::Any => (2, None),
                };
                ComponentData::default()
                    .with_entity_type(c.entity_type.as_str().to_owned())
                    .with_match_type(match_type)
                    .with_match(name)
            })
            .collect()
    }
}

/// A change to one quota of an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaOp {
    /// The quota, for example `producer_byte_rate`.
    pub key: String,
    /// The new value, or `None` to remove the quota.
    pub value: Option<f64>,
}

/// The changes to one entity's quotas.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientQuotaAlteration {
    /// The entity.
    pub entity: ClientQuotaEntity,
    /// The changes.
    pub ops: Vec<QuotaOp>,
}

/// Options of the client quota calls.
#[derive(Debug, Clone, Default)]
pub struct ClientQuotaOptions {
    /// Only validate an alteration, changing nothing.
    pub validate_only: bool,
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

fn alteration_to_wire(a: &ClientQuotaAlteration) -> EntryData {
    EntryData::default()
        .with_entity(a.entity.to_wire())
        .with_ops(
            a.ops
                .iter()
                .map(|op| {
                    OpData::default()
                        .with_key(op.key.clone())
                        .with_value(op.value.unwrap_or(0.0))
                        .with_remove(op.value.is_none())
                })
                .collect(),
        )
}

impl Admin {
    /// The quotas of the entities matching `filter`: entity → quota → value.
    pub async fn describe_client_quotas(
        &self,
        filter: &ClientQuotaFilter,
        options: ClientQuotaOptions,
    ) -> Result<BTreeMap<ClientQuotaEntity, BTreeMap<String, f64>>> {
        let span = tracing::info_span!("describe_client_quotas");
        async move {
            let timeout = self.timeout(options.timeout);
            let request = DescribeClientQuotasRequest::default()
                .with_components(filter.to_wire())
                .with_strict(filter.strict);
            let cluster = self.cluster();
            cluster
                .retry("DescribeClientQuotas", Some(timeout), || async {
                    let response = cluster
                        .send_to_any(&request, RequestOptions::default())
                        .await?;
                    Error::check(
                        ApiKey::DescribeClientQuotas,
                        response.error_code,
                        response.error_message.as_deref(),
                    )?;
                    Ok(response
                        .entries
                        .unwrap_or_default()
                        .into_iter()
                        .map(|e| {
                            let entity = ClientQuotaEntity::from_wire(
                                e.entity
                                    .iter()
                                    .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref())),
                            );
                            let values = e.values.into_iter().map(|v| (v.key, v.value)).collect();
                            (entity, values)
                        })
                        .collect())
                })
                .await
        }
        .instrument(span)
        .await
    }

    /// Alters quotas; each entity gets its own result.
    pub async fn alter_client_quotas(
        &self,
        alterations: &[ClientQuotaAlteration],
        options: ClientQuotaOptions,
    ) -> Result<BTreeMap<ClientQuotaEntity, Result<()>>> {
        let span = tracing::info_span!("alter_client_quotas", entries = alterations.len());
        async move {
            let timeout = self.timeout(options.timeout);
            let request = AlterClientQuotasRequest::default()
                .with_entries(alterations.iter().map(alteration_to_wire).collect())
                .with_validate_only(options.validate_only);
            let cluster = self.cluster();
            let response = cluster
                .retry("AlterClientQuotas", Some(timeout), || {
                    cluster.send_to_any(&request, RequestOptions::default())
                })
                .await?;
            Ok(response
                .entries
                .into_iter()
                .map(|e| {
                    let entity = ClientQuotaEntity::from_wire(
                        e.entity
                            .iter()
                            .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref())),
                    );
                    (
                        entity,
                        Error::check(
                            ApiKey::AlterClientQuotas,
                            e.error_code,
                            e.error_message.as_deref(),
                        ),
                    )
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
    use crate::protocol::messages::describe_client_quotas_response::DescribeClientQuotasResponse;
    use crate::protocol::{Decodable, Encodable};

    #[test]
    fn entity_types_map_to_protocol_names() {
        for (t, name) in [
            (QuotaEntityType::User, "user"),
            (QuotaEntityType::ClientId, "client-id"),
            (QuotaEntityType::Ip, "ip"),
        ] {
            assert_eq!(t.as_str(), name);
            assert_eq!(QuotaEntityType::parse(name), t);
        }
        assert_eq!(
            QuotaEntityType::parse("tenant"),
            QuotaEntityType::Other("tenant".into())
        );
    }

    #[test]
    fn filters_and_alterations_map_onto_the_wire() {
        let filter = ClientQuotaFilter {
            components: vec![
                ClientQuotaFilterComponent {
                    entity_type: QuotaEntityType::User,
                    matching: QuotaMatch::Exact("alice".into()),
                },
                ClientQuotaFilterComponent {
                    entity_type: QuotaEntityType::ClientId,
                    matching: QuotaMatch::Default,
                },
                ClientQuotaFilterComponent {
                    entity_type: QuotaEntityType::Ip,
                    matching: QuotaMatch::Any,
                },
            ],
            strict: true,
        };
        let wire = filter.to_wire();
        assert_eq!(
            wire.iter()
                .map(|c| (c.entity_type.as_str(), c.match_type, c.r#match.as_deref()))
                .collect::<Vec<_>>(),
            vec![
                ("user", 0, Some("alice")),
                ("client-id", 1, None),
                ("ip", 2, None)
            ]
        );
        let alteration = ClientQuotaAlteration {
            entity: ClientQuotaEntity::new()
                .with(QuotaEntityType::User, Some("alice"))
                .with(QuotaEntityType::ClientId, None::<String>),
            ops: vec![
                QuotaOp {
                    key: "producer_byte_rate".into(),
                    value: Some(1024.0),
                },
                QuotaOp {
                    key: "consumer_byte_rate".into(),
                    value: None,
                },
            ],
        };
        let entry = alteration_to_wire(&alteration);
        // BTreeMap order: User before ClientId.
        assert_eq!(entry.entity[0].entity_type, "user");
        assert_eq!(entry.entity[0].entity_name.as_deref(), Some("alice"));
        assert_eq!(entry.entity[1].entity_type, "client-id");
        assert_eq!(entry.entity[1].entity_name, None);
        assert!(!entry.ops[0].remove);
        assert_eq!(entry.ops[0].value, 1024.0);
        assert!(entry.ops[1].remove);
    }

    #[test]
    fn described_entries_decode_into_typed_entities() {
        use crate::protocol::messages::describe_client_quotas_response::{
            EntityData as RespEntity, EntryData as RespEntry, ValueData,
        };
        let response =
            DescribeClientQuotasResponse::default().with_entries(Some(vec![RespEntry::default()
                .with_entity(vec![RespEntity::default()
                    .with_entity_type("ip".into())
                    .with_entity_name(None)])
                .with_values(vec![ValueData::default()
                    .with_key("connection_creation_rate".into())
                    .with_value(5.0)])]));
        let mut buf = bytes::BytesMut::new();
        response.encode(&mut buf, 1).unwrap();
        let back = DescribeClientQuotasResponse::decode(&mut buf.freeze(), 1).unwrap();
        let entry = &back.entries.unwrap()[0];
        let entity = ClientQuotaEntity::from_wire(
            entry
                .entity
                .iter()
                .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref())),
        );
        assert_eq!(
            entity,
            ClientQuotaEntity::new().with(QuotaEntityType::Ip, None::<&str>)
        );
    }
}
