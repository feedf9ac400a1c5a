//! Round trips of every message in every version, and checks of the generated
//! tables against the spec files themselves.

use super::sample::SampleRng;
use super::{ApiKey, RequestKind, ResponseKind};
use bytes::BytesMut;

/// Values per (message, version): enough to hit null/non-null and empty/non-empty
/// branches of every field many times over.
const SAMPLES_PER_VERSION: u64 = 24;

fn round_trip_kind<K: PartialEq + std::fmt::Debug>(
    api: ApiKey,
    version: i16,
    seed: u64,
    sample: impl Fn(&mut SampleRng) -> K,
    encode: impl Fn(&K, &mut BytesMut) -> Result<(), super::EncodeError>,
    decode: impl Fn(&mut bytes::Bytes) -> Result<K, super::DecodeError>,
    encoded_len: impl Fn(&K) -> usize,
) {
    let mut rng = SampleRng::new(seed);
    let value = sample(&mut rng);
    let mut buf = BytesMut::new();
    encode(&value, &mut buf)
        .unwrap_or_else(|e| panic!("{api:?} v{version} seed {seed}: encode: {e}"));
    let encoded = buf.freeze();
    assert_eq!(
        encoded_len(&value),
        encoded.len(),
        "{api:?} v{version} seed {seed}: encoded_len"
    );
    let mut input = encoded.clone();
    let decoded = decode(&mut input)
        .unwrap_or_else(|e| panic!("{api:?} v{version} seed {seed}: decode: {e}"));
    assert!(
        input.is_empty(),
        "{api:?} v{version} seed {seed}: {} bytes left",
        input.len()
    );
    assert_eq!(decoded, value, "{api:?} v{version} seed {seed}");
    let mut again = BytesMut::new();
    encode(&decoded, &mut again).unwrap();
    assert_eq!(
        again.freeze(),
        encoded,
        "{api:?} v{version} seed {seed}: re-encoding differs"
    );
}

#[test]
fn every_request_and_response_round_trips_in_every_version() {
    let mut cases = 0;
    for &api in ApiKey::ALL {
        for version in api.valid_versions().iter() {
            for i in 0..SAMPLES_PER_VERSION {
                let seed =
                    (u64::from(api.key() as u16) << 32) | (u64::from(version as u16) << 16) | i;
                round_trip_kind(
                    api,
                    version,
                    seed,
                    |rng| RequestKind::sample(api, rng, version),
                    |v, b| v.encode(b, version),
                    |b| RequestKind::decode(api, b, version),
                    |v| v.encoded_len(version),
                );
                round_trip_kind(
                    api,
                    version,
                    seed,
                    |rng| ResponseKind::sample(api, rng, version),
                    |v, b| v.encode(b, version),
                    |b| ResponseKind::decode(api, b, version),
                    |v| v.encoded_len(version),
                );
                cases += 2;
            }
        }
    }
    assert!(cases > 1000, "only {cases} cases ran");
}

#[test]
fn every_header_and_data_message_round_trips_in_every_version() {
    let mut names = Vec::new();
    super::messages::for_each_non_api_message(|name, versions, round_trip| {
        for version in versions.iter() {
            for i in 0..SAMPLES_PER_VERSION {
                let mut rng = SampleRng::new(i ^ (u64::from(version as u16) << 20));
                if let Err(e) = round_trip(&mut rng, version) {
                    panic!("{e}");
                }
            }
        }
        names.push(name.to_string());
    });
    for expected in [
        "RequestHeader",
        "ResponseHeader",
        "ConsumerProtocolSubscription",
        "ConsumerProtocolAssignment",
        "DefaultPrincipalData",
        "LeaderChangeMessage",
        "SnapshotHeaderRecord",
        "SnapshotFooterRecord",
        "KRaftVersionRecord",
        "VotersRecord",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not generated"
        );
    }
}

