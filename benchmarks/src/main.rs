//! `ferrokafka-bench`: one benchmark run per process, so that the process's
//! own CPU time (getrusage) is the client's. `scripts/bench.sh` starts the
//! broker, creates the topics, interleaves the clients and takes medians.
//!
//! ```text
//! ferrokafka-bench clients --workload P100|P100-lz4|P1K|C100
//! ferrokafka-bench run  --client rdkafka|ferrokafka --workload P100|P100-lz4|P1K|C100
//!                       --bootstrap 127.0.0.1:9092 --topic T [--records N]
//! ferrokafka-bench fill --workload C100 --bootstrap 127.0.0.1:9092 --topic T [--records N]
//! ```
//!
//! `run` prints one JSON line: client, workload, records, seconds,
//! records_per_s, mb_per_s (key + value bytes, 10^6 per MB) and
//! client_cpu_s_per_million (user + system CPU of this process over the timed
//! window, per million records).

mod measure;
mod rdkafka_client;
mod workload;

#[cfg(any(feature = "ferrokafka-producer", feature = "ferrokafka-consumer"))]
mod ferrokafka_client;

use std::process::ExitCode;

use workload::Workload;

/// Whether ferrokafka's producer side is built in.
const FERROKAFKA_PRODUCER: bool = cfg!(feature = "ferrokafka-producer");
/// Whether ferrokafka's consumer side is built in.
const FERROKAFKA_CONSUMER: bool = cfg!(feature = "ferrokafka-consumer");

/// The clients compiled into this binary for a produce or a consume workload.
fn clients(consume: bool) -> Vec<&'static str> {
    let mut clients = vec!["rdkafka"];
    let ferrokafka = if consume {
        FERROKAFKA_CONSUMER
    } else {
        FERROKAFKA_PRODUCER
    };
    if ferrokafka {
        clients.push("ferrokafka");
    }
    clients
}

struct Args {
    command: String,
    client: Option<String>,
    workload: Option<Workload>,
    bootstrap: Option<String>,
    topic: Option<String>,
    records: Option<u64>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let command = args.next().ok_or("missing command (clients, run, fill)")?;
    let mut parsed = Args {
        command,
        client: None,
        workload: None,
        bootstrap: None,
        topic: None,
        records: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--client" => parsed.client = Some(value),
            "--workload" => {
                parsed.workload = Some(
                    workload::workload(&value)
                        .ok_or_else(|| format!("unknown workload {value}"))?,
                )
            }
            "--bootstrap" => parsed.bootstrap = Some(value),
            "--topic" => parsed.topic = Some(value),
            "--records" => {
                parsed.records = Some(value.parse().map_err(|e| format!("--records: {e}"))?)
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(parsed)
}

fn run(args: Args) -> Result<(), String> {
    let workload = args.workload.ok_or("--workload is required")?;
    if args.command == "clients" {
        println!("{}", clients(workload.consume).join(" "));
        return Ok(());
    }
    let bootstrap = args.bootstrap.ok_or("--bootstrap is required")?;
    let topic = args.topic.ok_or("--topic is required")?;
    let records = args.records.unwrap_or(workload.default_records);
    match args.command.as_str() {
        "fill" => {
            rdkafka_client::fill(&bootstrap, &topic, &workload, records);
            Ok(())
        }
        "run" => {
            let client = args.client.ok_or("--client is required")?;
            let line = match (client.as_str(), workload.consume) {
                ("rdkafka", false) => {
                    rdkafka_client::produce(&bootstrap, &topic, &workload, records)
                }
                ("rdkafka", true) => {
                    rdkafka_client::consume(&bootstrap, &topic, &workload, records)
                }
                #[cfg(feature = "ferrokafka-producer")]
                ("ferrokafka", false) => {
                    ferrokafka_client::producer::produce(&bootstrap, &topic, &workload, records)
                }
                #[cfg(feature = "ferrokafka-consumer")]
                ("ferrokafka", true) => {
                    ferrokafka_client::consumer::consume(&bootstrap, &topic, &workload, records)
                }
                (other, _) => {
                    return Err(format!(
                        "client {other} is not built in for {} (built: {})",
                        workload.name,
                        clients(workload.consume).join(", ")
                    ))
                }
            };
            println!("{line}");
            Ok(())
        }
        other => Err(format!("unknown command {other}")),
    }
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ferrokafka-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
