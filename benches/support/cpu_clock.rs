//! The benchmark thread's CPU time as a criterion measurement, for
//! `FERROKAFKA_BENCH_CLOCK=cpu`: on a shared machine, other processes
//! competing for the cores inflate it far less than wall-clock time.
//! Shared by `benches/records.rs`, `benches/send.rs` (its
//! `thread_cpu_nanos`) and `benchmarks/codec` (included with `#[path]`).

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput};

/// A benchmark's `main`: runs `bench` (one generic function, given twice)
/// with thread CPU time if `FERROKAFKA_BENCH_CLOCK=cpu`, else with
/// wall-clock time.
#[allow(dead_code)]
pub fn run_with_clock_from_env(
    cpu: fn(&mut Criterion<ThreadCpuTime>),
    wall: fn(&mut Criterion<WallTime>),
) {
    if std::env::var("FERROKAFKA_BENCH_CLOCK").as_deref() == Ok("cpu") {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args();
        cpu(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default()
            .with_measurement(WallTime)
            .configure_from_args();
        wall(&mut c);
        c.final_summary();
    }
}

/// CPU time of the calling thread, in nanoseconds.
pub struct ThreadCpuTime;

pub fn thread_cpu_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // Linux and the BSDs define.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_nanos()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_nanos().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuNanos
    }
}

/// Formats CPU nanoseconds as times ("cpu" units) and throughputs per CPU-second.
struct CpuNanos;

impl ValueFormatter for CpuNanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e-3, "µs cpu")
        } else if typical < 1e9 {
            (1e-6, "ms cpu")
        } else {
            (1e-9, "s cpu")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (amount, unit) = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n as f64 / 1e9, "GB/cpu-s"),
            Throughput::Bits(n) => (n as f64 / 1e9, "Gbit/cpu-s"),
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
                (n as f64 / 1e6, "Melem/cpu-s")
            }
        };
        values.iter_mut().for_each(|v| *v = amount / (*v * 1e-9));
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
