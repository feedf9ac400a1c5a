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

// ---- records: every codec and legacy sets ----
//
// The bound: for any records blob, total bytes allocated while decoding all
// of it <= RECORDS_FACTOR * (input size + bytes actually decompressed)
// + RECORDS_FIXED (a codec's fixed working state: gzip's inflate window,
// zstd's decoding context, ...). No allocation may follow a size that the
// input merely claims (a snappy length preamble, an lz4 block size, a count).

const RECORDS_FACTOR: usize = 4;
const RECORDS_FIXED: usize = 256 * 1024;

/// Decodes every batch and record of `blob` (errors end the walk).
fn decode_records(blob: &Bytes, limit: usize) {
    let options = DecodeOptions {
        max_decompressed_bytes: limit,
        ..DecodeOptions::default()
    };
    for batch in BatchReader::with_options(blob.clone(), options) {
        let Ok(batch) = batch else { break };
        if let Ok(records) = batch.records() {
            for record in records {
                if record.is_err() {
                    break;
                }
            }
        }
    }
}

/// Bytes the codec really produces for `section` (0 if it fails).
fn decompressed_len(
    codec: ferrokafka::records::Compression,
    section: &[u8],
    limit: usize,
) -> usize {
    ferrokafka::records::compression::decompress(codec, section, limit).map_or(0, |b| b.len())
}

fn assert_records_bound(what: &str, blob: &Bytes, decompressed: usize, limit: usize) {
    decode_records(blob, limit); // warm up per-thread codec state
    let (largest, total) = measure(|| decode_records(blob, limit));
    let bound = RECORDS_FACTOR * (blob.len() + decompressed) + RECORDS_FIXED;
    assert!(
        total <= bound,
        "{what}: {} input bytes, {decompressed} decompressed: allocated {total} in total \
         (largest {largest}), bound {bound}",
        blob.len()
    );
}

