//! Probes which admin and offset APIs each local test broker really handles,
//! to keep `BrokerKind::known_gaps` honest after a broker upgrade:
//!
//! ```text
//! cargo run --features testkit --example probe_brokers [tansu|noida ...]
//! ```
//!
//! For each broker it prints, per API, the versions the broker lists and what
//! a small request against a fresh topic returned.

use bytes::{BufMut, BytesMut};
use ferrokafka::protocol::messages::alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use ferrokafka::protocol::messages::create_partitions_request::CreatePartitionsTopic;
use ferrokafka::protocol::messages::create_topics_request::CreatableTopic;
use ferrokafka::protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use ferrokafka::protocol::messages::describe_configs_request::DescribeConfigsResource;
use ferrokafka::protocol::messages::incremental_alter_configs_request as incremental;
use ferrokafka::protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use ferrokafka::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use ferrokafka::protocol::messages::{
    AlterConfigsRequest, ApiVersionsResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeAclsRequest, DescribeClusterRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, ListOffsetsRequest, ProduceRequest,
};
use ferrokafka::protocol::{ApiKey, Request};
use ferrokafka::testkit::{BlockingClient, BrokerKind, TestBroker, TestkitError};
use std::time::Duration;

const TOPIC_RESOURCE: i8 = 2;
const BASE_TS: i64 = 1_700_000_000_000;

fn main() {
    let kinds: Vec<BrokerKind> = if std::env::args().len() > 1 {
        std::env::args()
            .skip(1)
            .map(|a| BrokerKind::from_name(&a).expect("broker kind"))
            .collect()
    } else {
        BrokerKind::ALL.to_vec()
    };
    for kind in kinds {
        println!("== {kind}");
        let broker = TestBroker::start(kind).expect("start");
        probe(&broker);
        println!();
    }
}

struct Probe {
    client: BlockingClient,
    versions: ApiVersionsResponse,
    bootstrap: String,
}

impl Probe {
    /// Sends `request` in the highest shared version; `None` (with a line
    /// printed) when the broker does not list the API at all.
    fn send<R: Request>(&mut self, request: &R) -> Option<Result<R::Response, TestkitError>> {
        let listed = self
            .versions
            .api_keys
            .iter()
            .find(|k| k.api_key == R::API_KEY.key())
            .map(|k| format!("{}-{}", k.min_version, k.max_version));
        let Some(version) = BlockingClient::common_version(&self.versions, R::API_KEY) else {
            println!(
                "  {:<24} not listed in ApiVersions (listed: {listed:?})",
                R::API_KEY.name()
            );
            return None;
        };
        let result = self.client.send(version, request);
        if result.is_err() {
            // The connection may be unusable now.
            self.client = BlockingClient::connect(&self.bootstrap, Duration::from_secs(5)).unwrap();
        }
        print!(
            "  {:<24} listed {} sent v{version}: ",
            R::API_KEY.name(),
            listed.unwrap_or_default()
        );
        Some(result)
    }

    /// Sends `request` as [`Probe::send`] does and hands the response to
    /// `on_response`, or prints why there is none.
    fn send_then<R: Request>(
        &mut self,
        request: &R,
        on_response: impl FnOnce(&mut Probe, R::Response),
    ) {
        match self.send(request) {
            Some(Ok(r)) => on_response(self, r),
            Some(Err(e)) => println!("FAILED {e}"),
            None => {}
        }
    }
}

fn create_topic(p: &mut Probe, name: &str, partitions: i32) {
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    p.send_then(&request, |_, r| {
        println!(
            "{:?}",
            r.topics
                .iter()
                .map(|t| (t.name.clone(), t.error_code))
                .collect::<Vec<_>>()
        )
    });
}

