//! Tests of the records layer as a whole: round trips, known answers, legacy
//! formats hand-built from their description, truncation and hostile input.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::records::batch::{
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, RECORD_BATCH_OVERHEAD,
};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn enabled_codecs() -> impl Iterator<Item = Compression> {
    CODECS.into_iter().filter(|c| c.is_enabled())
}

/// Bit-at-a-time reflected CRC, independent of the crates and tables under test.
fn bitwise_crc(poly: u32, data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
const CASTAGNOLI: u32 = 0x82F6_3B78;
const IEEE: u32 = 0xEDB8_8320;

fn rec(offset: i64, ts: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
    Record {
        offset,
        timestamp: ts,
        timestamp_type: TimestampType::CreateTime,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers: Vec::new(),
    }
}

fn header(key: &str, value: Option<&[u8]>) -> Header {
    Header {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: value.map(Bytes::copy_from_slice),
    }
}

fn sample_records() -> Vec<Record> {
    let mut with_headers = rec(3, 1_700_000_000_500, Some(b"k3"), Some(b"v3"));
    with_headers.headers = vec![
        header("dup", Some(b"first")),
        header("other", None),
        header("dup", Some(b"second")),
        header("", Some(b"")),
    ];
    vec![
        rec(0, 1_700_000_000_000, Some(b"key"), Some(b"value")),
        rec(
            1,
            1_699_999_999_000,
            None,
            Some(b"null key, earlier timestamp"),
        ),
        rec(2, 1_700_000_000_100, Some(b"tombstone"), None),
        with_headers,
        rec(4, 1_700_000_000_200, Some(b""), Some(b"")),
    ]
}

fn decode_all(blob: Bytes) -> (Vec<Batch>, bool) {
    let mut reader = BatchReader::new(blob);
    let batches = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (batches, reader.truncated())
}

fn records_of(batch: &Batch) -> Vec<Record> {
    batch.records().unwrap().collect::<Result<_, _>>().unwrap()
}

#[test]
fn crc_known_answers() {
    // The standard check values of both CRCs over "123456789".
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(bitwise_crc(CASTAGNOLI, b"123456789"), 0xE306_9283);
    assert_eq!(legacy::crc32_ieee(b"123456789"), 0xCBF4_3926);
    assert_eq!(bitwise_crc(IEEE, b"123456789"), 0xCBF4_3926);
    assert_eq!(legacy::crc32_ieee(b""), 0);
}

#[test]
fn fixed_batch_has_the_specified_layout_and_crc() {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.set_base_offset(5)
        .set_partition_leader_epoch(7)
        .set_producer_id(1000)
        .set_producer_epoch(2)
        .set_base_sequence(9);
    b.append(1000, Some(b"k"), Some(b"v"), &[("h", Some(&b"x"[..]))])
        .unwrap();
    let bytes = b.finish().unwrap();

    // Expected bytes written out from the format description.
    let record: &[u8] = &[
        0x18, // length 12, zig-zag
        0x00, // attributes
        0x00, // timestamp delta 0
        0x00, // offset delta 0
        0x02, b'k', // key length 1, key
        0x02, b'v', // value length 1, value
        0x02, // one header
        0x02, b'h', 0x02, b'x', // header key, header value
    ];
    let mut expected = Vec::new();
    expected.extend_from_slice(&5i64.to_be_bytes()); // base offset
    expected.extend_from_slice(&((61 - 12 + record.len()) as i32).to_be_bytes());
    expected.extend_from_slice(&7i32.to_be_bytes()); // leader epoch
    expected.push(2); // magic
    expected.extend_from_slice(&[0, 0, 0, 0]); // crc placeholder
    expected.extend_from_slice(&0i16.to_be_bytes()); // attributes
    expected.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    expected.extend_from_slice(&1000i64.to_be_bytes()); // base timestamp
    expected.extend_from_slice(&1000i64.to_be_bytes()); // max timestamp
    expected.extend_from_slice(&1000i64.to_be_bytes()); // producer id
    expected.extend_from_slice(&2i16.to_be_bytes()); // producer epoch
    expected.extend_from_slice(&9i32.to_be_bytes()); // base sequence
    expected.extend_from_slice(&1i32.to_be_bytes()); // record count
    expected.extend_from_slice(record);
    let crc = bitwise_crc(CASTAGNOLI, &expected[21..]);
    expected[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(&bytes[..], &expected[..]);

    let (batches, truncated) = decode_all(bytes);
    assert!(!truncated);
    let Batch::V2(batch) = &batches[0] else {
        panic!("expected a v2 batch")
    };
    assert_eq!(batch.header().crc, crc);
    let records = records_of(&batches[0]);
    assert_eq!(records[0].offset, 5);
    assert_eq!(records[0].headers, vec![header("h", Some(b"x"))]);
}

#[test]
fn every_codec_round_trips_the_sample_records() {
    for codec in enabled_codecs() {
        let input = sample_records();
        let bytes = RecordBatchBuilder::new(codec)
            .encode_records(&input)
            .unwrap();
        let (batches, truncated) = decode_all(bytes);
        assert!(!truncated);
        assert_eq!(batches.len(), 1);
        let Batch::V2(batch) = &batches[0] else {
            panic!("expected v2")
        };
        let h = batch.header();
        assert_eq!(h.compression().unwrap(), codec);
        assert_eq!(h.records_count, 5);
        assert_eq!(h.last_offset_delta, 4);
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
        assert_eq!(h.max_timestamp, 1_700_000_000_500);
        assert_eq!(h.producer_id, NO_PRODUCER_ID);
        assert_eq!(h.producer_epoch, NO_PRODUCER_EPOCH);
        assert_eq!(h.base_sequence, NO_SEQUENCE);
        assert!(!h.is_transactional() && !h.is_control());
        assert_eq!(records_of(&batches[0]), input, "{codec:?}");
    }
}

#[test]
fn keys_of_every_size_round_trip_across_chunk_boundaries() {
    // Small keys are copied with the record's fields, larger ones on their
    // own; the builder touches its buffer ahead in 4 KiB chunks. Records of
    // varied sizes cross many chunk boundaries.
    let records: Vec<Record> = (0..600)
        .map(|i| {
            let key = match i % 7 {
                0 => None,
                1 => Some(vec![]),
                2 => Some(vec![b'k'; 63]),
                3 => Some(vec![b'k'; 64]),
                4 => Some(vec![b'k'; 65]),
                5 => Some(vec![b'k'; 1_000 + i]),
                _ => Some(format!("key-{i}").into_bytes()),
            };
            let value = vec![(i % 251) as u8; (i * 37) % 3_000];
            rec(i as i64, 1_000 + i as i64, key.as_deref(), Some(&value))
        })
        .collect();
    let bytes = RecordBatchBuilder::new(Compression::None)
        .encode_records(&records)
        .unwrap();
    let decoded: Vec<Record> = RecordStream::new(bytes).collect::<Result<_, _>>().unwrap();
    assert_eq!(decoded, records);
}

/// The estimate is kept with the builder, not computed when asked: it must
/// follow every change of the records (appends, reset, seal) and of the
/// ratio, and a ratio too large for any size must saturate, not overflow.
#[test]
fn the_kept_compressed_size_estimate_follows_records_and_ratio() {
    for codec in enabled_codecs().filter(|&c| c != Compression::None) {
        let formula = |b: &RecordBatchBuilder, ratio: f32| {
            let len = b.size_in_bytes() - RECORD_BATCH_OVERHEAD;
            RECORD_BATCH_OVERHEAD
                + (len as f64 * f64::from(ratio) * f64::from(COMPRESSION_RATE_ESTIMATION_FACTOR))
                    .ceil() as usize
        };
        let mut b = RecordBatchBuilder::new(codec);
        assert_eq!(b.estimated_size_in_bytes(), RECORD_BATCH_OVERHEAD);
        for _ in 0..50 {
            b.append(1, Some(b"key"), Some(&[3u8; 200]), &[]).unwrap();
        }
        assert_eq!(b.estimated_size_in_bytes(), formula(&b, 1.0));
        b.set_estimated_compression_ratio(0.3);
        assert_eq!(b.estimated_size_in_bytes(), formula(&b, 0.3));
        // Refused ratios change nothing.
        b.set_estimated_compression_ratio(f32::NAN);
        b.set_estimated_compression_ratio(-1.0);
        assert_eq!(b.estimated_size_in_bytes(), formula(&b, 0.3));
        b.reset();
        assert_eq!(b.estimated_size_in_bytes(), RECORD_BATCH_OVERHEAD);
        b.append(1, None, Some(&[5u8; 1000]), &[]).unwrap();
        assert_eq!(b.estimated_size_in_bytes(), formula(&b, 0.3));
        b.seal().unwrap();
        assert_eq!(b.estimated_size_in_bytes(), RECORD_BATCH_OVERHEAD);
        b.append(1, None, Some(&[5u8; 10]), &[]).unwrap();
        b.set_estimated_compression_ratio(f32::MAX);
        assert_eq!(
            b.estimated_size_in_bytes(),
            RECORD_BATCH_OVERHEAD + i64::MAX as usize
        );
    }
}

#[test]
fn the_compressed_size_estimate_rounds_up_like_ceil() {
    // Every records length up to 3,000 bytes with ratios that make whole and
    // fractional products: the estimate is ceil(len * ratio * 1.05).
    for codec in enabled_codecs().filter(|&c| c != Compression::None) {
        for ratio in [0.25f32, 0.5, 0.58, 1.0 / 1.05, 1.0] {
            let mut b = RecordBatchBuilder::new(codec);
            b.set_estimated_compression_ratio(ratio);
            let mut appended = 0i64;
            while b.size_in_bytes() < RECORD_BATCH_OVERHEAD + 3_000 {
                let len = b.size_in_bytes() - RECORD_BATCH_OVERHEAD;
                let expected =
                    (len as f64 * f64::from(ratio) * f64::from(COMPRESSION_RATE_ESTIMATION_FACTOR))
                        .ceil() as usize;
                assert_eq!(
                    b.estimated_size_in_bytes(),
                    RECORD_BATCH_OVERHEAD + expected,
                    "{codec:?} ratio {ratio} len {len}"
                );
                b.append(
                    appended,
                    None,
                    Some(&[7u8; 3][..(appended % 4) as usize]),
                    &[],
                )
                .unwrap();
                appended += 1;
            }
        }
    }
}

#[test]
fn large_batches_round_trip_with_every_codec() {
    let records: Vec<Record> = (0..5_000)
        .map(|i| {
            let value = format!("value {i} ").repeat(20);
            rec(
                i,
                1_000 + i,
                Some(format!("key-{i}").as_bytes()),
                Some(value.as_bytes()),
            )
        })
        .collect();
    for codec in enabled_codecs() {
        let bytes = RecordBatchBuilder::new(codec)
            .encode_records(&records)
            .unwrap();
        if codec != Compression::None {
            assert!(
                bytes.len() < 500_000,
                "{codec:?} gave {} bytes",
                bytes.len()
            );
        }
        let decoded: Vec<Record> = RecordStream::new(bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(decoded, records, "{codec:?}");
    }
}

#[test]
fn uncompressed_decoding_is_zero_copy() {
    let bytes = RecordBatchBuilder::new(Compression::None)
        .encode_records(&sample_records())
        .unwrap();
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    for record in RecordStream::new(bytes.clone()) {
        let record = record.unwrap();
        for part in [&record.key, &record.value]
            .into_iter()
            .flatten()
            .chain(record.headers.iter().filter_map(|h| h.value.as_ref()))
            .chain(record.headers.iter().map(|h| &h.key))
            .filter(|b| !b.is_empty())
        {
            assert!(range.contains(&(part.as_ptr() as usize)));
        }
    }
}

/// Records read, errors as their text.
type Outcomes = Vec<Result<Record, String>>;

/// Every record of `blob`, read by the owned iterator and by the borrowed
/// one (converted with `to_record`), as results: `Err` as the error text.
fn owned_and_borrowed(blob: &Bytes, fetch_offset: i64) -> (Outcomes, Outcomes) {
    let owned = FetchedRecords::new(blob.clone(), fetch_offset)
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    let mut borrowed = Vec::new();
    let mut fetched = FetchedRecords::new(blob.clone(), fetch_offset);
    while let Some(r) = fetched.next_ref() {
        borrowed.push(r.map(|r| r.to_record()).map_err(|e| e.to_string()));
    }
    (owned, borrowed)
}

#[test]
fn borrowed_records_read_exactly_what_owned_records_do() {
    for codec in enabled_codecs() {
        let bytes = RecordBatchBuilder::new(codec)
            .encode_records(&sample_records())
            .unwrap();
        let (owned, borrowed) = owned_and_borrowed(&bytes, 0);
        assert_eq!(owned, borrowed, "{codec:?}");
        assert_eq!(
            owned.into_iter().collect::<Result<Vec<_>, _>>().unwrap(),
            sample_records(),
            "{codec:?}"
        );
        // From a RecordIter: the same records, field by field.
        let Some(Ok(Batch::V2(batch))) = BatchReader::new(bytes).next() else {
            panic!("one v2 batch")
        };
        let records = batch.records().unwrap();
        let refs: Vec<RecordRef<'_>> = records.refs().collect::<Result<_, _>>().unwrap();
        for (r, expected) in refs.iter().zip(sample_records()) {
            assert_eq!(r.offset(), expected.offset);
            assert_eq!(r.timestamp(), expected.timestamp);
            assert_eq!(r.timestamp_type(), expected.timestamp_type);
            assert_eq!(r.key(), expected.key.as_deref());
            assert_eq!(r.value(), expected.value.as_deref());
            assert_eq!(r.key_bytes(), expected.key);
            assert_eq!(r.value_bytes(), expected.value);
            assert_eq!(r.header_count(), expected.headers.len());
            let headers: Vec<_> = r.headers().collect();
            assert_eq!(headers.len(), r.headers().len());
            for (h, e) in headers.iter().zip(&expected.headers) {
                assert_eq!(h.key, &e.key[..]);
                assert_eq!(h.key_str(), e.key_str());
                assert_eq!(h.value, e.value.as_deref());
            }
        }
        assert_eq!(refs.len(), sample_records().len());
        // `refs` starts where the owned iterator is.
        let mut records = batch.records().unwrap();
        records.next().unwrap().unwrap();
        assert_eq!(
            records.refs().remaining_records(),
            sample_records().len() - 1
        );
        assert_eq!(records.refs().next().unwrap().unwrap().offset(), 1);
    }
}

#[test]
fn borrowed_records_are_slices_of_the_fetched_bytes_and_share_them_when_owned() {
    let bytes = RecordBatchBuilder::new(Compression::None)
        .encode_records(&sample_records())
        .unwrap();
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    let mut fetched = FetchedRecords::new(bytes.clone(), 0);
    while let Some(record) = fetched.next_ref() {
        let record = record.unwrap();
        let owned = record.to_record();
        let parts = [record.key(), record.value()]
            .into_iter()
            .flatten()
            .chain(record.headers().map(|h| h.key))
            .chain(record.headers().filter_map(|h| h.value))
            .chain(owned.key.as_deref())
            .chain(owned.value.as_deref())
            .chain(owned.headers.iter().map(|h| &h.key[..]));
        for part in parts.filter(|p| !p.is_empty()) {
            assert!(range.contains(&(part.as_ptr() as usize)));
        }
    }
}

#[test]
fn borrowed_records_of_legacy_sets_and_positions_match_the_owned_walk() {
    let mut blob = legacy_entry(3, &legacy_message(0, 0, 0, Some(b"k"), Some(b"v")));
    blob.extend(legacy_entry(4, &legacy_message(1, 0, 9, None, Some(b"w"))));
    blob.extend_from_slice(&v2_batch(Compression::None, 5, &[0, 1, 3]));
    let blob = Bytes::from(blob);
    for fetch_offset in [0, 4, 6, 9] {
        let (owned, borrowed) = owned_and_borrowed(&blob, fetch_offset);
        assert_eq!(owned, borrowed, "from {fetch_offset}");
        let mut a = FetchedRecords::new(blob.clone(), fetch_offset);
        let mut b = FetchedRecords::new(blob.clone(), fetch_offset);
        loop {
            let x = a.next().map(|r| r.unwrap().offset);
            let y = b.next_ref().map(|r| r.unwrap().offset());
            assert_eq!(x, y);
            assert_eq!(a.next_offset(), b.next_offset());
            assert_eq!(a.current_leader_epoch(), b.current_leader_epoch());
            if x.is_none() {
                break;
            }
        }
    }
    let (owned, _) = owned_and_borrowed(&blob, 0);
    let offsets: Vec<i64> = owned.iter().map(|r| r.as_ref().unwrap().offset).collect();
    assert_eq!(offsets, [3, 4, 5, 6, 8]);
}

#[test]
fn producer_fields_and_flags_round_trip() {
    for codec in enabled_codecs() {
        let mut b = RecordBatchBuilder::new(codec);
        b.set_base_offset(1_000_000)
            .set_partition_leader_epoch(42)
            .set_producer_id(77)
            .set_producer_epoch(3)
            .set_base_sequence(123)
            .set_transactional(true)
            .set_timestamp_type(TimestampType::LogAppendTime);
        b.append(10, Some(b"a"), Some(b"1"), &[]).unwrap();
        b.append(30, Some(b"b"), Some(b"2"), &[]).unwrap();
        let (batches, _) = decode_all(b.finish().unwrap());
        let batch = &batches[0];
        assert!(batch.is_transactional());
        assert!(!batch.is_control());
        assert_eq!(batch.producer_id(), 77);
        assert_eq!(batch.base_offset(), 1_000_000);
        assert_eq!(batch.last_offset(), 1_000_001);
        assert_eq!(batch.next_offset(), 1_000_002);
        let Batch::V2(v2) = batch else { panic!() };
        let h = v2.header();
        assert_eq!(
            (h.partition_leader_epoch, h.producer_epoch, h.base_sequence),
            (42, 3, 123)
        );
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        // With log append time every record carries the batch's max timestamp.
        let records = records_of(batch);
        assert!(records
            .iter()
            .all(|r| r.timestamp == 30 && r.timestamp_type == TimestampType::LogAppendTime));
        assert_eq!(records[1].offset, 1_000_001);
    }
}

#[test]
fn control_batches_parse_and_are_skipped_by_the_record_stream() {
    let mut blob = BytesMut::new();
    let data = RecordBatchBuilder::new(Compression::None)
        .encode_records(&[rec(0, 5, Some(b"k"), Some(b"v"))])
        .unwrap();
    blob.extend_from_slice(&data);
    for commit in [true, false] {
        let marker = ControlRecord::end_transaction(commit, 17);
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.set_control(true)
            .set_transactional(true)
            .set_base_offset(if commit { 1 } else { 2 })
            .set_producer_id(9);
        b.append(6, Some(&marker.encode_key()), marker.value.as_deref(), &[])
            .unwrap();
        blob.extend_from_slice(&b.finish().unwrap());
    }
    let blob = blob.freeze();
    let (batches, _) = decode_all(blob.clone());
    assert_eq!(batches.len(), 3);
    let kinds: Vec<_> = batches
        .iter()
        .map(|b| match b {
            Batch::V2(v2) => v2.control_record().unwrap(),
            Batch::Legacy(_) => panic!(),
        })
        .collect();
    assert_eq!(kinds[0], None);
    let commit = kinds[1].as_ref().unwrap();
    assert_eq!(commit.kind, ControlRecordType::Commit);
    assert_eq!(
        commit.end_transaction,
        Some(EndTransactionMarker {
            version: 0,
            coordinator_epoch: 17
        })
    );
    assert_eq!(kinds[2].as_ref().unwrap().kind, ControlRecordType::Abort);
    assert!(batches[1].is_control() && batches[1].is_transactional());
    // The raw key bytes: version 0, type 1 (commit).
    let key = records_of(&batches[1])[0].key.clone().unwrap();
    assert_eq!(&key[..], &[0, 0, 0, 1]);

    let data_only: Vec<Record> = RecordStream::new(blob).collect::<Result<_, _>>().unwrap();
    assert_eq!(data_only.len(), 1);
    assert_eq!(data_only[0].value.as_deref(), Some(&b"v"[..]));

    // Unknown control types are kept by id; a marker without its value is corrupt.
    let other = rec(0, 0, Some(&[0, 0, 0, 5]), None);
    assert_eq!(
        ControlRecord::parse(&other).unwrap().kind,
        ControlRecordType::Other(5)
    );
    let bad = rec(0, 0, Some(&[0, 0, 0, 1]), Some(&[0, 0]));
    assert!(ControlRecord::parse(&bad).is_err());
}

#[test]
fn crc_mismatch_is_detected() {
    let bytes = RecordBatchBuilder::new(Compression::None)
        .encode_records(&sample_records())
        .unwrap();
    let mut corrupt = bytes.to_vec();
    let at = corrupt
        .windows(5)
        .position(|w| w == b"value")
        .expect("the first record's value");
    corrupt[at] ^= 0x20; // "value" becomes "Value"
    let mut reader = BatchReader::new(Bytes::from(corrupt.clone()));
    assert!(matches!(
        reader.next(),
        Some(Err(RecordsError::CrcMismatch { .. }))
    ));
    assert!(reader.next().is_none());
    // With verification off the batch decodes, flipped byte and all.
    let options = DecodeOptions {
        verify_crc: false,
        ..DecodeOptions::default()
    };
    let records: Vec<Record> = RecordStream::with_options(Bytes::from(corrupt), options)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), 5);
    assert_eq!(records[0].value.as_deref(), Some(&b"Value"[..]));
}

#[test]
fn truncated_final_batch_is_reported_not_an_error() {
    let first = RecordBatchBuilder::new(Compression::None)
        .encode_records(&sample_records())
        .unwrap();
    let mut second = RecordBatchBuilder::new(Compression::None);
    second.set_base_offset(5);
    second.append(1, None, Some(b"later"), &[]).unwrap();
    let second = second.finish().unwrap();
    let mut blob = BytesMut::new();
    blob.extend_from_slice(&first);
    blob.extend_from_slice(&second);
    let blob = blob.freeze();

    let (all, truncated) = decode_all(blob.clone());
    assert_eq!(all.len(), 2);
    assert!(!truncated);

    for cut in [1, 10, 16, 17, 61, second.len() - 1] {
        let partial = blob.slice(..first.len() + cut);
        let mut reader = BatchReader::new(partial);
        let batches: Vec<Batch> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.len(), 1, "cut {cut}");
        assert!(reader.truncated());
        assert_eq!(reader.truncated_bytes(), cut);
        let mut stream = RecordStream::new(blob.slice(..first.len() + cut));
        assert_eq!(stream.by_ref().map(Result::unwrap).count(), 5);
        assert!(stream.truncated());
    }
    // A blob holding only part of a batch yields nothing, and says so.
    let mut reader = BatchReader::new(blob.slice(..30));
    assert!(reader.next().is_none());
    assert!(reader.truncated());
}

