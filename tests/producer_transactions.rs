//! Transactions against real brokers: committed and aborted transactions
//! leave the right markers in the log (an abort control batch after aborted
//! records, the transaction listed as aborted in a read_committed Fetch),
//! offsets sent with a transaction are committed with it, and a second
//! producer with the same transactional id fences the first with a typed
//! fatal error.

mod producer_support;

use std::time::Duration;

use bytes::Bytes;
use ferrokafka::admin::{Admin, TopicPartition};
use ferrokafka::network::Cluster;
use ferrokafka::producer::{
    ConsumerGroupMetadata, OffsetToCommit, ProducerConfig, ProducerError, ProducerRecord,
};
use ferrokafka::records::{Batch, BatchReader, ControlRecordType};
use ferrokafka::testkit::{BrokerKind, Capability, TestCluster};
use producer_support::*;

/// One entry of the log as a read_committed Fetch returns it.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Data {
        first: i64,
        count: usize,
        transactional: bool,
    },
    Marker {
        offset: i64,
        kind: ControlRecordType,
    },
}

/// The log's entries and aborted transactions as a Fetch with `isolation`
/// (0 = read_uncommitted, 1 = read_committed) returns them.
async fn fetch_log(bootstrap: &str, topic: &str, isolation: i8) -> (Vec<Entry>, Vec<(i64, i64)>) {
    let cluster = Cluster::connect(client_config(bootstrap)).await.unwrap();
    let fetched = fetch(&cluster, topic, 0, 0, isolation).await;
    let mut entries = Vec::new();
    for batch in BatchReader::new(fetched.records) {
        let Batch::V2(batch) = batch.unwrap() else {
            panic!("legacy batch")
        };
        let header = batch.header();
        match batch.control_record().unwrap() {
            Some(control) => entries.push(Entry::Marker {
                offset: header.base_offset,
                kind: control.kind,
            }),
            None => entries.push(Entry::Data {
                first: header.base_offset,
                count: batch.records().unwrap().count(),
                transactional: header.is_transactional(),
            }),
        }
    }
    (entries, fetched.aborted)
}

/// Merges consecutive data batches so the log reads as runs of records.
fn runs(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for e in entries {
        if let (
            Some(Entry::Data { first, count, .. }),
            Entry::Data {
                first: next,
                count: n,
                ..
            },
        ) = (out.last_mut(), &e)
        {
            if *first + *count as i64 == *next {
                *count += n;
                continue;
            }
        }
        out.push(e);
    }
    out
}

