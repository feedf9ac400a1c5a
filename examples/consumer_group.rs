//! A command-line consumer group member.
//!
//! ```text
//! cargo run --example consumer_group -- --bootstrap-servers 127.0.0.1:9092 --group G --topic T
//!     [--strategy range|roundrobin|sticky|cooperative-sticky[,...]] [--records N]
//!     [--instance-id ID] [--from earliest|latest]
//! ```
//!
//! Joins group `G` subscribed to topic `T` (a comma-separated list, or a
//! regular expression when it starts with `^`), prints each rebalance and
//! each record (`topic partition offset value`, lossy UTF-8), commits every
//! second (auto-commit), and after `--records` records (without it, it runs
//! until killed) commits, leaves the group and prints one JSON line:
//! `{"records":N,"partitions":[...]}`. Rebalances go to stderr, and with
//! `FERROKAFKA_LOG=1` the client's info logs too.

use std::time::Duration;

use ferrokafka::consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, ListenerFuture, RebalanceListener, Strategy,
    TopicPartition,
};
use ferrokafka::network::ClientConfig;

struct Args {
    bootstrap: String,
    group: String,
    topic: String,
    strategy: Vec<Strategy>,
    records: Option<u64>,
    instance_id: Option<String>,
    reset: AutoOffsetReset,
}

fn usage() -> ! {
    eprintln!(
        "usage: consumer_group --bootstrap-servers H:P --group G --topic T[,T2|^regex] \
         [--strategy range|roundrobin|sticky|cooperative-sticky[,...]] [--records N] \
         [--instance-id ID] [--from earliest|latest]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        bootstrap: String::new(),
        group: String::new(),
        topic: String::new(),
        strategy: Strategy::default_list(),
        records: None,
        instance_id: None,
        reset: AutoOffsetReset::Earliest,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--bootstrap-servers" => args.bootstrap = value(),
            "--group" => args.group = value(),
            "--topic" => args.topic = value(),
            "--strategy" => {
                args.strategy = Strategy::parse_list(&value()).unwrap_or_else(|e| {
                    eprintln!("{e}");
                    usage()
                })
            }
            "--records" => args.records = Some(value().parse().unwrap_or_else(|_| usage())),
            "--instance-id" => args.instance_id = Some(value()),
            "--from" => {
                args.reset = match value().as_str() {
                    "earliest" => AutoOffsetReset::Earliest,
                    "latest" => AutoOffsetReset::Latest,
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    if args.bootstrap.is_empty() || args.group.is_empty() || args.topic.is_empty() {
        usage()
    }
    args
}

/// Prints every rebalance callback.
struct PrintRebalances;

impl RebalanceListener for PrintRebalances {
    fn on_partitions_revoked<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        eprintln!("revoked {partitions:?}");
        Box::pin(async {})
    }
    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let state = consumer.group_state();
        eprintln!(
            "assigned {partitions:?} in generation {:?} (assignor {:?})",
            state.as_ref().map(|s| s.generation),
            state.and_then(|s| s.protocol)
        );
        Box::pin(async {})
    }
    fn on_partitions_lost<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        eprintln!("lost {partitions:?}");
        Box::pin(async {})
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    if std::env::var_os("FERROKAFKA_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::stderr)
            .init();
    }
    let client = ClientConfig::builder()
        .bootstrap_servers(args.bootstrap.split(','))
        .client_id("ferrokafka-consumer-group")
        .build()?;
    let mut config = ConsumerConfig::builder()
        .group_id(args.group.clone())
        .partition_assignment_strategy(args.strategy)
        .auto_offset_reset(args.reset)
        .auto_commit_interval(Duration::from_secs(1))
        .session_timeout(Duration::from_secs(10));
    if let Some(id) = &args.instance_id {
        config = config.group_instance_id(id.clone());
    }
    let consumer = Consumer::new(client, config.build()?).await?;
    consumer.set_rebalance_listener(PrintRebalances);
    if args.topic.starts_with('^') {
        consumer.subscribe_pattern(&args.topic)?;
    } else {
        consumer.subscribe(args.topic.split(',').map(str::trim))?;
    }
    let mut count = 0u64;
    while args.records.map_or(true, |n| count < n) {
        let room = args.records.map_or(500, |n| (n - count).min(500) as usize);
        let batch = consumer.poll(room, Duration::from_secs(1)).await?;
        for record in batch.iter() {
            println!(
                "{} {} {} {}",
                record.topic(),
                record.partition(),
                record.offset(),
                String::from_utf8_lossy(record.value().unwrap_or_default())
            );
            count += 1;
        }
    }
    let partitions: Vec<String> = consumer
        .assignment()
        .iter()
        .map(|tp| format!("\"{tp}\""))
        .collect();
    consumer.commit().await?;
    consumer.close().await;
    println!(
        "{{\"records\":{count},\"partitions\":[{}]}}",
        partitions.join(",")
    );
    Ok(())
}
