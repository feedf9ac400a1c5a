//! What each fuzz target does with its input, shared by the cargo-fuzz targets
//! in `fuzz_targets/` and by the corpus replay in the crate's test suite
//! (`tests/fuzz_replay.rs`), so both exercise exactly the same code.
//!
//! Each function must return normally for any input: a panic is a bug.

use bytes::{Bytes, BytesMut};
use ferrokafka::protocol::{
    decode_request_frame, decode_response_frame, ApiKey, DecodeError, EncodeError, Message,
    RequestKind, ResponseKind,
};

/// Picks an API and a valid version from the first two bytes, so that random
/// inputs spend their time inside real decoders rather than failing on the key.
fn api_and_version(data: &[u8]) -> Option<(ApiKey, i16, &[u8])> {
    let (&[key_byte, version_byte], rest) = data.split_first_chunk::<2>()?;
    let api = ApiKey::ALL[usize::from(key_byte) % ApiKey::ALL.len()];
    let versions = api.valid_versions();
    let span = (versions.max - versions.min + 1) as u8;
    let version = versions.min + i16::from(version_byte % span);
    Some((api, version, rest))
}

/// Input: API selector byte, version selector byte, then a response frame
/// (header and body, no size prefix). Decodes it, and if that succeeds,
/// re-encodes and decodes again, which must give the same value.
pub fn decode_response(data: &[u8]) {
    let Some((api, version, frame)) = api_and_version(data) else {
        return;
    };
    if let Ok((_header, body)) = decode_response_frame(Bytes::copy_from_slice(frame), api, version)
    {
        check_stable_reencoding(
            api,
            version,
            |buf| body.encode(buf, version),
            |bytes| {
                ResponseKind::decode(api, bytes, version)
                    .map(|again| move |buf: &mut BytesMut| again.encode(buf, version))
            },
        );
    }
    // The body alone, as the network layer decodes it after the header.
    let mut body = Bytes::copy_from_slice(frame);
    let _ = ResponseKind::decode(api, &mut body, version);
}

/// A decoded value, once re-encoded, must decode and re-encode to the same
/// bytes. (Bytes, not values, are compared: a float64 may hold NaN.)
/// `encode` writes the decoded value; `decode` reads bytes back and returns
/// how to encode what it read.
fn check_stable_reencoding<E, R>(
    api: ApiKey,
    version: i16,
    encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    decode: impl FnOnce(&mut Bytes) -> Result<R, DecodeError>,
) where
    R: FnOnce(&mut BytesMut) -> Result<(), E>,
    E: std::fmt::Debug,
{
    let mut first = BytesMut::new();
    if encode(&mut first).is_ok() {
        let first = first.freeze();
        let encode_again = decode(&mut first.clone()).expect("re-encoded value decodes");
        let mut second = BytesMut::new();
        encode_again(&mut second).expect("re-encodes");
        assert_eq!(
            first,
            second.freeze(),
            "{api:?} v{version}: re-encoding is not stable"
        );
    }
}

