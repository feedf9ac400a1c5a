//! Test support shared by several integration-test crates (`mod support;`).

pub mod peers;

/// Sends the library's `tracing` output (debug level) to the test's output
/// when `FK_TRACE` is set, for diagnosing a failing broker test.
#[allow(dead_code)]
pub fn trace_if_asked() {
    if std::env::var_os("FK_TRACE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_test_writer()
            .try_init();
    }
}