/// Reads the spec files directly (independently of the build script) and
/// checks the generated API table against them.
#[test]
fn generated_api_keys_match_the_spec_files() {
    use serde_json::Value;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/protocol-spec/message");
    let mut requests = std::collections::BTreeMap::new();
    let mut non_api = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        files += 1;
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let json: Value = serde_json::from_str(&text).unwrap();
        let range = |s: &str| -> (i16, i16) {
            match s {
                "none" => (1, 0),
                s if s.ends_with('+') => (s.trim_end_matches('+').parse().unwrap(), i16::MAX),
                s => match s.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (s.parse().unwrap(), s.parse().unwrap()),
                },
            }
        };
        let valid = range(json["validVersions"].as_str().unwrap());
        let flexible = range(json["flexibleVersions"].as_str().unwrap_or("none"));
        match json["type"].as_str().unwrap() {
            "request" => {
                let key = json["apiKey"].as_i64().unwrap() as i16;
                requests.insert(
                    key,
                    (json["name"].as_str().unwrap().to_string(), valid, flexible),
                );
            }
            "response" => {}
            _ => non_api += 1,
        }
    }
    assert_eq!(files, 186, "the vendored Kafka 3.9 specs have 186 files");
    assert_eq!(requests.len(), 88, "Kafka 3.9 defines 88 API keys");
    assert_eq!(ApiKey::ALL.len(), 88);
    assert_eq!(super::messages::NON_API_MESSAGES.len(), non_api);
    for (key, (name, valid, flexible)) in &requests {
        let api = ApiKey::from_key(*key).unwrap_or_else(|| panic!("key {key} ({name}) missing"));
        assert_eq!(format!("{}Request", api.name()), *name);
        assert_eq!(
            (api.valid_versions().min, api.valid_versions().max),
            *valid,
            "{name}"
        );
        assert_eq!(
            (api.flexible_versions().min, api.flexible_versions().max),
            *flexible,
            "{name}"
        );
        assert!(api.stable_versions().max <= valid.1 && api.stable_versions().max >= valid.1 - 1);
    }
    assert_eq!(ApiKey::from_key(0), Some(ApiKey::Produce));
    assert_eq!(ApiKey::from_key(18), Some(ApiKey::ApiVersions));
    assert_eq!(ApiKey::from_key(-1), None);
}

#[test]
fn a_non_ignorable_field_set_in_a_version_without_it_is_an_error() {
    use super::messages::{CreateTopicsRequest, FetchRequest};
    use super::{EncodeError, Message};
    // ValidateOnly exists from v1 and is not ignorable: dropping it would turn a
    // dry run into a real topic creation.
    let request = CreateTopicsRequest::default().with_validate_only(true);
    assert!(matches!(
        request.to_bytes(0),
        Err(EncodeError::NonIgnorableField {
            field: "validateOnly",
            version: 0,
            ..
        })
    ));
    assert!(request.to_bytes(1).is_ok());
    // An ignorable field is dropped silently.
    let fetch = FetchRequest::default().with_rack_id("r1".into());
    assert!(fetch.to_bytes(10).is_ok());
    assert!(matches!(
        CreateTopicsRequest::default().to_bytes(99),
        Err(EncodeError::UnsupportedVersion { version: 99, .. })
    ));
}

#[test]
fn null_in_a_version_where_the_field_is_not_nullable_is_an_error() {
    use super::messages::MetadataRequest;
    use super::{EncodeError, Message};
    // Topics became nullable ("all topics") in v1.
    let all_topics = MetadataRequest::default().with_topics(None);
    assert!(all_topics.to_bytes(1).is_ok());
    assert!(matches!(
        all_topics.to_bytes(0),
        Err(EncodeError::NullNotAllowed {
            field: "Topics",
            ..
        })
    ));
}

#[test]
fn known_answer_api_versions_request_v3() {
    use super::messages::ApiVersionsRequest;
    use super::Message;
    // ApiVersions v3 body: compact string "ab" (len+1 = 3), compact string "1" (2), no tags.
    let body = ApiVersionsRequest::default()
        .with_client_software_name("ab".into())
        .with_client_software_version("1".into())
        .to_bytes(3)
        .unwrap();
    assert_eq!(&body[..], &[3, b'a', b'b', 2, b'1', 0]);
    // And the classic v0 encoding has no body at all.
    assert!(ApiVersionsRequest::default()
        .to_bytes(0)
        .unwrap()
        .is_empty());
}