/// Input: API selector byte, version selector byte, then a request frame with
/// its header (the header's key and version are overwritten to the selected ones).
pub fn decode_request(data: &[u8]) {
    let Some((api, version, rest)) = api_and_version(data) else {
        return;
    };
    let mut frame = Vec::with_capacity(rest.len() + 4);
    frame.extend_from_slice(&api.key().to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(rest);
    if let Ok((header, body)) = decode_request_frame(Bytes::from(frame)) {
        assert_eq!(header.request_api_key, api.key());
        check_stable_reencoding(
            api,
            version,
            |buf| body.encode(buf, version),
            |bytes| {
                RequestKind::decode(api, bytes, version)
                    .map(|again| move |buf: &mut BytesMut| again.encode(buf, version))
            },
        );
    }
    // Header messages on their own.
    for header_version in 0..=2 {
        let _ = ferrokafka::protocol::messages::RequestHeader::from_bytes(
            Bytes::copy_from_slice(rest),
            header_version,
        );
    }
}

/// Input: a `records` blob as brokers return it in Fetch responses (any mix of
/// legacy message sets and v2 batches, possibly truncated, any codec). Every
/// batch and record is decoded, with a 1 MiB decompression limit so that
/// bombs are rejected quickly. Then, as an encode check, the input is split
/// into records, built into a batch with the codec its first byte selects,
/// and decoded back: the records must come back unchanged.
pub fn decode_records(data: &[u8]) {
    use ferrokafka::records::{
        BatchReader, Compression, ControlRecord, DecodeOptions, RecordBatchBuilder,
    };
    let options = DecodeOptions {
        max_decompressed_bytes: 1 << 20,
        ..DecodeOptions::default()
    };
    let mut reader = BatchReader::with_options(Bytes::copy_from_slice(data), options);
    for batch in reader.by_ref() {
        let Ok(batch) = batch else { break };
        let _ = (
            batch.base_offset(),
            batch.last_offset(),
            batch.next_offset(),
            batch.producer_id(),
        );
        if let Ok(records) = batch.records() {
            for record in records {
                match record {
                    Ok(record) if batch.is_control() => {
                        let _ = ControlRecord::parse(&record);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
    }
    let _ = reader.truncated_bytes();

    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let codec = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ][usize::from(selector) % 5];
    let mut builder = RecordBatchBuilder::new(codec);
    let mut expected = Vec::new();
    for (i, chunk) in rest.chunks(37).enumerate() {
        let (key, value) = chunk.split_at(chunk.len() / 3);
        let key = (i % 4 != 0).then_some(key);
        let value = (i % 5 != 1).then_some(value);
        builder
            .append(i as i64, key, value, &[("h", Some(key.unwrap_or(b"")))])
            .expect("append");
        expected.push((key.map(<[u8]>::to_vec), value.map(<[u8]>::to_vec)));
    }
    let Ok(batch) = builder.finish() else { return };
    let mut decoded = Vec::new();
    for batch in BatchReader::new(batch) {
        for record in batch
            .expect("own batch decodes")
            .records()
            .expect("own records decode")
        {
            let record = record.expect("own record decodes");
            decoded.push((
                record.key.map(|k| k.to_vec()),
                record.value.map(|v| v.to_vec()),
            ));
        }
    }
    assert_eq!(decoded, expected, "{codec:?} batch round trip");
}

/// Input: a fetch offset byte, an aborted-transaction count byte (0-3) and
/// two bytes per aborted transaction (producer id 0-3, first offset), then
/// a `records` blob as in [`decode_records`]. Reads it as a read_committed
/// consumer does ([`FetchedRecords`](ferrokafka::records::FetchedRecords))
/// and checks what a consumer relies on: records come in strictly
/// increasing offsets, none below the fetch offset, and the next position
/// never moves back and ends past every record handed out.
pub fn fetched_records(data: &[u8]) {
    use ferrokafka::records::{AbortedTransaction, DecodeOptions, FetchedRecords};
    let Some((&[offset_byte, count_byte], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let count = usize::from(count_byte % 4);
    if rest.len() < 2 * count {
        return;
    }
    let (aborted, blob) = rest.split_at(2 * count);
    let aborted = aborted
        .chunks(2)
        .map(|pair| AbortedTransaction::new(i64::from(pair[0] % 4), i64::from(pair[1])))
        .collect::<Vec<_>>();
    let fetch_offset = i64::from(offset_byte);
    let options = DecodeOptions {
        max_decompressed_bytes: 1 << 20,
        ..DecodeOptions::default()
    };
    let blob = Bytes::copy_from_slice(blob);
    // The borrowed walk (`next_ref`) must hand out exactly the records, errors
    // and positions the owned walk does.
    let mut owned = FetchedRecords::with_options(blob.clone(), fetch_offset, options)
        .read_committed(aborted.clone());
    let mut borrowed = FetchedRecords::with_options(blob.clone(), fetch_offset, options)
        .read_committed(aborted.clone());
    loop {
        let a = owned.next().map(|r| r.map_err(|e| e.to_string()));
        let b = borrowed
            .next_ref()
            .map(|r| r.map(|r| r.to_record()).map_err(|e| e.to_string()));
        assert_eq!(a, b, "owned and borrowed records differ");
        assert_eq!(
            owned.next_offset(),
            borrowed.next_offset(),
            "positions differ"
        );
        if a.is_none() {
            break;
        }
    }
    let mut fetched =
        FetchedRecords::with_options(blob, fetch_offset, options).read_committed(aborted);
    let mut last: Option<i64> = None;
    let mut position = fetched.next_offset();
    while let Some(record) = fetched.next() {
        let Ok(record) = record else { break };
        assert!(
            record.offset >= fetch_offset,
            "record below the fetch offset"
        );
        if let Some(last) = last {
            assert!(record.offset > last, "offsets not increasing");
        }
        last = Some(record.offset);
        assert!(
            fetched.next_offset() > record.offset,
            "position behind a record"
        );
        assert!(fetched.next_offset() >= position, "position moved back");
        position = fetched.next_offset();
    }
    assert!(fetched.next_offset() >= position, "position moved back");
}

/// Input: a recipe for data with many repeats: a byte below 0x80 is a
/// literal; a byte `b` at or above it copies `(b & 0x7f) + 1` bytes from
/// `d + 1` bytes back, `d` being the next byte (copies may overlap, like a
/// run). The result (up to 150 KB, so up to three 64 KiB LZ4 blocks) must
/// compress with LZ4 and decompress to itself, through ours and through
/// `lz4_flex`'s frame decoder.
pub fn lz4_round_trip(data: &[u8]) {
    use ferrokafka::records::compression::{compress, decompress};
    use ferrokafka::records::Compression;
    const MAX: usize = 150_000;
    let mut plain: Vec<u8> = Vec::new();
    let mut bytes = data.iter().copied();
    while let Some(b) = bytes.next() {
        if plain.len() >= MAX {
            break;
        }
        if b < 0x80 {
            plain.push(b);
            continue;
        }
        let distance = usize::from(bytes.next().unwrap_or(0)) + 1;
        if distance > plain.len() {
            plain.push(b);
            continue;
        }
        for _ in 0..=usize::from(b & 0x7f) {
            plain.push(plain[plain.len() - distance]);
        }
    }
    // Long inputs also repeat themselves whole, far back.
    if data.len() > 64 && plain.len() < MAX / 2 {
        plain.extend_from_within(..);
    }
    let mut frame = BytesMut::new();
    compress(Compression::Lz4, None, &plain, &mut frame).expect("lz4 compresses");
    let back = decompress(Compression::Lz4, &frame, MAX * 2).expect("own lz4 frame decodes");
    assert!(back[..] == plain[..], "lz4 round trip");
    let mut via_flex = Vec::new();
    std::io::Read::read_to_end(
        &mut lz4_flex::frame::FrameDecoder::new(&frame[..]),
        &mut via_flex,
    )
    .expect("lz4_flex decodes our frame");
    assert!(via_flex == plain, "lz4 round trip through lz4_flex");
}
