#![no_main]
//! Fuzz target: see `harness::lz4_round_trip`.

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::lz4_round_trip(data));
