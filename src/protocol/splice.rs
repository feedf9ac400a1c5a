//! Frames that reference large byte strings instead of copying them.
//!
//! A Produce request carries record batches the producer already encoded;
//! copying each into the request frame only to write the frame to the
//! socket costs a pass over every byte produced. While
//! [`encode_request_frame_spliced`](super::frame::encode_request_frame_spliced)
//! encodes a request on this thread, the generated encoders offer every
//! nullable byte string they write (`put_nullable_bytes`) to [`offer`]: one
//! that is, by address and length, one of the payloads the caller passed is
//! noted at its offset in the frame and not copied. The frame then goes out
//! as the bytes encoded around the payloads with the payloads in between.

use std::cell::RefCell;

use bytes::Bytes;

/// Shorter byte strings are copied: splicing them would cost more (one
/// more part to write) than it saves.
pub const SPLICE_MIN: usize = 512;

/// The payloads of the encoding under way, and where those met so far go.
struct Splicing {
    payloads: Vec<Bytes>,
    /// Payloads before this index were met (they are met in order).
    next: usize,
    /// `(offset in the encoded bytes, payload)`, ascending.
    points: Vec<(usize, Bytes)>,
}

thread_local! {
    static SPLICING: RefCell<Option<Splicing>> = const { RefCell::new(None) };
}

/// Runs `encode` with `payloads` offered for splicing; returns its result
/// and the splice points it left, ascending by offset.
pub(super) fn with_payloads<T>(
    payloads: &[Bytes],
    encode: impl FnOnce() -> T,
) -> (T, Vec<(usize, Bytes)>) {
    let previous = SPLICING.with(|s| {
        s.borrow_mut().replace(Splicing {
            payloads: payloads.to_vec(),
            next: 0,
            points: Vec::with_capacity(payloads.len()),
        })
    });
    let result = encode();
    let splicing = SPLICING.with(|s| std::mem::replace(&mut *s.borrow_mut(), previous));
    (result, splicing.map(|s| s.points).unwrap_or_default())
}

/// Called by the encoder before it copies `value` at `offset` of its
/// buffer: `true` when `value` is one of the payloads being spliced (then
/// the encoder writes nothing for it).
pub(crate) fn offer(offset: usize, value: &[u8]) -> bool {
    if value.len() < SPLICE_MIN {
        return false;
    }
    SPLICING.with(|s| {
        let mut guard = s.borrow_mut();
        let Some(splicing) = guard.as_mut() else {
            return false;
        };
        let found = splicing.payloads[splicing.next..]
            .iter()
            .position(|p| p.as_ptr() == value.as_ptr() && p.len() == value.len());
        match found {
            Some(i) => {
                let index = splicing.next + i;
                splicing.next = index + 1;
                let payload = splicing.payloads[index].clone();
                splicing.points.push((offset, payload));
                true
            }
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use crate::protocol::frame::encode_request_frame_spliced;
    use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use crate::protocol::messages::ProduceRequest;
    use crate::protocol::{decode_request_frame, encode_request_frame, RequestKind};

    fn request(batches: &[Bytes]) -> ProduceRequest {
        let partitions = batches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                PartitionProduceData::default()
                    .with_index(i as i32)
                    .with_records(Some(b.clone()))
            })
            .collect();
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name("orders".into())
                .with_partition_data(partitions)])
    }

    #[test]
    fn a_spliced_frame_is_the_copied_frame_with_large_payloads_referenced() {
        let large = Bytes::from((0..5000u32).map(|i| i as u8).collect::<Vec<_>>());
        let small = Bytes::from(vec![9u8; 100]);
        let other = Bytes::from(vec![3u8; 2000]);
        let batches = [large.clone(), small.clone(), other.clone()];
        let request = request(&batches);
        // Flexible (9) and non-flexible (3) length prefixes.
        for version in [3, 9] {
            let parts =
                encode_request_frame_spliced(11, Some("app"), version, &request, &batches).unwrap();
            let mut whole = BytesMut::new();
            encode_request_frame(&mut whole, 11, Some("app"), version, &request).unwrap();
            assert_eq!(parts.concat(), whole.to_vec(), "version {version}");
            for spliced in [&large, &other] {
                assert!(
                    parts.iter().any(|p| p.as_ptr() == spliced.as_ptr()),
                    "a large payload is a part of its own"
                );
            }
            assert!(
                parts.iter().all(|p| p.as_ptr() != small.as_ptr()),
                "a small payload is copied"
            );
            let frame = Bytes::from(parts.concat()).slice(4..);
            let (_, body) = decode_request_frame(frame).unwrap();
            let RequestKind::Produce(decoded) = body else {
                panic!("not a produce request")
            };
            assert_eq!(decoded, request);
        }
    }

    #[test]
    fn only_the_given_payloads_are_spliced_and_only_while_encoding() {
        let large = Bytes::from(vec![1u8; 4096]);
        let request = request(std::slice::from_ref(&large));
        // A payload the request does not hold (same contents, other buffer).
        let lookalike = Bytes::from(vec![1u8; 4096]);
        let parts =
            encode_request_frame_spliced(1, None, 9, &request, std::slice::from_ref(&lookalike))
                .unwrap();
        assert_eq!(parts.len(), 1, "nothing spliced: one copied buffer");
        assert!(!super::offer(0, &large), "no splicing outside an encoding");
    }
}
