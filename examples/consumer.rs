//! A command-line consumer.
//!
//! ```text
//! cargo run --release --example consumer -- --bootstrap-servers 127.0.0.1:9092 --topic T
//!     [--partitions 0,1,...] [--from beginning|end|OFFSET] [--isolation read_committed]
//!     [--records N] [--count]
//! ```
//!
//! Prints each record (`partition offset key value`, lossy UTF-8), or with
//! `--count` prints nothing but one JSON line at the end:
//! `{"records":N,"seconds":S,"records_per_s":R}`, timed from `assign` until
//! the last record was handed out. It stops after `--records` records, or
//! (with `--count` and no `--records`) once every partition is read to its end.

use std::time::{Duration, Instant};

use ferrokafka::consumer::{Consumer, ConsumerConfig, IsolationLevel, Offset, TopicPartition};
use ferrokafka::network::ClientConfig;

struct Args {
    bootstrap: String,
    topic: String,
    partitions: Option<Vec<i32>>,
    from: Offset,
    isolation: IsolationLevel,
    records: Option<u64>,
    count: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: consumer --bootstrap-servers H:P --topic T [--partitions 0,1,...] \
         [--from beginning|end|OFFSET] [--isolation read_committed] [--records N] [--count]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        bootstrap: String::new(),
        topic: String::new(),
        partitions: None,
        from: Offset::Beginning,
        isolation: IsolationLevel::ReadUncommitted,
        records: None,
        count: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--bootstrap-servers" => args.bootstrap = value(),
            "--topic" => args.topic = value(),
            "--partitions" => {
                args.partitions = Some(
                    value()
                        .split(',')
                        .map(|p| p.trim().parse().unwrap_or_else(|_| usage()))
                        .collect(),
                )
            }
            "--from" => {
                args.from = match value().as_str() {
                    "beginning" => Offset::Beginning,
                    "end" => Offset::End,
                    n => Offset::At(n.parse().unwrap_or_else(|_| usage())),
                }
            }
            "--isolation" => {
                args.isolation = match value().as_str() {
                    "read_committed" => IsolationLevel::ReadCommitted,
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    _ => usage(),
                }
            }
            "--records" => args.records = Some(value().parse().unwrap_or_else(|_| usage())),
            "--count" => args.count = true,
            _ => usage(),
        }
    }
    if args.bootstrap.is_empty() || args.topic.is_empty() {
        usage()
    }
    args
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let client = ClientConfig::builder()
        .bootstrap_servers(args.bootstrap.split(','))
        .build()?;
    let config = ConsumerConfig::builder()
        .isolation_level(args.isolation)
        .build()?;
    let consumer = Consumer::new(client, config).await?;
    let partitions = match args.partitions {
        Some(p) => p,
        None => {
            let cluster = consumer.cluster();
            cluster.track_topics([args.topic.as_str()]);
            let metadata = cluster.metadata().await?;
            let topic = metadata
                .topics
                .get(&args.topic)
                .ok_or_else(|| format!("topic {} not found", args.topic))?;
            topic.partitions.iter().map(|p| p.partition).collect()
        }
    };
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .map(|&p| TopicPartition::new(args.topic.as_str(), p))
        .collect();
    let started = Instant::now();
    consumer.assign(tps.iter().cloned())?;
    for tp in &tps {
        consumer.seek(tp, args.from)?;
    }
    let mut records = 0u64;
    let mut last_record = started;
    let limit = args.records.unwrap_or(u64::MAX);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while records < limit {
        let want = (limit - records).min(10_000) as usize;
        let batch = consumer.poll(want, Duration::from_millis(500)).await?;
        if batch.is_empty() {
            if args.count && args.records.is_none() {
                let m = consumer.metrics();
                let at_end = m.partitions.iter().all(|p| p.lag == Some(0));
                if at_end {
                    break;
                }
            }
            continue;
        }
        records += batch.len() as u64;
        last_record = Instant::now();
        if !args.count {
            use std::io::Write;
            for r in batch.iter() {
                writeln!(
                    out,
                    "{} {} {} {}",
                    r.partition(),
                    r.offset(),
                    r.key().map(String::from_utf8_lossy).unwrap_or_default(),
                    r.value().map(String::from_utf8_lossy).unwrap_or_default()
                )?;
            }
        }
    }
    drop(out);
    if args.count {
        let seconds = last_record.duration_since(started).as_secs_f64();
        println!(
            "{{\"records\":{records},\"seconds\":{seconds:.6},\"records_per_s\":{:.1}}}",
            if seconds > 0.0 {
                records as f64 / seconds
            } else {
                0.0
            }
        );
    }
    Ok(())
}
