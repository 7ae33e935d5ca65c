//! The one error type of the packet layer.
//!
//! Every error names the layer it came from and what went wrong in numbers a person can check:
//! what was required, what was there, and where the length came from (the slice itself, or a
//! length field in a header). Modelled on etherparse's `LenError`.

use core::fmt;

/// The protocol layer an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The IPv4 header.
    Ipv4,
    /// An IPv4 option.
    Ipv4Option,
    /// An ICMPv4 message.
    Icmp,
    /// An RFC 4884 ICMP extension structure or object.
    IcmpExtension,
    /// A UDP header.
    Udp,
    /// The builder composing a datagram.
    Builder,
    /// The fragmenter.
    Fragment,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ipv4 => "ipv4",
            Layer::Ipv4Option => "ipv4 option",
            Layer::Icmp => "icmp",
            Layer::IcmpExtension => "icmp extension",
            Layer::Udp => "udp",
            Layer::Builder => "builder",
            Layer::Fragment => "fragment",
        })
    }
}

/// Where a required length came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LenSource {
    /// The fixed minimum size of the header.
    Header,
    /// The slice handed to the parser.
    Slice,
    /// The IPv4 IHL field.
    Ipv4Ihl,
    /// The IPv4 total length field.
    Ipv4TotalLen,
    /// An IPv4 option's length byte.
    OptionLen,
    /// The UDP length field.
    UdpLen,
    /// The RFC 4884 length field of an ICMP error.
    IcmpLength,
    /// An ICMP extension object's length field.
    ObjectLen,
    /// The caller's output buffer.
    Buffer,
}

impl fmt::Display for LenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LenSource::Header => "minimum header size",
            LenSource::Slice => "slice length",
            LenSource::Ipv4Ihl => "IHL field",
            LenSource::Ipv4TotalLen => "total length field",
            LenSource::OptionLen => "option length byte",
            LenSource::UdpLen => "UDP length field",
            LenSource::IcmpLength => "RFC 4884 length field",
            LenSource::ObjectLen => "object length field",
            LenSource::Buffer => "output buffer",
        })
    }
}

/// Everything that can go wrong while parsing or building packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes were present than a length (from `source`) requires.
    Truncated {
        /// Layer being parsed.
        layer: Layer,
        /// Bytes required.
        need: usize,
        /// Bytes present.
        have: usize,
        /// Where `need` came from.
        source: LenSource,
        /// Offset of the layer inside the buffer handed to the parser.
        offset: usize,
    },
    /// A length field is smaller than its layer's minimum, or inconsistent with another field.
    BadLength {
        /// Layer being parsed.
        layer: Layer,
        /// The field that is wrong.
        field: &'static str,
        /// Its value.
        value: usize,
        /// What it must at least be.
        min: usize,
    },
    /// A field holds a value the layer cannot accept (an IPv4 version other than 4, say).
    BadValue {
        /// Layer being parsed or built.
        layer: Layer,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A checksum does not verify.
    Checksum {
        /// Layer whose checksum failed.
        layer: Layer,
        /// The value in the packet.
        found: u16,
        /// The value that would have been correct.
        expected: u16,
    },
    /// The output buffer is too small for what is being built.
    BufferTooSmall {
        /// Layer being written.
        layer: Layer,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// What the caller asked the builder or fragmenter for cannot be made.
    Invalid {
        /// Layer.
        layer: Layer,
        /// What is wrong and how to fix it.
        reason: &'static str,
    },
}

impl Error {
    /// The layer this error belongs to.
    pub fn layer(&self) -> Layer {
        match *self {
            Error::Truncated { layer, .. }
            | Error::BadLength { layer, .. }
            | Error::BadValue { layer, .. }
            | Error::Checksum { layer, .. }
            | Error::BufferTooSmall { layer, .. }
            | Error::Invalid { layer, .. } => layer,
        }
    }

    pub(crate) fn truncated(layer: Layer, need: usize, have: usize, source: LenSource) -> Error {
        Error::Truncated {
            layer,
            need,
            have,
            source,
            offset: 0,
        }
    }

    /// The same error with `by` added to the offset of a truncation (for nested layers).
    pub fn add_offset(self, by: usize) -> Error {
        match self {
            Error::Truncated {
                layer,
                need,
                have,
                source,
                offset,
            } => Error::Truncated {
                layer,
                need,
                have,
                source,
                offset: offset + by,
            },
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated {
                layer,
                need,
                have,
                source,
                offset,
            } => {
                write!(
                    f,
                    "{layer}: truncated: need {need} bytes, have {have} (required by the {source}"
                )?;
                if *offset != 0 {
                    write!(f, ", layer at offset {offset}")?;
                }
                f.write_str(")")
            }
            Error::BadLength {
                layer,
                field,
                value,
                min,
            } => write!(f, "{layer}: {field} {value} is below the minimum {min}"),
            Error::BadValue {
                layer,
                field,
                value,
                expected,
            } => write!(f, "{layer}: {field} is {value}, expected {expected}"),
            Error::Checksum {
                layer,
                found,
                expected,
            } => write!(
                f,
                "{layer}: bad checksum 0x{found:04x}, expected 0x{expected:04x}"
            ),
            Error::BufferTooSmall { layer, need, have } => write!(
                f,
                "{layer}: output buffer too small: need {need} bytes, have {have}"
            ),
            Error::Invalid { layer, reason } => write!(f, "{layer}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias of the packet layer.
pub type Result<T> = core::result::Result<T, Error>;
