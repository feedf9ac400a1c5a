//! ferrokafka's codec side by side with the `kafka-protocol` crate's, on the
//! same inputs: record batch decode (uncompressed, with headers, every codec),
//! a fetch of 200 small lz4 batches, batch encode per codec, and the
//! decode/encode of a large Metadata response and a 16 MiB Fetch response.
//!
//! ```sh
//! cd benchmarks/codec && FERROKAFKA_BENCH_CLOCK=cpu cargo bench
//! ```
//!
//! Before criterion runs, the bench prints the heap each case allocates per
//! operation (a counting global allocator, exact), and checks that both
//! libraries read the same records and messages out of the same bytes.
//!
//! Record cases are measured per record (criterion's "elem/s"; ns per record
//! = 1e9 / that rate). Decoding reads every record and touches its value,
//! as a consumer would. Batch inputs are made by ferrokafka's builder; the
//! kafka-protocol side decodes exactly those bytes. Encode inputs are the same
//! 1,000 (key, value, timestamp) triples for both, each library writing into
//! buffers it reuses across iterations (ferrokafka: one `RecordBatchBuilder`
//! sealed each time, as its producer does; kafka-protocol: one `BytesMut`);
//! kafka-protocol's `Record` structs are built once, outside the timing.
//!
//! `ferrokafka` rows use the owned API (`Record`, whose key, value and
//! headers are `Bytes` handles sharing the batch); `ferrokafka-borrowed` rows
//! use `RecordRef` (`&[u8]` slices, no reference count per record).
//! kafka-protocol has only an owned API (`Record` with `Bytes` and an
//! `IndexMap` of headers, all records of a batch collected into a `Vec`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, Throughput};

use ferrokafka::protocol::messages::{FetchResponse, MetadataResponse};
use ferrokafka::protocol::{Decodable, Encodable};
use ferrokafka::records::{Compression, FetchedRecords, RecordBatchBuilder};

use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::{Decodable as KpDecodable, Encodable as KpEncodable};
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};

#[path = "../../../benches/support/cpu_clock.rs"]
mod cpu_clock;
#[path = "../../../benches/support/messages.rs"]
mod messages;
use messages::{fetch_response, metadata};

const RECORDS: usize = 1000;
const VALUE_LEN: usize = 100;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
const METADATA_VERSION: i16 = 12;
const FETCH_VERSION: i16 = 16;

// ------------------------------------------------------------ allocation count

/// The system allocator, counting bytes and calls while `COUNTING` is set.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            // Counted as a fresh allocation of the new size.
            ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Bytes and allocations of one call of `f` (the average of 20, after a warm-up).
fn allocation_of<R>(mut f: impl FnMut() -> R) -> (u64, u64) {
    const RUNS: u64 = 20;
    black_box(f());
    ALLOCATED_BYTES.store(0, Ordering::SeqCst);
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..RUNS {
        black_box(f());
    }
    COUNTING.store(false, Ordering::SeqCst);
    (
        ALLOCATED_BYTES.load(Ordering::SeqCst) / RUNS,
        ALLOCATIONS.load(Ordering::SeqCst) / RUNS,
    )
}

// ------------------------------------------------------------------- inputs

/// The records of every batch case: 10-byte keys, 100-byte JSON-like values.
struct Inputs {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
}

impl Inputs {
    fn new() -> Self {
        let mut state = 0x1234_5678_u32;
        let values = (0..RECORDS)
            .map(|i| {
                let mut v =
                    format!("{{\"id\":{i},\"user\":\"u{}\",\"payload\":\"", i % 97).into_bytes();
                while v.len() < VALUE_LEN - 2 {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    v.push(b'a' + (state % 26) as u8);
                }
                v.extend_from_slice(b"\"}");
                v.truncate(VALUE_LEN);
                v
            })
            .collect();
        let keys = (0..RECORDS)
            .map(|i| format!("key-{i:06}").into_bytes())
            .collect();
        Inputs { keys, values }
    }

