//! ICMPv4 messages (RFC 792), with the quoted datagram of error messages and RFC 4884
//! extensions (RFC 4950 MPLS label stacks).
//!
//! [`IcmpPacket`] is the zero-copy view: every field of the 8-byte header, the data, and for error
//! messages the quoted IPv4 header ([`IcmpPacket::quoted_ipv4`]), the quoted transport bytes
//! ([`IcmpPacket::quote_info`]) and the extension structure ([`IcmpPacket::extensions`]).
//! [`IcmpRepr`] is the everyday enum; it emits as well as parses, so a crafted time exceeded with
//! a quote and an MPLS label stack is one value.
//!
//! The checksum is never checked implicitly: raw sockets deliver packets whose checksum is wrong,
//! so callers ask [`IcmpPacket::verify_checksum`] (ping prints `(BAD CHECKSUM!)` rather than
//! dropping).

use super::checksum;
use super::error::{Error, Layer, LenSource, Result};
use super::ipv4::{IpProtocol, Ipv4Packet};
use super::{read_u16, read_u32, write_u16};
use core::fmt;
use std::net::Ipv4Addr;

/// Size of the ICMP header (type, code, checksum and the 4-byte rest of header).
pub const HEADER_LEN: usize = 8;

/// RFC 4884 section 4.1: with extensions present, the original datagram field is zero-padded to
/// at least 128 bytes.
pub const EXTENSION_MIN_QUOTE: usize = 128;

/// The longest original datagram field the RFC 4884 length byte can announce (255 words).
pub const MAX_QUOTE_WITH_EXTENSIONS: usize = 255 * 4;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Parameter problem pointer.
    pub const POINTER: usize = 4;
    /// RFC 4884 length of the original datagram, in 32-bit words (types 3, 11, 12).
    pub const LENGTH: usize = 5;
    /// RFC 1191 next-hop MTU (type 3 code 4).
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub const DATA: usize = 8;
}

/// ICMP message types, unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpType {
    /// 0
    EchoReply,
    /// 3
    DstUnreachable,
    /// 4 (deprecated by RFC 6633)
    SourceQuench,
    /// 5
    Redirect,
    /// 8
    EchoRequest,
    /// 9
    RouterAdvert,
    /// 10
    RouterSolicit,
    /// 11
    TimeExceeded,
    /// 12
    ParamProblem,
    /// 13
    Timestamp,
    /// 14
    TimestampReply,
    /// 15
    InfoRequest,
    /// 16
    InfoReply,
    /// 17
    AddressMaskRequest,
    /// 18
    AddressMaskReply,
    /// Any other type.
    Unknown(u8),
}

impl From<u8> for IcmpType {
    fn from(v: u8) -> Self {
        match v {
            0 => IcmpType::EchoReply,
            3 => IcmpType::DstUnreachable,
            4 => IcmpType::SourceQuench,
            5 => IcmpType::Redirect,
            8 => IcmpType::EchoRequest,
            9 => IcmpType::RouterAdvert,
            10 => IcmpType::RouterSolicit,
            11 => IcmpType::TimeExceeded,
            12 => IcmpType::ParamProblem,
            13 => IcmpType::Timestamp,
            14 => IcmpType::TimestampReply,
            15 => IcmpType::InfoRequest,
            16 => IcmpType::InfoReply,
            17 => IcmpType::AddressMaskRequest,
            18 => IcmpType::AddressMaskReply,
            n => IcmpType::Unknown(n),
        }
    }
}

impl From<IcmpType> for u8 {
    fn from(t: IcmpType) -> u8 {
        match t {
            IcmpType::EchoReply => 0,
            IcmpType::DstUnreachable => 3,
            IcmpType::SourceQuench => 4,
            IcmpType::Redirect => 5,
            IcmpType::EchoRequest => 8,
            IcmpType::RouterAdvert => 9,
            IcmpType::RouterSolicit => 10,
            IcmpType::TimeExceeded => 11,
            IcmpType::ParamProblem => 12,
            IcmpType::Timestamp => 13,
            IcmpType::TimestampReply => 14,
            IcmpType::InfoRequest => 15,
            IcmpType::InfoReply => 16,
            IcmpType::AddressMaskRequest => 17,
            IcmpType::AddressMaskReply => 18,
            IcmpType::Unknown(n) => n,
        }
    }
}

impl IcmpType {
    /// True for the error messages that quote the datagram that caused them (RFC 792, RFC 1122
    /// 3.2.2): destination unreachable, source quench, redirect, time exceeded, parameter problem.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            IcmpType::DstUnreachable
                | IcmpType::SourceQuench
                | IcmpType::Redirect
                | IcmpType::TimeExceeded
                | IcmpType::ParamProblem
        )
    }

    /// True for the types whose byte 5 is the RFC 4884 length of the original datagram.
    pub fn has_rfc4884_length(self) -> bool {
        matches!(
            self,
            IcmpType::DstUnreachable | IcmpType::TimeExceeded | IcmpType::ParamProblem
        )
    }
}

impl fmt::Display for IcmpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IcmpType::EchoReply => f.write_str("echo reply"),
            IcmpType::DstUnreachable => f.write_str("destination unreachable"),
            IcmpType::SourceQuench => f.write_str("source quench"),
            IcmpType::Redirect => f.write_str("redirect"),
            IcmpType::EchoRequest => f.write_str("echo request"),
            IcmpType::RouterAdvert => f.write_str("router advertisement"),
            IcmpType::RouterSolicit => f.write_str("router solicitation"),
            IcmpType::TimeExceeded => f.write_str("time exceeded"),
            IcmpType::ParamProblem => f.write_str("parameter problem"),
            IcmpType::Timestamp => f.write_str("time stamp query"),
            IcmpType::TimestampReply => f.write_str("time stamp reply"),
            IcmpType::InfoRequest => f.write_str("information request"),
            IcmpType::InfoReply => f.write_str("information reply"),
            IcmpType::AddressMaskRequest => f.write_str("address mask request"),
            IcmpType::AddressMaskReply => f.write_str("address mask reply"),
            IcmpType::Unknown(n) => write!(f, "type-#{n}"),
        }
    }
}

