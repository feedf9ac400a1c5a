//! Leader lookup on a 1,000-topic x 50-partition metadata snapshot: the
//! per-batch hot path of the producer. Counts heap allocations with a
//! counting global allocator and asserts there are none; the lookup takes no
//! lock (a hash lookup and an index into an immutable table).
//!
//! `cargo bench --bench metadata`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use ferrokafka::network::{ClientConfig, Cluster, MetadataSnapshot};
use ferrokafka::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use ferrokafka::protocol::messages::MetadataResponse;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TOPICS: usize = 1_000;
const PARTITIONS: i32 = 50;
const BROKERS: i32 = 6;

fn snapshot() -> (MetadataSnapshot, Vec<String>) {
    let names: Vec<String> = (0..TOPICS).map(|i| format!("topic-{i:04}")).collect();
    let response = MetadataResponse::default()
        .with_brokers(
            (0..BROKERS)
                .map(|id| {
                    MetadataResponseBroker::default()
                        .with_node_id(id)
                        .with_host(format!("broker-{id}"))
                        .with_port(9092)
                })
                .collect(),
        )
        .with_topics(
            names
                .iter()
                .map(|name| {
                    MetadataResponseTopic::default()
                        .with_name(Some(name.clone()))
                        .with_partitions(
                            (0..PARTITIONS)
                                .map(|p| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_leader_id(p % BROKERS)
                                        .with_leader_epoch(3)
                                        .with_replica_nodes(vec![p % BROKERS])
                                        .with_isr_nodes(vec![p % BROKERS])
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    (MetadataSnapshot::from_response(&response), names)
}

/// The lookup a producer makes per batch.
#[inline]
fn leader(snapshot: &MetadataSnapshot, topic: &str, partition: i32) -> i32 {
    snapshot
        .topic(topic)
        .and_then(|t| t.partition(partition))
        .map_or(-1, |p| p.leader_id)
}

fn bench(c: &mut Criterion) {
    let (snapshot, names) = snapshot();
    // Lookups in a scattered order, so caches do not flatter the result.
    let keys: Vec<(usize, i32)> = (0..4096usize)
        .map(|i| ((i * 7919) % TOPICS, ((i * 31) % PARTITIONS as usize) as i32))
        .collect();

    // Allocation check, outside criterion's own bookkeeping.
    let lookups = 1_000_000;
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let started = Instant::now();
    let mut sum = 0i64;
    for i in 0..lookups {
        let (t, p) = keys[i % keys.len()];
        sum += leader(&snapshot, &names[t], p) as i64;
    }
    let elapsed = started.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    black_box(sum);
    println!(
        "leader lookup, {TOPICS} topics x {PARTITIONS} partitions: {allocations} allocations in \
         {lookups} lookups, {:.1} ns/lookup (plain loop)",
        elapsed.as_nanos() as f64 / lookups as f64
    );
    assert_eq!(allocations, 0, "the leader lookup allocated");

    // Cluster::snapshot(): one atomic load and reference count, no lock.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cluster = runtime.block_on(async {
        Cluster::new(
            ClientConfig::builder()
                .bootstrap_servers(["127.0.0.1:9"])
                .build()
                .unwrap(),
        )
        .unwrap()
    });
    // arc-swap registers each thread once, on its first load.
    black_box(cluster.snapshot().generation());
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..lookups {
        black_box(cluster.snapshot().generation());
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    println!("Cluster::snapshot(): {allocations} allocations in {lookups} calls");
    assert_eq!(allocations, 0, "Cluster::snapshot allocated");

    let mut group = c.benchmark_group("metadata");
    let mut i = 0usize;
    group.bench_function("leader_lookup_1000x50", |b| {
        b.iter(|| {
            let (t, p) = keys[i % keys.len()];
            i += 1;
            black_box(leader(black_box(&snapshot), &names[t], p))
        })
    });
    group.bench_function("cluster_snapshot_load", |b| {
        b.iter(|| black_box(cluster.snapshot().generation()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