/// A v2 batch with `section` as its (compressed) records section and a valid CRC.
fn v2_with_section(codec: ferrokafka::records::Compression, count: i32, section: &[u8]) -> Bytes {
    let mut out = vec![0u8; 61];
    out[16] = 2;
    out[22] = codec.id();
    out[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    out[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    out[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    out.extend_from_slice(section);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

#[test]
fn snappy_length_claims_beyond_what_a_block_can_hold_allocate_nothing() {
    let _guard = MEASURE.lock().unwrap();
    use ferrokafka::records::Compression;
    // A raw snappy block claiming 64 MiB - 1 (varint ff ff ff 1f), then a few
    // bytes that cannot expand to anything like it: a 67-byte batch.
    let block = [0xff, 0xff, 0xff, 0x1f, 0x00, 0x00];
    let blob = v2_with_section(Compression::Snappy, 1, &block);
    assert_eq!(blob.len(), 67);
    let limit = ferrokafka::records::DEFAULT_MAX_DECOMPRESSED_BYTES;
    assert_records_bound("snappy raw block", &blob, 0, limit);
    // The same claim inside xerial framing.
    let mut xerial = vec![
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    xerial.extend_from_slice(&(block.len() as i32).to_be_bytes());
    xerial.extend_from_slice(&block);
    let blob = v2_with_section(Compression::Snappy, 1, &xerial);
    assert_records_bound("snappy xerial chunk", &blob, 0, limit);
}

/// A legacy v0 message (crc, magic 0, attributes, key, value).
fn legacy_v0_message(attributes: u8, value: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8, attributes];
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&(value.len() as i32).to_be_bytes());
    body.extend_from_slice(value);
    let mut message = ferrokafka::records::legacy::crc32_ieee(&body)
        .to_be_bytes()
        .to_vec();
    message.extend_from_slice(&body);
    message
}

fn legacy_entry(offset: i64, message: &[u8]) -> Vec<u8> {
    let mut out = offset.to_be_bytes().to_vec();
    out.extend_from_slice(&(message.len() as i32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// A gzip v0 wrapper holding `count` one-byte messages at the offsets given.
fn legacy_gzip_wrapper(offsets: impl Iterator<Item = i64>) -> (Bytes, usize) {
    use ferrokafka::records::{compression, Compression};
    let mut inner = Vec::new();
    for offset in offsets {
        inner.extend(legacy_entry(offset, &legacy_v0_message(0, b"x")));
    }
    let mut gz = bytes::BytesMut::new();
    compression::compress(Compression::Gzip, None, &inner, &mut gz).unwrap();
    let wrapper = legacy_entry(0, &legacy_v0_message(1, &gz));
    (Bytes::from(wrapper), inner.len())
}

#[cfg(feature = "gzip")]
#[test]
fn legacy_gzip_wrappers_allocate_in_proportion_to_what_they_decompress() {
    let _guard = MEASURE.lock().unwrap();
    let limit = 4 << 20;
    // 120,000 identical inner messages (all at offset 0) in a wrapper of a
    // few KiB: refused at the second message, which repeats the offset.
    let (identical, inner_len) = legacy_gzip_wrapper(std::iter::repeat(0).take(120_000));
    assert!(identical.len() < 64 * 1024, "{}", identical.len());
    assert!(inner_len < limit);
    assert_records_bound("identical inner messages", &identical, inner_len, limit);
    // The same with increasing offsets: decoded lazily, record by record.
    let (increasing, inner_len) = legacy_gzip_wrapper(0..120_000);
    assert_records_bound("increasing inner offsets", &increasing, inner_len, limit);
    let mut decoded = 0usize;
    for batch in BatchReader::with_options(
        increasing.clone(),
        DecodeOptions {
            max_decompressed_bytes: limit,
            ..DecodeOptions::default()
        },
    ) {
        decoded += batch.unwrap().records().unwrap().count();
    }
    assert_eq!(decoded, 120_000);
}

#[test]
fn every_codec_decodes_within_the_allocation_bound() {
    let _guard = MEASURE.lock().unwrap();
    use ferrokafka::records::{Compression, RecordBatchBuilder};
    let limit = ferrokafka::records::DEFAULT_MAX_DECOMPRESSED_BYTES;
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .filter(|c| c.is_enabled())
    {
        for (records, value_len) in [(1usize, 10usize), (10, 100), (1000, 100), (50, 100_000)] {
            let mut b = RecordBatchBuilder::new(codec);
            for i in 0..records {
                let value: Vec<u8> = (0..value_len).map(|j| ((i * 7 + j) % 251) as u8).collect();
                b.append(i as i64, Some(b"key"), Some(&value), &[("h", Some(b"v"))])
                    .unwrap();
            }
            let blob = b.finish().unwrap();
            let decompressed = decompressed_len(codec, &blob[61..], limit);
            assert_records_bound(
                &format!("{codec:?} {records} x {value_len}"),
                &blob,
                decompressed,
                limit,
            );
        }
    }
}

#[test]
fn codec_header_claims_allocate_nothing_large() {
    let _guard = MEASURE.lock().unwrap();
    use ferrokafka::records::Compression;
    let limit = ferrokafka::records::DEFAULT_MAX_DECOMPRESSED_BYTES;
    // lz4 frame: magic, FLG (v01, independent blocks), BD 0x70 (4 MiB
    // blocks), header checksum, then a 1-byte block holding one literal and
    // the end mark: 4 MiB of block buffers claimed for 1 byte of output.
    let hc = 0x73; // (xxh32([0x60, 0x70], seed 0) >> 8) & 0xff
    let mut lz4 = vec![0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, hc];
    lz4.extend_from_slice(&2u32.to_le_bytes());
    lz4.extend_from_slice(&[0x10, b'a']);
    lz4.extend_from_slice(&0u32.to_le_bytes());
    if Compression::Lz4.is_enabled() {
        let blob = v2_with_section(Compression::Lz4, 1, &lz4);
        let decompressed = decompressed_len(Compression::Lz4, &lz4, limit);
        assert_eq!(decompressed, 1, "the lz4 frame is valid");
        assert_records_bound("lz4 4 MiB blocks", &blob, decompressed, limit);
    }
    // zstd frames: the library is built with zstd's `with-rust-allocator`
    // feature, so what the C library allocates is counted here too. A frame
    // declaring a 64 MiB window for one byte of output (magic, descriptor 0:
    // no content size, window byte 16 << 3 = 2^26, a raw last block of 1
    // byte) must not cost its window; one declaring 256 MiB (past zstd's own
    // default limit of 128 MiB) is refused outright.
    if Compression::Zstd.is_enabled() {
        let frame = |window: u8| vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, window, 0x09, 0, 0, b'a'];
        let small = frame(16 << 3);
        let decompressed = decompressed_len(Compression::Zstd, &small, limit);
        assert_eq!(decompressed, 1, "the zstd frame is valid");
        let blob = v2_with_section(Compression::Zstd, 1, &small);
        assert_records_bound("zstd 64 MiB window", &blob, decompressed, limit);
        let huge = frame(18 << 3);
        assert!(matches!(
            ferrokafka::records::compression::decompress(Compression::Zstd, &huge, limit),
            Err(ferrokafka::records::RecordsError::Codec { .. })
        ));
        let blob = v2_with_section(Compression::Zstd, 1, &huge);
        assert_records_bound("zstd 256 MiB window", &blob, 0, limit);
    }
}

// ---- a fetch made of many small compressed batches ----
//
// What a consumer pays per batch when a fetch holds many small compressed
// batches (10 records of ~100 bytes each, as in the records benchmark's
// `fetch_200_small_batches`): the decompressed buffer, sized to its content,
// and nothing per batch that does not depend on the batch's size (no 64 KiB
// or 128 KiB codec block or window buffers, no 32 KiB read buffers, no
// reservation of a multiple of the input). Per-thread codec state that is
// reused from batch to batch is set up by a first, unmeasured pass.

const SMALL_BATCHES: usize = 200;
/// Per batch: total allocation <= SMALL_FACTOR * decompressed + SMALL_FIXED.
const SMALL_FACTOR: usize = 2;
const SMALL_FIXED: usize = 512;

/// A v2 batch at `base_offset` holding `count` records in `section`, the
/// records section as `codec` wrote it.
fn v2_batch_at(
    base_offset: i64,
    codec: ferrokafka::records::Compression,
    count: i32,
    section: &[u8],
) -> Vec<u8> {
    let mut out = v2_with_section(codec, count, section).to_vec();
    out[..8].copy_from_slice(&base_offset.to_be_bytes());
    out[23..27].copy_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The uncompressed records sections of the small batches: 10 records of
/// about 100 bytes of JSON-like text each, as real payloads compress.
fn small_sections() -> Vec<Vec<u8>> {
    use ferrokafka::records::{Compression, RecordBatchBuilder};
    let mut state = 0x9E37_79B9_u32;
    (0..SMALL_BATCHES)
        .map(|batch| {
            let mut b = RecordBatchBuilder::new(Compression::None);
            for i in 0..10 {
                let n = batch * 10 + i;
                let mut value = format!("{{\"id\":{n},\"user\":\"u{}\",\"payload\":\"", n % 97);
                while value.len() < 98 {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    value.push(char::from(b'a' + (state % 26) as u8));
                }
                value.push_str("\"}");
                let key = format!("key-{n:06}");
                b.append(
                    1_700_000_000_000 + n as i64,
                    Some(key.as_bytes()),
                    Some(value.as_bytes()),
                    &[],
                )
                .unwrap();
            }
            b.finish().unwrap()[61..].to_vec()
        })
        .collect()
}

/// A fetch of the small batches, each section compressed by `write`.
fn small_batch_fetch(
    codec: ferrokafka::records::Compression,
    sections: &[Vec<u8>],
    write: impl Fn(&[u8]) -> Vec<u8>,
) -> Bytes {
    let mut blob = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        blob.extend(v2_batch_at(i as i64 * 10, codec, 10, &write(section)));
    }
    Bytes::from(blob)
}

/// Reads every record of the fetch as a consumer does; returns the count.
fn consume(fetch: &Bytes) -> usize {
    let mut records = 0;
    for record in ferrokafka::records::FetchedRecords::new(fetch.clone(), 0) {
        std::hint::black_box(record.unwrap().value);
        records += 1;
    }
    records
}

#[test]
fn small_compressed_batches_allocate_only_what_their_records_need() {
    let _guard = MEASURE.lock().unwrap();
    use ferrokafka::records::{compression, Compression};
    let sections = small_sections();
    let decompressed = sections.iter().map(Vec::len).sum::<usize>() / SMALL_BATCHES;
    let ours = |codec: Compression| {
        move |section: &[u8]| {
            let mut out = bytes::BytesMut::new();
            compression::compress(codec, None, section, &mut out).unwrap();
            out.to_vec()
        }
    };
    let mut fetches: Vec<(&str, Compression, Bytes)> = Vec::new();
    for (name, codec) in [
        ("gzip", Compression::Gzip),
        ("snappy (xerial, as Java writes it)", Compression::Snappy),
        ("lz4 (as Java writes it)", Compression::Lz4),
        ("zstd (with a content size)", Compression::Zstd),
    ] {
        if codec.is_enabled() {
            fetches.push((
                name,
                codec,
                small_batch_fetch(codec, &sections, ours(codec)),
            ));
        }
    }
    // zstd as the Java client (zstd-jni's stream) writes it: no content size.
    #[cfg(feature = "zstd")]
    {
        let streamed = |section: &[u8]| {
            let frame = zstd::stream::encode_all(section, 3).unwrap();
            assert_eq!(frame[4] & 0xE0, 0, "the frame declares no content size");
            frame
        };
        let fetch = small_batch_fetch(Compression::Zstd, &sections, streamed);
        fetches.push((
            "zstd (streamed, as Java writes it)",
            Compression::Zstd,
            fetch,
        ));
    }
    // lz4 frames with a content size and checksums (lz4_flex's frame writer).
    #[cfg(feature = "lz4")]
    {
        let framed = |section: &[u8]| {
            use lz4_flex::frame::{BlockMode, FrameEncoder, FrameInfo};
            use std::io::Write;
            let info = FrameInfo::new()
                .block_mode(BlockMode::Independent)
                .content_size(Some(section.len() as u64))
                .content_checksum(true);
            let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
            encoder.write_all(section).unwrap();
            encoder.finish().unwrap()
        };
        let fetch = small_batch_fetch(Compression::Lz4, &sections, framed);
        fetches.push(("lz4 (content size, checksums)", Compression::Lz4, fetch));
    }
    let bound = SMALL_FACTOR * decompressed + SMALL_FIXED;
    let mut report = Vec::new();
    let mut over = Vec::new();
    for (name, codec, fetch) in &fetches {
        assert_eq!(consume(fetch), 10 * SMALL_BATCHES, "{name}"); // warm-up
        let (largest, total) = measure(|| {
            consume(fetch);
        });
        let per_batch = total / SMALL_BATCHES;
        let line = format!(
            "{name} ({codec:?}): {} bytes on the wire and {decompressed} decompressed per \
             batch; allocated {per_batch} per batch (largest allocation {largest})",
            fetch.len() / SMALL_BATCHES
        );
        if per_batch > bound {
            over.push(line.clone());
        }
        report.push(line);
    }
    println!("{}", report.join("\n"));
    assert!(
        over.is_empty(),
        "over the bound of {bound} bytes per batch:\n{}",
        over.join("\n")
    );
}