/// Destination unreachable codes (RFC 792, RFC 1122, RFC 1812), unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0
    NetUnreachable,
    /// 1
    HostUnreachable,
    /// 2
    ProtoUnreachable,
    /// 3
    PortUnreachable,
    /// 4: fragmentation needed and DF set; the message carries the next-hop MTU (RFC 1191).
    FragRequired,
    /// 5
    SrcRouteFailed,
    /// 6
    DstNetUnknown,
    /// 7
    DstHostUnknown,
    /// 8
    SrcHostIsolated,
    /// 9
    NetProhibited,
    /// 10
    HostProhibited,
    /// 11
    NetUnreachToS,
    /// 12
    HostUnreachToS,
    /// 13: communication administratively prohibited (RFC 1812).
    CommProhibited,
    /// 14
    HostPrecedenceViolation,
    /// 15
    PrecedenceCutoff,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for DstUnreachable {
    fn from(v: u8) -> Self {
        use DstUnreachable::*;
        match v {
            0 => NetUnreachable,
            1 => HostUnreachable,
            2 => ProtoUnreachable,
            3 => PortUnreachable,
            4 => FragRequired,
            5 => SrcRouteFailed,
            6 => DstNetUnknown,
            7 => DstHostUnknown,
            8 => SrcHostIsolated,
            9 => NetProhibited,
            10 => HostProhibited,
            11 => NetUnreachToS,
            12 => HostUnreachToS,
            13 => CommProhibited,
            14 => HostPrecedenceViolation,
            15 => PrecedenceCutoff,
            n => Unknown(n),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(c: DstUnreachable) -> u8 {
        use DstUnreachable::*;
        match c {
            NetUnreachable => 0,
            HostUnreachable => 1,
            ProtoUnreachable => 2,
            PortUnreachable => 3,
            FragRequired => 4,
            SrcRouteFailed => 5,
            DstNetUnknown => 6,
            DstHostUnknown => 7,
            SrcHostIsolated => 8,
            NetProhibited => 9,
            HostProhibited => 10,
            NetUnreachToS => 11,
            HostUnreachToS => 12,
            CommProhibited => 13,
            HostPrecedenceViolation => 14,
            PrecedenceCutoff => 15,
            Unknown(n) => n,
        }
    }
}

impl fmt::Display for DstUnreachable {
    /// The words iputils ping prints (`ping/ping.c`, `pr_icmph`); code 4's MTU is added by the
    /// caller, which has the message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DstUnreachable::*;
        match self {
            NetUnreachable => f.write_str("Destination Net Unreachable"),
            HostUnreachable => f.write_str("Destination Host Unreachable"),
            ProtoUnreachable => f.write_str("Destination Protocol Unreachable"),
            PortUnreachable => f.write_str("Destination Port Unreachable"),
            FragRequired => f.write_str("Frag needed and DF set"),
            SrcRouteFailed => f.write_str("Source Route Failed"),
            DstNetUnknown => f.write_str("Destination Net Unknown"),
            DstHostUnknown => f.write_str("Destination Host Unknown"),
            SrcHostIsolated => f.write_str("Source Host Isolated"),
            NetProhibited => f.write_str("Destination Net Prohibited"),
            HostProhibited => f.write_str("Destination Host Prohibited"),
            NetUnreachToS => f.write_str("Destination Net Unreachable for Type of Service"),
            HostUnreachToS => f.write_str("Destination Host Unreachable for Type of Service"),
            CommProhibited => f.write_str("Packet filtered"),
            HostPrecedenceViolation => f.write_str("Precedence Violation"),
            PrecedenceCutoff => f.write_str("Precedence Cutoff"),
            Unknown(n) => write!(f, "Dest Unreachable, Bad Code: {n}"),
        }
    }
}

/// Time exceeded codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: TTL exceeded in transit.
    TtlExpired,
    /// 1: fragment reassembly time exceeded.
    FragExpired,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for TimeExceeded {
    fn from(v: u8) -> Self {
        match v {
            0 => TimeExceeded::TtlExpired,
            1 => TimeExceeded::FragExpired,
            n => TimeExceeded::Unknown(n),
        }
    }
}

impl From<TimeExceeded> for u8 {
    fn from(c: TimeExceeded) -> u8 {
        match c {
            TimeExceeded::TtlExpired => 0,
            TimeExceeded::FragExpired => 1,
            TimeExceeded::Unknown(n) => n,
        }
    }
}

impl fmt::Display for TimeExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeExceeded::TtlExpired => f.write_str("Time to live exceeded"),
            TimeExceeded::FragExpired => f.write_str("Frag reassembly time exceeded"),
            TimeExceeded::Unknown(n) => write!(f, "Time exceeded, Bad Code: {n}"),
        }
    }
}

/// Redirect codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Redirect {
    /// 0
    Net,
    /// 1
    Host,
    /// 2
    TosNet,
    /// 3
    TosHost,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for Redirect {
    fn from(v: u8) -> Self {
        match v {
            0 => Redirect::Net,
            1 => Redirect::Host,
            2 => Redirect::TosNet,
            3 => Redirect::TosHost,
            n => Redirect::Unknown(n),
        }
    }
}

impl From<Redirect> for u8 {
    fn from(c: Redirect) -> u8 {
        match c {
            Redirect::Net => 0,
            Redirect::Host => 1,
            Redirect::TosNet => 2,
            Redirect::TosHost => 3,
            Redirect::Unknown(n) => n,
        }
    }
}

