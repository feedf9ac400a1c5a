//! Record timestamps: the wall clock in milliseconds, read once per record.
//!
//! `SystemTime::now()` costs about 50 ns on a virtual machine (a fenced TSC
//! read in the vDSO plus its conversion), a tenth of what the whole send
//! path may spend on a small record. Here each thread keeps an *anchor*: a
//! wall-clock reading paired with the CPU's time-stamp counter (through
//! `quanta`, which checks for an invariant TSC and otherwise falls back to
//! the OS clock). A timestamp is the anchor plus the counter ticks since,
//! scaled to nanoseconds; the wall clock is read again once the anchor is a
//! millisecond old, or when the counter seems to run backwards (a thread
//! moved to a core whose counter lags). So a timestamp is never more than
//! one anchor lifetime's worth of counter-rate error (nanoseconds) away from
//! what `SystemTime::now()` would have said, and a step of the wall clock
//! (NTP, an operator) shows within a millisecond.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long an anchor serves before the wall clock is read again.
const ANCHOR_LIFETIME_NS: u64 = 1_000_000;

/// The calibrated counter (calibration runs once per process, in
/// [`calibrate`] or the first timestamp).
static COUNTER: OnceLock<quanta::Clock> = OnceLock::new();

/// A wall-clock reading (ns since the epoch; 0 = none yet) and the counter
/// at that moment.
#[derive(Clone, Copy)]
struct Anchor {
    counter: u64,
    wall_ns: u64,
}

thread_local! {
    static ANCHOR: Cell<Anchor> = const { Cell::new(Anchor { counter: 0, wall_ns: 0 }) };
}

fn counter() -> &'static quanta::Clock {
    COUNTER.get_or_init(quanta::Clock::new)
}

/// Calibrates the counter now, so that no `send` pays for it: `quanta`
/// spins against the OS clock for at least half a millisecond (at most
/// 200 ms, until its estimate is stable), once per process.
pub(crate) fn calibrate() {
    counter();
}

/// Nanoseconds since the epoch (0 for a clock set before 1970).
fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Milliseconds since the epoch, for a record's create time.
pub(crate) fn now_ms() -> i64 {
    let counter = counter();
    let now = counter.raw();
    ANCHOR.with(|cell| {
        let anchor = cell.get();
        if anchor.wall_ns != 0 && now >= anchor.counter {
            let elapsed = counter.delta_as_nanos(anchor.counter, now);
            if elapsed < ANCHOR_LIFETIME_NS {
                return ((anchor.wall_ns + elapsed) / 1_000_000) as i64;
            }
        }
        let wall_ns = wall_clock_ns();
        cell.set(Anchor {
            counter: counter.raw(),
            wall_ns,
        });
        (wall_ns / 1_000_000) as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_ms() -> i64 {
        (wall_clock_ns() / 1_000_000) as i64
    }

    #[test]
    fn timestamps_agree_with_the_system_clock_to_the_millisecond() {
        calibrate();
        // Many readings within and across anchor lifetimes: each lies
        // between the system clock read just before and just after it (a
        // millisecond of slack for the counter's calibration error).
        let mut readings = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(30) {
            let before = system_ms();
            let stamp = now_ms();
            let after = system_ms();
            assert!(
                before - 1 <= stamp && stamp <= after + 1,
                "{stamp} outside [{before}, {after}]"
            );
            readings += 1;
        }
        assert!(readings > 100);
    }

    #[test]
    fn every_thread_has_its_own_anchor() {
        calibrate();
        let before = system_ms();
        let stamps: Vec<i64> = (0..4)
            .map(|_| std::thread::spawn(now_ms))
            .map(|t| t.join().unwrap())
            .collect();
        let after = system_ms();
        for stamp in stamps {
            assert!(
                (before - 1..=after + 1).contains(&stamp),
                "{stamp} outside [{before}, {after}]"
            );
        }
    }
}
