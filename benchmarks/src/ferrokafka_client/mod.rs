//! The ferrokafka side, written against the library's Producer and Consumer
//! API: `producer` with the `ferrokafka-producer` feature, `consumer` with
//! `ferrokafka-consumer` (`scripts/bench.sh` turns each on when the library
//! has that module).

use ferrokafka::network::ClientConfig;

#[cfg(feature = "ferrokafka-consumer")]
pub mod consumer;
#[cfg(feature = "ferrokafka-producer")]
pub mod producer;

pub fn client_config(bootstrap: &str) -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers([bootstrap])
        .client_id("bench-ferrokafka")
        .build()
        .expect("client config")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