#[test]
fn builder_offsets_sizes_and_limits() {
    let mut b = RecordBatchBuilder::new(Compression::None);
    assert!(b.is_empty());
    assert_eq!(b.size_in_bytes(), 61);
    let hdrs: [HeaderRef<'_>; 2] = [("a", Some(&b"1"[..])), ("a", None)];
    let predicted = b.size_of_next(100, Some(b"key"), None, &hdrs).unwrap();
    assert_eq!(b.append(100, Some(b"key"), None, &hdrs).unwrap(), 0);
    assert_eq!(b.size_in_bytes(), 61 + predicted);
    assert_eq!(
        b.append_with_offset_delta(5, 50, None, Some(b"gap"), &[])
            .unwrap(),
        5
    );
    assert!(b.append_with_offset_delta(5, 50, None, None, &[]).is_err());
    assert_eq!(b.append(200, None, None, &[]).unwrap(), 6);
    assert_eq!(b.record_count(), 3);
    let size = b.size_in_bytes();
    let bytes = b.finish().unwrap();
    assert_eq!(bytes.len(), size);
    let (batches, _) = decode_all(bytes);
    let offsets: Vec<i64> = records_of(&batches[0]).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 5, 6]);
    assert_eq!(batches[0].last_offset(), 6);

    // Owned records must move forward from the base offset.
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.set_base_offset(10);
    assert!(b.append_record(&rec(9, 0, None, None)).is_err());
    assert!(b.append_record(&rec(10, 0, None, None)).is_ok());
    assert!(b.append_record(&rec(10, 0, None, None)).is_err());

    // An empty batch cannot be built (brokers and Java refuse them), but one
    // on the wire (left by compaction) still decodes.
    for codec in enabled_codecs() {
        assert!(matches!(
            RecordBatchBuilder::new(codec).finish(),
            Err(RecordsError::Build(_))
        ));
    }
    let one = RecordBatchBuilder::new(Compression::None)
        .encode_records(&[rec(0, 0, None, None)])
        .unwrap();
    let (batches, _) = decode_all(reframe(&one, 0, &[]));
    assert_eq!(records_of(&batches[0]).len(), 0);
    assert_eq!(batches[0].base_offset(), 0);
}