#[test]
fn unknown_tagged_fields_are_kept_and_re_encoded_in_tag_order() {
    use super::messages::fetch_response::{FetchResponse, LeaderIdAndEpoch, PartitionData};
    use super::{Message, UnknownTaggedField};
    let partition = PartitionData::default().with_current_leader(
        LeaderIdAndEpoch::default()
            .with_leader_id(3)
            .with_leader_epoch(7),
    );
    let mut partition = partition;
    partition.unknown_tagged_fields.push(UnknownTaggedField {
        tag: 5,
        data: bytes::Bytes::from_static(b"xyz"),
    });
    let mut topic = super::messages::fetch_response::FetchableTopicResponse::default();
    topic.partitions.push(partition);
    let response = FetchResponse::default().with_responses(vec![topic]);
    let bytes = response.to_bytes(16).unwrap();
    let back = FetchResponse::from_bytes(bytes.clone(), 16).unwrap();
    assert_eq!(back, response);
    let p = &back.responses[0].partitions[0];
    assert_eq!(p.current_leader.leader_id, 3);
    assert_eq!(p.unknown_tagged_fields[0].tag, 5);
    // Tag 1 (CurrentLeader) must come before the unknown tag 5 on the wire.
    let pos_leader = bytes
        .windows(2)
        .position(|w| w == [1, 9])
        .expect("tag 1 with 9 bytes");
    let pos_unknown = bytes
        .windows(3)
        .position(|w| w == [5, 3, b'x'])
        .expect("tag 5");
    assert!(pos_leader < pos_unknown);
}

/// Flips, truncates and splices valid encodings of every message in every
/// version and feeds them to the decoders: each must return `Ok` or an error,
/// never panic. (The fuzz targets in `fuzz/` do the same, coverage-guided.)
#[test]
fn mutated_encodings_never_panic_any_decoder() {
    let mut rng = SampleRng::new(0xF022);
    let mut decoded_ok = 0usize;
    let mut rejected = 0usize;
    for &api in ApiKey::ALL {
        for version in api.valid_versions().iter() {
            for is_request in [true, false] {
                let mut buf = BytesMut::new();
                if is_request {
                    RequestKind::sample(api, &mut rng, version)
                        .encode(&mut buf, version)
                        .unwrap();
                } else {
                    ResponseKind::sample(api, &mut rng, version)
                        .encode(&mut buf, version)
                        .unwrap();
                }
                let valid = buf.freeze();
                for _ in 0..12 {
                    let mutated = mutate(&mut rng, &valid);
                    let mut input = bytes::Bytes::from(mutated);
                    let ok = if is_request {
                        RequestKind::decode(api, &mut input, version).is_ok()
                    } else {
                        ResponseKind::decode(api, &mut input, version).is_ok()
                    };
                    if ok {
                        decoded_ok += 1;
                    } else {
                        rejected += 1;
                    }
                }
            }
        }
    }
    // Both outcomes must actually occur, or the mutations are not doing their job.
    assert!(
        decoded_ok > 100 && rejected > 100,
        "ok {decoded_ok}, rejected {rejected}"
    );
}

/// One random mutation of `valid`: bit flips, truncation, a hostile length
/// (0xff bytes or i32::MAX), duplication, or pure noise.
pub(crate) fn mutate(rng: &mut SampleRng, valid: &[u8]) -> Vec<u8> {
    let mut out = valid.to_vec();
    match rng.below(6) {
        0 if !out.is_empty() => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(out.len() as u64) as usize;
                out[i] ^= 1 << rng.below(8);
            }
        }
        1 => out.truncate(rng.below(out.len() as u64 + 1) as usize),
        2 if out.len() >= 4 => {
            let i = rng.below(out.len() as u64 - 3) as usize;
            let hostile: [u8; 4] = if rng.bool() {
                [0xff; 4]
            } else {
                [0x7f, 0xff, 0xff, 0xff]
            };
            out[i..i + 4].copy_from_slice(&hostile);
        }
        3 => {
            let extra = out.clone();
            out.extend_from_slice(&extra);
        }
        4 => {
            let len = rng.below(64) as usize;
            out = (0..len).map(|_| rng.next() as u8).collect();
        }
        _ => {
            let i = rng.below(out.len() as u64 + 1) as usize;
            out.insert(i, rng.next() as u8);
        }
    }
    out
}