impl fmt::Display for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redirect::Net => f.write_str("Redirect Network"),
            Redirect::Host => f.write_str("Redirect Host"),
            Redirect::TosNet => f.write_str("Redirect Type of Service and Network"),
            Redirect::TosHost => f.write_str("Redirect Type of Service and Host"),
            Redirect::Unknown(n) => write!(f, "Redirect, Bad Code: {n}"),
        }
    }
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps a buffer without checks (accessors may panic below 8 bytes).
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// Wraps a buffer of at least 8 bytes; afterwards no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = IcmpPacket::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The length check of [`IcmpPacket::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::truncated(
                Layer::Icmp,
                HEADER_LEN,
                have,
                LenSource::Header,
            ));
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Type byte.
    #[inline]
    pub fn msg_type(&self) -> IcmpType {
        IcmpType::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Code byte.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The 4-byte "rest of header" as one number.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::REST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Echo (and timestamp) identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo (and timestamp) sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// Parameter problem pointer (byte 4).
    #[inline]
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// RFC 4884 length of the original datagram in 32-bit words (byte 5); 0 means not given.
    #[inline]
    pub fn rfc4884_length(&self) -> u8 {
        self.buffer.as_ref()[field::LENGTH]
    }

    /// Next-hop MTU of a fragmentation-needed unreachable (RFC 1191, bytes 6-7).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU.start)
    }

    /// Gateway address of a redirect (bytes 4-7).
    #[inline]
    pub fn gateway(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::REST];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }

    /// The checksum the message should carry.
    pub fn compute_checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        let mut acc = checksum::Accumulator::new();
        acc.add(&b[..field::CHECKSUM.start])
            .add(&b[field::CHECKSUM.end..]);
        acc.checksum()
    }

    /// For an error message: the original datagram field, without the extension structure and
    /// without the zero padding RFC 4884 adds before it (see [`IcmpPacket::split_extensions`]).
    pub fn quoted_datagram(&self) -> &[u8] {
        self.split_extensions().0
    }

    /// Offset inside [`IcmpPacket::data`] where RFC 4884 extensions start, if any.
    pub fn extension_offset(&self) -> Option<usize> {
        let (_, ext) = self.split_extensions();
        ext.map(|e| self.data().len() - e.len())
    }

    /// Splits the data of an error message into the quoted datagram and the RFC 4884 extension
    /// structure, the way real routers send them:
    ///
    /// * length field L > 32 words: the quote is L*4 bytes, the extensions follow (compliant);
    /// * 0 < L <= 32: the quote is L*4 bytes, zero-padded to 128, extensions at byte 128 (compliant,
    ///   and also what routers that announce the unpadded length do);
    /// * L = 0 and more than 128 bytes: extensions at byte 128 only when they look like one
    ///   (version 2 and a checksum that verifies): RFC 4884 section 5's "non-compliant"
    ///   applications, which MPLS routers still are;
    /// * a length past the end, or fewer than 4 bytes of extension: no extensions.
    #[inline(always)]
    pub fn split_extensions(&self) -> (&[u8], Option<&[u8]>) {
        let data = self.data();
        // Extensions start at byte 128 of the data at the earliest and need 4 bytes.
        if data.len() < EXTENSION_MIN_QUOTE + EXTENSION_HEADER_LEN
            || !self.msg_type().has_rfc4884_length()
        {
            return (data, None);
        }
        let len = self.rfc4884_length() as usize * 4;
        let at = if len > EXTENSION_MIN_QUOTE {
            len
        } else {
            EXTENSION_MIN_QUOTE
        };
        // RFC 4884 section 5.4: a length that points past the end means no (valid) extensions.
        if len > data.len() || at + EXTENSION_HEADER_LEN > data.len() {
            return (data, None);
        }
        let ext = &data[at..];
        if len == 0 {
            let looks_right =
                ext[0] >> 4 == EXTENSION_VERSION && read_u16(ext, 2) != 0 && checksum::verify(ext);
            if !looks_right {
                return (data, None);
            }
            return (&data[..at], Some(ext));
        }
        (&data[..len], Some(ext))
    }

    /// The RFC 4884 extension structure, when announced by the length field.
    pub fn extensions(&self) -> Option<Result<Extensions<&[u8]>>> {
        let (_, ext) = self.split_extensions();
        ext.map(Extensions::new_checked)
    }

    /// The IPv4 header quoted by an error message, parsed laxly (the quoted total length usually
    /// exceeds what was quoted).
    #[inline(always)]
    pub fn quoted_ipv4(&self) -> Result<Ipv4Packet<&[u8]>> {
        Ipv4Packet::new_lax(self.quoted_datagram()).map_err(|e| e.add_offset(HEADER_LEN))
    }

    /// The interesting fields of the quoted datagram: its IPv4 header and, when at least 8 bytes
    /// of transport header were quoted (RFC 792), the UDP ports or the ICMP identifier and
    /// sequence. `None` when no complete IPv4 header was quoted.
    #[inline(always)]
    pub fn quote_info(&self) -> Option<QuoteInfo> {
        let ip = self.quoted_ipv4().ok()?;
        let transport = ip.payload();
        let t = if transport.len() >= 8 && ip.frag_offset() == 0 {
            match ip.protocol() {
                IpProtocol::Udp | IpProtocol::Tcp => QuotedTransport::Ports {
                    src_port: read_u16(transport, 0),
                    dst_port: read_u16(transport, 2),
                    checksum: read_u16(transport, 6),
                },
                IpProtocol::Icmp => QuotedTransport::Icmp {
                    msg_type: transport[0],
                    code: transport[1],
                    checksum: read_u16(transport, 2),
                    ident: read_u16(transport, 4),
                    seq_no: read_u16(transport, 6),
                },
                _ => QuotedTransport::Other,
            }
        } else {
            QuotedTransport::Missing
        };
        Some(QuoteInfo {
            src_addr: ip.src_addr(),
            dst_addr: ip.dst_addr(),
            protocol: ip.protocol(),
            ident: ip.ident(),
            ttl: ip.ttl(),
            tos: ip.tos(),
            total_len: ip.total_len(),
            header_len: ip.header_len() as u8,
            transport: t,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, t: IcmpType) {
        self.buffer.as_mut()[field::TYPE] = t.into();
    }

    /// Sets the code.
    pub fn set_msg_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    /// Sets the checksum field to any value.
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    /// Sets the 4-byte rest of header.
    pub fn set_rest_of_header(&mut self, v: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT.start, v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQNO.start, v);
    }

    /// Sets the parameter problem pointer.
    pub fn set_pointer(&mut self, v: u8) {
        self.buffer.as_mut()[field::POINTER] = v;
    }

    /// Sets the RFC 4884 length (32-bit words).
    pub fn set_rfc4884_length(&mut self, v: u8) {
        self.buffer.as_mut()[field::LENGTH] = v;
    }

    /// Sets the next-hop MTU.
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU.start, v);
    }

    /// Sets the redirect gateway.
    pub fn set_gateway(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&a.octets());
    }

    /// The data, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes and writes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }
}

/// What an ICMP error quoted of the datagram that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteInfo {
    /// Quoted source.
    pub src_addr: Ipv4Addr,
    /// Quoted destination.
    pub dst_addr: Ipv4Addr,
    /// Quoted protocol.
    pub protocol: IpProtocol,
    /// Quoted IPv4 identification.
    pub ident: u16,
    /// Quoted TTL (as it arrived at the reporting router: traceroute's "quoted TTL").
    pub ttl: u8,
    /// Quoted TOS byte.
    pub tos: u8,
    /// Quoted total length.
    pub total_len: u16,
    /// Quoted header length in bytes.
    pub header_len: u8,
    /// The first 8 transport bytes, decoded.
    pub transport: QuotedTransport,
}

/// The quoted transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotedTransport {
    /// UDP (or TCP) ports, and the UDP checksum.
    Ports {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// UDP checksum (TCP: the sequence number's low half).
        checksum: u16,
    },
    /// An ICMP header (an echo request, for ping and traceroute -I).
    Icmp {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// Checksum.
        checksum: u16,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
    },
    /// Another protocol.
    Other,
    /// Fewer than 8 bytes quoted, or a non-first fragment.
    Missing,
}

/// The RFC 4884 extension structure: a 4-byte header (version 2, checksum) and objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extensions<T: AsRef<[u8]>> {
    buffer: T,
}

/// Version of the RFC 4884 extension header.
pub const EXTENSION_VERSION: u8 = 2;
/// Size of the extension header.
pub const EXTENSION_HEADER_LEN: usize = 4;
/// Size of an object header (length, class-num, c-type).
pub const OBJECT_HEADER_LEN: usize = 4;
/// RFC 4950 MPLS label stack class.
pub const CLASS_MPLS: u8 = 1;
/// RFC 4950 incoming MPLS label stack c-type.
pub const CTYPE_MPLS_INCOMING: u8 = 1;

impl<T: AsRef<[u8]>> Extensions<T> {
    /// Wraps the bytes after the original datagram field; requires the 4-byte header.
    /// The version is not checked (see [`Extensions::version`]); nor is the checksum.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let have = buffer.as_ref().len();
        if have < EXTENSION_HEADER_LEN {
            return Err(Error::truncated(
                Layer::IcmpExtension,
                EXTENSION_HEADER_LEN,
                have,
                LenSource::Header,
            ));
        }
        Ok(Extensions { buffer })
    }

    /// The raw bytes, header included.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version (2 for RFC 4884).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 2)
    }

    /// True when the checksum verifies; RFC 4884 section 7 allows 0 for "not computed".
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == 0 || checksum::verify(self.buffer.as_ref())
    }

    /// The objects, one by one; a malformed object ends iteration with an error.
    pub fn objects(&self) -> ObjectIter<'_> {
        ObjectIter {
            data: &self.buffer.as_ref()[EXTENSION_HEADER_LEN..],
            pos: 0,
        }
    }
}