#[test]
fn negative_timestamps_other_than_minus_one_are_refused() {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for bad in [-2, -1000, i64::MIN] {
        assert!(matches!(
            b.append(bad, None, None, &[]),
            Err(RecordsError::Build(_))
        ));
        assert!(b.size_of_next(bad, None, None, &[]).is_err());
    }
    assert!(b.is_empty());
    b.append(-1, None, Some(b"no timestamp"), &[]).unwrap();
    b.append(1_700_000_000_000, None, None, &[]).unwrap();
    let records = records_of(&decode_all(b.finish().unwrap()).0[0]);
    assert_eq!(records[0].timestamp, -1);
    assert_eq!(records[1].timestamp, 1_700_000_000_000);
}

#[test]
fn a_reused_builder_seals_batch_after_batch_and_keeps_its_buffers() {
    for codec in enabled_codecs() {
        let mut b = RecordBatchBuilder::with_capacity(codec, 4096);
        b.set_producer_id(5).set_producer_epoch(1);
        let mut first_ptr = None;
        for round in 0..3i64 {
            for i in 0..20 {
                b.append(
                    round * 100 + i,
                    Some(b"key"),
                    Some(&[round as u8; 100]),
                    &[],
                )
                .unwrap();
            }
            let sealed = b.seal().unwrap();
            assert!(b.is_empty(), "{codec:?}");
            assert_eq!(b.size_in_bytes(), RECORD_BATCH_OVERHEAD);
            assert_eq!(sealed.record_count, 20);
            assert!(sealed.uncompressed_records_len > 20 * 100);
            if codec == Compression::None {
                assert_eq!(sealed.compression_ratio, 1.0);
            } else {
                assert!(sealed.compression_ratio < 0.5, "{codec:?}");
            }
            let (batches, _) = decode_all(sealed.bytes.clone());
            let records = records_of(&batches[0]);
            assert_eq!(records.len(), 20);
            assert_eq!(records[0].offset, 0, "offsets restart with each batch");
            assert_eq!(records[19].timestamp, round * 100 + 19);
            assert_eq!(batches[0].producer_id(), 5, "settings are kept");
            // Once the sealed batch is dropped, the next one reuses its memory.
            let ptr = sealed.bytes.as_ptr();
            drop((sealed, batches, records));
            // (Without a codec the staged bytes are the batch: nothing to reuse.)
            match first_ptr {
                _ if codec == Compression::None => {}
                None => first_ptr = Some(ptr),
                Some(first) => assert_eq!(first, ptr, "{codec:?}: buffer not reused"),
            }
        }
        // reset drops appended records.
        b.append(0, None, Some(b"dropped"), &[]).unwrap();
        b.reset();
        assert!(b.is_empty());
        b.append(7, None, Some(b"kept"), &[]).unwrap();
        let records = records_of(&decode_all(b.seal().unwrap().bytes).0[0]);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].value.as_deref(), Some(&b"kept"[..]));
    }
}