    /// Key + value bytes of all records.
    fn payload(&self) -> u64 {
        self.keys
            .iter()
            .chain(&self.values)
            .map(|b| b.len() as u64)
            .sum()
    }
}

/// Three headers per record, as real traffic carries.
const HEADERS: [(&str, Option<&[u8]>); 3] = [
    (
        "traceparent",
        Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ),
    ("content-type", Some(b"application/json")),
    ("retry", None),
];

fn ferrokafka_batch(
    codec: Compression,
    inputs: &Inputs,
    range: std::ops::Range<usize>,
    headers: bool,
) -> Bytes {
    let mut b = RecordBatchBuilder::with_capacity(codec, range.len() * (VALUE_LEN + 32));
    b.set_base_offset(range.start as i64);
    for i in range {
        let r = i % RECORDS;
        let h: &[(&str, Option<&[u8]>)] = if headers { &HEADERS } else { &[] };
        b.append(
            BASE_TIMESTAMP + i as i64,
            Some(&inputs.keys[r]),
            Some(&inputs.values[r]),
            h,
        )
        .expect("append");
    }
    b.finish().expect("finish")
}

/// Encodes the 1,000 records with a reused builder (`seal` hands the batch
/// out and keeps the buffers, as a producer does).
fn ferrokafka_encode(b: &mut RecordBatchBuilder, inputs: &Inputs) -> Bytes {
    for (i, (k, v)) in inputs.keys.iter().zip(&inputs.values).enumerate() {
        b.append(BASE_TIMESTAMP + i as i64, Some(k), Some(v), &[])
            .expect("append");
    }
    b.seal().expect("seal").bytes
}

fn builder(codec: Compression) -> RecordBatchBuilder {
    RecordBatchBuilder::with_capacity(codec, RECORDS * (VALUE_LEN + 32))
}

fn kp_records(inputs: &Inputs) -> Vec<KpRecord> {
    inputs
        .keys
        .iter()
        .zip(&inputs.values)
        .enumerate()
        .map(|(i, (k, v))| KpRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KpTimestampType::Creation,
            offset: i as i64,
            // offset - sequence constant: one batch, base sequence -1.
            sequence: i as i32 - 1,
            timestamp: BASE_TIMESTAMP + i as i64,
            key: Some(Bytes::copy_from_slice(k)),
            value: Some(Bytes::copy_from_slice(v)),
            headers: IndexMap::new(),
        })
        .collect()
}