/// One extension object (RFC 4884 section 7): class-num, c-type and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionObject<'a> {
    /// Class-num.
    pub class_num: u8,
    /// C-type.
    pub c_type: u8,
    /// Payload (after the 4-byte object header).
    pub payload: &'a [u8],
}

impl<'a> ExtensionObject<'a> {
    /// True for an RFC 4950 incoming MPLS label stack.
    pub fn is_mpls(&self) -> bool {
        self.class_num == CLASS_MPLS && self.c_type == CTYPE_MPLS_INCOMING
    }

    /// The label stack entries of an MPLS object (empty for other objects).
    pub fn mpls_entries(&self) -> impl Iterator<Item = MplsEntry> + use<'a> {
        let payload: &'a [u8] = if self.is_mpls() { self.payload } else { &[] };
        payload
            .chunks_exact(4)
            .map(|c| MplsEntry::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// Bytes this object occupies.
    pub fn buffer_len(&self) -> usize {
        OBJECT_HEADER_LEN + self.payload.len()
    }
}

/// Iterator over extension objects.
#[derive(Debug, Clone)]
pub struct ObjectIter<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ObjectIter<'a> {
    type Item = Result<ExtensionObject<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.data[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let at = EXTENSION_HEADER_LEN + self.pos;
        if rest.len() < OBJECT_HEADER_LEN {
            self.pos = self.data.len();
            return Some(Err(Error::truncated(
                Layer::IcmpExtension,
                OBJECT_HEADER_LEN,
                rest.len(),
                LenSource::Header,
            )
            .add_offset(at)));
        }
        let len = read_u16(rest, 0) as usize;
        // RFC 4884 section 7: the length counts the object header; at least 4.
        if len < OBJECT_HEADER_LEN {
            self.pos = self.data.len();
            return Some(Err(Error::BadLength {
                layer: Layer::IcmpExtension,
                field: "object length",
                value: len,
                min: OBJECT_HEADER_LEN,
            }));
        }
        if rest.len() < len {
            self.pos = self.data.len();
            return Some(Err(Error::truncated(
                Layer::IcmpExtension,
                len,
                rest.len(),
                LenSource::ObjectLen,
            )
            .add_offset(at)));
        }
        self.pos += len;
        Some(Ok(ExtensionObject {
            class_num: rest[2],
            c_type: rest[3],
            payload: &rest[OBJECT_HEADER_LEN..len],
        }))
    }
}

/// One RFC 4950 (RFC 3032) label stack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MplsEntry {
    /// 20-bit label.
    pub label: u32,
    /// 3-bit traffic class (formerly EXP, RFC 5462).
    pub tc: u8,
    /// Bottom of stack.
    pub bottom: bool,
    /// TTL.
    pub ttl: u8,
}

impl MplsEntry {
    /// Decodes the 32-bit word.
    pub fn from_u32(v: u32) -> MplsEntry {
        MplsEntry {
            label: v >> 12,
            tc: ((v >> 9) & 0x7) as u8,
            bottom: (v >> 8) & 1 == 1,
            ttl: (v & 0xff) as u8,
        }
    }

    /// Encodes to the 32-bit word (label and TC masked to their widths).
    pub fn to_u32(self) -> u32 {
        ((self.label & 0xf_ffff) << 12)
            | ((self.tc as u32 & 0x7) << 9)
            | ((self.bottom as u32) << 8)
            | self.ttl as u32
    }
}

impl fmt::Display for MplsEntry {
    /// The Linux traceroute's form: `L=24001,E=0,S=1,T=1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "L={},E={},S={},T={}",
            self.label, self.tc, self.bottom as u8, self.ttl
        )
    }
}

/// An extension object to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectRepr<'a> {
    /// An RFC 4950 incoming label stack.
    Mpls(&'a [MplsEntry]),
    /// Any object, payload as given.
    Raw {
        /// Class-num.
        class_num: u8,
        /// C-type.
        c_type: u8,
        /// Payload.
        payload: &'a [u8],
    },
}

impl ObjectRepr<'_> {
    /// Bytes this object occupies.
    pub fn buffer_len(&self) -> usize {
        OBJECT_HEADER_LEN
            + match self {
                ObjectRepr::Mpls(e) => e.len() * 4,
                ObjectRepr::Raw { payload, .. } => payload.len(),
            }
    }
}

/// Writes an RFC 4884 extension structure (version 2, checksum filled) with `objects` into
/// `buf`; returns the bytes written. The result can be handed to [`IcmpRepr`] error variants
/// through [`Extensions::new_checked`].
pub fn emit_extensions(objects: &[ObjectRepr<'_>], buf: &mut [u8]) -> Result<usize> {
    let need = EXTENSION_HEADER_LEN + objects.iter().map(|o| o.buffer_len()).sum::<usize>();
    if buf.len() < need {
        return Err(Error::BufferTooSmall {
            layer: Layer::IcmpExtension,
            need,
            have: buf.len(),
        });
    }
    buf[..EXTENSION_HEADER_LEN].copy_from_slice(&[EXTENSION_VERSION << 4, 0, 0, 0]);
    let mut pos = EXTENSION_HEADER_LEN;
    for o in objects {
        let len = o.buffer_len();
        if len > u16::MAX as usize {
            return Err(Error::Invalid {
                layer: Layer::IcmpExtension,
                reason: "extension object longer than 65535 bytes",
            });
        }
        write_u16(buf, pos, len as u16);
        match o {
            ObjectRepr::Mpls(entries) => {
                buf[pos + 2] = CLASS_MPLS;
                buf[pos + 3] = CTYPE_MPLS_INCOMING;
                for (i, e) in entries.iter().enumerate() {
                    let at = pos + OBJECT_HEADER_LEN + i * 4;
                    buf[at..at + 4].copy_from_slice(&e.to_u32().to_be_bytes());
                }
            }
            ObjectRepr::Raw {
                class_num,
                c_type,
                payload,
            } => {
                buf[pos + 2] = *class_num;
                buf[pos + 3] = *c_type;
                buf[pos + OBJECT_HEADER_LEN..pos + len].copy_from_slice(payload);
            }
        }
        pos += len;
    }
    let c = checksum::checksum(&buf[..need]);
    write_u16(buf, 2, c);
    Ok(need)
}

/// The quoted datagram and optional extensions of an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorBody<'a> {
    /// The original datagram field (as much of the offending datagram as is quoted).
    pub quote: &'a [u8],
    /// RFC 4884 extension structure bytes (header included), if any.
    pub extensions: Option<&'a [u8]>,
}

impl<'a> ErrorBody<'a> {
    /// A quote without extensions.
    pub const fn quote(quote: &'a [u8]) -> Self {
        ErrorBody {
            quote,
            extensions: None,
        }
    }

    /// Bytes the original datagram field occupies when emitted: the quote as is without
    /// extensions; with extensions, padded to a 32-bit boundary and to at least 128 bytes
    /// (RFC 4884 section 4.1).
    pub fn quote_field_len(&self) -> usize {
        match self.extensions {
            None => self.quote.len(),
            Some(_) => self
                .quote
                .len()
                .next_multiple_of(4)
                .max(EXTENSION_MIN_QUOTE),
        }
    }