#[test]
fn compressed_batches_fill_up_to_the_batch_size() {
    const BATCH_SIZE: usize = 16 * 1024;
    let mut state = 0x9E37_79B9_u32;
    let mut value = |i: i64| {
        // Text-like values that compress about 2-3x.
        let mut v = format!("{{\"id\":{i},\"name\":\"").into_bytes();
        while v.len() < 100 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            v.push(b"abcdefgh"[(state % 8) as usize]);
        }
        v
    };
    for codec in enabled_codecs().filter(|&c| c != Compression::None) {
        let mut ratios = CompressionRatioEstimator::default();
        let mut b = RecordBatchBuilder::new(codec);
        // Learn the ratio from a probe batch; the estimate creeps down 0.005
        // per batch (Java's rule), so feed it enough batches to converge.
        for i in 0..200 {
            b.append(i, None, Some(&value(i)), &[]).unwrap();
        }
        let observed = b.seal().unwrap().compression_ratio;
        for _ in 0..200 {
            ratios.update("t", codec, observed);
        }
        assert!((ratios.estimate("t", codec) - observed).abs() < 1e-6);
        let mut sizes = Vec::new();
        for i in 0..3_000i64 {
            let value = value(i);
            b.set_estimated_compression_ratio(ratios.estimate("t", codec));
            let before = b.estimated_size_in_bytes();
            let after = b.estimated_size_after(i, None, Some(&value), &[]).unwrap();
            assert!(after > before);
            if !b
                .has_room_for(BATCH_SIZE, i, None, Some(&value), &[])
                .unwrap()
            {
                let sealed = b.seal().unwrap();
                ratios.update("t", codec, sealed.compression_ratio);
                sizes.push(sealed.bytes.len());
            }
            b.append(i, None, Some(&value), &[]).unwrap();
        }
        assert!(sizes.len() >= 3, "{codec:?}: {sizes:?}");
        assert!(
            sizes.iter().all(|&s| s <= BATCH_SIZE),
            "{codec:?}: {sizes:?}"
        );
        // Far more than 16 KiB of records per batch, and close to the limit.
        let average = sizes.iter().sum::<usize>() / sizes.len();
        assert!(
            average > BATCH_SIZE * 85 / 100,
            "{codec:?}: batches average {average} bytes: {sizes:?}"
        );
    }
}

