//! LZ4 compression of one producer batch like the P100-lz4 benchmark's: a
//! 1 MB records section of 16-hex-digit keys and 100-byte values built by
//! `benchmarks/src/workload.rs` (shared here with `#[path]`), with the
//! records a 6-partition topic would put in one partition's batch.
//!
//! `lz4/frame` is what sealing a batch costs (`compression::compress`, our
//! frame writer); `lz4/lz4_flex_blocks` is `lz4_flex`'s block compressor
//! alone on the same 64 KiB blocks, for reference. Throughput counts the
//! uncompressed section's bytes. The compression ratios (compressed /
//! uncompressed) are printed once at the start.
//!
//! `FERROKAFKA_BENCH_CLOCK=cpu` measures thread CPU time instead of
//! wall-clock time (see `benches/records.rs`).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};
use ferrokafka::records::{compression, Compression, RecordBatchBuilder, RECORD_BATCH_OVERHEAD};

#[path = "support/cpu_clock.rs"]
mod cpu_clock;

#[path = "../benchmarks/src/workload.rs"]
#[allow(dead_code)]
mod workload;

/// The section size the benchmark's `batch.size` (1 MB) gives.
const SECTION_LEN: usize = 1_000_000;
const BLOCK_SIZE: usize = 64 * 1024;

/// The records section (uncompressed) of one partition's 1 MB batch.
fn batch_section() -> Vec<u8> {
    let workload = workload::workload("P100-lz4").expect("workload");
    let records = 100_000u64;
    let data = workload::Data::new(&workload, records);
    let mut builder = RecordBatchBuilder::with_capacity(Compression::None, 2 * SECTION_LEN);
    let mut appended = 0usize;
    for i in 0..records {
        // One partition of six gets a well spread sixth of the records.
        if (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 6 != 0 {
            continue;
        }
        let key = data.key(i);
        let value = data.value(i);
        builder
            .append(
                1_700_000_000_000 + i as i64 / 64,
                Some(key),
                Some(value),
                &[],
            )
            .expect("append");
        appended += key.len() + value.len() + 10;
        if appended >= SECTION_LEN {
            break;
        }
    }
    let batch = builder.finish().expect("finish");
    batch[RECORD_BATCH_OVERHEAD..].to_vec()
}

/// `lz4_flex`'s block compressor over `input` in 64 KiB blocks, into `out`
/// (sized for the worst case); returns the compressed bytes.
fn lz4_flex_blocks(input: &[u8], out: &mut [u8]) -> usize {
    let mut at = 0;
    for chunk in input.chunks(BLOCK_SIZE) {
        at += lz4_flex::block::compress_into(chunk, &mut out[at..]).expect("compress");
    }
    at
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let section = batch_section();
    let mut frame = BytesMut::new();
    compression::compress(Compression::Lz4, None, &section, &mut frame).expect("compress");
    let mut flex_out = vec![
        0u8;
        lz4_flex::block::get_maximum_output_size(BLOCK_SIZE)
            * section.len().div_ceil(BLOCK_SIZE)
    ];
    let flex_len = lz4_flex_blocks(&section, &mut flex_out);
    eprintln!(
        "lz4: {} uncompressed bytes; frame ratio {:.4}, lz4_flex blocks ratio {:.4}",
        section.len(),
        frame.len() as f64 / section.len() as f64,
        flex_len as f64 / section.len() as f64
    );
    let mut group = c.benchmark_group("lz4");
    group.throughput(Throughput::Bytes(section.len() as u64));
    group.bench_function("frame", |b| {
        b.iter(|| {
            frame.clear();
            compression::compress(Compression::Lz4, None, black_box(&section), &mut frame)
                .expect("compress");
            frame.len()
        })
    });
    group.bench_function("lz4_flex_blocks", |b| {
        b.iter(|| lz4_flex_blocks(black_box(&section), &mut flex_out))
    });
    group.finish();
}

fn main() {
    cpu_clock::run_with_clock_from_env(bench, bench);
}