    /// Bytes after the ICMP header.
    pub fn buffer_len(&self) -> usize {
        self.quote_field_len() + self.extensions.map_or(0, |e| e.len())
    }

    /// The RFC 4884 length byte for this body: 0 without extensions.
    pub fn length_words(&self) -> u8 {
        match self.extensions {
            None => 0,
            Some(_) => (self.quote_field_len() / 4).min(255) as u8,
        }
    }

    /// The extension view, when present.
    pub fn extension_view(&self) -> Option<Result<Extensions<&'a [u8]>>> {
        self.extensions.map(Extensions::new_checked)
    }

    fn parse<T: AsRef<[u8]>>(p: &'a IcmpPacket<T>) -> ErrorBody<'a> {
        let (quote, extensions) = p.split_extensions();
        ErrorBody { quote, extensions }
    }

    fn emit(&self, data: &mut [u8]) {
        let q = self.quote.len();
        data[..q].copy_from_slice(self.quote);
        let field = self.quote_field_len();
        data[q..field].fill(0);
        if let Some(e) = self.extensions {
            data[field..field + e.len()].copy_from_slice(e);
        }
    }
}

/// An ICMPv4 message in its everyday form.
///
/// Parsing then emitting gives back the same bytes, with one documented exception: the RFC 4884
/// length byte of an error is recomputed from the body (0 without extensions, the padded quote
/// length in words with them), so a length that announced no extension, or the unpadded length
/// some routers send, comes back normalised. [`IcmpPacket`] keeps every byte as received.
/// Messages whose unused header bytes are set, and echoes with a non-zero code, parse as
/// [`IcmpRepr::Other`], which keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// Code.
        code: DstUnreachable,
        /// Next-hop MTU (code 4, RFC 1191); 0 otherwise.
        next_hop_mtu: u16,
        /// Quote and extensions.
        body: ErrorBody<'a>,
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// Code.
        code: TimeExceeded,
        /// Quote and extensions.
        body: ErrorBody<'a>,
    },
    /// Parameter problem (type 12).
    ParamProblem {
        /// Code (0: pointer indicates the error; 1: missing option; 2: bad length).
        code: u8,
        /// Byte offset of the problem in the quoted datagram.
        pointer: u8,
        /// Quote and extensions.
        body: ErrorBody<'a>,
    },
    /// Redirect (type 5).
    Redirect {
        /// Code.
        code: Redirect,
        /// Gateway to use.
        gateway: Ipv4Addr,
        /// Quoted datagram.
        quote: &'a [u8],
    },
    /// Source quench (type 4).
    SourceQuench {
        /// Quoted datagram.
        quote: &'a [u8],
    },
    /// Timestamp request (13) or reply (14), RFC 792: milliseconds since midnight UT.
    Timestamp {
        /// True for a reply (type 14).
        reply: bool,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Originate timestamp.
        originate: u32,
        /// Receive timestamp.
        receive: u32,
        /// Transmit timestamp.
        transmit: u32,
    },
    /// Any other message, kept raw.
    Other {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// Rest of header.
        rest_of_header: u32,
        /// Data.
        data: &'a [u8],
    },
}