/// KIP-848 (`group.protocol=consumer`): does the broker list and answer
/// ConsumerGroupHeartbeat? When it is not listed, v0 is sent anyway to show
/// what the broker does with it.
fn probe_kip848(p: &mut Probe, topic: &str) {
    let heartbeat = ConsumerGroupHeartbeatRequest {
        group_id: "probe-kip848".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec![topic.into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    };
    let show = |r: &ConsumerGroupHeartbeatResponse| {
        format!(
            "error {} {:?}, member {:?}, epoch {}",
            r.error_code, r.error_message, r.member_id, r.member_epoch
        )
    };
    match p.send(&heartbeat) {
        Some(Ok(r)) => println!("{}", show(&r)),
        Some(Err(e)) => println!("FAILED {e}"),
        None => {
            let result = p.client.send(0, &heartbeat);
            match &result {
                Ok(r) => println!("  ConsumerGroupHeartbeat v0 sent unlisted: {}", show(r)),
                Err(e) => println!("  ConsumerGroupHeartbeat v0 sent unlisted: FAILED {e}"),
            }
            if result.is_err() {
                p.client = BlockingClient::connect(&p.bootstrap, Duration::from_secs(5)).unwrap();
            }
        }
    }
}

fn zigzag(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            buf.put_u8(byte);
            return;
        }
        buf.put_u8(byte | 0x80);
    }
}

