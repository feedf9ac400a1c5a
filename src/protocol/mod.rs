//! The wire protocol layer: primitive types, the messages generated from
//! Apache Kafka's JSON specs (`protocol-spec/`), request/response framing and
//! the error-code table.
//!
//! Nothing above this module is needed to encode or decode a Kafka frame.

pub mod error_code;
pub mod primitives;

pub use error_code::ErrorCode;
pub use primitives::{UnknownTaggedField, Uuid};

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