impl<'a> IcmpRepr<'a> {
    /// Parses a message. With `verify_checksum` a wrong checksum is an error; without it, the
    /// caller may check [`IcmpPacket::verify_checksum`] itself (ping reports bad checksums).
    /// A timestamp message shorter than 20 bytes is kept as [`IcmpRepr::Other`].
    pub fn parse<T: AsRef<[u8]>>(packet: &'a IcmpPacket<T>, verify_checksum: bool) -> Result<Self> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::Checksum {
                layer: Layer::Icmp,
                found: packet.checksum(),
                expected: packet.compute_checksum(),
            });
        }
        let code = packet.msg_code();
        let rest = packet.rest_of_header().to_be_bytes();
        // Bytes of the rest of header that RFC 792 says are unused: when a sender set them, the
        // message is kept raw (`Other`) so that parse -> emit gives back every byte. (The RFC
        // 4884 length byte is the one exception: emit recomputes it from the body.)
        let unused_clear = match packet.msg_type() {
            IcmpType::DstUnreachable => rest[0] == 0,
            IcmpType::TimeExceeded => rest[0] == 0 && rest[2] == 0 && rest[3] == 0,
            IcmpType::ParamProblem => rest[2] == 0 && rest[3] == 0,
            _ => true,
        };
        Ok(match packet.msg_type() {
            // RFC 792: echo has code 0; another code is not an echo as rawkit knows it.
            IcmpType::EchoRequest if code == 0 => IcmpRepr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            },
            IcmpType::EchoReply if code == 0 => IcmpRepr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            },
            IcmpType::DstUnreachable if unused_clear => IcmpRepr::DstUnreachable {
                code: code.into(),
                next_hop_mtu: packet.next_hop_mtu(),
                body: ErrorBody::parse(packet),
            },
            IcmpType::TimeExceeded if unused_clear => IcmpRepr::TimeExceeded {
                code: code.into(),
                body: ErrorBody::parse(packet),
            },
            IcmpType::ParamProblem if unused_clear => IcmpRepr::ParamProblem {
                code,
                pointer: packet.pointer(),
                body: ErrorBody::parse(packet),
            },
            IcmpType::Redirect => IcmpRepr::Redirect {
                code: code.into(),
                gateway: packet.gateway(),
                quote: packet.data(),
            },
            IcmpType::SourceQuench if packet.rest_of_header() == 0 && code == 0 => {
                IcmpRepr::SourceQuench {
                    quote: packet.data(),
                }
            }
            t @ (IcmpType::Timestamp | IcmpType::TimestampReply)
                if packet.data().len() == 12 && code == 0 =>
            {
                let d = packet.data();
                IcmpRepr::Timestamp {
                    reply: t == IcmpType::TimestampReply,
                    ident: packet.echo_ident(),
                    seq_no: packet.echo_seq_no(),
                    originate: read_u32(d, 0),
                    receive: read_u32(d, 4),
                    transmit: read_u32(d, 8),
                }
            }
            t => IcmpRepr::Other {
                msg_type: t.into(),
                code,
                rest_of_header: packet.rest_of_header(),
                data: packet.data(),
            },
        })
    }

    /// The type this repr emits.
    pub fn msg_type(&self) -> IcmpType {
        match self {
            IcmpRepr::EchoRequest { .. } => IcmpType::EchoRequest,
            IcmpRepr::EchoReply { .. } => IcmpType::EchoReply,
            IcmpRepr::DstUnreachable { .. } => IcmpType::DstUnreachable,
            IcmpRepr::TimeExceeded { .. } => IcmpType::TimeExceeded,
            IcmpRepr::ParamProblem { .. } => IcmpType::ParamProblem,
            IcmpRepr::Redirect { .. } => IcmpType::Redirect,
            IcmpRepr::SourceQuench { .. } => IcmpType::SourceQuench,
            IcmpRepr::Timestamp { reply: false, .. } => IcmpType::Timestamp,
            IcmpRepr::Timestamp { reply: true, .. } => IcmpType::TimestampReply,
            IcmpRepr::Other { msg_type, .. } => IcmpType::from(*msg_type),
        }
    }

    /// The code this repr emits.
    pub fn code(&self) -> u8 {
        match *self {
            IcmpRepr::DstUnreachable { code, .. } => code.into(),
            IcmpRepr::TimeExceeded { code, .. } => code.into(),
            IcmpRepr::ParamProblem { code, .. } => code,
            IcmpRepr::Redirect { code, .. } => code.into(),
            IcmpRepr::Other { code, .. } => code,
            _ => 0,
        }
    }

    /// Bytes the message occupies, header included.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                IcmpRepr::EchoRequest { data, .. }
                | IcmpRepr::EchoReply { data, .. }
                | IcmpRepr::Other { data, .. } => data.len(),
                IcmpRepr::DstUnreachable { body, .. }
                | IcmpRepr::TimeExceeded { body, .. }
                | IcmpRepr::ParamProblem { body, .. } => body.buffer_len(),
                IcmpRepr::Redirect { quote, .. } | IcmpRepr::SourceQuench { quote } => quote.len(),
                IcmpRepr::Timestamp { .. } => 12,
            }
    }

    /// Writes the message into `buf` (at least [`IcmpRepr::buffer_len`] bytes) with the checksum
    /// filled in; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.emit_without_checksum(buf)?;
        let c = match *self {
            // Echoes (every probe rawkit sends): the sum comes from the values and the caller's
            // data, not from bytes just written (reading those back stalls on store forwarding).
            IcmpRepr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | IcmpRepr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let mut acc = checksum::Accumulator::new();
                acc.add_u16(u16::from(u8::from(self.msg_type())) << 8)
                    .add_u16(ident)
                    .add_u16(seq_no)
                    .add(data);
                acc.checksum()
            }
            _ => IcmpPacket::new_unchecked(&buf[..n]).compute_checksum(),
        };
        IcmpPacket::new_unchecked(&mut buf[..n]).set_checksum(c);
        Ok(n)
    }

    /// Like [`IcmpRepr::emit`] but leaves the checksum field zero (for a caller that sets a
    /// value of its own, or lets a ping socket's kernel fill it).
    pub fn emit_without_checksum(&self, buf: &mut [u8]) -> Result<usize> {
        if let IcmpRepr::DstUnreachable { body, .. }
        | IcmpRepr::TimeExceeded { body, .. }
        | IcmpRepr::ParamProblem { body, .. } = self
            && body.extensions.is_some()
            && body.quote_field_len() > MAX_QUOTE_WITH_EXTENSIONS
        {
            // The length byte counts 32-bit words: 255 of them at most.
            return Err(Error::Invalid {
                layer: Layer::Icmp,
                reason: "with RFC 4884 extensions the quoted datagram must fit in 1020 bytes \
                         (the length field counts at most 255 words): shorten the quote",
            });
        }
        let n = self.buffer_len();
        if buf.len() < n {
            return Err(Error::BufferTooSmall {
                layer: Layer::Icmp,
                need: n,
                have: buf.len(),
            });
        }
        let buf = &mut buf[..n];
        let mut p = IcmpPacket::new_unchecked(&mut *buf);
        p.set_msg_type(self.msg_type());
        p.set_msg_code(self.code());
        p.set_checksum(0);
        p.set_rest_of_header(0);
        match *self {
            IcmpRepr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | IcmpRepr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                p.data_mut().copy_from_slice(data);
            }
            IcmpRepr::DstUnreachable {
                next_hop_mtu, body, ..
            } => {
                p.set_rfc4884_length(body.length_words());
                p.set_next_hop_mtu(next_hop_mtu);
                body.emit(p.data_mut());
            }
            IcmpRepr::TimeExceeded { body, .. } => {
                p.set_rfc4884_length(body.length_words());
                body.emit(p.data_mut());
            }
            IcmpRepr::ParamProblem { pointer, body, .. } => {
                p.set_pointer(pointer);
                p.set_rfc4884_length(body.length_words());
                body.emit(p.data_mut());
            }
            IcmpRepr::Redirect { gateway, quote, .. } => {
                p.set_gateway(gateway);
                p.data_mut().copy_from_slice(quote);
            }
            IcmpRepr::SourceQuench { quote } => p.data_mut().copy_from_slice(quote),
            IcmpRepr::Timestamp {
                ident,
                seq_no,
                originate,
                receive,
                transmit,
                ..
            } => {
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                let d = p.data_mut();
                d[0..4].copy_from_slice(&originate.to_be_bytes());
                d[4..8].copy_from_slice(&receive.to_be_bytes());
                d[8..12].copy_from_slice(&transmit.to_be_bytes());
            }
            IcmpRepr::Other {
                rest_of_header,
                data,
                ..
            } => {
                p.set_rest_of_header(rest_of_header);
                p.data_mut().copy_from_slice(data);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::ipv4::Ipv4Packet;

    // Captured on lo: `ping -c1 -s 8 -p a5 127.0.0.1` (ICMP part of the request and the reply).
    static ECHO_REQUEST: [u8; 16] = [
        0x08, 0x00, 0x39, 0x9a, 0x19, 0x64, 0x00, 0x01, 0xa5, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ];
    static ECHO_REPLY: [u8; 16] = [
        0x00, 0x00, 0x41, 0x9a, 0x19, 0x64, 0x00, 0x01, 0xa5, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ];
    // Captured on lo: the kernel's port unreachable for a 5-byte UDP datagram to port 33434
    // (ICMP part: header and the whole 33-byte quoted datagram).
    static PORT_UNREACHABLE: [u8; 41] = [
        0x03, 0x03, 0x6f, 0x10, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x21, 0xd1, 0x75, 0x40,
        0x00, 0x40, 0x11, 0x6b, 0x54, 0x7f, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0xc8, 0x4e,
        0x82, 0x9a, 0x00, 0x0d, 0xfe, 0x20, 0x70, 0x72, 0x6f, 0x62, 0x65,
    ];

    // A time exceeded seen in the wild with an MPLS extension (one entry: label 416240, S, TTL
    // 1) whose RFC 4884 length says 17 words (68 bytes) while the quote is padded to 128 bytes.
    // Published as a test vector in trippy's `icmp_extension.rs` (trippy issue 804).
    fn time_exceeded_len17_padded_mpls() -> Vec<u8> {
        let mut v = vec![
            0x0b, 0x00, 0xf4, 0xee, 0x00, 0x11, 0x00, 0x00, 0x45, 0x00, 0x00, 0x54, 0x20, 0xc3,
            0x40, 0x00, 0x02, 0x01, 0xb5, 0x7e, 0x64, 0x63, 0x08, 0x2a, 0x5d, 0xb8, 0xd8, 0x22,
            0x08, 0x00, 0x11, 0x8d, 0x65, 0x83, 0x80, 0xef,
        ];
        v.resize(136, 0);
        v.extend_from_slice(&[
            0x20, 0x00, 0x78, 0x56, 0x00, 0x08, 0x01, 0x01, 0x65, 0x9f, 0x01, 0x01,
        ]);
        v
    }

    // Same source: a "non-compliant" time exceeded (length 0) with the extension at byte 128 of
    // the data: label 19380, S, TTL 1.
    fn time_exceeded_len0_mpls() -> Vec<u8> {
        let mut v = vec![
            0x0b, 0x00, 0xf4, 0xff, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x54, 0xcc, 0x1c,
            0x40, 0x00, 0x01, 0x01, 0xb5, 0xf4, 0xc0, 0xa8, 0x01, 0x15, 0x5d, 0xb8, 0xd8, 0x22,
            0x08, 0x00, 0x0f, 0xe3, 0x65, 0xda, 0x82, 0x42,
        ];
        v.resize(136, 0);
        v.extend_from_slice(&[
            0x20, 0x00, 0x99, 0x3a, 0x00, 0x08, 0x01, 0x01, 0x04, 0xbb, 0x41, 0x01,
        ]);
        v
    }

    #[test]
    fn deconstruct_captured_echo_request_and_reply() {
        let p = IcmpPacket::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.msg_type(), IcmpType::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x399a);
        assert_eq!(p.echo_ident(), 6500);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data(), &ECHO_REQUEST[8..]);
        assert!(p.verify_checksum());
        let r = IcmpPacket::new_checked(&ECHO_REPLY[..]).unwrap();
        assert_eq!(
            IcmpRepr::parse(&r, true).unwrap(),
            IcmpRepr::EchoReply {
                ident: 6500,
                seq_no: 1,
                data: &ECHO_REPLY[8..]
            }
        );
    }

    #[test]
    fn construct_echo_request_from_a5_filled_buffer() {
        let mut buf = [0xa5u8; 16];
        let mut p = IcmpPacket::new_unchecked(&mut buf[..]);
        p.set_msg_type(IcmpType::EchoRequest);
        p.set_msg_code(0);
        p.set_echo_ident(6500);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(&ECHO_REQUEST[8..]);
        p.fill_checksum();
        assert_eq!(buf, ECHO_REQUEST);
        let mut buf2 = [0xa5u8; 16];
        let repr = IcmpRepr::EchoRequest {
            ident: 6500,
            seq_no: 1,
            data: &ECHO_REQUEST[8..],
        };
        assert_eq!(repr.emit(&mut buf2).unwrap(), 16);
        assert_eq!(buf2, ECHO_REQUEST);
    }

    #[test]
    fn bad_checksum_is_reported_only_when_asked() {
        let mut buf = ECHO_REPLY;
        buf[2] ^= 0x10;
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum());
        assert!(IcmpRepr::parse(&p, false).is_ok());
        assert_eq!(
            IcmpRepr::parse(&p, true),
            Err(Error::Checksum {
                layer: Layer::Icmp,
                found: 0x519a,
                expected: 0x419a
            })
        );
    }

    #[test]
    fn port_unreachable_exposes_quoted_header_and_ports() {
        let p = IcmpPacket::new_checked(&PORT_UNREACHABLE[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.msg_type(), IcmpType::DstUnreachable);
        assert_eq!(
            DstUnreachable::from(p.msg_code()),
            DstUnreachable::PortUnreachable
        );
        assert_eq!(p.extensions(), None);
        let ip = p.quoted_ipv4().unwrap();
        assert_eq!(ip.protocol(), IpProtocol::Udp);
        assert_eq!(ip.dst_addr(), Ipv4Addr::LOCALHOST);
        let q = p.quote_info().unwrap();
        assert_eq!(q.ident, 0xd175);
        assert_eq!(q.ttl, 64);
        assert_eq!(
            q.transport,
            QuotedTransport::Ports {
                src_port: 51278,
                dst_port: 33434,
                checksum: 0xfe20
            }
        );
        match IcmpRepr::parse(&p, true).unwrap() {
            IcmpRepr::DstUnreachable { code, body, .. } => {
                assert_eq!(code, DstUnreachable::PortUnreachable);
                assert_eq!(body.quote, &PORT_UNREACHABLE[8..]);
                assert_eq!(body.extensions, None);
                let mut out = [0u8; 41];
                let repr = IcmpRepr::parse(&p, true).unwrap();
                assert_eq!(repr.emit(&mut out).unwrap(), 41);
                assert_eq!(out, PORT_UNREACHABLE);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quote_of_only_the_header_has_no_transport() {
        let mut v = PORT_UNREACHABLE[..28].to_vec();
        v[2] = 0;
        v[3] = 0;
        let p = IcmpPacket::new_checked(&v[..]).unwrap();
        assert_eq!(p.quote_info().unwrap().transport, QuotedTransport::Missing);
        // Less than a header quoted: no quote info at all, and no panic.
        let p = IcmpPacket::new_checked(&PORT_UNREACHABLE[..20]).unwrap();
        assert!(p.quote_info().is_none());
        assert!(p.quoted_ipv4().is_err());
    }

    #[test]
    fn compliant_length_with_padding_to_128_finds_mpls_extension() {
        let v = time_exceeded_len17_padded_mpls();
        let p = IcmpPacket::new_checked(&v[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.rfc4884_length(), 17);
        assert_eq!(p.quoted_datagram().len(), 68);
        assert_eq!(p.extension_offset(), Some(128));
        let ext = p.extensions().unwrap().unwrap();
        assert_eq!(ext.version(), 2);
        assert_eq!(ext.checksum(), 0x7856);
        assert!(ext.verify_checksum());
        let objs: Vec<_> = ext.objects().map(|o| o.unwrap()).collect();
        assert_eq!(objs.len(), 1);
        assert!(objs[0].is_mpls());
        let labels: Vec<_> = objs[0].mpls_entries().collect();
        assert_eq!(
            labels,
            vec![MplsEntry {
                label: 416_240,
                tc: 0,
                bottom: true,
                ttl: 1
            }]
        );
        assert_eq!(labels[0].to_string(), "L=416240,E=0,S=1,T=1");
        let q = p.quote_info().unwrap();
        assert_eq!(q.dst_addr, Ipv4Addr::new(93, 184, 216, 34));
        assert!(matches!(
            q.transport,
            QuotedTransport::Icmp {
                msg_type: 8,
                ident: 0x6583,
                seq_no: 0x80ef,
                ..
            }
        ));
    }

    #[test]
    fn non_compliant_zero_length_extension_is_found_at_128() {
        let v = time_exceeded_len0_mpls();
        let p = IcmpPacket::new_checked(&v[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.quoted_datagram().len(), 128);
        let ext = p.extensions().unwrap().unwrap();
        let o = ext.objects().next().unwrap().unwrap();
        assert_eq!(o.mpls_entries().next().unwrap().label, 19380);
        // Without a plausible header at 128 (bad checksum), a long quote stays a quote.
        let mut bad = v.clone();
        bad[8 + 128 + 2] ^= 0xff;
        let p = IcmpPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(p.extensions(), None);
        assert_eq!(p.quoted_datagram().len(), bad.len() - 8);
    }

    #[test]
    fn length_past_the_end_means_no_extensions() {
        let mut v = time_exceeded_len17_padded_mpls();
        v[5] = 200; // 800 bytes announced
        let p = IcmpPacket::new_checked(&v[..]).unwrap();
        assert_eq!(p.extensions(), None);
        assert_eq!(p.quoted_datagram(), &v[8..]);
    }

    #[test]
    fn crafted_time_exceeded_with_quote_and_mpls_round_trips() {
        let quote = &PORT_UNREACHABLE[8..];
        let stack = [
            MplsEntry {
                label: 24001,
                tc: 5,
                bottom: false,
                ttl: 1,
            },
            MplsEntry {
                label: 1_048_575,
                tc: 7,
                bottom: true,
                ttl: 255,
            },
        ];
        let mut ext = [0u8; 64];
        let n = emit_extensions(
            &[
                ObjectRepr::Mpls(&stack),
                ObjectRepr::Raw {
                    class_num: 2,
                    c_type: 0x0c,
                    payload: &[1, 2, 3, 4],
                },
            ],
            &mut ext,
        )
        .unwrap();
        assert_eq!(n, 4 + 12 + 8);
        let repr = IcmpRepr::TimeExceeded {
            code: TimeExceeded::TtlExpired,
            body: ErrorBody {
                quote,
                extensions: Some(&ext[..n]),
            },
        };
        let mut buf = [0u8; 256];
        let len = repr.emit(&mut buf).unwrap();
        assert_eq!(len, 8 + 128 + n);
        let p = IcmpPacket::new_checked(&buf[..len]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.rfc4884_length(), 32);
        let e = p.extensions().unwrap().unwrap();
        assert!(e.verify_checksum());
        let objs: Vec<_> = e.objects().map(|o| o.unwrap()).collect();
        assert_eq!(objs[0].mpls_entries().collect::<Vec<_>>(), stack.to_vec());
        assert_eq!(
            (objs[1].class_num, objs[1].c_type, objs[1].payload),
            (2, 0x0c, &[1u8, 2, 3, 4][..])
        );
        // The quote comes back without the padding.
        assert_eq!(p.quoted_datagram().len(), 128);
        assert_eq!(&p.quoted_datagram()[..quote.len()], quote);
        assert_eq!(
            p.quote_info().unwrap().transport,
            QuotedTransport::Ports {
                src_port: 51278,
                dst_port: 33434,
                checksum: 0xfe20
            }
        );
        // The MPLS entry bytes are RFC 3032's layout: label 24001 = 0x05dc1, TC 5, S 0, TTL 1.
        assert_eq!(&buf[8 + 128 + 8..8 + 128 + 12], &[0x05, 0xdc, 0x1a, 0x01]);
    }

    #[test]
    fn mpls_entry_bit_layout_matches_rfc_3032() {
        let e = MplsEntry::from_u32(u32::from_be_bytes([0x04, 0xbb, 0x41, 0x01]));
        assert_eq!((e.label, e.tc, e.bottom, e.ttl), (19380, 0, true, 1));
        let max = MplsEntry {
            label: 0xf_ffff,
            tc: 7,
            bottom: true,
            ttl: 255,
        };
        assert_eq!(max.to_u32(), u32::MAX);
    }

    #[test]
    fn every_unreachable_code_has_iputils_words() {
        let words: Vec<String> = (0..16u8)
            .map(|c| DstUnreachable::from(c).to_string())
            .collect();
        assert_eq!(words[0], "Destination Net Unreachable");
        assert_eq!(words[1], "Destination Host Unreachable");
        assert_eq!(words[3], "Destination Port Unreachable");
        assert_eq!(words[13], "Packet filtered");
        for c in 0..=255u8 {
            assert_eq!(u8::from(DstUnreachable::from(c)), c);
            assert_eq!(u8::from(TimeExceeded::from(c)), c);
            assert_eq!(u8::from(Redirect::from(c)), c);
            assert_eq!(u8::from(IcmpType::from(c)), c);
        }
        assert_eq!(
            TimeExceeded::TtlExpired.to_string(),
            "Time to live exceeded"
        );
        assert_eq!(
            DstUnreachable::from(16).to_string(),
            "Dest Unreachable, Bad Code: 16"
        );
    }

    #[test]
    fn frag_needed_carries_next_hop_mtu() {
        let repr = IcmpRepr::DstUnreachable {
            code: DstUnreachable::FragRequired,
            next_hop_mtu: 1280,
            body: ErrorBody::quote(&PORT_UNREACHABLE[8..36]),
        };
        let mut buf = [0u8; 64];
        let n = repr.emit(&mut buf).unwrap();
        let p = IcmpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1280);
        assert_eq!(p.msg_code(), 4);
        assert_eq!(IcmpRepr::parse(&p, true).unwrap(), repr);
    }

    #[test]
    fn other_messages_round_trip() {
        let quote = &PORT_UNREACHABLE[8..36];
        let reprs = [
            IcmpRepr::ParamProblem {
                code: 0,
                pointer: 20,
                body: ErrorBody::quote(quote),
            },
            IcmpRepr::Redirect {
                code: Redirect::Host,
                gateway: Ipv4Addr::new(198, 18, 0, 254),
                quote,
            },
            IcmpRepr::SourceQuench { quote },
            IcmpRepr::Timestamp {
                reply: true,
                ident: 7,
                seq_no: 9,
                originate: 1,
                receive: 2,
                transmit: 0xffff_ffff,
            },
            IcmpRepr::Other {
                msg_type: 42,
                code: 1,
                rest_of_header: 0xdead_beef,
                data: b"xyz",
            },
        ];
        for r in reprs {
            let mut buf = [0u8; 64];
            let n = r.emit(&mut buf).unwrap();
            assert_eq!(n, r.buffer_len());
            let p = IcmpPacket::new_checked(&buf[..n]).unwrap();
            assert!(p.verify_checksum());
            assert_eq!(IcmpRepr::parse(&p, true).unwrap(), r);
        }
    }

    #[test]
    fn truncations_are_errors_and_short_buffers_refused() {
        for len in 0..8 {
            assert!(IcmpPacket::new_checked(&ECHO_REQUEST[..len]).is_err());
        }
        let repr = IcmpRepr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: &[0; 56],
        };
        assert_eq!(
            repr.emit(&mut [0u8; 63]),
            Err(Error::BufferTooSmall {
                layer: Layer::Icmp,
                need: 64,
                have: 63
            })
        );
        // Malformed extension objects end iteration with an error, never a panic.
        let mut v = time_exceeded_len0_mpls();
        let at = v.len() - 8;
        v[at + 1] = 2; // object length 2 < 4
        let p = IcmpPacket::new_checked(&v[..]).unwrap();
        // The checksum no longer verifies, so with length 0 the heuristic refuses it.
        assert!(p.extensions().is_none());
        let mut v = time_exceeded_len17_padded_mpls();
        let at = v.len() - 8;
        v[at + 1] = 40; // object runs past the end
        let p = IcmpPacket::new_checked(&v[..]).unwrap();
        let e = p.extensions().unwrap().unwrap();
        assert!(matches!(
            e.objects().next().unwrap(),
            Err(Error::Truncated {
                need: 40,
                have: 8,
                source: LenSource::ObjectLen,
                ..
            })
        ));
        let _ = Ipv4Packet::new_lax(p.quoted_datagram());
    }
}