/// A v2 record batch of `count` records, record i stamped BASE_TS + 1000 i.
fn batch(count: i32) -> bytes::Bytes {
    let mut records = BytesMut::new();
    for i in 0..count {
        let mut rec = BytesMut::new();
        rec.put_i8(0);
        zigzag(&mut rec, i64::from(i) * 1000);
        zigzag(&mut rec, i64::from(i));
        zigzag(&mut rec, -1);
        let value = format!("value-{i}");
        zigzag(&mut rec, value.len() as i64);
        rec.put_slice(value.as_bytes());
        zigzag(&mut rec, 0);
        zigzag(&mut records, rec.len() as i64);
        records.put_slice(&rec);
    }
    let mut tail = BytesMut::new();
    tail.put_i16(0);
    tail.put_i32(count - 1);
    tail.put_i64(BASE_TS);
    tail.put_i64(BASE_TS + i64::from(count - 1) * 1000);
    tail.put_i64(-1);
    tail.put_i16(-1);
    tail.put_i32(-1);
    tail.put_i32(count);
    tail.put_slice(&records);
    let mut out = BytesMut::new();
    out.put_i64(0);
    out.put_i32((4 + 1 + 4 + tail.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(crc32c::crc32c(&tail));
    out.put_slice(&tail);
    out.freeze()
}

fn list_offset(p: &mut Probe, topic: &str, timestamp: i64, label: &str) {
    let request = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: -1,
                timestamp,
                max_num_offsets: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match p.send(&request) {
        Some(Ok(r)) => {
            let part = &r.topics[0].partitions[0];
            println!(
                "{label}: error {} offset {} timestamp {}",
                part.error_code, part.offset, part.timestamp
            );
        }
        Some(Err(e)) => println!("{label}: FAILED {e}"),
        None => {}
    }
}

fn probe(broker: &TestBroker) {
    let bootstrap = broker.bootstrap_servers();
    let mut client = BlockingClient::connect(&bootstrap, Duration::from_secs(5)).unwrap();
    let versions = client.api_versions().unwrap();
    let mut listed: Vec<String> = versions
        .api_keys
        .iter()
        .map(|k| {
            let name = ApiKey::from_key(k.api_key).map_or("?", ApiKey::name);
            format!("{name}({}) {}-{}", k.api_key, k.min_version, k.max_version)
        })
        .collect();
    listed.sort();
    println!(
        "  ApiVersions lists {} APIs: {}",
        listed.len(),
        listed.join(", ")
    );
    let mut p = Probe {
        client,
        versions,
        bootstrap,
    };
    let topic = "probe-topic";
    create_topic(&mut p, topic, 1);
    probe_kip848(&mut p, topic);

    let produce = ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch(3)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    p.send_then(&produce, |_, r| {
        let part = &r.responses[0].partition_responses[0];
        println!("error {} base_offset {}", part.error_code, part.base_offset);
    });
    list_offset(&mut p, topic, -2, "earliest (want 0)");
    list_offset(&mut p, topic, -1, "latest (want 3)");
    list_offset(&mut p, topic, BASE_TS + 1500, "ts base+1500 (want 2)");
    list_offset(&mut p, topic, BASE_TS, "ts base (want 0)");

    let delete_records = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: topic.into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: 0,
                offset: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    p.send_then(&delete_records, |p, r| {
        let part = &r.topics[0].partitions[0];
        println!(
            "error {} low_watermark {} (want 1)",
            part.error_code, part.low_watermark
        );
        list_offset(p, topic, -2, "earliest after DeleteRecords (want 1)");
    });

    let create_partitions = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: topic.into(),
            count: 3,
            assignments: None,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    p.send_then(&create_partitions, |_, r| {
        println!(
            "{:?}",
            r.results
                .iter()
                .map(|t| (t.error_code, t.error_message.clone()))
                .collect::<Vec<_>>()
        )
    });

    let alter = AlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: TOPIC_RESOURCE,
            resource_name: topic.into(),
            configs: vec![AlterableConfig {
                name: "retention.ms".into(),
                value: Some("3600000".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    p.send_then(&alter, |_, r| {
        println!(
            "{:?}",
            r.responses
                .iter()
                .map(|t| (t.error_code, t.error_message.clone()))
                .collect::<Vec<_>>()
        )
    });

    let incremental = IncrementalAlterConfigsRequest {
        resources: vec![incremental::AlterConfigsResource {
            resource_type: TOPIC_RESOURCE,
            resource_name: topic.into(),
            configs: vec![incremental::AlterableConfig {
                name: "cleanup.policy".into(),
                config_operation: 0,
                value: Some("compact".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    p.send_then(&incremental, |_, r| {
        println!(
            "{:?}",
            r.responses
                .iter()
                .map(|t| (t.error_code, t.error_message.clone()))
                .collect::<Vec<_>>()
        )
    });

    let describe_configs = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: TOPIC_RESOURCE,
            resource_name: topic.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    p.send_then(&describe_configs, |_, r| {
        println!(
            "{:?}",
            r.results
                .iter()
                .map(|t| (
                    t.error_code,
                    t.configs
                        .iter()
                        .filter(|c| c.name == "retention.ms" || c.name == "cleanup.policy")
                        .map(|c| format!("{}={:?}", c.name, c.value))
                        .collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
        )
    });

    let acls = DescribeAclsRequest {
        resource_type_filter: 1, // ANY
        pattern_type_filter: 1,  // ANY
        operation: 1,            // ANY
        permission_type: 1,      // ANY
        ..Default::default()
    };
    p.send_then(&acls, |_, r| {
        println!(
            "error {} {:?} resources {}",
            r.error_code,
            r.error_message,
            r.resources.len()
        )
    });

    p.send_then(&DescribeClusterRequest::default(), |_, r| {
        println!(
            "error {} cluster {:?} controller {} brokers {:?}",
            r.error_code,
            r.cluster_id,
            r.controller_id,
            r.brokers
                .iter()
                .map(|b| format!("{}@{}:{}", b.broker_id, b.host, b.port))
                .collect::<Vec<_>>()
        )
    });

    let delete_topics = DeleteTopicsRequest {
        topic_names: vec![topic.into()],
        topics: vec![
            ferrokafka::protocol::messages::delete_topics_request::DeleteTopicState {
                name: Some(topic.into()),
                ..Default::default()
            },
        ],
        timeout_ms: 5000,
        ..Default::default()
    };
    p.send_then(&delete_topics, |_, r| {
        println!(
            "{:?}",
            r.responses
                .iter()
                .map(|t| (t.name.clone(), t.error_code))
                .collect::<Vec<_>>()
        )
    });
}
