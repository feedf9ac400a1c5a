//! What a run measures: wall time and the process's own CPU time over the
//! timed window, printed as one JSON line.

use std::time::{Duration, Instant};

/// User + system CPU time consumed so far by this whole process (every
/// thread: librdkafka's, tokio's workers, the main thread).
pub fn process_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            panic!("getrusage failed: {}", std::io::Error::last_os_error());
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The timed window of one run.
pub struct Window {
    wall: Instant,
    cpu: Duration,
}

impl Window {
    pub fn start() -> Window {
        Window {
            cpu: process_cpu_time(),
            wall: Instant::now(),
        }
    }

    pub fn finish(self) -> (Duration, Duration) {
        let wall = self.wall.elapsed();
        let cpu = process_cpu_time().saturating_sub(self.cpu);
        (wall, cpu)
    }
}

/// One run's result line.
pub struct RunReport<'a> {
    pub client: &'a str,
    pub workload: &'a str,
    pub records: u64,
    /// Key + value bytes of all records.
    pub payload_bytes: u64,
    pub wall: Duration,
    pub cpu: Duration,
}

impl RunReport<'_> {
    pub fn json(&self) -> String {
        let seconds = self.wall.as_secs_f64();
        let records = self.records as f64;
        format!(
            concat!(
                "{{\"client\":\"{}\",\"workload\":\"{}\",\"records\":{},\"seconds\":{:.3},",
                "\"records_per_s\":{:.0},\"mb_per_s\":{:.2},\"client_cpu_s_per_million\":{:.3}}}"
            ),
            self.client,
            self.workload,
            self.records,
            seconds,
            records / seconds,
            self.payload_bytes as f64 / 1e6 / seconds,
            self.cpu.as_secs_f64() / (records / 1e6),
        )
    }
}
