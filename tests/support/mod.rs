//! Test support shared by several integration-test crates (`mod support;`).

pub mod peers;