#[test]
fn restamping_a_sealed_batch_rewrites_producer_fields_and_crc_only() {
    for codec in enabled_codecs() {
        let mut b = RecordBatchBuilder::new(codec);
        b.set_base_sequence(0)
            .set_producer_id(1)
            .set_producer_epoch(0);
        for i in 0..50 {
            b.append(i, Some(b"k"), Some(&[i as u8; 64]), &[("h", None)])
                .unwrap();
        }
        let sealed = b.seal().unwrap();
        let original = sealed.bytes.clone();
        let state = ProducerState {
            producer_id: 0x0102_0304_0506,
            producer_epoch: 9,
            base_sequence: 1_000,
            transactional: true,
        };
        let stamped = restamped(sealed.bytes, state).unwrap();
        // Same records section, byte for byte: nothing was recompressed.
        assert_eq!(stamped[61..], original[61..], "{codec:?}");
        assert_eq!(stamped[..17], original[..17]);
        let (batches, _) = decode_all(stamped.clone()); // CRC verified
        let Batch::V2(v2) = &batches[0] else { panic!() };
        let h = v2.header();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (0x0102_0304_0506, 9, 1_000)
        );
        assert!(h.is_transactional());
        assert_eq!(h.compression().unwrap(), codec);
        assert_eq!(records_of(&batches[0]).len(), 50);
        // And back: the flag is cleared again.
        let mut bytes = BytesMut::from(&stamped[..]);
        restamp_producer_state(
            &mut bytes,
            ProducerState {
                transactional: false,
                ..state
            },
        )
        .unwrap();
        let (batches, _) = decode_all(bytes.freeze());
        assert!(!batches[0].is_transactional());
    }
    // Not a whole v2 batch: a typed error.
    assert!(restamp_producer_state(
        &mut [0u8; 60],
        ProducerState {
            producer_id: 1,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: false,
        }
    )
    .is_err());
}

#[test]
fn decompression_limit_applies_to_batches() {
    for codec in enabled_codecs().filter(|&c| c != Compression::None) {
        let value = vec![0u8; 100_000];
        let mut b = RecordBatchBuilder::new(codec);
        for i in 0..20 {
            b.append(i, None, Some(&value), &[]).unwrap();
        }
        let bytes = b.finish().unwrap();
        assert!(bytes.len() < 100_000, "{codec:?}");
        let options = DecodeOptions {
            max_decompressed_bytes: 1_000_000,
            ..DecodeOptions::default()
        };
        let mut stream = RecordStream::with_options(bytes.clone(), options);
        assert_eq!(
            stream.next(),
            Some(Err(RecordsError::DecompressedTooLarge { limit: 1_000_000 }))
        );
        assert_eq!(stream.next(), None);
        assert_eq!(RecordStream::new(bytes).count(), 20);
    }
}

/// Re-encodes a batch with its records section replaced, fixing length and CRC.
fn reframe(batch: &[u8], count: i32, section: &[u8]) -> Bytes {
    let mut out = BytesMut::from(&batch[..61]);
    out.extend_from_slice(section);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = bitwise_crc(CASTAGNOLI, &out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

#[test]
fn inconsistent_batches_are_typed_errors() {
    let good = RecordBatchBuilder::new(Compression::None)
        .encode_records(&[rec(0, 0, Some(b"k"), Some(b"v"))])
        .unwrap();
    let section = good[61..].to_vec();
    let first_error = |blob: Bytes| -> RecordsError {
        RecordStream::new(blob)
            .find_map(Result::err)
            .expect("an error")
    };
    // More records declared than present, hostile counts included.
    for count in [2, i32::MAX] {
        assert!(matches!(
            first_error(reframe(&good, count, &section)),
            RecordsError::Decode(_)
        ));
    }
    // Fewer declared than present: trailing bytes.
    let mut two = section.clone();
    two.extend_from_slice(&section);
    assert!(matches!(
        first_error(reframe(&good, 1, &two)),
        RecordsError::Corrupt(_)
    ));
    assert!(matches!(
        first_error(reframe(&good, -1, &section)),
        RecordsError::Corrupt(_)
    ));
    // A header count far beyond the record's bytes.
    let mut hostile = section.clone();
    let last = hostile.len() - 1;
    assert_eq!(hostile[last], 0); // zero headers
    hostile[last] = 0x7e; // 63 headers, zig-zag
    assert!(matches!(
        first_error(reframe(&good, 1, &hostile)),
        RecordsError::Decode(_)
    ));
    // Unknown codec id 7.
    let mut bad_codec = good.to_vec();
    bad_codec[22] = 7;
    let crc = bitwise_crc(CASTAGNOLI, &bad_codec[21..]);
    bad_codec[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        first_error(Bytes::from(bad_codec)),
        RecordsError::UnknownCompression(7)
    );
    // Unknown magic, negative and too-small sizes.
    let mut bad_magic = good.to_vec();
    bad_magic[16] = 3;
    assert_eq!(
        first_error(Bytes::from(bad_magic)),
        RecordsError::UnsupportedMagic(3)
    );
    let mut bad_len = good.to_vec();
    bad_len[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        first_error(Bytes::from(bad_len)),
        RecordsError::Corrupt(_)
    ));
    let mut short_len = good.to_vec();
    short_len[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        first_error(Bytes::from(short_len)),
        RecordsError::Corrupt(_)
    ));
}

