//! An LZ4 block compressor (LZ4's fast mode), in safe Rust.
//!
//! It writes the standard LZ4 block format, so every LZ4 decoder reads its
//! output. The producer compresses every lz4 batch with it, once, when the
//! batch is sealed. It compresses independent blocks of at most 64 KiB (the
//! frame writer's block size): positions then fit in 16 bits and every
//! earlier position is within a match offset's reach.
//!
//! The search is LZ4's greedy single probe: one hash table entry per four
//! bytes, the most recent position wins, and the step grows after many
//! misses. It starts with a step of 2 (LZ4's acceleration 2) and recovers a
//! match start it stepped over by extending matches backwards. On the
//! producer benchmark's records (`benches/lz4.rs`) that costs about 1% of
//! compression ratio against acceleration 1 (0.580 against 0.574; lz4_flex
//! writes 0.579) for about 15% more speed: there, most of the time goes to
//! the ~60 sequences per KiB, each with its unpredictable branches, rather
//! than to probing literals.
//!
//! So the per-sequence path is kept short. Each table entry holds a
//! position and a 16-bit tag of the four bytes there, so a probe that misses
//! is settled by the table load alone, without loading the candidate's
//! bytes; and the position right after a match is probed at once, since
//! most matches on such data follow another without literals between them.
//!
//! Format rules the encoder keeps (from the LZ4 block format): a match is at
//! least 4 bytes; the last 5 bytes of a block are literals; no match starts
//! within the last 12 bytes; a block shorter than 13 bytes is all literals.

/// The shortest match the format encodes (match lengths are stored minus 4).
const MIN_MATCH: usize = 4;
/// The last bytes of a block are always literals.
const LAST_LITERALS: usize = 5;
/// No match may start within this many bytes of the end of a block.
const MATCH_START_MARGIN: usize = 12;
/// The largest block this encoder takes: positions fit in `u16` and every
/// earlier position is within the 65535-byte offset limit of the format.
pub(super) const MAX_BLOCK_LEN: usize = 64 * 1024;

/// 8192 entries of `u32` (32 KiB).
const HASH_LOG: u32 = 13;
const TABLE_LEN: usize = 1 << HASH_LOG;
/// After `1 << SKIP_TRIGGER` consecutive misses the search step grows by
/// one byte (as in LZ4).
const SKIP_TRIGGER: u32 = 6;
/// The search's first step (LZ4's acceleration): 1 probes every position.
const ACCELERATION: u32 = 2;
/// Literal runs up to this long are copied with one fixed-size copy (longer
/// ones with a second copy).
const SHORT_COPY: usize = 32;

/// The most bytes a block of `input_len` bytes compresses to (a block of
/// literals only, plus its length bytes).
pub(super) const fn max_compressed_len(input_len: usize) -> usize {
    input_len + input_len / 255 + 16
}

/// A block compressor; its hash table is reused from block to block.
pub(super) struct BlockCompressor {
    /// Under each hash of four bytes, the last position (within the current
    /// block) indexed there, and the hash's tag: [`entry`].
    table: [u32; TABLE_LEN],
}

impl BlockCompressor {
    pub(super) fn new() -> Self {
        BlockCompressor {
            table: [0; TABLE_LEN],
        }
    }

