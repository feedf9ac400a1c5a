#![no_main]
//! Fuzz target: see `harness::decode_response`.

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::decode_response(data));