// ---- legacy message sets, built by hand from the format description ----

/// A legacy message: crc, magic, attributes, [timestamp], key, value.
fn legacy_message(
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = vec![magic as u8, attributes as u8];
    if magic == 1 {
        body.extend_from_slice(&timestamp.to_be_bytes());
    }
    for part in [key, value] {
        match part {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(p) => {
                body.extend_from_slice(&(p.len() as i32).to_be_bytes());
                body.extend_from_slice(p);
            }
        }
    }
    let mut msg = bitwise_crc(IEEE, &body).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

fn legacy_entry(offset: i64, message: &[u8]) -> Vec<u8> {
    let mut out = offset.to_be_bytes().to_vec();
    out.extend_from_slice(&(message.len() as i32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

#[test]
fn legacy_v0_and_v1_uncompressed() {
    let mut blob = Vec::new();
    blob.extend(legacy_entry(
        10,
        &legacy_message(0, 0, 0, Some(b"k0"), Some(b"v0")),
    ));
    blob.extend(legacy_entry(
        11,
        &legacy_message(1, 0, 1234, None, Some(b"v1")),
    ));
    blob.extend(legacy_entry(
        12,
        &legacy_message(1, 0x08, 5678, Some(b"k2"), None),
    ));
    let records: Vec<Record> = RecordStream::new(Bytes::from(blob.clone()))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        records,
        vec![
            Record {
                timestamp: -1,
                timestamp_type: TimestampType::NoTimestamp,
                ..rec(10, 0, Some(b"k0"), Some(b"v0"))
            },
            rec(11, 1234, None, Some(b"v1")),
            Record {
                timestamp_type: TimestampType::LogAppendTime,
                ..rec(12, 5678, Some(b"k2"), None)
            },
        ]
    );
    let (batches, truncated) = decode_all(Bytes::from(blob.clone()));
    assert!(!truncated);
    assert_eq!(
        batches.iter().map(Batch::magic).collect::<Vec<_>>(),
        vec![0, 1, 1]
    );
    // A legacy CRC mismatch is detected too.
    let mut bad = blob.clone();
    let last = bad.len() - 1;
    bad[last - 8] ^= 0x20;
    assert!(matches!(
        BatchReader::new(Bytes::from(bad)).last(),
        Some(Err(RecordsError::CrcMismatch { .. }))
    ));
    // A truncated final legacy message stops the reader cleanly.
    let mut reader = BatchReader::new(Bytes::from(blob[..blob.len() - 3].to_vec()));
    assert_eq!(reader.by_ref().count(), 2);
    assert!(reader.truncated());
}

#[test]
fn mixed_legacy_and_v2_batches_in_one_blob() {
    let mut blob = legacy_entry(0, &legacy_message(0, 0, 0, None, Some(b"v0")));
    blob.extend(legacy_entry(
        1,
        &legacy_message(1, 0, 10, None, Some(b"v1")),
    ));
    let mut v2 = RecordBatchBuilder::new(Compression::None);
    v2.set_base_offset(2);
    v2.append(20, None, Some(b"v2a"), &[]).unwrap();
    v2.append(21, None, Some(b"v2b"), &[]).unwrap();
    blob.extend_from_slice(&v2.finish().unwrap());
    blob.extend(legacy_entry(
        4,
        &legacy_message(1, 0, 30, None, Some(b"v1 again")),
    ));
    let (batches, truncated) = decode_all(Bytes::from(blob.clone()));
    assert!(!truncated);
    assert_eq!(
        batches.iter().map(Batch::magic).collect::<Vec<_>>(),
        vec![0, 1, 2, 1]
    );
    let values: Vec<Bytes> = RecordStream::new(Bytes::from(blob))
        .map(|r| r.unwrap().value.unwrap())
        .collect();
    assert_eq!(
        values,
        ["v0", "v1", "v2a", "v2b", "v1 again"].map(Bytes::from)
    );
}

#[cfg(feature = "gzip")]
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[cfg(feature = "gzip")]
#[test]
fn legacy_gzip_wrappers_v1_relative_and_v0_absolute_offsets() {
    // v1: inner offsets 0, 1, 2 are relative; the wrapper holds the absolute
    // offset of the last one (102), so the messages sit at 100, 101, 102.
    let mut inner = Vec::new();
    for (i, ts) in [(0i64, 1000i64), (1, 1001), (2, 1002)] {
        inner.extend(legacy_entry(
            i,
            &legacy_message(1, 0, ts, None, Some(format!("m{i}").as_bytes())),
        ));
    }
    let wrapper = legacy_message(1, 1, 999, None, Some(&gzip(&inner)));
    let v1 = legacy_entry(102, &wrapper);
    let records: Vec<Record> = RecordStream::new(Bytes::from(v1.clone()))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        records,
        vec![
            rec(100, 1000, None, Some(b"m0")),
            rec(101, 1001, None, Some(b"m1")),
            rec(102, 1002, None, Some(b"m2")),
        ]
    );
    let (batches, _) = decode_all(Bytes::from(v1));
    assert_eq!(batches[0].base_offset(), 100);
    assert_eq!(batches[0].last_offset(), 102);
    let Batch::Legacy(l) = &batches[0] else {
        panic!()
    };
    assert_eq!(l.compression().unwrap(), Compression::Gzip);

    // v1 with log append time: the wrapper's timestamp wins.
    let wrapper = legacy_message(1, 1 | 0x08, 4242, None, Some(&gzip(&inner)));
    let records: Vec<Record> = RecordStream::new(Bytes::from(legacy_entry(102, &wrapper)))
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(records
        .iter()
        .all(|r| r.timestamp == 4242 && r.timestamp_type == TimestampType::LogAppendTime));

    // v0: inner offsets are absolute.
    let mut inner = Vec::new();
    for i in [50i64, 51] {
        inner.extend(legacy_entry(
            i,
            &legacy_message(0, 0, 0, Some(b"k"), Some(b"x")),
        ));
    }
    let v0 = legacy_entry(51, &legacy_message(0, 1, 0, None, Some(&gzip(&inner))));
    // Mixed magic in one blob: the legacy wrapper, then a v2 batch.
    let mut v2 = RecordBatchBuilder::new(Compression::None);
    v2.set_base_offset(52);
    v2.append(7, None, Some(b"v2"), &[]).unwrap();
    let mut blob = v0.clone();
    blob.extend_from_slice(&v2.finish().unwrap());
    let records: Vec<Record> = RecordStream::new(Bytes::from(blob))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![50, 51, 52]
    );
    assert_eq!(records[2].value.as_deref(), Some(&b"v2"[..]));

    // Nested compression and empty wrappers are rejected.
    let nested = legacy_entry(0, &legacy_message(1, 1, 0, None, Some(&gzip(&v0))));
    let wrapper = legacy_entry(0, &legacy_message(1, 1, 0, None, Some(&gzip(&nested))));
    assert!(RecordStream::new(Bytes::from(wrapper)).any(|r| r.is_err()));
    let empty = legacy_entry(0, &legacy_message(1, 1, 0, None, Some(&gzip(&[]))));
    assert!(RecordStream::new(Bytes::from(empty)).any(|r| r.is_err()));
}

#[test]
fn legacy_zstd_is_not_allowed() {
    let msg = legacy_entry(0, &legacy_message(1, 4, 0, None, Some(b"whatever")));
    assert_eq!(
        RecordStream::new(Bytes::from(msg)).next(),
        Some(Err(RecordsError::CodecNotAllowed {
            codec: Compression::Zstd,
            magic: 1
        }))
    );
}

// ---- randomized hostile input ----

/// xorshift64*: small, deterministic, good enough to scramble bytes.
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
    let mut v = input.to_vec();
    match rng.below(5) {
        0 => v.truncate(rng.below(v.len() + 1)),
        1 => {
            for _ in 0..1 + rng.below(4) {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            if !v.is_empty() {
                let i = rng.below(v.len());
                v[i] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)];
            }
        }
        3 => {
            let i = rng.below(v.len() + 1);
            let extra: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
            v.splice(i..i, extra);
        }
        _ => {
            let i = rng.below(v.len() + 1);
            let j = (i + rng.below(16)).min(v.len());
            v.drain(i..j);
        }
    }
    v
}

