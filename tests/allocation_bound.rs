//! Decoders must never allocate more than their input can justify: no
//! `Vec::with_capacity(count_from_wire)`, no string or byte buffers sized by a
//! length the input does not back, no decompression past the configured limit.
//!
//! This test binary installs a counting global allocator (test-only code; the
//! library itself forbids `unsafe`) and measures, for hostile inputs and for
//! mutations of every seed in the fuzz corpus, the largest single allocation
//! and the total bytes allocated while decoding.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use ferrokafka::protocol::{ApiKey, RequestKind, ResponseKind};
use ferrokafka::records::{BatchReader, DecodeOptions};

struct Counting;

static TRACKING: AtomicBool = AtomicBool::new(false);
thread_local! {
    /// Set on the measuring thread only: allocations the test harness makes
    /// on other threads meanwhile (reporting a finished test, ...) are not
    /// the decoder's.
    static MEASURING_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn tracked() -> bool {
    TRACKING.load(Ordering::Relaxed) && MEASURING_HERE.try_with(|m| m.get()).unwrap_or(false)
}
static LARGEST: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
/// Only one measurement at a time (tests in this binary run in parallel).
static MEASURE: Mutex<()> = Mutex::new(());

// SAFETY: forwards every call unchanged to the system allocator; the counters
// are atomics and never influence the allocation itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if tracked() {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            TOTAL.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if tracked() {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
            TOTAL.fetch_add(new_size.saturating_sub(layout.size()), Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns (largest single allocation, total allocated bytes).
fn measure(f: impl FnOnce()) -> (usize, usize) {
    LARGEST.store(0, Ordering::SeqCst);
    TOTAL.store(0, Ordering::SeqCst);
    MEASURING_HERE.with(|m| m.set(true));
    TRACKING.store(true, Ordering::SeqCst);
    f();
    TRACKING.store(false, Ordering::SeqCst);
    MEASURING_HERE.with(|m| m.set(false));
    (LARGEST.load(Ordering::SeqCst), TOTAL.load(Ordering::SeqCst))
}

/// The most a decoder may allocate for `len` input bytes: a constant for
/// small fixed-size state, plus a bounded amplification (a decoded struct is
/// larger in memory than its smallest wire form: a 1-byte compact string
/// becomes a 24-byte `String`, and so on).
fn budget(len: usize) -> usize {
    4096 + 64 * len
}

fn decode_message(api: ApiKey, version: i16, input: &Bytes) {
    let _ = RequestKind::decode(api, &mut input.clone(), version);
    let _ = ResponseKind::decode(api, &mut input.clone(), version);
}

#[test]
fn hostile_lengths_allocate_nothing_large() {
    let _guard = MEASURE.lock().unwrap();
    // Array counts, string and byte lengths claiming up to 2 GiB, in classic
    // and compact encodings, at the start of every message of every version.
    let hostile_prefixes: &[&[u8]] = &[
        &[0x7f, 0xff, 0xff, 0xff],
        &[0x00, 0x00, 0x7f, 0xff, 0x7f, 0xff, 0xff, 0xff],
        &[0xff, 0xff, 0xff, 0xff, 0x07],
        &[0x00, 0xff, 0xff, 0xff, 0xff, 0x07],
        &[0x00, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff],
        &[
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x07,
        ],
    ];
    for &api in ApiKey::ALL {
        for version in api.valid_versions().iter() {
            for prefix in hostile_prefixes {
                let input = Bytes::copy_from_slice(prefix);
                let (largest, total) = measure(|| decode_message(api, version, &input));
                assert!(
                    largest <= budget(input.len()) && total <= 4 * budget(input.len()),
                    "{api:?} v{version} {prefix:02x?}: largest allocation {largest}, total {total}"
                );
            }
        }
    }
}

fn corpus(target: &str) -> Vec<Bytes> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| Bytes::from(std::fs::read(e.unwrap().path()).unwrap()))
        .collect()
}

#[test]
fn mutated_messages_allocate_in_proportion_to_their_size() {
    let _guard = MEASURE.lock().unwrap();
    let mut worst_ratio = 0.0f64;
    let mut state = 0x2545_F491_u64;
    for seed in corpus("decode_response")
        .into_iter()
        .chain(corpus("decode_request"))
    {
        let api = ApiKey::ALL[usize::from(seed[0]) % ApiKey::ALL.len()];
        let versions = api.valid_versions();
        let version = versions.min + i16::from(seed[1] % (versions.max - versions.min + 1) as u8);
        let body = seed.slice(2..);
        for round in 0..16 {
            let mut bytes = body.to_vec();
            if round > 0 && !bytes.is_empty() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % bytes.len();
                let hostile = [0x7f, 0xff, 0xff, 0xff, 0x0f];
                let n = hostile.len().min(bytes.len() - at);
                bytes[at..at + n].copy_from_slice(&hostile[..n]);
            }
            let input = Bytes::from(bytes);
            let (largest, total) = measure(|| decode_message(api, version, &input));
            assert!(
                largest <= budget(input.len()) && total <= 8 * budget(input.len()),
                "{api:?} v{version}: {} input bytes, largest allocation {largest}, total {total}",
                input.len()
            );
            worst_ratio = worst_ratio.max(total as f64 / input.len().max(1) as f64);
        }
    }
    println!("worst total-allocation / input-size ratio: {worst_ratio:.1}");
}

#[test]
fn compressed_batches_never_decompress_past_the_limit() {
    let _guard = MEASURE.lock().unwrap();
    use ferrokafka::records::{Compression, RecordBatchBuilder};
    // 8 MiB of zeros compresses to almost nothing with every codec: a bomb.
    let zeros = vec![0u8; 8 << 20];
    let limit = 1 << 20;
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut builder = RecordBatchBuilder::new(codec);
        builder.append(0, None, Some(&zeros), &[]).unwrap();
        let bomb = builder.finish().unwrap();
        assert!(
            bomb.len() < 1 << 20,
            "{codec:?} bomb is {} bytes",
            bomb.len()
        );
        let options = DecodeOptions {
            max_decompressed_bytes: limit,
            ..DecodeOptions::default()
        };
        let (largest, _) = measure(|| {
            let mut failed = false;
            for batch in BatchReader::with_options(bomb.clone(), options) {
                match batch.map(|b| b.records().map(|r| r.count())) {
                    Ok(Ok(_)) => {}
                    _ => failed = true,
                }
            }
            assert!(
                failed,
                "{codec:?}: an 8 MiB batch decoded under a 1 MiB limit"
            );
        });
        // The decompressor's working buffers may add a little (lz4 frames may
        // declare blocks of up to 4 MiB; see records/compression/lz4.rs).
        assert!(
            largest <= 2 * limit + (4 << 20),
            "{codec:?}: largest allocation {largest}"
        );
    }
}
