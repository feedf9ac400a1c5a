#![no_main]
//! Fuzz target: see `harness::fetched_records`.

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::fetched_records(data));
