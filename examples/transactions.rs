//! Transactions: consume-transform-produce with exactly-once semantics.
//! Writes two transactions to `--topic`, committing the first (with a
//! consumer group's offset) and aborting the second, then prints the
//! producer's metrics.
//!
//! ```text
//! cargo run --example transactions -- --bootstrap-servers 127.0.0.1:9092 --topic T [--group G]
//! ```

use std::time::Duration;

use bytes::Bytes;
use ferrokafka::network::ClientConfig;
use ferrokafka::producer::{
    ConsumerGroupMetadata, OffsetToCommit, Producer, ProducerConfig, ProducerRecord,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut bootstrap = "127.0.0.1:9092".to_owned();
    let mut topic = "transactions-example".to_owned();
    let mut group = "transactions-example-group".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bootstrap-servers" => bootstrap = value,
            "--topic" => topic = value,
            "--group" => group = value,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let client = ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .build()?;
    let producer = Producer::new(
        client,
        ProducerConfig::builder()
            .transactional_id("ferrokafka-transactions-example")
            .transaction_timeout(Duration::from_secs(30))
            .build()?,
    )
    .await?;
    // Fences any older producer with this transactional id.
    producer.init_transactions().await?;

    producer.begin_transaction()?;
    for i in 0..10 {
        producer
            .send(ProducerRecord::new(
                topic.clone(),
                Bytes::from(format!("committed-{i}")),
            ))
            .await?;
    }
    // The consumed position commits if and only if the transaction does.
    producer
        .send_offsets_to_transaction(
            &[OffsetToCommit {
                topic: topic.clone(),
                partition: 0,
                offset: 10,
                leader_epoch: -1,
                metadata: None,
            }],
            &ConsumerGroupMetadata::new(group),
        )
        .await?;
    producer.commit_transaction().await?;
    println!("committed 10 records");

    producer.begin_transaction()?;
    for i in 0..5 {
        producer
            .send(ProducerRecord::new(
                topic.clone(),
                Bytes::from(format!("aborted-{i}")),
            ))
            .await?;
    }
    producer.abort_transaction().await?;
    println!("aborted 5 records: read_committed consumers skip them");

    println!("{:?}", producer.metrics());
    producer.close(Duration::from_secs(10)).await?;
    Ok(())
}