fn kp_codec(codec: Compression) -> KpCompression {
    match codec {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

fn kp_encode(codec: Compression, records: &[KpRecord], buf: &mut BytesMut) {
    buf.clear();
    RecordBatchEncoder::encode(
        buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: kp_codec(codec),
        },
    )
    .expect("kafka-protocol encode");
}

// ------------------------------------------------------------- the readers

/// ferrokafka, owned records: sum of value lengths.
fn read_owned(blob: &Bytes) -> usize {
    let mut n = 0;
    for r in FetchedRecords::new(blob.clone(), 0) {
        n += r.expect("record").value.map_or(0, |v| v.len());
    }
    n
}

/// ferrokafka, borrowed records: sum of value lengths.
fn read_borrowed(blob: &Bytes) -> usize {
    let mut n = 0;
    let mut records = FetchedRecords::new(blob.clone(), 0);
    while let Some(r) = records.next_ref() {
        n += r.expect("record").value().map_or(0, <[u8]>::len);
    }
    n
}

/// kafka-protocol: every batch of the blob, sum of value lengths.
fn read_kp(blob: &Bytes) -> usize {
    let mut n = 0;
    let mut buf = blob.clone();
    for set in RecordBatchDecoder::decode_all(&mut buf).expect("kafka-protocol decode") {
        for r in set.records {
            n += r.value.map_or(0, |v| v.len());
        }
    }
    n
}

/// The same three readers, also reading every header key (its length).
fn read_owned_headers(blob: &Bytes) -> usize {
    let mut n = 0;
    for r in FetchedRecords::new(blob.clone(), 0) {
        let r = r.expect("record");
        n += r.value.map_or(0, |v| v.len());
        n += r.headers.iter().map(|h| h.key.len()).sum::<usize>();
    }
    n
}

fn read_borrowed_headers(blob: &Bytes) -> usize {
    let mut n = 0;
    let mut records = FetchedRecords::new(blob.clone(), 0);
    while let Some(r) = records.next_ref() {
        let r = r.expect("record");
        n += r.value().map_or(0, <[u8]>::len);
        n += r.headers().map(|h| h.key.len()).sum::<usize>();
    }
    n
}

fn read_kp_headers(blob: &Bytes) -> usize {
    let mut n = 0;
    let mut buf = blob.clone();
    for set in RecordBatchDecoder::decode_all(&mut buf).expect("kafka-protocol decode") {
        for r in set.records {
            n += r.value.map_or(0, |v| v.len());
            n += r.headers.keys().map(|k| k.len()).sum::<usize>();
        }
    }
    n
}

/// Both libraries read the same records (offset, timestamp, key, value,
/// headers) out of `blob`.
fn check_same_records(name: &str, blob: &Bytes) {
    let ours: Vec<_> = FetchedRecords::new(blob.clone(), 0)
        .map(|r| r.expect("record"))
        .collect();
    let mut buf = blob.clone();
    let theirs: Vec<_> = RecordBatchDecoder::decode_all(&mut buf)
        .expect("kafka-protocol decode")
        .into_iter()
        .flat_map(|s| s.records)
        .collect();
    assert_eq!(ours.len(), theirs.len(), "{name}: record counts differ");
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            (a.offset, a.timestamp, &a.key, &a.value),
            (b.offset, b.timestamp, &b.key, &b.value),
            "{name}"
        );
        let their_headers: Vec<_> = b
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
            .collect();
        let our_headers: Vec<_> = a
            .headers
            .iter()
            .map(|h| (h.key.to_vec(), h.value.clone()))
            .collect();
        assert_eq!(our_headers, their_headers, "{name}: headers");
    }
}

// ------------------------------------------------------------------ messages

/// 8 topics × 32 partitions, each carrying the same 64 KiB batch.
fn fetch(inputs: &Inputs) -> FetchResponse {
    let mut count = 0;
    let mut b = RecordBatchBuilder::new(Compression::None);
    while b.size_in_bytes() < 64 * 1024 {
        let r = count % RECORDS;
        b.append(
            BASE_TIMESTAMP,
            Some(&inputs.keys[r]),
            Some(&inputs.values[r]),
            &[],
        )
        .expect("append");
        count += 1;
    }
    fetch_response(b.finish().expect("finish"))
}

fn encode_ours<M: Encodable>(message: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).expect("encode");
    buf.freeze()
}

fn encode_theirs<M: KpEncodable>(message: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    message
        .encode(&mut buf, version)
        .expect("kafka-protocol encode");
    buf.freeze()
}

// -------------------------------------------------------------- the benches

/// One side-by-side case: a name, what one operation counts (records or
/// bytes) and the contenders.
struct Case<'a> {
    name: String,
    throughput: Throughput,
    contenders: Vec<(&'static str, Box<dyn FnMut() -> usize + 'a>)>,
}

fn run_case<M: Measurement>(c: &mut Criterion<M>, mut case: Case<'_>) {
    for (who, f) in &mut case.contenders {
        let (bytes, allocations) = allocation_of(&mut *f);
        println!(
            "alloc {:<40} {:<20} {:>12} bytes {:>8} allocations per op",
            case.name, who, bytes, allocations
        );
    }
    let mut group: BenchmarkGroup<'_, M> = c.benchmark_group(case.name.clone());
    group.throughput(case.throughput.clone());
    for (who, f) in &mut case.contenders {
        group.bench_function(*who, |b| b.iter(&mut *f));
    }
    group.finish();
}

