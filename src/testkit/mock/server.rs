//! The brokers' network side: one listener per broker, one task per
//! connection reading frames, applying injected faults and dispatching to the
//! handlers, requests on a connection answered in order as Kafka does.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::{ApiVersionsResponse, RequestHeader, ResponseHeader};
use crate::protocol::{
    decode_request_frame, ApiKey, Encodable, ErrorCode, RequestKind, ResponseKind,
};

use super::faults::{error_response, take_fault, FaultAction};
use super::state::Shared;
use super::{fetch, group, metadata, produce, txn};

/// The largest request frame a mock broker reads (Kafka's `socket.request.max.bytes`).
const MAX_REQUEST: usize = 100 << 20;

/// The APIs the mock implements and the versions it serves: from the lowest
/// version whose semantics it supports to the newest stable version this
/// crate's codecs know.
pub(super) fn supported_versions() -> Vec<(ApiKey, i16)> {
    vec![
        (ApiKey::Produce, 3),
        (ApiKey::Fetch, 4),
        (ApiKey::ListOffsets, 1),
        (ApiKey::Metadata, 0),
        (ApiKey::OffsetCommit, 0),
        (ApiKey::OffsetFetch, 0),
        (ApiKey::FindCoordinator, 0),
        (ApiKey::JoinGroup, 0),
        (ApiKey::Heartbeat, 0),
        (ApiKey::LeaveGroup, 0),
        (ApiKey::SyncGroup, 0),
        (ApiKey::ApiVersions, 0),
        (ApiKey::CreateTopics, 0),
        (ApiKey::DeleteTopics, 0),
        (ApiKey::InitProducerId, 0),
        (ApiKey::OffsetForLeaderEpoch, 0),
        (ApiKey::AddPartitionsToTxn, 0),
        (ApiKey::AddOffsetsToTxn, 0),
        (ApiKey::EndTxn, 0),
        (ApiKey::TxnOffsetCommit, 0),
    ]
}

/// The version range the mock serves for `api`, if it implements it.
pub(super) fn served_range(api: ApiKey) -> Option<(i16, i16)> {
    supported_versions()
        .into_iter()
        .find(|&(a, _)| a == api)
        .map(|(a, min)| (min, a.stable_versions().max))
}

fn api_versions_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        supported_versions()
            .into_iter()
            .map(|(api, min)| {
                ApiVersion::default()
                    .with_api_key(api.key())
                    .with_min_version(min)
                    .with_max_version(api.stable_versions().max)
            })
            .collect(),
    )
}

/// What a handler answers. (One per request, moved once: not worth a box.)
#[allow(clippy::large_enum_variant)]
pub(super) enum Reply {
    /// Send this response.
    Response(ResponseKind),
    /// Send nothing (acks=0 produce).
    Nothing,
    /// Close the connection (what Kafka does with a request it cannot serve).
    Close,
}

/// Accepts connections for `node_id` until `stop` changes.
pub(super) async fn serve_broker(
    shared: Arc<Shared>,
    node_id: i32,
    listener: std::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(shared.clone(), node_id, stream, stop.clone()));
            }
            _ = stop.changed() => return,
        }
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    node_id: i32,
    mut stream: TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut stream) => frame,
            _ = stop.changed() => return,
        };
        let Some(frame) = frame else { return };
        let reply = tokio::select! {
            reply = handle_frame(&shared, node_id, frame) => reply,
            _ = stop.changed() => return,
        };
        match reply {
            Some(bytes) if !bytes.is_empty() => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Some(_) => {}
            None => return,
        }
    }
}

async fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.ok()?;
    let size = usize::try_from(i32::from_be_bytes(size)).ok()?;
    if size > MAX_REQUEST {
        return None;
    }
    let mut frame = BytesMut::zeroed(size);
    stream.read_exact(&mut frame).await.ok()?;
    Some(frame.freeze())
}