/// Writes the fuzz seed corpus (`fuzz/corpus/decode_{request,response}/`): one
/// valid encoding of every request and response in every version, prefixed
/// with the selector bytes the fuzz harness expects. Run it with
/// `cargo test --lib write_fuzz_seed_corpus -- --ignored` after a spec update.
#[test]
#[ignore = "writes files; run by hand to refresh the fuzz seed corpus"]
fn write_fuzz_seed_corpus() {
    use crate::protocol::messages::{RequestHeader, ResponseHeader};
    use crate::protocol::Encodable;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut rng = SampleRng::new(0x5EED);
    for (dir, is_request) in [("decode_request", true), ("decode_response", false)] {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (index, &api) in ApiKey::ALL.iter().enumerate() {
            let versions = api.valid_versions();
            for version in versions.iter() {
                let mut buf = BytesMut::new();
                buf.extend_from_slice(&[index as u8, (version - versions.min) as u8]);
                if is_request {
                    // The harness rewrites key and version, then decodes the rest of the header.
                    let mut header = BytesMut::new();
                    RequestHeader {
                        correlation_id: 7,
                        client_id: Some("fuzz".into()),
                        ..Default::default()
                    }
                    .encode(&mut header, api.request_header_version(version))
                    .unwrap();
                    buf.extend_from_slice(&header[4..]);
                    RequestKind::sample(api, &mut rng, version)
                        .encode(&mut buf, version)
                        .unwrap();
                } else {
                    ResponseHeader {
                        correlation_id: 7,
                        ..Default::default()
                    }
                    .encode(&mut buf, api.response_header_version(version))
                    .unwrap();
                    ResponseKind::sample(api, &mut rng, version)
                        .encode(&mut buf, version)
                        .unwrap();
                }
                std::fs::write(dir.join(format!("{}-v{version}", api.name())), &buf).unwrap();
            }
        }
    }
}

#[test]
fn map_key_arrays_have_a_lookup_by_key() {
    use super::messages::create_topics_request::CreatableTopic;
    use super::messages::CreateTopicsRequest;
    let request = CreateTopicsRequest::default().with_topics(vec![
        CreatableTopic::default()
            .with_name("a".into())
            .with_num_partitions(1),
        CreatableTopic::default()
            .with_name("b".into())
            .with_num_partitions(2),
    ]);
    assert_eq!(request.find_topics("b").map(|t| t.num_partitions), Some(2));
    assert!(request.find_topics("c").is_none());
}

// ---------------------------------------------------------------------------
// Java-exact generator rules, on the synthetic spec in codegen/tests/specs/.
// ---------------------------------------------------------------------------

mod generator_rules {
    use bytes::{BufMut, Bytes, BytesMut};

    use crate::protocol::synthetic::synthetic_rules_message::{
        PresenceStruct, SyntheticRulesMessage, TaggedPresenceStruct,
    };
    use crate::protocol::{
        Decodable, DecodeError, Encodable, EncodeError, Message, UnknownTaggedField,
    };

    fn message(name: &str) -> SyntheticRulesMessage {
        SyntheticRulesMessage::default()
            .with_name(name.into())
            .with_maybe_struct(Some(PresenceStruct::default().with_value(7)))
    }

    fn encode(m: &SyntheticRulesMessage, version: i16) -> Result<Bytes, EncodeError> {
        let bytes = m.to_bytes(version)?;
        assert_eq!(
            m.encoded_len(version),
            bytes.len(),
            "encoded_len v{version}"
        );
        Ok(bytes)
    }

    #[test]
    fn a_nullable_struct_has_a_presence_byte_only_in_its_nullable_versions() {
        let m = message("a");
        // v0: not nullable, so the struct follows directly.
        assert_eq!(&encode(&m, 0).unwrap()[..], &[0, 1, b'a', 0, 0, 0, 7]);
        // v1: nullable, so an i8 presence byte comes first.
        assert_eq!(&encode(&m, 1).unwrap()[..], &[0, 1, b'a', 1, 0, 0, 0, 7]);
        let null = m.clone().with_maybe_struct(None);
        assert_eq!(&encode(&null, 1).unwrap()[..], &[0, 1, b'a', 0xff]);
        assert!(matches!(
            null.to_bytes(0),
            Err(EncodeError::NullNotAllowed {
                field: "MaybeStruct",
                version: 0,
                ..
            })
        ));
        for version in 0..=1 {
            let bytes = encode(&m, version).unwrap();
            assert_eq!(
                SyntheticRulesMessage::from_bytes(bytes, version).unwrap(),
                m
            );
        }
    }