fn exercise(blob: Vec<u8>) {
    for verify_crc in [true, false] {
        let options = DecodeOptions {
            max_decompressed_bytes: 1 << 20,
            verify_crc,
        };
        let blob = Bytes::from(blob.clone());
        for batch in BatchReader::with_options(blob.clone(), options).flatten() {
            if let Batch::V2(v2) = &batch {
                let _ = v2.control_record();
            }
            if let Ok(records) = batch.records() {
                for record in records.flatten() {
                    let _ = ControlRecord::parse(&record);
                }
            }
        }
        let _ = RecordStream::with_options(blob.clone(), options).count();
        // The borrowed walks accept and refuse exactly what the owned ones do.
        for fetch_offset in [0, 2] {
            let owned: Vec<_> = FetchedRecords::with_options(blob.clone(), fetch_offset, options)
                .map(|r| r.map_err(|e| e.to_string()))
                .collect();
            let mut fetched = FetchedRecords::with_options(blob.clone(), fetch_offset, options);
            let mut borrowed = Vec::new();
            while let Some(r) = fetched.next_ref() {
                borrowed.push(r.map(|r| r.to_record()).map_err(|e| e.to_string()));
            }
            assert_eq!(owned, borrowed);
        }
        for batch in BatchReader::with_options(blob.clone(), options).flatten() {
            if let Ok(BatchRecords::V2(records)) = batch.records() {
                let refs: Vec<_> = records
                    .refs()
                    .map(|r| r.map(|r| r.to_record()).map_err(|e| e.to_string()))
                    .collect();
                let owned: Vec<_> = records.map(|r| r.map_err(|e| e.to_string())).collect();
                assert_eq!(owned, refs);
            }
        }
    }
}

#[test]
fn mutated_and_random_input_never_panics() {
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    for codec in CODECS {
        // Disabled codecs are still fed in, as uncompressed bytes with their id.
        let mut b = RecordBatchBuilder::new(if codec.is_enabled() {
            codec
        } else {
            Compression::None
        });
        for r in sample_records() {
            b.append_record(&r).unwrap();
        }
        let mut bytes = b.finish().unwrap().to_vec();
        bytes[22] = codec.id();
        corpus.push(bytes);
    }
    let marker = ControlRecord::end_transaction(true, 1);
    let mut control = RecordBatchBuilder::new(Compression::None);
    control.set_control(true);
    control
        .append(0, Some(&marker.encode_key()), marker.value.as_deref(), &[])
        .unwrap();
    corpus.push(control.finish().unwrap().to_vec());
    let mut legacy = legacy_entry(3, &legacy_message(0, 0, 0, Some(b"k"), Some(b"v")));
    legacy.extend(legacy_entry(4, &legacy_message(1, 0, 9, None, Some(b"v"))));
    corpus.push(legacy);
    #[cfg(feature = "gzip")]
    {
        let inner = legacy_entry(0, &legacy_message(1, 0, 1, Some(b"a"), Some(b"b")));
        corpus.push(legacy_entry(
            7,
            &legacy_message(1, 1, 0, None, Some(&gzip(&inner))),
        ));
    }
    for codec in enabled_codecs().filter(|&c| c != Compression::None && c != Compression::Zstd) {
        // Legacy wrappers for the other legacy codecs.
        let inner = legacy_entry(0, &legacy_message(1, 0, 1, Some(b"a"), Some(b"b")));
        let mut compressed = BytesMut::new();
        compression::compress(codec, None, &inner, &mut compressed).unwrap();
        corpus.push(legacy_entry(
            0,
            &legacy_message(1, codec.id() as i8, 0, None, Some(&compressed)),
        ));
    }

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for seed in &corpus {
        exercise(seed.clone());
        for _ in 0..300 {
            let mut m = mutate(&mut rng, seed);
            if rng.below(3) == 0 {
                m = mutate(&mut rng, &m);
            }
            exercise(m);
        }
    }
    for _ in 0..500 {
        let len = rng.below(200);
        let mut noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 && noise.len() > 16 {
            noise[16] = rng.below(3) as u8; // a plausible magic
        }
        exercise(noise.clone());
        for codec in CODECS {
            let _ = compression::decompress(codec, &noise, 1 << 16);
        }
    }
    // The all-0xff / all-zero extremes.
    exercise(vec![0xff; 100]);
    exercise(vec![0; 100]);
}

// ---- the consumer's view: FetchedRecords ----

fn v2_batch(codec: Compression, base: i64, deltas: &[i32]) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec);
    b.set_base_offset(base).set_partition_leader_epoch(3);
    for &d in deltas {
        let value = format!("v{}", base + i64::from(d));
        b.append_with_offset_delta(d, 1000, None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    b.finish().unwrap()
}

fn txn_batch(producer_id: i64, base: i64, count: i32) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.set_base_offset(base)
        .set_producer_id(producer_id)
        .set_producer_epoch(0)
        .set_transactional(true);
    for i in 0..i64::from(count) {
        b.append(1000, None, Some(format!("v{}", base + i).as_bytes()), &[])
            .unwrap();
    }
    b.finish().unwrap()
}

fn marker_batch(producer_id: i64, offset: i64, commit: bool) -> Bytes {
    let marker = ControlRecord::end_transaction(commit, 0);
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.set_base_offset(offset)
        .set_producer_id(producer_id)
        .set_producer_epoch(0)
        .set_transactional(true)
        .set_control(true);
    b.append(
        1000,
        Some(&marker.encode_key()),
        marker.value.as_deref(),
        &[],
    )
    .unwrap();
    b.finish().unwrap()
}

fn concat(parts: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for p in parts {
        out.extend_from_slice(p);
    }
    out.freeze()
}

fn offsets(records: &mut FetchedRecords) -> Vec<i64> {
    records.map(|r| r.unwrap().offset).collect()
}