/// Handles one request frame: `Some(bytes)` to write (empty for no answer),
/// `None` to close the connection.
async fn handle_frame(shared: &Arc<Shared>, node_id: i32, frame: Bytes) -> Option<Bytes> {
    if frame.len() < 8 {
        return None;
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::from_key(api_key)?;
    let (min, max) = served_range(api)?;
    if !(min..=max).contains(&version) {
        if api == ApiKey::ApiVersions {
            // KIP-511: answer in v0 with the versions we do serve.
            let body =
                api_versions_response().with_error_code(ErrorCode::UnsupportedVersion.code());
            return encode(correlation_id, &ResponseKind::ApiVersions(body), api, 0);
        }
        return None;
    }
    let (header, body) = decode_request_frame(frame).ok()?;
    let fault = {
        let mut state = shared.lock();
        *state.request_counts.entry((node_id, api)).or_default() += 1;
        take_fault(&mut state.faults, node_id, api)
    };
    let reply = match fault {
        Some(FaultAction::DropConnection) => return None,
        Some(FaultAction::Error(code)) => match &body {
            // A fetch failing in every partition still moves its session on.
            RequestKind::Fetch(r) => Reply::Response(ResponseKind::Fetch(fetch::failed_fetch(
                shared, node_id, r, version, code,
            ))),
            _ => match error_response(&body, version, code) {
                Some(ResponseKind::Produce(mut r)) => {
                    // As Kafka's leader does, a failed partition still reports
                    // its log start offset (the producer's UNKNOWN_PRODUCER_ID
                    // handling compares it with its last acknowledged offset).
                    produce::fill_log_start_offsets(shared, node_id, &mut r);
                    Reply::Response(ResponseKind::Produce(r))
                }
                Some(r) => Reply::Response(r),
                None => Reply::Close,
            },
        },
        Some(FaultAction::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            dispatch(shared, node_id, &header, body).await
        }
        None => dispatch(shared, node_id, &header, body).await,
    };
    match reply {
        Reply::Response(response) => encode(correlation_id, &response, api, version),
        Reply::Nothing => Some(Bytes::new()),
        Reply::Close => None,
    }
}

fn encode(correlation_id: i32, body: &ResponseKind, api: ApiKey, version: i16) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(&[0; 4]);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))
        .ok()?;
    if let Err(e) = body.encode(&mut buf, version) {
        tracing::warn!(?api, version, error = %e, "mock broker could not encode its response");
        return None;
    }
    let size = u32::try_from(buf.len() - 4).ok()?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Some(buf.freeze())
}

async fn dispatch(
    shared: &Arc<Shared>,
    node_id: i32,
    header: &RequestHeader,
    body: RequestKind,
) -> Reply {
    let version = header.request_api_version;
    match body {
        RequestKind::ApiVersions(_) => {
            Reply::Response(ResponseKind::ApiVersions(api_versions_response()))
        }
        RequestKind::Metadata(r) => Reply::Response(ResponseKind::Metadata(metadata::metadata(
            shared, node_id, &r, version,
        ))),
        RequestKind::CreateTopics(r) => Reply::Response(ResponseKind::CreateTopics(
            metadata::create_topics(shared, node_id, &r, version),
        )),
        RequestKind::DeleteTopics(r) => Reply::Response(ResponseKind::DeleteTopics(
            metadata::delete_topics(shared, node_id, &r, version),
        )),
        RequestKind::FindCoordinator(r) => Reply::Response(ResponseKind::FindCoordinator(
            metadata::find_coordinator(shared, &r, version),
        )),
        RequestKind::Produce(r) => match produce::produce(shared, node_id, &r, version) {
            Some(response) => Reply::Response(ResponseKind::Produce(response)),
            None => Reply::Nothing,
        },
        RequestKind::Fetch(r) => Reply::Response(ResponseKind::Fetch(
            fetch::fetch(shared, node_id, r, version).await,
        )),
        RequestKind::ListOffsets(r) => Reply::Response(ResponseKind::ListOffsets(
            fetch::list_offsets(shared, node_id, &r, version),
        )),
        RequestKind::OffsetForLeaderEpoch(r) => Reply::Response(
            ResponseKind::OffsetForLeaderEpoch(fetch::offset_for_leader_epoch(shared, node_id, &r)),
        ),
        RequestKind::JoinGroup(r) => Reply::Response(ResponseKind::JoinGroup(
            group::join_group(shared, node_id, r, header, version).await,
        )),
        RequestKind::SyncGroup(r) => Reply::Response(ResponseKind::SyncGroup(
            group::sync_group(shared, node_id, r).await,
        )),
        RequestKind::Heartbeat(r) => Reply::Response(ResponseKind::Heartbeat(group::heartbeat(
            shared, node_id, &r,
        ))),
        RequestKind::LeaveGroup(r) => Reply::Response(ResponseKind::LeaveGroup(
            group::leave_group(shared, node_id, &r, version),
        )),
        RequestKind::OffsetCommit(r) => Reply::Response(ResponseKind::OffsetCommit(
            group::offset_commit(shared, node_id, &r),
        )),
        RequestKind::OffsetFetch(r) => Reply::Response(ResponseKind::OffsetFetch(
            group::offset_fetch(shared, node_id, &r, version),
        )),
        RequestKind::InitProducerId(r) => Reply::Response(ResponseKind::InitProducerId(
            txn::init_producer_id(shared, node_id, &r),
        )),
        RequestKind::AddPartitionsToTxn(r) => Reply::Response(ResponseKind::AddPartitionsToTxn(
            txn::add_partitions(shared, node_id, &r, version),
        )),
        RequestKind::AddOffsetsToTxn(r) => Reply::Response(ResponseKind::AddOffsetsToTxn(
            txn::add_offsets(shared, node_id, &r),
        )),
        RequestKind::EndTxn(r) => {
            Reply::Response(ResponseKind::EndTxn(txn::end_txn(shared, node_id, &r)))
        }
        RequestKind::TxnOffsetCommit(r) => Reply::Response(ResponseKind::TxnOffsetCommit(
            txn::txn_offset_commit(shared, node_id, &r),
        )),
        _ => Reply::Close,
    }
}

/// A quick pause used by waits that poll (session checks, txn timeouts).
pub(super) const TICK: Duration = Duration::from_millis(10);
