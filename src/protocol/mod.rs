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
#[cfg(test)]
mod tests;

pub use error_code::ErrorCode;
pub use frame::{decode_request_frame, decode_response_frame, encode_request_frame};
pub use message::{Decodable, Encodable, Message, Request, Response, VersionRange};
pub use messages::{ApiKey, RequestKind, ResponseKind};
pub use primitives::{UnknownTaggedField, Uuid};

/// Every message generated from the specs in `protocol-spec/message/`.
#[allow(
    clippy::all,
    unused_parens,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]
pub mod messages {
    #[allow(unused_imports)]
    use super::generated_prelude::*;
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

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
    /// A length does not fit the wire type.
    #[error("length {0} does not fit the wire format")]
    TooLarge(usize),
}
