//! The wire protocol layer: primitive types, the messages generated from
//! Apache Kafka's JSON specs (`protocol-spec/`), request/response framing and
//! the error-code table.
//!
//! Nothing above this module is needed to encode or decode a Kafka frame.
//!
//! Every message type lives in [`messages`], one module per spec file (for
//! example [`messages::fetch_response`] holds `FetchResponse` and its nested
//! `FetchableTopicResponse`, `PartitionData`, ...), and the top-level types are
//! re-exported from [`messages`]. Arrays the spec marks with `mapKey` are kept
//! as vectors in wire order.

pub mod error_code;
pub mod frame;
pub mod message;
pub mod primitives;
#[cfg(test)]
pub(crate) mod sample;
pub(crate) mod splice;
#[cfg(test)]
mod tests;

pub use error_code::ErrorCode;
pub use frame::{
    decode_request_frame, decode_response_frame, encode_request_frame, encode_response_frame,
    peek_correlation_id,
};
pub use message::{Decodable, Encodable, Message, Request, Response, VersionRange};
pub use messages::{ApiKey, RequestKind, ResponseKind};
pub use primitives::{UnknownTaggedField, Uuid};

/// Every message generated from the specs in `protocol-spec/message/`
/// (checked in; regenerate with `cargo run --manifest-path codegen/Cargo.toml`).
#[allow(
    clippy::all,
    unused_parens,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]
pub mod messages;

/// `Sample` impls for every generated struct (tests only).
#[cfg(test)]
#[allow(clippy::all, unused_parens)]
mod sample_impls;

/// Messages from the synthetic specs in `codegen/tests/specs/` (tests only).
#[cfg(test)]
#[allow(clippy::all, dead_code, unused_imports)]
mod synthetic;

/// What the generated code refers to, in one place.
#[doc(hidden)]
pub mod generated_prelude {
    pub use super::message::{Decodable, Encodable, Message, Request, Response, VersionRange};
    pub use super::primitives::*;
    pub use super::{DecodeError, EncodeError};
    pub use bytes::{Buf, BufMut};
}
/// Why bytes could not be decoded. Decoding never panics: hostile input ends here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before a value was complete.
    #[error("input ended early: needed {needed} bytes, {remaining} remaining")]
    UnexpectedEof {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix was negative (other than the null marker) or otherwise impossible.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A varint ran past its maximum width.
    #[error("varint is longer than its type allows")]
    VarintOverflow,
    /// A string was not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A null was read where the spec does not allow one.
    #[error("null value in a non-nullable field")]
    UnexpectedNull,
    /// Decoding failed inside a field: which one, where, and why.
    #[error("{0}")]
    Field(Box<FieldError>),
    /// The API key is not one this library knows.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// The version is outside what the spec defines for this message.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// The message's name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// Bytes were left over after a complete message or nested value.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// Structurally invalid data (bad CRC, bad magic, ...).
    #[error("invalid data: {0}")]
    Invalid(String),
}

impl DecodeError {
    /// The error underneath any [`DecodeError::Field`] context.
    pub fn root_cause(&self) -> &DecodeError {
        match self {
            DecodeError::Field(f) => f.source.root_cause(),
            other => other,
        }
    }

    /// The field context, when the error happened inside a field.
    pub fn field(&self) -> Option<&FieldError> {
        match self {
            DecodeError::Field(f) => Some(f),
            _ => None,
        }
    }

    /// Adds the context of field `field` of struct `message`, which began with
    /// `field_remaining` bytes left in a struct that began with `start` left.
    /// Used by the generated decoders; the outermost struct's offsets win.
    #[doc(hidden)]
    #[cold]
    pub fn in_field(
        self,
        message: &'static str,
        field: &'static str,
        field_remaining: usize,
        start: usize,
    ) -> DecodeError {
        if field.is_empty() {
            return self;
        }
        match self {
            DecodeError::Field(mut f) => {
                // The inner path starts with the inner struct's name; the
                // outer field names it already.
                let inner = f.path.split_once('.').map_or("", |(_, rest)| rest);
                f.path = format!("{message}.{field}.{inner}");
                f.offset = start.saturating_sub(f.remaining);
                DecodeError::Field(f)
            }
            source => DecodeError::Field(Box::new(FieldError {
                path: format!("{message}.{field}"),
                offset: start.saturating_sub(field_remaining),
                remaining: field_remaining,
                source,
            })),
        }
    }

    /// Shifts a field offset by `body_start`, the bytes in front of the message
    /// (a frame's header), so that it counts from the start of the frame.
    pub(crate) fn in_frame(self, body_start: usize) -> DecodeError {
        match self {
            DecodeError::Field(mut f) => {
                f.offset += body_start;
                DecodeError::Field(f)
            }
            other => other,
        }
    }
}

/// Where inside a message decoding failed: the field path (for example
/// `CreateAclsResponse.results.error_message`) and the byte offset at which
/// that field starts, counted from the start of the message (or, from the frame
/// decoders, from the start of the frame after its size prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} (at byte {offset}): {source}")]
pub struct FieldError {
    path: String,
    offset: usize,
    remaining: usize,
    source: DecodeError,
}

impl FieldError {
    /// The field path, `Message.field.nested_field`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The byte offset at which the failing field starts.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong in the field.
    pub fn error(&self) -> &DecodeError {
        &self.source
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The version is outside what the spec defines for this message.
    #[error("{message} has no version {version}")]
    UnsupportedVersion {
        /// The message's name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A field holding a non-default value does not exist in the version being
    /// written, and the spec says dropping it would change the meaning.
    #[error("{message}.{field} is set but cannot be sent in version {version}")]
    NonIgnorableField {
        /// The message (or nested struct) name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version being written.
        version: i16,
    },
    /// A field holds null in a version where it is not nullable.
    #[error("{message}.{field} is null, which version {version} does not allow")]
    NullNotAllowed {
        /// The message (or nested struct) name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version being written.
        version: i16,
    },
    /// Tagged fields are set on a struct written in a version without tagged
    /// fields (Java: "Tagged fields were set").
    #[error("tagged fields were set, but version {version} of {message} does not support them")]
    TaggedFieldsSet {
        /// The message (or nested struct) name.
        message: &'static str,
        /// The version being written.
        version: i16,
    },
    /// A string is longer than the 0x7fff bytes Kafka's readers accept.
    #[error("string of {0} bytes is longer than the protocol's 32767")]
    StringTooLong(usize),
    /// A length does not fit the wire type.
    #[error("length {0} does not fit the wire format")]
    TooLarge(usize),
}