fn codecs() -> impl Iterator<Item = Compression> {
    [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
        Compression::Gzip,
    ]
    .into_iter()
}

fn name(codec: Compression) -> String {
    format!("{codec:?}").to_lowercase()
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let inputs = Inputs::new();
    let payload = inputs.payload();
    println!(
        "inputs: {RECORDS} records of a {}-byte key and a {VALUE_LEN}-byte value ({payload} bytes of key + value per batch)",
        inputs.keys[0].len()
    );

    // Batch decode, every codec: one batch of 1,000 records.
    for codec in codecs() {
        let blob = ferrokafka_batch(codec, &inputs, 0..RECORDS, false);
        check_same_records(&name(codec), &blob);
        let (b1, b2, b3) = (blob.clone(), blob.clone(), blob);
        run_case(
            c,
            Case {
                name: format!("batch_decode_1000/{}", name(codec)),
                throughput: Throughput::Elements(RECORDS as u64),
                contenders: vec![
                    ("ferrokafka", Box::new(move || read_owned(black_box(&b1)))),
                    (
                        "ferrokafka-borrowed",
                        Box::new(move || read_borrowed(black_box(&b2))),
                    ),
                    ("kafka-protocol", Box::new(move || read_kp(black_box(&b3)))),
                ],
            },
        );
    }

    // Batch decode with three headers per record, reading every header key.
    {
        let blob = ferrokafka_batch(Compression::None, &inputs, 0..RECORDS, true);
        check_same_records("headers", &blob);
        let (b1, b2, b3) = (blob.clone(), blob.clone(), blob);
        run_case(
            c,
            Case {
                name: "batch_decode_1000_with_3_headers/none".into(),
                throughput: Throughput::Elements(RECORDS as u64),
                contenders: vec![
                    (
                        "ferrokafka",
                        Box::new(move || read_owned_headers(black_box(&b1))),
                    ),
                    (
                        "ferrokafka-borrowed",
                        Box::new(move || read_borrowed_headers(black_box(&b2))),
                    ),
                    (
                        "kafka-protocol",
                        Box::new(move || read_kp_headers(black_box(&b3))),
                    ),
                ],
            },
        );
    }

    // A fetch of 200 small batches of 10 records (lz4: ~545 bytes each).
    for codec in [Compression::Lz4, Compression::None] {
        let mut blob = Vec::new();
        for batch in 0..200 {
            let start = batch * 10;
            blob.extend_from_slice(&ferrokafka_batch(codec, &inputs, start..start + 10, false));
        }
        let blob = Bytes::from(blob);
        println!(
            "fetch of 200 small {} batches: {} bytes, {} per batch",
            name(codec),
            blob.len(),
            blob.len() / 200
        );
        check_same_records("small batches", &blob);
        let (b1, b2, b3) = (blob.clone(), blob.clone(), blob);
        run_case(
            c,
            Case {
                name: format!("fetch_200_batches_of_10/{}", name(codec)),
                throughput: Throughput::Elements(2000),
                contenders: vec![
                    ("ferrokafka", Box::new(move || read_owned(black_box(&b1)))),
                    (
                        "ferrokafka-borrowed",
                        Box::new(move || read_borrowed(black_box(&b2))),
                    ),
                    ("kafka-protocol", Box::new(move || read_kp(black_box(&b3)))),
                ],
            },
        );
    }

    // Batch encode, every codec, from the same 1,000 records.
    let kp_input = kp_records(&inputs);
    for codec in codecs() {
        // Both encodings decode to the same records.
        let ours = ferrokafka_encode(&mut builder(codec), &inputs);
        let mut theirs = BytesMut::new();
        kp_encode(codec, &kp_input, &mut theirs);
        let theirs = theirs.freeze();
        let values = |blob: &Bytes| -> Vec<_> {
            FetchedRecords::new(blob.clone(), 0)
                .map(|r| {
                    let r = r.expect("record");
                    (r.offset, r.timestamp, r.key, r.value)
                })
                .collect()
        };
        assert_eq!(values(&ours), values(&theirs), "{codec:?} encodings differ");
        println!(
            "encode {}: ferrokafka {} bytes, kafka-protocol {} bytes",
            name(codec),
            ours.len(),
            theirs.len()
        );
        let inputs = &inputs;
        let kp_input = &kp_input;
        let mut kp_buf = BytesMut::new();
        let mut our_builder = builder(codec);
        run_case(
            c,
            Case {
                name: format!("batch_encode_1000/{}", name(codec)),
                throughput: Throughput::Elements(RECORDS as u64),
                contenders: vec![
                    (
                        "ferrokafka",
                        Box::new(move || {
                            ferrokafka_encode(&mut our_builder, black_box(inputs)).len()
                        }),
                    ),
                    (
                        "kafka-protocol",
                        Box::new(move || {
                            kp_encode(codec, black_box(kp_input), &mut kp_buf);
                            kp_buf.len()
                        }),
                    ),
                ],
            },
        );
    }

    // Messages: decode and encode of a large Metadata and a Fetch response.
    bench_message::<MetadataResponse, kafka_protocol::messages::MetadataResponse, M>(
        c,
        "metadata_response_1000_topics_x_12",
        &metadata(),
        METADATA_VERSION,
    );
    bench_message::<FetchResponse, kafka_protocol::messages::FetchResponse, M>(
        c,
        "fetch_response_256_partitions_x_64KiB",
        &fetch(&inputs),
        FETCH_VERSION,
    );
}

