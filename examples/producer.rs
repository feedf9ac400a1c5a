//! A command-line producer: sends `--records` records of `--value-size`
//! bytes to `--topic` and prints one JSON line with the outcome.
//!
//! ```text
//! cargo run --release --example producer -- --bootstrap-servers 127.0.0.1:9092 \
//!     --topic bench --records 1000000 --value-size 100 [--key-space 1000] \
//!     [--compression lz4] [--acks 1] [--idempotence false] [--linger-ms 5]
//! ```
//!
//! Output: `{"records":…,"errors":…,"seconds":…,"records_per_s":…,"mb_per_s":…,"cpu_s_per_million":…}`.
//! Keys are 16 bytes (`key-<n>` padded) drawn round-robin from `--key-space`
//! when given; otherwise records are keyless (sticky partitioning).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokafka::network::ClientConfig;
use ferrokafka::producer::{parse_compression, Acks, Producer, ProducerConfig, ProducerRecord};

struct Args {
    bootstrap: String,
    topic: String,
    records: u64,
    value_size: usize,
    key_space: Option<u64>,
    compression: String,
    acks: String,
    idempotence: Option<bool>,
    linger_ms: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bootstrap: "127.0.0.1:9092".into(),
        topic: String::new(),
        records: 1_000_000,
        value_size: 100,
        key_space: None,
        compression: "none".into(),
        acks: "1".into(),
        idempotence: None,
        linger_ms: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--bootstrap-servers" => args.bootstrap = value()?,
            "--topic" => args.topic = value()?,
            "--records" => {
                args.records = value()?.parse().map_err(|e| format!("--records: {e}"))?
            }
            "--value-size" => {
                args.value_size = value()?.parse().map_err(|e| format!("--value-size: {e}"))?
            }
            "--key-space" => {
                args.key_space = Some(value()?.parse().map_err(|e| format!("--key-space: {e}"))?)
            }
            "--compression" => args.compression = value()?,
            "--acks" => args.acks = value()?,
            "--idempotence" => {
                args.idempotence = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--idempotence: {e}"))?,
                )
            }
            "--linger-ms" => {
                args.linger_ms = value()?.parse().map_err(|e| format!("--linger-ms: {e}"))?
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.topic.is_empty() {
        return Err("--topic is required".into());
    }
    Ok(args)
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "{e}\nusage: producer --bootstrap-servers H:P --topic T --records N --value-size B \
                 [--key-space K] [--compression C] [--acks A] [--idempotence true|false] [--linger-ms L]"
            );
            std::process::exit(2);
        }
    };
    let acks: Acks = args.acks.parse()?;
    let client = ClientConfig::builder()
        .bootstrap_servers(args.bootstrap.split(','))
        .client_id("ferrokafka-producer-example")
        .build()?;
    let mut config = ProducerConfig::builder()
        .acks(acks)
        .linger(Duration::from_millis(args.linger_ms))
        .compression(parse_compression(&args.compression)?);
    if let Some(idempotence) = args.idempotence {
        config = config.enable_idempotence(idempotence);
    }
    let producer = Producer::new(client, config.build()?).await?;
    let value = Bytes::from(vec![b'x'; args.value_size]);
    let keys: Vec<Bytes> = (0..args.key_space.unwrap_or(0).min(1 << 20))
        .map(|k| Bytes::from(format!("key-{k:012}")))
        .collect();
    // Warm up metadata and connections outside the timed window.
    producer.partition_count(&args.topic).await?;
    let topic: &'static str = Box::leak(args.topic.clone().into_boxed_str());

    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let mut pending = VecDeque::new();
    let mut errors = 0u64;
    let mut first_error = None;
    const WINDOW: usize = 200_000;
    for i in 0..args.records {
        // Borrowed: `send` copies key and value into the batch.
        let mut record = ProducerRecord::borrowed(topic, &value);
        if !keys.is_empty() {
            record = record.with_key(&keys[(i % keys.len() as u64) as usize]);
        }
        match producer.send(record).await {
            Ok(handle) => pending.push_back(handle),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
        if pending.len() >= WINDOW {
            if let Err(e) = pending.pop_front().expect("not empty").await {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    for handle in pending {
        if let Err(e) = handle.await {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_start.zip(cpu_seconds()).map(|(a, b)| b - a);
    let metrics = producer.metrics();
    producer.close(Duration::from_secs(30)).await?;
    if let Some(e) = &first_error {
        eprintln!("first error: {e}");
    }
    let ok = args.records - errors;
    println!(
        "{}",
        serde_json::json!({
            "records": args.records,
            "errors": errors,
            "seconds": seconds,
            "records_per_s": ok as f64 / seconds,
            "mb_per_s": (ok as f64 * args.value_size as f64) / seconds / 1e6,
            "cpu_s_per_million": cpu.map(|c| c / (args.records as f64 / 1e6)),
            "batches": metrics.batches_sent,
            "requests": metrics.requests_sent,
            "avg_batch_bytes": metrics.average_batch_bytes,
            "compression_ratio": metrics.compression_ratio,
            "retries": metrics.retries,
        })
    );
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