    #[test]
    fn a_tagged_nullable_struct_uses_a_varint_presence_marker() {
        let m =
            message("a").with_tagged_struct(Some(TaggedPresenceStruct::default().with_count(5)));
        let bytes = encode(&m, 2).unwrap();
        // name, maybe_struct (presence, value, its empty tagged section), then
        // one tagged field: tag 0, 4 bytes: varint presence 1, count, empty section.
        assert_eq!(
            &bytes[..],
            &[2, b'a', 1, 0, 0, 0, 7, 0, 1, 0, 4, 1, 0, 5, 0]
        );
        assert_eq!(SyntheticRulesMessage::from_bytes(bytes, 2).unwrap(), m);
        // A varint 0 is null (an i8 reading would take it as present and run out of input).
        let null = Bytes::from_static(&[2, b'a', 1, 0, 0, 0, 7, 0, 1, 0, 1, 0]);
        let decoded = SyntheticRulesMessage::from_bytes(null, 2).unwrap();
        assert_eq!(decoded.tagged_struct, None);
        // Multi-byte varints other than 0 mean present.
        let present =
            Bytes::from_static(&[2, b'a', 1, 0, 0, 0, 7, 0, 1, 0, 5, 0x80, 0x01, 0, 9, 0]);
        let decoded = SyntheticRulesMessage::from_bytes(present, 2).unwrap();
        assert_eq!(decoded.tagged_struct.map(|s| s.count), Some(9));
    }

    #[test]
    fn unknown_tagged_fields_in_a_version_without_tagged_fields_are_an_error() {
        let mut m = message("a");
        m.unknown_tagged_fields.push(UnknownTaggedField {
            tag: 9,
            data: Bytes::from_static(b"x"),
        });
        assert!(matches!(
            m.to_bytes(1),
            Err(EncodeError::TaggedFieldsSet {
                message: "SyntheticRulesMessage",
                version: 1
            })
        ));
        let mut nested = message("a");
        nested.maybe_struct.as_mut().unwrap().unknown_tagged_fields =
            m.unknown_tagged_fields.clone();
        assert!(matches!(
            nested.to_bytes(0),
            Err(EncodeError::TaggedFieldsSet {
                message: "PresenceStruct",
                ..
            })
        ));
        assert!(m.to_bytes(2).is_ok());
    }

    #[test]
    fn unknown_tagged_fields_are_written_in_tag_order() {
        let raw = |tag: u32| UnknownTaggedField {
            tag,
            data: Bytes::from(vec![tag as u8]),
        };
        let mut m = message("a").with_tagged_number(3);
        m.unknown_tagged_fields = vec![raw(7), raw(2), raw(5)];
        let bytes = encode(&m, 3).unwrap();
        let mut expected = BytesMut::new();
        expected.put_slice(&[2, b'a', 1, 0, 0, 0, 7, 0]);
        expected.put_slice(&[4]); // four tagged fields
        expected.put_slice(&[1, 8, 0, 0, 0, 0, 0, 0, 0, 3]); // known tag 1
        expected.put_slice(&[2, 1, 2, 5, 1, 5, 7, 1, 7]); // raw 2, 5, 7
        assert_eq!(bytes, expected.freeze());
        let decoded = SyntheticRulesMessage::from_bytes(bytes, 3).unwrap();
        let tags: Vec<u32> = decoded
            .unknown_tagged_fields
            .iter()
            .map(|u| u.tag)
            .collect();
        assert_eq!(tags, [2, 5, 7]);
    }

    #[test]
    fn strings_longer_than_0x7fff_bytes_are_rejected_both_ways() {
        let long = "x".repeat(0x8000);
        for version in 0..=3 {
            assert!(matches!(
                message(&long).to_bytes(version),
                Err(EncodeError::StringTooLong(0x8000))
            ));
        }
        assert!(message(&"x".repeat(0x7fff)).to_bytes(2).is_ok());
        // A compact length of 0x8000 (+1) can be expressed, but Java's reader refuses it.
        let mut wire = BytesMut::new();
        crate::protocol::primitives::put_unsigned_varint(&mut wire, 0x8001);
        wire.put_slice(long.as_bytes());
        wire.put_slice(&[1, 0, 0, 0, 7, 0, 0]);
        let err = SyntheticRulesMessage::decode(&mut wire.freeze(), 2).unwrap_err();
        assert_eq!(err.root_cause(), &DecodeError::InvalidLength(0x8000));
        assert_eq!(err.field().unwrap().path(), "SyntheticRulesMessage.name");
    }
}