#[test]
fn fetched_records_start_at_the_fetch_offset_and_move_past_every_batch() {
    // Offsets 0-4 (lz4); 5 and 8 (compaction removed 6-7); an empty batch
    // for 9-11 that compaction emptied; a commit marker at 12; then 13.
    let empty_source = v2_batch(Compression::None, 9, &[0, 1, 2]);
    let codec = if Compression::Lz4.is_enabled() {
        Compression::Lz4
    } else {
        Compression::None
    };
    let blob = concat(&[
        v2_batch(codec, 0, &[0, 1, 2, 3, 4]),
        v2_batch(Compression::None, 5, &[0, 3]),
        reframe(&empty_source, 0, &[]),
        marker_batch(1, 12, true),
        v2_batch(Compression::None, 13, &[0]),
    ]);
    let mut records = FetchedRecords::new(blob.clone(), 2);
    assert_eq!(records.next_offset(), 2);
    let first: Vec<i64> = records
        .by_ref()
        .take(3)
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(first, vec![2, 3, 4]);
    assert_eq!(records.next_offset(), 5);
    assert_eq!(records.current_leader_epoch(), Some(3));
    let next = records.next().unwrap().unwrap();
    assert_eq!((next.offset, next.value.as_deref()), (5, Some(&b"v5"[..])));
    assert_eq!(records.next().unwrap().unwrap().offset, 8);
    assert_eq!(records.next_offset(), 9);
    // The empty batch and the marker are walked past, not handed out.
    assert_eq!(records.next().unwrap().unwrap().offset, 13);
    assert!(records.next().is_none());
    assert_eq!(records.next_offset(), 14);
    assert!(!records.truncated());

    // A fetch of only control and empty batches still moves the position.
    let only_markers = concat(&[reframe(&empty_source, 0, &[]), marker_batch(1, 12, false)]);
    let mut records = FetchedRecords::new(only_markers, 9);
    assert!(records.next().is_none());
    assert_eq!(records.next_offset(), 13);

    // A position inside the compacted gap, and past everything.
    assert_eq!(
        offsets(&mut FetchedRecords::new(blob.clone(), 6)),
        vec![8, 13]
    );
    let mut records = FetchedRecords::new(blob.clone(), 20);
    assert_eq!(offsets(&mut records), Vec::<i64>::new());
    assert_eq!(records.next_offset(), 20);

    // A partial trailing batch is not an error: the position stops before it.
    let mut records = FetchedRecords::new(blob.slice(..blob.len() - 5), 0);
    assert_eq!(offsets(&mut records), vec![0, 1, 2, 3, 4, 5, 8]);
    assert_eq!(records.next_offset(), 13);
    assert!(records.truncated());
}

#[test]
fn fetched_records_do_not_decompress_batches_below_the_position() {
    // A "compressed" batch whose section is garbage: reading it fails, but a
    // fetch positioned past it never touches it.
    let good = v2_batch(Compression::None, 0, &[0, 1, 2]);
    let mut bad = BytesMut::from(&good[..]);
    bad[22] |= 3; // attributes: lz4 (or a disabled codec)
    let bad = reframe(&bad, 3, b"not an lz4 frame at all");
    let blob = concat(&[bad, v2_batch(Compression::None, 3, &[0])]);
    assert!(FetchedRecords::new(blob.clone(), 0).any(|r| r.is_err()));
    let mut records = FetchedRecords::new(blob, 3);
    assert_eq!(offsets(&mut records), vec![3]);
    assert_eq!(records.next_offset(), 4);
}

#[test]
fn read_committed_drops_aborted_transactions_and_control_records() {
    // Producers 1 and 2 interleaved: 1 aborts (0-1, marker at 4), 2 commits
    // (2-3, marker at 5); 1 then commits a new transaction (6, marker at 7);
    // 8 is not transactional; 1 aborts again (9-10, marker at 11).
    let blob = concat(&[
        txn_batch(1, 0, 2),
        txn_batch(2, 2, 2),
        marker_batch(1, 4, false),
        marker_batch(2, 5, true),
        txn_batch(1, 6, 1),
        marker_batch(1, 7, true),
        v2_batch(Compression::None, 8, &[0]),
        txn_batch(1, 9, 2),
        marker_batch(1, 11, false),
    ]);
    let aborted = [AbortedTransaction::new(1, 9), AbortedTransaction::new(1, 0)];
    let mut committed = FetchedRecords::new(blob.clone(), 0).read_committed(aborted);
    assert_eq!(offsets(&mut committed), vec![2, 3, 6, 8]);
    assert_eq!(committed.next_offset(), 12);
    let mut uncommitted = FetchedRecords::new(blob.clone(), 0);
    assert_eq!(
        offsets(&mut uncommitted),
        vec![0, 1, 2, 3, 6, 8, 9, 10],
        "read_uncommitted sees aborted data, never control records"
    );
    assert_eq!(uncommitted.next_offset(), 12);
    // Starting in the middle: the list holds transactions that began before
    // the fetch offset too (the broker lists those overlapping the fetch).
    let mut from_one = FetchedRecords::new(blob.slice(txn_batch(1, 0, 2).len()..), 2)
        .read_committed([AbortedTransaction::new(1, 0), AbortedTransaction::new(1, 9)]);
    assert_eq!(offsets(&mut from_one), vec![2, 3, 6, 8]);

    // The filter on its own, batch by batch.
    let mut filter = AbortedTransactions::new(aborted);
    assert_eq!(filter.pending(), 2);
    let verdicts: Vec<bool> = BatchReader::new(blob)
        .map(|b| filter.is_aborted(&b.unwrap()).unwrap())
        .collect();
    assert_eq!(
        verdicts,
        vec![true, false, false, false, false, false, false, true, false]
    );
    assert_eq!(filter.pending(), 0);
}

#[cfg(feature = "gzip")]
#[test]
fn legacy_wrappers_are_read_lazily_and_need_increasing_inner_offsets() {
    let inner_set = |offsets: &[i64]| {
        let mut inner = Vec::new();
        for &o in offsets {
            inner.extend(legacy_entry(o, &legacy_message(0, 0, 0, None, Some(b"x"))));
        }
        inner
    };
    let wrap = |inner: &[u8]| {
        Bytes::from(legacy_entry(
            100,
            &legacy_message(0, 1, 0, None, Some(&gzip(inner))),
        ))
    };
    for bad in [&[5i64, 5][..], &[7, 6], &[1, 2, 2]] {
        let err = BatchReader::new(wrap(&inner_set(bad))).next().unwrap();
        assert!(
            matches!(&err, Err(RecordsError::Corrupt(m)) if m.contains("does not increase")),
            "{bad:?}: {err:?}"
        );
    }
    // A corrupt inner message is found when it is read, not before.
    let mut inner = inner_set(&[98, 99, 100]);
    let at = inner.len() - 1;
    inner[at] ^= 1;
    let batch = BatchReader::new(wrap(&inner)).next().unwrap().unwrap();
    let Batch::Legacy(legacy) = &batch else {
        panic!()
    };
    assert_eq!(legacy.record_count(), 3);
    assert_eq!((batch.base_offset(), batch.last_offset()), (98, 100));
    let results: Vec<_> = batch.records().unwrap().collect();
    assert_eq!(results.len(), 3);
    assert!(results[..2].iter().all(Result::is_ok));
    assert!(matches!(results[2], Err(RecordsError::CrcMismatch { .. })));
}
