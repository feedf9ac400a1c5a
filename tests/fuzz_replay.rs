//! Runs the fuzz harnesses on stable Rust in every test run: first the
//! committed seed corpus (and any crash reproducers saved in it), then a
//! bounded pass of random and mutated inputs. Any panic fails the test.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("decode_response", harness::decode_response),
    ("decode_request", harness::decode_request),
    ("decode_records", harness::decode_records),
    ("fetched_records", harness::fetched_records),
    ("lz4_round_trip", harness::lz4_round_trip),
];

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn seed_corpus_replays_without_panics() {
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        assert!(
            inputs.len() > 100,
            "{name}: corpus has only {} inputs",
            inputs.len()
        );
        for input in &inputs {
            target(input);
        }
    }
}

/// xorshift64*: deterministic, so a failure reproduces from the printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.truncate(rng.below(out.len() + 1)),
            2 if out.len() > 6 => {
                let i = 2 + rng.below(out.len() - 6);
                let hostile: &[u8] = match rng.below(3) {
                    0 => &[0xff, 0xff, 0xff, 0xff],
                    1 => &[0x7f, 0xff, 0xff, 0xff],
                    _ => &[0x80, 0x80, 0x80, 0x80],
                };
                out[i..i + 4].copy_from_slice(hostile);
            }
            3 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            _ => {
                let len = rng.below(96);
                out = (0..len).map(|_| rng.next() as u8).collect();
            }
        }
    }
    out
}

#[test]
fn bounded_random_pass_without_panics() {
    let seed = std::env::var("FERROKAFKA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C0_FFEE_u64);
    let iterations: usize = std::env::var("FERROKAFKA_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000);
    println!("random pass: seed {seed}, {iterations} inputs per target");
    let mut rng = Rng(seed | 1);
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        // An lz4 input expands to up to 150 KB of data to compress and
        // decompress twice: a tenth of the inputs keeps this pass short.
        let iterations = if *name == "lz4_round_trip" {
            iterations / 10
        } else {
            iterations
        };
        for _ in 0..iterations {
            let base = &inputs[rng.below(inputs.len())];
            let input = mutate(&mut rng, base);
            target(&input);
        }
    }
}