    /// Compresses `input` (at most [`MAX_BLOCK_LEN`] bytes) as one
    /// independent LZ4 block into the start of `out`, and returns its
    /// length.
    ///
    /// # Panics
    /// If `input` is longer than [`MAX_BLOCK_LEN`] or `out` is shorter than
    /// [`max_compressed_len`]`(input.len())`: both are the caller's sizing,
    /// never the data's.
    pub(super) fn compress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        assert!(input.len() <= MAX_BLOCK_LEN, "LZ4 block input too long");
        assert!(
            out.len() >= max_compressed_len(input.len()),
            "LZ4 block output buffer too small"
        );
        let mut op = 0;
        let mut anchor = 0;
        if input.len() > MATCH_START_MARGIN {
            let table = &mut self.table;
            table.fill(0);
            // Matches start at or before `last_match_start` and end at or
            // before `match_limit`.
            let last_match_start = input.len() - MATCH_START_MARGIN;
            let match_limit = input.len() - LAST_LITERALS;
            // The search starts at 1, after indexing 0.
            let first = hash(read_u32(input, 0));
            table[slot(first)] = entry(0, first);
            let mut ip = 1usize;
            'block: loop {
                // Search for a match from `ip`, stepping further after many
                // misses.
                let mut misses = ACCELERATION << SKIP_TRIGGER;
                let (mut start, mut candidate, mut len) = loop {
                    if ip > last_match_start {
                        break 'block;
                    }
                    if let Some((candidate, len)) = probe(table, input, ip, match_limit) {
                        break (ip, candidate, len);
                    }
                    ip += (misses >> SKIP_TRIGGER) as usize;
                    misses += 1;
                };
                // Every indexed position is below the current one.
                debug_assert!(candidate < start);
                // Extend backwards over literals not yet written.
                while start > anchor && candidate > 0 && input[start - 1] == input[candidate - 1] {
                    start -= 1;
                    candidate -= 1;
                    len += 1;
                }
                op = write_sequence(out, op, input, anchor, start, start - candidate, len);
                loop {
                    anchor = start + len;
                    ip = anchor;
                    if ip > last_match_start {
                        break 'block;
                    }
                    // Index a position inside the match; the search goes on
                    // at its end.
                    let inside = ip - 2;
                    let hashed = hash(read_u32(input, inside));
                    table[slot(hashed)] = entry(inside, hashed);
                    // Another match right at the end of this one needs no
                    // literals: it is written here, without the search loop
                    // and the literals' work. Otherwise the search goes on
                    // one step further, as it would have from the loop.
                    let Some((candidate, next_len)) = probe(table, input, ip, match_limit) else {
                        ip += ACCELERATION as usize;
                        break;
                    };
                    start = ip;
                    len = next_len;
                    op = write_match(out, op, start - candidate, len);
                }
            }
        }
        // The last sequence: literals only.
        let literals = input.len() - anchor;
        let token_at = op;
        op = write_length_extension(out, op + 1, literals);
        op = copy_literals(out, op, input, anchor, literals);
        out[token_at] = (literals.min(15) << 4) as u8;
        op
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The hash of four bytes (Knuth's multiplicative hash). Multiplying by an
/// odd number is a bijection: the hash's bits identify the four bytes.
fn hash(sequence: u32) -> u32 {
    sequence.wrapping_mul(2_654_435_761)
}

/// The table slot of a hash: its top bits.
fn slot(hashed: u32) -> usize {
    (hashed >> (32 - HASH_LOG)) as usize
}

/// A table entry: the position in the high 16 bits, the hash's low 16 bits
/// (its tag) in the low 16. The slot and the tag together fix 29 of the
/// hash's 32 bits, so an entry whose tag matches nearly always holds the
/// same four bytes: a probe that misses is settled without loading the
/// candidate's bytes. The bytes are still compared before a match is taken
/// (for the 3 bits left, and for the zeroed table's entries, which claim
/// position 0).
fn entry(position: usize, hashed: u32) -> u32 {
    (position as u32) << 16 | (hashed & 0xFFFF)
}

/// Indexes position `ip`; if the earlier position last indexed under the
/// same hash starts a match with `ip` (of at least [`MIN_MATCH`] bytes,
/// ending before `limit`), returns that position and the match's length.
#[inline(always)]
fn probe(
    table: &mut [u32; TABLE_LEN],
    input: &[u8],
    ip: usize,
    limit: usize,
) -> Option<(usize, usize)> {
    let sequence = read_u32(input, ip);
    let hashed = hash(sequence);
    let cell = &mut table[slot(hashed)];
    let old = *cell;
    *cell = entry(ip, hashed);
    if (old ^ hashed) & 0xFFFF != 0 {
        return None;
    }
    let candidate = (old >> 16) as usize;
    // The bytes are compared by measuring the match at once: no separate
    // comparison of the first four.
    let len = match_len(input, ip, candidate, limit);
    (len >= MIN_MATCH).then_some((candidate, len))
}

/// Writes at `op` one sequence: the literals `input[anchor..start]`, then a
/// match of `len` bytes `offset` bytes back. Returns the new output end.
#[inline(always)]
fn write_sequence(
    out: &mut [u8],
    op: usize,
    input: &[u8],
    anchor: usize,
    start: usize,
    offset: usize,
    len: usize,
) -> usize {
    let literals = start - anchor;
    let match_code = len - MIN_MATCH;
    out[op] = (literals.min(15) << 4 | match_code.min(15)) as u8;
    let mut op = write_length_extension(out, op + 1, literals);
    op = copy_literals(out, op, input, anchor, literals);
    write_offset_and_length(out, op, offset, match_code)
}

/// Writes at `op` a sequence without literals: a match of `len` bytes
/// `offset` bytes back. Returns the new output end.
#[inline(always)]
fn write_match(out: &mut [u8], op: usize, offset: usize, len: usize) -> usize {
    let match_code = len - MIN_MATCH;
    out[op] = match_code.min(15) as u8;
    write_offset_and_length(out, op + 1, offset, match_code)
}

/// Writes at `op` a sequence's match part after its token and literals:
/// the offset, then the match length's extension bytes.
#[inline(always)]
fn write_offset_and_length(out: &mut [u8], op: usize, offset: usize, match_code: usize) -> usize {
    out[op..op + 2].copy_from_slice(&(offset as u16).to_le_bytes());
    write_length_extension(out, op + 2, match_code)
}

/// Writes at `op` the bytes that follow a token's 4-bit length field of 15
/// (none for shorter lengths); returns the new output end.
#[inline(always)]
fn write_length_extension(out: &mut [u8], mut op: usize, len: usize) -> usize {
    if len >= 15 + 255 {
        let mut rest = len - 15;
        while rest >= 255 {
            out[op] = 255;
            op += 1;
            rest -= 255;
        }
        out[op] = rest as u8;
        return op + 1;
    }
    // Without a branch: a length under 15 leaves a byte that the next
    // write overwrites.
    out[op] = len.wrapping_sub(15) as u8;
    op + usize::from(len >= 15)
}

/// Copies the `len` literals at `input[from..]` to `out[op..]`; returns the
/// new output end.
#[inline(always)]
fn copy_literals(out: &mut [u8], op: usize, input: &[u8], from: usize, len: usize) -> usize {
    if from + SHORT_COPY <= input.len() && op + SHORT_COPY <= out.len() {
        // One fixed-size copy; the bytes past `len` are overwritten next.
        out[op..op + SHORT_COPY].copy_from_slice(&input[from..from + SHORT_COPY]);
        if len > SHORT_COPY {
            out[op + SHORT_COPY..op + len].copy_from_slice(&input[from + SHORT_COPY..from + len]);
        }
    } else {
        out[op..op + len].copy_from_slice(&input[from..from + len]);
    }
    op + len
}

/// How many bytes from `at` equal those from `earlier`, not counting bytes
/// at or past `limit`.
#[inline(always)]
fn match_len(input: &[u8], mut at: usize, mut earlier: usize, limit: usize) -> usize {
    let begin = at;
    // Most matches end within 16 bytes: settle those with one branch
    // (and none on which of the two words ends the match, which is
    // unpredictable).
    if at + 16 <= limit {
        let first = read_u64(input, at) ^ read_u64(input, earlier);
        let second = read_u64(input, at + 8) ^ read_u64(input, earlier + 8);
        let len = (u128::from(second) << 64 | u128::from(first)).trailing_zeros() / 8;
        if len < 16 {
            return len as usize;
        }
        at += 16;
        earlier += 16;
    }
    while at + 8 <= limit {
        let diff = read_u64(input, at) ^ read_u64(input, earlier);
        if diff != 0 {
            return at - begin + (diff.trailing_zeros() / 8) as usize;
        }
        at += 8;
        earlier += 8;
    }
    while at < limit && input[at] == input[earlier] {
        at += 1;
        earlier += 1;
    }
    at - begin
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// xorshift64: deterministic test data (also for the frame's tests).
    pub(in crate::records::compression) struct Rng(pub u64);
    impl Rng {
        pub(in crate::records::compression) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    /// Records like the producer benchmark's: a 16-hex-digit key, then a
    /// value of words mixed with random 8-byte chunks, with a little framing.
    fn records_like(len: usize, seed: u64) -> Vec<u8> {
        let words: [&[u8]; 6] = [
            b"order ",
            b"customer ",
            b"amount ",
            b"currency EUR ",
            b"status shipped ",
            b"{\"id\": ",
        ];
        let mut rng = Rng(seed);
        let mut out = Vec::with_capacity(len + 128);
        while out.len() < len {
            out.extend_from_slice(&[0xf6, 0x01, 0x00, (out.len() / 128) as u8, 0x20]);
            out.extend_from_slice(format!("{:016x}", rng.next()).as_bytes());
            let value_end = out.len() + 100;
            while out.len() < value_end {
                let r = rng.next();
                if r % 3 == 0 {
                    out.extend_from_slice(&r.to_le_bytes());
                } else {
                    out.extend_from_slice(words[(r >> 8) as usize % words.len()]);
                }
            }
            out.truncate(value_end);
            out.push(0);
        }
        out.truncate(len);
        out
    }

    /// Decodes a block, checking every rule of the LZ4 block format the
    /// encoder must keep (an independent reference decoder).
    fn decode_checked(block: &[u8], expected_len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(expected_len);
        let mut at = 0;
        let length = |at: &mut usize, mut len: usize| {
            if len == 15 {
                loop {
                    let byte = block[*at];
                    *at += 1;
                    len += usize::from(byte);
                    if byte != 255 {
                        break;
                    }
                }
            }
            len
        };
        loop {
            let token = block[at];
            at += 1;
            let literals = length(&mut at, usize::from(token >> 4));
            out.extend_from_slice(&block[at..at + literals]);
            at += literals;
            if at == block.len() {
                break;
            }
            let offset = usize::from(u16::from_le_bytes([block[at], block[at + 1]]));
            at += 2;
            let len = length(&mut at, usize::from(token & 15)) + MIN_MATCH;
            assert!(
                offset >= 1 && offset <= out.len(),
                "offset {offset} at {}",
                out.len()
            );
            assert!(
                out.len() + MATCH_START_MARGIN <= expected_len,
                "a match starts at {} of {expected_len}",
                out.len()
            );
            for _ in 0..len {
                out.push(out[out.len() - offset]);
            }
            assert!(
                out.len() + LAST_LITERALS <= expected_len,
                "a match ends at {} of {expected_len}",
                out.len()
            );
        }
        out
    }

    /// Compresses `input` with `compressor`; checks the block against the
    /// format rules, the size bound and both decoders; returns its length.
    fn round_trip_with(compressor: &mut BlockCompressor, input: &[u8]) -> usize {
        let mut out = vec![0xAA; max_compressed_len(input.len())];
        let len = compressor.compress(input, &mut out);
        let block = &out[..len];
        assert_eq!(decode_checked(block, input.len()), input);
        let via_flex = lz4_flex::block::decompress(block, input.len()).expect("lz4_flex decodes");
        assert_eq!(via_flex, input);
        len
    }

    fn round_trip(input: &[u8]) -> usize {
        round_trip_with(&mut BlockCompressor::new(), input)
    }

    #[test]
    fn empty_and_tiny_blocks_round_trip() {
        assert_eq!(round_trip(b""), 1);
        for len in 1..=20 {
            round_trip(&vec![b'z'; len]);
            round_trip(&(0..len as u8).collect::<Vec<_>>());
            round_trip(&b"abcabcabcabcabcabcabcabc"[..len]);
        }
        // Under 13 bytes there can be no match: one literal run.
        assert_eq!(round_trip(&[7u8; 12]), 13);
        assert!(round_trip(&[7u8; 13]) < 13);
    }

    #[test]
    fn incompressible_blocks_stay_within_the_bound() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for len in [15, 16, 269, 270, 271, 525, 4096, 65_535, MAX_BLOCK_LEN] {
            let noise = rng.bytes(len);
            let compressed = round_trip(&noise);
            assert!(compressed <= max_compressed_len(len), "{len}: {compressed}");
        }
    }

    #[test]
    fn runs_and_overlapping_matches_round_trip() {
        for period in 1..=9 {
            let pattern: Vec<u8> = (0..period).map(|i| b'a' + i as u8).collect();
            for len in [13, 14, 17, 64, 300, 5000, MAX_BLOCK_LEN] {
                let input: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
                let compressed = round_trip(&input);
                if len >= 300 {
                    assert!(
                        compressed < 20 + len / 200,
                        "period {period} len {len}: {compressed}"
                    );
                }
            }
        }
        // Long literal runs and long matches need several length bytes.
        let mut rng = Rng(99);
        let mut input = rng.bytes(1000);
        input.extend_from_within(..);
        input.extend(std::iter::repeat_n(0u8, 3000));
        input.extend(rng.bytes(600));
        round_trip(&input);
    }

    #[test]
    fn realistic_blocks_compress_like_lz4_flex() {
        let mut ours = 0;
        let mut reference = 0;
        let mut compressor = BlockCompressor::new();
        for seed in 1..=8 {
            let input = records_like(MAX_BLOCK_LEN, seed);
            ours += round_trip_with(&mut compressor, &input);
            reference += lz4_flex::block::compress(&input).len();
        }
        // Not a speed test: the ratio must stay that of a standard fast LZ4.
        let ratio = ours as f64 / reference as f64;
        assert!(ratio < 1.02, "{ours} bytes against lz4_flex's {reference}");
        assert!(ours < 8 * MAX_BLOCK_LEN * 3 / 4, "{ours}");
    }

    #[test]
    fn sizes_around_the_block_limit_round_trip() {
        for len in [MAX_BLOCK_LEN - 13, MAX_BLOCK_LEN - 1, MAX_BLOCK_LEN] {
            round_trip(&records_like(len, len as u64));
            let mut tail_match = records_like(len - 40, 3);
            tail_match.extend_from_within(100..140);
            round_trip(&tail_match);
        }
    }

    #[test]
    fn a_reused_compressor_writes_what_a_fresh_one_does() {
        let mut reused = BlockCompressor::new();
        let inputs = [
            records_like(MAX_BLOCK_LEN, 5),
            records_like(30_000, 6),
            vec![0; 20_000],
            records_like(MAX_BLOCK_LEN, 5),
        ];
        for input in &inputs {
            let mut a = vec![0; max_compressed_len(input.len())];
            let mut b = a.clone();
            let a_len = reused.compress(input, &mut a);
            let b_len = BlockCompressor::new().compress(input, &mut b);
            assert_eq!(a[..a_len], b[..b_len]);
        }
    }

    #[test]
    fn random_small_alphabet_inputs_round_trip() {
        let mut rng = Rng(0xfeed_f00d);
        for _ in 0..1500 {
            let len = (rng.next() % 3000) as usize;
            let alphabet = 1 + rng.next() % 6;
            let input: Vec<u8> = (0..len).map(|_| (rng.next() % alphabet) as u8).collect();
            round_trip(&input);
        }
    }

    /// The literal-run length of every sequence of a block, in order.
    fn literal_runs(block: &[u8]) -> Vec<usize> {
        let mut runs = Vec::new();
        let mut at = 0;
        let extension = |at: &mut usize| loop {
            let byte = block[*at];
            *at += 1;
            if byte != 255 {
                break;
            }
        };
        loop {
            let token = block[at];
            at += 1;
            let mut literals = usize::from(token >> 4);
            if literals == 15 {
                let before = at;
                extension(&mut at);
                literals += block[before..at]
                    .iter()
                    .map(|&b| usize::from(b))
                    .sum::<usize>();
            }
            runs.push(literals);
            at += literals;
            if at == block.len() {
                return runs;
            }
            at += 2;
            if token & 15 == 15 {
                extension(&mut at);
            }
        }
    }

    #[test]
    fn matches_that_follow_each_other_need_no_literals() {
        // Words seen before, in new orders: after the first of each, every
        // match starts where the previous one ends.
        let words: [&[u8]; 4] = [b"alpha ", b"bravo-", b"charlie_", b"delta+"];
        let mut rng = Rng(7);
        let mut input = Vec::new();
        while input.len() < 20_000 {
            input.extend_from_slice(words[rng.next() as usize % words.len()]);
        }
        let mut out = vec![0; max_compressed_len(input.len())];
        let len = BlockCompressor::new().compress(&input, &mut out);
        assert_eq!(decode_checked(&out[..len], input.len()), input);
        let runs = literal_runs(&out[..len]);
        let without = runs.iter().filter(|&&run| run == 0).count();
        assert!(without * 10 > runs.len() * 9, "{without} of {}", runs.len());
    }

    /// The multiplicative hash's inverse: the four bytes whose hash is
    /// `hashed`.
    fn unhash(hashed: u32) -> u32 {
        // Newton's iteration for the inverse of an odd number modulo 2^32.
        let factor = hash(1);
        let mut inverse = factor;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u32.wrapping_sub(factor.wrapping_mul(inverse)));
        }
        hashed.wrapping_mul(inverse)
    }

    #[test]
    fn an_entry_whose_tag_matches_other_bytes_is_no_match() {
        // Pairs of different four bytes with the same slot and tag (their
        // hashes differ in a bit that neither keeps), each pair close
        // together at every alignment of the search: taking the table's word
        // for it would copy the wrong bytes.
        let mut rng = Rng(0x5eed);
        for gap in 0..8 {
            let mut input = rng.bytes(1);
            for _ in 0..200 {
                let first = rng.next() as u32;
                let second = unhash(hash(first) ^ (1 << 16));
                assert_ne!(first, second);
                assert_eq!(slot(hash(first)), slot(hash(second)));
                assert_eq!(entry(0, hash(first)), entry(0, hash(second)));
                input.extend_from_slice(&first.to_le_bytes());
                input.extend(rng.bytes(gap));
                input.extend_from_slice(&second.to_le_bytes());
                input.extend(rng.bytes(3));
            }
            round_trip(&input);
        }
    }

    #[test]
    #[should_panic(expected = "too small")]
    fn an_undersized_output_buffer_is_refused() {
        let mut out = vec![0; 10];
        BlockCompressor::new().compress(&[1; 10], &mut out);
    }
}