/// Decode and encode of one message, by both libraries, from the same bytes
/// (ferrokafka's encoding, which kafka-protocol must re-encode identically).
fn bench_message<Ours, Theirs, M>(c: &mut Criterion<M>, name: &str, message: &Ours, version: i16)
where
    Ours: Encodable + Decodable,
    Theirs: KpEncodable + KpDecodable,
    M: Measurement,
{
    let bytes = encode_ours(message, version);
    let theirs = Theirs::decode(&mut bytes.clone(), version).expect("kafka-protocol decode");
    assert_eq!(
        encode_theirs(&theirs, version),
        bytes,
        "{name}: kafka-protocol re-encodes differently"
    );
    println!("{name}: {} bytes (v{version})", bytes.len());
    let throughput = Throughput::Bytes(bytes.len() as u64);
    let (b1, b2) = (bytes.clone(), bytes.clone());
    run_case(
        c,
        Case {
            name: format!("{name}/decode"),
            throughput: throughput.clone(),
            contenders: vec![
                (
                    "ferrokafka",
                    Box::new(move || {
                        let m = Ours::decode(&mut black_box(&b1).clone(), version).expect("decode");
                        std::mem::size_of_val(&black_box(m))
                    }),
                ),
                (
                    "kafka-protocol",
                    Box::new(move || {
                        let m =
                            Theirs::decode(&mut black_box(&b2).clone(), version).expect("decode");
                        std::mem::size_of_val(&black_box(m))
                    }),
                ),
            ],
        },
    );
    let mut our_buf = BytesMut::with_capacity(bytes.len());
    let mut their_buf = BytesMut::with_capacity(bytes.len());
    let theirs = &theirs;
    run_case(
        c,
        Case {
            name: format!("{name}/encode"),
            throughput,
            contenders: vec![
                (
                    "ferrokafka",
                    Box::new(move || {
                        our_buf.clear();
                        black_box(message)
                            .encode(&mut our_buf, version)
                            .expect("encode");
                        our_buf.len()
                    }),
                ),
                (
                    "kafka-protocol",
                    Box::new(move || {
                        their_buf.clear();
                        black_box(theirs)
                            .encode(&mut their_buf, version)
                            .expect("encode");
                        their_buf.len()
                    }),
                ),
            ],
        },
    );
}

fn main() {
    cpu_clock::run_with_clock_from_env(bench, bench);
}