// ---------------------------------------------------------------------------
// Public API edges.
// ---------------------------------------------------------------------------

mod api_edges {
    use bytes::{BufMut, Bytes, BytesMut};

    use crate::protocol::messages::{
        ApiVersionsResponse, CreateAclsResponse, CreateTopicsResponse, MetadataRequest,
    };
    use crate::protocol::{
        decode_response_frame, encode_request_frame, encode_response_frame, peek_correlation_id,
        ApiKey, DecodeError, Encodable, Message, ResponseKind,
    };

    #[test]
    fn a_null_in_a_non_nullable_field_names_the_field_and_offset() {
        // CreateAclsResponse v0: throttle_time_ms, then a null results array.
        let body = Bytes::from_static(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        let err = CreateAclsResponse::from_bytes(body, 0).unwrap_err();
        let field = err.field().expect("field context");
        assert_eq!(field.path(), "CreateAclsResponse.results");
        assert_eq!(field.offset(), 4);
        assert_eq!(err.root_cause(), &DecodeError::UnexpectedNull);
        assert!(
            err.to_string().contains("CreateAclsResponse.results"),
            "{err}"
        );

        // Nested: CreateTopicsResponse v0, one topic whose name is null.
        let body = Bytes::from_static(&[0, 0, 0, 1, 0xff, 0xff, 0, 0]);
        let err = CreateTopicsResponse::from_bytes(body.clone(), 0).unwrap_err();
        let field = err.field().unwrap();
        assert_eq!(field.path(), "CreateTopicsResponse.topics.name");
        assert_eq!(field.offset(), 4);

        // From a frame: offsets count from the frame start (after the size prefix).
        let mut frame = BytesMut::new();
        frame.put_i32(42);
        frame.put_slice(&body);
        let err = decode_response_frame(frame.freeze(), ApiKey::CreateTopics, 0).unwrap_err();
        assert_eq!(err.field().unwrap().offset(), 8);
    }

    #[test]
    fn decode_response_frame_reads_an_api_versions_error_in_the_v0_layout() {
        // KIP-511: ApiVersions v3 rejected with UNSUPPORTED_VERSION in a v0 body.
        let mut frame = BytesMut::new();
        frame.put_i32(5); // correlation id (response header v0)
        frame.put_i16(35);
        frame.put_i32(1);
        frame.put_slice(&[0, 18, 0, 0, 0, 3]);
        let (header, body) = decode_response_frame(frame.freeze(), ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(header.correlation_id, 5);
        let ResponseKind::ApiVersions(v0) = body else {
            panic!("not ApiVersions: {body:?}")
        };
        assert_eq!(v0.error_code, 35);
        assert_eq!(v0.api_keys.len(), 1);
        assert_eq!(v0.api_keys[0].max_version, 3);
    }

    #[test]
    fn encode_response_frame_and_peek_correlation_id_are_exported() {
        let mut buf = BytesMut::new();
        let response = ApiVersionsResponse::default().with_throttle_time_ms(3);
        encode_response_frame(&mut buf, 77, 3, &response).unwrap();
        let frame = buf.split_off(4).freeze();
        assert_eq!(peek_correlation_id(&frame).unwrap(), 77);
        let (_, body) = decode_response_frame(frame, ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(body, ResponseKind::ApiVersions(response));
    }

    #[test]
    fn frames_are_sized_once_from_encoded_len() {
        let request = MetadataRequest::default().with_topics(None);
        let mut buf = BytesMut::new();
        encode_request_frame(
            &mut buf,
            1,
            Some("a-client-id-of-some-length"),
            12,
            &request,
        )
        .unwrap();
        assert_eq!(buf.capacity(), buf.len(), "one exact reservation");
        assert_eq!(
            request.encoded_len(12) + 4 + 2 + 2 + 4 + 2 + 26 + 1,
            buf.len()
        );
    }
}