async fn transactions_on(kind: BrokerKind) {
    let cluster = TestCluster::from_env_or_start(kind).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique("txn");
    create_topic(&bootstrap, &topic, 1).await;
    let transactional_id = unique("txn-id");
    let config = ProducerConfig::builder()
        .transactional_id(transactional_id.clone())
        .transaction_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let producer = producer(&bootstrap, config.clone()).await;
    // No transaction yet: sending is a typed state error.
    let refused = producer
        .send(ProducerRecord::new(topic.clone(), Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ProducerError::TransactionState(_)),
        "{refused:?}"
    );
    producer.init_transactions().await.unwrap();
    let (producer_id, _) = producer.producer_id_and_epoch();
    assert!(producer_id >= 0);

    let send_n = |prefix: &'static str, n: usize| {
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            let mut handles = Vec::new();
            for i in 0..n {
                handles.push(
                    producer
                        .send(ProducerRecord::new(
                            topic.clone(),
                            Bytes::from(format!("{prefix}-{i}")),
                        ))
                        .await
                        .unwrap(),
                );
            }
            handles
        }
    };
    producer.begin_transaction().unwrap();
    let committed = send_n("committed", 10).await;
    producer.commit_transaction().await.unwrap();
    for h in committed {
        h.await.unwrap();
    }
    producer.begin_transaction().unwrap();
    let aborted = send_n("aborted", 5).await;
    producer.abort_transaction().await.unwrap();
    for h in aborted {
        // Written, then aborted: the handles report the write.
        h.await.unwrap();
    }
    producer.begin_transaction().unwrap();
    let last = send_n("last", 3).await;
    let group = unique("txn-group");
    producer
        .send_offsets_to_transaction(
            &[OffsetToCommit {
                topic: topic.clone(),
                partition: 0,
                offset: 42,
                leader_epoch: -1,
                metadata: None,
            }],
            &ConsumerGroupMetadata::new(group.clone()),
        )
        .await
        .unwrap();
    producer.commit_transaction().await.unwrap();
    for h in last {
        h.await.unwrap();
    }

    let (entries, _) = fetch_log(&bootstrap, &topic, 0).await;
    let log = runs(entries);
    let aborted_run = Entry::Data {
        first: 11,
        count: 5,
        transactional: true,
    };
    assert_eq!(
        log,
        vec![
            Entry::Data {
                first: 0,
                count: 10,
                transactional: true
            },
            Entry::Marker {
                offset: 10,
                kind: ControlRecordType::Commit
            },
            Entry::Data {
                first: 11,
                count: 5,
                transactional: true
            },
            Entry::Marker {
                offset: 16,
                kind: ControlRecordType::Abort
            },
            Entry::Data {
                first: 17,
                count: 3,
                transactional: true
            },
            Entry::Marker {
                offset: 20,
                kind: ControlRecordType::Commit
            },
        ],
        "{kind:?}: the log as written"
    );
    // read_committed: the aborted transaction is listed for the client to
    // skip (Kafka's way), or its records are left out by the broker.
    let (committed, aborted_list) = fetch_log(&bootstrap, &topic, 1).await;
    let committed = runs(committed);
    let hidden = aborted_list == vec![(producer_id, 11)] || !committed.contains(&aborted_run);
    match cluster.skip_reason(Capability::ReadCommitted) {
        None => assert!(
            hidden,
            "{kind:?}: aborted records visible to read_committed: {committed:?} {aborted_list:?}"
        ),
        Some(gap) => {
            // The known gap: read_committed is not filtered by transaction
            // state. If this starts failing the broker was fixed.
            assert!(
                !hidden,
                "{kind:?} now hides aborted records; its gap ({gap}) may be fixed"
            );
        }
    }
    println!("{kind:?}: read_committed view {committed:?}, aborted transactions {aborted_list:?}");

    // The offsets sent with the last transaction are committed.
    let admin = Admin::connect(client_config(&bootstrap)).await.unwrap();
    let tp = TopicPartition {
        topic: topic.clone(),
        partition: 0,
    };
    let offsets = admin
        .list_consumer_group_offsets(&group, Some(std::slice::from_ref(&tp)), Default::default())
        .await
        .unwrap();
    assert_eq!(
        offsets[&tp].as_ref().unwrap().as_ref().map(|o| o.offset),
        Some(42),
        "{kind:?}"
    );

    // A second producer with the same id fences the first.
    let successor = producer_support::producer(&bootstrap, config).await;
    successor.init_transactions().await.unwrap();
    producer.begin_transaction().unwrap();
    let h = producer
        .send(ProducerRecord::new(
            topic.clone(),
            Bytes::from_static(b"zombie"),
        ))
        .await
        .unwrap();
    let error = producer.commit_transaction().await.unwrap_err();
    assert!(error.is_fatal(), "{kind:?}: {error:?}");
    assert!(
        matches!(
            error,
            ProducerError::Fenced { .. } | ProducerError::Fatal(_)
        ),
        "{kind:?}: {error:?}"
    );
    assert!(h.await.unwrap_err().is_fatal());
    producer.close(Duration::from_secs(5)).await.unwrap();
    successor.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_abort_offsets_and_fencing_on_tansu() {
    transactions_on(BrokerKind::Tansu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_abort_offsets_and_fencing_on_noida() {
    transactions_on(BrokerKind::Noida).await;
}
