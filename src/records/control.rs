//! Control records: the markers brokers write into control batches
//! (attribute bit 5), most importantly transaction commit/abort markers.
//!
//! The key is `version i16, type i16`; for commit and abort markers the value
//! is `version i16, coordinatorEpoch i32`.

use bytes::Bytes;

use crate::protocol::primitives::{read_i16, read_i32};

use super::{Record, RecordsError};

/// The kind of a control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// A transaction was aborted (type 0).
    Abort,
    /// A transaction was committed (type 1).
    Commit,
    /// Any other type (leader change, snapshot markers, ...), kept as its id.
    Other(i16),
}

impl ControlRecordType {
    /// The type for a wire id.
    pub fn from_id(id: i16) -> Self {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Other(other),
        }
    }

    /// The wire id.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(id) => id,
        }
    }
}

/// The value of a commit or abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTransactionMarker {
    /// Value schema version (0 today).
    pub version: i16,
    /// Epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTransactionMarker {
    /// Encodes the marker value (version 0 layout).
    pub fn encode(&self) -> [u8; 6] {
        let mut out = [0u8; 6];
        out[..2].copy_from_slice(&self.version.to_be_bytes());
        out[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        out
    }
}

/// A parsed control record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRecord {
    /// Key schema version (0 today).
    pub version: i16,
    /// What the record marks.
    pub kind: ControlRecordType,
    /// For commit and abort markers, the parsed value.
    pub end_transaction: Option<EndTransactionMarker>,
    /// The raw value, for control types this library does not interpret.
    pub value: Option<Bytes>,
}

impl ControlRecord {
    /// A commit or abort marker.
    pub fn end_transaction(commit: bool, coordinator_epoch: i32) -> Self {
        let marker = EndTransactionMarker {
            version: 0,
            coordinator_epoch,
        };
        ControlRecord {
            version: 0,
            kind: if commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            },
            end_transaction: Some(marker),
            value: Some(Bytes::copy_from_slice(&marker.encode())),
        }
    }

    /// Parses a record read from a control batch.
    pub fn parse(record: &Record) -> Result<Self, RecordsError> {
        let mut key = record
            .key
            .clone()
            .ok_or_else(|| RecordsError::corrupt("control record without a key"))?;
        let version = read_i16(&mut key)?;
        if version < 0 {
            return Err(RecordsError::corrupt(format!(
                "negative control record key version {version}"
            )));
        }
        let kind = ControlRecordType::from_id(read_i16(&mut key)?);
        let end_transaction = match kind {
            ControlRecordType::Abort | ControlRecordType::Commit => {
                let mut value = record
                    .value
                    .clone()
                    .ok_or_else(|| RecordsError::corrupt("transaction marker without a value"))?;
                Some(EndTransactionMarker {
                    version: read_i16(&mut value)?,
                    coordinator_epoch: read_i32(&mut value)?,
                })
            }
            ControlRecordType::Other(_) => None,
        };
        Ok(ControlRecord {
            version,
            kind,
            end_transaction,
            value: record.value.clone(),
        })
    }

    /// Encodes the key (`version`, `type`).
    pub fn encode_key(&self) -> [u8; 4] {
        let mut out = [0u8; 4];
        out[..2].copy_from_slice(&self.version.to_be_bytes());
        out[2..].copy_from_slice(&self.kind.id().to_be_bytes());
        out
    }
}
