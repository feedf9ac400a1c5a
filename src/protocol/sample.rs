//! Random values valid for a given version, for the generated round-trip tests.

use bytes::Bytes;

use super::{Message, UnknownTaggedField, Uuid};

/// A small deterministic PRNG (xorshift64*), so failures reproduce from a seed.
pub(crate) struct SampleRng(u64);

impl SampleRng {
    pub(crate) fn new(seed: u64) -> Self {
        SampleRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }

    pub(crate) fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 1e6 - 5e5
    }

    pub(crate) fn uuid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.next(), self.next())
    }

    pub(crate) fn string(&mut self) -> String {
        const ALPHABET: &[&str] = &["a", "b", "Z", "0", "-", "_", ".", "é", "💡", " "];
        let len = self.below(7) as usize;
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize])
            .collect()
    }

    pub(crate) fn bytes(&mut self) -> Bytes {
        let len = self.below(9) as usize;
        (0..len)
            .map(|_| self.next() as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    pub(crate) fn vec<T>(&mut self, mut element: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let len = self.below(4) as usize;
        (0..len).map(|_| element(self)).collect()
    }

    /// Tagged fields no spec uses (tags from 10 000 up, ascending, as on the wire).
    pub(crate) fn unknown_tagged_fields(&mut self) -> Vec<UnknownTaggedField> {
        if !self.one_in(3) {
            return Vec::new();
        }
        let mut tag = 10_000;
        self.vec(|rng| {
            tag += 1 + rng.below(100) as u32;
            UnknownTaggedField {
                tag,
                data: rng.bytes(),
            }
        })
    }
}

/// Builds a random value that only sets fields present in `version`.
pub(crate) trait Sample {
    fn sample(rng: &mut SampleRng, version: i16) -> Self;
}

/// Encodes a random `T`, decodes it, and checks that the value and the
/// re-encoded bytes are identical.
pub(crate) fn round_trip<T: Message + Sample>(
    rng: &mut SampleRng,
    version: i16,
) -> Result<(), String> {
    let value = T::sample(rng, version);
    let encoded = value
        .to_bytes(version)
        .map_err(|e| format!("{} v{version}: encode failed: {e}", T::NAME))?;
    if value.encoded_len(version) != encoded.len() {
        return Err(format!(
            "{} v{version}: encoded_len {} but encode wrote {} bytes",
            T::NAME,
            value.encoded_len(version),
            encoded.len()
        ));
    }
    let decoded = T::from_bytes(encoded.clone(), version)
        .map_err(|e| format!("{} v{version}: decode failed: {e}\n{value:#?}", T::NAME))?;
    if decoded != value {
        return Err(format!(
            "{} v{version}: decoded value differs\nsent: {value:#?}\ngot: {decoded:#?}",
            T::NAME
        ));
    }
    let again = decoded
        .to_bytes(version)
        .map_err(|e| format!("{} v{version}: re-encode failed: {e}", T::NAME))?;
    if again != encoded {
        return Err(format!("{} v{version}: re-encoded bytes differ", T::NAME));
    }
    Ok(())
}
