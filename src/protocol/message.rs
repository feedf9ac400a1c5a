//! The traits every generated message implements, and version ranges.

use bytes::{Bytes, BytesMut};

use super::{ApiKey, DecodeError, EncodeError};

/// An inclusive range of protocol versions; empty when `min > max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// The lowest version in the range.
    pub min: i16,
    /// The highest version in the range.
    pub max: i16,
}

impl VersionRange {
    /// A range from `min` to `max` inclusive.
    pub const fn new(min: i16, max: i16) -> Self {
        VersionRange { min, max }
    }

    /// Whether `version` lies in the range.
    #[inline]
    pub const fn contains(&self, version: i16) -> bool {
        version >= self.min && version <= self.max
    }

    /// Whether the range holds no version.
    pub const fn is_empty(&self) -> bool {
        self.min > self.max
    }

    /// The versions in both ranges.
    pub fn intersect(&self, other: &VersionRange) -> VersionRange {
        VersionRange::new(self.min.max(other.min), self.max.min(other.max))
    }

    /// Iterates over the versions in the range.
    pub fn iter(&self) -> impl Iterator<Item = i16> {
        self.min..=self.max
    }
}

impl std::fmt::Display for VersionRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            f.write_str("none")
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// A value that can be written in a given protocol version.
pub trait Encodable {
    /// Appends the encoding of `self` for `version` to `buf`.
    ///
    /// Fails if `version` is not valid for the message, if a field that the
    /// version cannot carry holds a non-default value and the spec does not mark
    /// it ignorable, or if a non-nullable field holds null.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;

    /// The exact number of bytes [`Encodable::encode`] appends for `version`,
    /// so that a frame or batch can be sized once. Generated messages compute
    /// it without encoding; the default implementation encodes into a scratch
    /// buffer. Meaningless (but harmless) when `encode` would fail.
    ///
    /// ```
    /// use ferrokafka::protocol::{Encodable, Message, messages::MetadataRequest};
    /// let request = MetadataRequest::default().with_topics(None);
    /// assert_eq!(request.encoded_len(12), request.to_bytes(12).unwrap().len());
    /// ```
    fn encoded_len(&self, version: i16) -> usize {
        let mut scratch = BytesMut::new();
        match self.encode(&mut scratch, version) {
            Ok(()) => scratch.len(),
            Err(_) => 0,
        }
    }
}

/// A value that can be read in a given protocol version.
pub trait Decodable: Sized {
    /// Reads a value from the front of `buf`, advancing it. Byte and records
    /// fields are zero-copy slices of `buf`.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
}

/// A top-level message generated from one spec file.
pub trait Message: Encodable + Decodable + Default + Clone + std::fmt::Debug + PartialEq {
    /// The message's name in the spec (`FetchRequest`, ...).
    const NAME: &'static str;
    /// The versions the spec defines.
    const VERSIONS: VersionRange;
    /// The versions that use compact encodings and tagged fields.
    const FLEXIBLE_VERSIONS: VersionRange;

    /// Encodes `self` into a fresh buffer.
    ///
    /// ```
    /// use ferrokafka::protocol::{Message, messages::MetadataRequest};
    /// // All topics (null), no auto-creation, no authorized operations, no tagged fields.
    /// let request = MetadataRequest::default()
    ///     .with_topics(None)
    ///     .with_allow_auto_topic_creation(false);
    /// let bytes = request.to_bytes(12).unwrap();
    /// assert_eq!(&bytes[..], &[0x00, 0x00, 0x00, 0x00]);
    /// assert_eq!(MetadataRequest::from_bytes(bytes, 12).unwrap(), request);
    /// ```
    fn to_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len(version));
        self.encode(&mut buf, version)?;
        Ok(buf.freeze())
    }

    /// Decodes a complete message: bytes left over are an error.
    fn from_bytes(mut bytes: Bytes, version: i16) -> Result<Self, DecodeError> {
        let value = Self::decode(&mut bytes, version)?;
        if !bytes.is_empty() {
            return Err(DecodeError::TrailingBytes(bytes.len()));
        }
        Ok(value)
    }
}

/// A request message: knows its API key and its response type.
pub trait Request: Message {
    /// The API this request belongs to.
    const API_KEY: ApiKey;
    /// The matching response type.
    type Response: Response;
}

/// A response message.
pub trait Response: Message {
    /// The API this response belongs to.
    const API_KEY: ApiKey;
}
