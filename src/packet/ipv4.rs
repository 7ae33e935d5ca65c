//! IPv4 headers (RFC 791): a zero-copy view, a small repr, and the options.
//!
//! [`Ipv4Packet`] reads and writes every header field in place. Build it with
//! [`Ipv4Packet::new_checked`] for a datagram received whole, after which no accessor can panic;
//! or with [`Ipv4Packet::new_lax`] for the header quoted inside an ICMP error, whose total length
//! may announce more bytes than were quoted (RFC 792 quotes the header and 8 bytes; RFC 1812
//! routers quote more, but rarely all).
//!
//! This module never checks anything the caller did not ask for: a wrong checksum is readable, and
//! the builder can write one on purpose. [`Ipv4Repr::parse`] is the strict path.

use super::checksum;
use super::error::{Error, Layer, LenSource, Result};
use super::{read_addr, read_u16, write_u16};
use core::fmt;
use std::net::Ipv4Addr;

/// Size of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Largest IPv4 header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Largest IPv4 datagram.
pub const MAX_PACKET_LEN: usize = 65535;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// The IPv4 protocol field (IANA protocol numbers), unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpProtocol {
    /// 1
    Icmp,
    /// 2
    Igmp,
    /// 6
    Tcp,
    /// 17
    Udp,
    /// 41
    Ipv6,
    /// 47
    Gre,
    /// 50
    Esp,
    /// 51
    Ah,
    /// 58
    Icmpv6,
    /// 132
    Sctp,
    /// Any other number.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            2 => IpProtocol::Igmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            41 => IpProtocol::Ipv6,
            47 => IpProtocol::Gre,
            50 => IpProtocol::Esp,
            51 => IpProtocol::Ah,
            58 => IpProtocol::Icmpv6,
            132 => IpProtocol::Sctp,
            n => IpProtocol::Unknown(n),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Igmp => 2,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6 => 41,
            IpProtocol::Gre => 47,
            IpProtocol::Esp => 50,
            IpProtocol::Ah => 51,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Sctp => 132,
            IpProtocol::Unknown(n) => n,
        }
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Icmp => f.write_str("icmp"),
            IpProtocol::Igmp => f.write_str("igmp"),
            IpProtocol::Tcp => f.write_str("tcp"),
            IpProtocol::Udp => f.write_str("udp"),
            IpProtocol::Ipv6 => f.write_str("ipv6"),
            IpProtocol::Gre => f.write_str("gre"),
            IpProtocol::Esp => f.write_str("esp"),
            IpProtocol::Ah => f.write_str("ah"),
            IpProtocol::Icmpv6 => f.write_str("icmp6"),
            IpProtocol::Sctp => f.write_str("sctp"),
            IpProtocol::Unknown(n) => write!(f, "ip-proto-{n}"),
        }
    }
}

/// A read/write view of an IPv4 header and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
    lax: bool,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without any check: accessors may panic on a short buffer. For buffers the
    /// caller sized itself (the builder).
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer, lax: false }
    }

    /// Wraps a received datagram after checking that the header and the total length fit in it:
    /// `20 <= IHL*4 <= total length <= buffer length`. The version is not checked here (the
    /// crafting tools read version 6 in an IPv4 buffer on purpose); [`Ipv4Repr::parse`] checks it.
    /// Bytes beyond the total length (link padding) are ignored by [`Ipv4Packet::payload`].
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let packet = Ipv4Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Wraps the IPv4 header quoted inside an ICMP error. Requires the whole header
    /// (`20 <= IHL*4 <= buffer length`) but lets the total length exceed what is present; the
    /// payload is then whatever was quoted (RFC 792: at least 8 bytes; RFC 1812 4.3.2.3: as much
    /// as fits in 576 bytes).
    pub fn new_lax(buffer: T) -> Result<Ipv4Packet<T>> {
        let mut packet = Ipv4Packet::new_unchecked(buffer);
        packet.lax = true;
        packet.check_header_len()?;
        Ok(packet)
    }

    fn check_header_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::truncated(
                Layer::Ipv4,
                HEADER_LEN,
                have,
                LenSource::Header,
            ));
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadLength {
                layer: Layer::Ipv4,
                field: "IHL*4",
                value: header_len,
                min: HEADER_LEN,
            });
        }
        if have < header_len {
            return Err(Error::truncated(
                Layer::Ipv4,
                header_len,
                have,
                LenSource::Ipv4Ihl,
            ));
        }
        Ok(())
    }

    /// The length checks of [`Ipv4Packet::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        let have = self.buffer.as_ref().len();
        let total = self.total_len() as usize;
        if total < self.header_len() {
            return Err(Error::BadLength {
                layer: Layer::Ipv4,
                field: "total length",
                value: total,
                min: self.header_len(),
            });
        }
        if have < total {
            return Err(Error::truncated(
                Layer::Ipv4,
                total,
                have,
                LenSource::Ipv4TotalLen,
            ));
        }
        Ok(())
    }

    /// True when made by [`Ipv4Packet::new_lax`].
    pub fn is_lax(&self) -> bool {
        self.lax
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole buffer, header included.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// IHL field: header length in 32-bit words.
    #[inline(always)]
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes (IHL * 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        self.ihl() as usize * 4
    }

    /// Differentiated services code point (RFC 2474), the upper six bits of the old TOS byte.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification (RFC 3168), the lower two bits of the old TOS byte.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The whole second byte (the old type of service).
    #[inline(always)]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length field.
    #[inline(always)]
    pub fn total_len(&self) -> u16 {
        u16::from_be_bytes([self.buffer.as_ref()[2], self.buffer.as_ref()[3]])
    }

    /// Identification field.
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    fn flags_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start)
    }

    /// The reserved flag bit (RFC 3514's "evil bit"); must be zero on the wire.
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & FLAG_RESERVED != 0
    }

    /// Don't fragment.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More fragments.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in 8-byte units, as on the wire.
    #[inline(always)]
    pub fn frag_offset(&self) -> u16 {
        self.flags_offset() & OFFSET_MASK
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset_bytes(&self) -> usize {
        self.frag_offset() as usize * 8
    }

    /// True for any fragment of a fragmented datagram (MF set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol field.
    #[inline(always)]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Source address.
    #[inline(always)]
    pub fn src_addr(&self) -> Ipv4Addr {
        read_addr(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// Destination address.
    #[inline(always)]
    pub fn dst_addr(&self) -> Ipv4Addr {
        read_addr(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    /// The raw option bytes (between byte 20 and IHL*4).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The options parsed one by one.
    pub fn option_iter(&self) -> OptionIter<'_> {
        OptionIter::new(self.options())
    }

    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }

    /// The checksum the header should carry.
    pub fn compute_checksum(&self) -> u16 {
        let hdr = &self.buffer.as_ref()[..self.header_len()];
        let mut acc = checksum::Accumulator::new();
        acc.add(&hdr[..field::CHECKSUM.start])
            .add(&hdr[field::CHECKSUM.end..]);
        acc.checksum()
    }

    /// The payload: from IHL*4 to the total length, or to the end of the buffer for a lax
    /// (quoted) header whose total length exceeds what is present.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = (self.total_len() as usize).min(data.len());
        let start = self.header_len().min(end);
        &data[start..end]
    }

    /// True when the payload is shorter than the total length announces (a quoted header).
    pub fn is_payload_truncated(&self) -> bool {
        (self.total_len() as usize) > self.buffer.as_ref().len()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the IHL field (32-bit words).
    pub fn set_ihl(&mut self, ihl: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | (ihl & 0x0f);
    }

    /// Sets the DSCP (six bits).
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (dscp << 2);
    }

    /// Sets the ECN bits (two bits).
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (ecn & 0x03);
    }

    /// Sets the whole TOS byte.
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = tos;
    }

    /// Sets the total length field.
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, id: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT.start, id);
    }

    fn set_flag(&mut self, mask: u16, on: bool) {
        let v = self.flags_offset();
        let v = if on { v | mask } else { v & !mask };
        write_u16(self.buffer.as_mut(), field::FLG_OFF.start, v);
    }

    /// Sets or clears the reserved ("evil") bit.
    pub fn set_reserved_flag(&mut self, on: bool) {
        self.set_flag(FLAG_RESERVED, on)
    }

    /// Sets or clears don't fragment.
    pub fn set_dont_frag(&mut self, on: bool) {
        self.set_flag(FLAG_DF, on)
    }

    /// Sets or clears more fragments.
    pub fn set_more_frags(&mut self, on: bool) {
        self.set_flag(FLAG_MF, on)
    }

    /// Sets the fragment offset in 8-byte units (13 bits; higher bits are dropped).
    pub fn set_frag_offset(&mut self, units: u16) {
        let v = (self.flags_offset() & !OFFSET_MASK) | (units & OFFSET_MASK);
        write_u16(self.buffer.as_mut(), field::FLG_OFF.start, v);
    }

    /// Clears all three flag bits and the offset.
    pub fn clear_flags(&mut self) {
        write_u16(self.buffer.as_mut(), field::FLG_OFF.start, 0);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.into();
    }

    /// Sets the checksum field to an arbitrary value.
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and writes the header checksum (over IHL*4 bytes).
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }

    /// The option bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload, mutable (same bounds as [`Ipv4Packet::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let total = self.total_len() as usize;
        let hl = self.header_len();
        let data = self.buffer.as_mut();
        let end = total.min(data.len());
        let start = hl.min(end);
        &mut data[start..end]
    }
}

/// The everyday fields of an IPv4 header (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// The TOS byte (DSCP << 2 | ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parses a checked packet strictly: version 4 and a header checksum that verifies.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        if packet.version() != 4 {
            return Err(Error::BadValue {
                layer: Layer::Ipv4,
                field: "version",
                value: packet.version() as u32,
                expected: "4",
            });
        }
        if !packet.is_lax() && !packet.verify_checksum() {
            return Err(Error::Checksum {
                layer: Layer::Ipv4,
                found: packet.checksum(),
                expected: packet.compute_checksum(),
            });
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: (packet.total_len() as usize).saturating_sub(packet.header_len()),
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// Header length this repr emits (20: no options).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with a correct checksum into the front of `packet`'s buffer.
    /// The buffer must hold at least 20 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version(4);
        packet.set_ihl(5);
        packet.set_tos(self.tos);
        packet.set_total_len((HEADER_LEN + self.payload_len).min(MAX_PACKET_LEN) as u16);
        packet.set_ident(self.ident);
        packet.clear_flags();
        packet.set_dont_frag(self.dont_frag);
        packet.set_more_frags(self.more_frags);
        packet.set_frag_offset(self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.set_checksum(0);
        packet.fill_checksum();
    }
}

/// Option type numbers (RFC 791, RFC 2113). Bit 7 is the "copied" flag: the option goes into
/// every fragment.
pub mod option_kind {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation.
    pub const NOP: u8 = 1;
    /// Record route.
    pub const RR: u8 = 7;
    /// Internet timestamp.
    pub const TS: u8 = 68;
    /// Loose source and record route.
    pub const LSRR: u8 = 131;
    /// Strict source and record route.
    pub const SSRR: u8 = 137;
    /// Router alert (RFC 2113).
    pub const RA: u8 = 148;
}

/// One IPv4 option, borrowed from the header. `data` fields exclude the type and length bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Option<'a> {
    /// End of option list (type 0, one byte).
    EndOfList,
    /// Bytes after an end-of-list option, kept so that emit gives back the same header.
    Padding(&'a [u8]),
    /// No operation (type 1, one byte).
    Nop,
    /// Record route (type 7): pointer and the route data (4-byte slots).
    RecordRoute {
        /// Pointer to the next free slot, 1-based from the option's first byte (>= 4).
        pointer: u8,
        /// The address slots.
        data: &'a [u8],
    },
    /// Internet timestamp (type 68).
    Timestamp {
        /// Pointer (>= 5).
        pointer: u8,
        /// Overflow count (high nibble of byte 3).
        overflow: u8,
        /// Flags (low nibble of byte 3): 0 timestamps only, 1 address+timestamp, 3 prespecified.
        flags: u8,
        /// The timestamp slots.
        data: &'a [u8],
    },
    /// Loose source and record route (type 131).
    LooseSourceRoute {
        /// Pointer (>= 4).
        pointer: u8,
        /// The route slots.
        data: &'a [u8],
    },
    /// Strict source and record route (type 137).
    StrictSourceRoute {
        /// Pointer (>= 4).
        pointer: u8,
        /// The route slots.
        data: &'a [u8],
    },
    /// Router alert (type 148, RFC 2113), value 0 meaning "examine packet".
    RouterAlert(u16),
    /// Any other option, its data kept.
    Unknown {
        /// Type byte.
        kind: u8,
        /// Bytes after the length byte.
        data: &'a [u8],
    },
}

impl<'a> Ipv4Option<'a> {
    /// The type byte this option is written with.
    pub fn kind(&self) -> u8 {
        match self {
            Ipv4Option::EndOfList | Ipv4Option::Padding(_) => option_kind::EOL,
            Ipv4Option::Nop => option_kind::NOP,
            Ipv4Option::RecordRoute { .. } => option_kind::RR,
            Ipv4Option::Timestamp { .. } => option_kind::TS,
            Ipv4Option::LooseSourceRoute { .. } => option_kind::LSRR,
            Ipv4Option::StrictSourceRoute { .. } => option_kind::SSRR,
            Ipv4Option::RouterAlert(_) => option_kind::RA,
            Ipv4Option::Unknown { kind, .. } => *kind,
        }
    }

    /// True when RFC 791 says the option is copied into every fragment (bit 7 of the type).
    pub fn is_copied(&self) -> bool {
        self.kind() & 0x80 != 0
    }

    /// Bytes the option occupies.
    pub fn buffer_len(&self) -> usize {
        match self {
            Ipv4Option::EndOfList | Ipv4Option::Nop => 1,
            Ipv4Option::Padding(p) => p.len(),
            Ipv4Option::RecordRoute { data, .. }
            | Ipv4Option::LooseSourceRoute { data, .. }
            | Ipv4Option::StrictSourceRoute { data, .. } => 3 + data.len(),
            Ipv4Option::Timestamp { data, .. } => 4 + data.len(),
            Ipv4Option::RouterAlert(_) => 4,
            Ipv4Option::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Parses one option from the front of `data`, returning it and the bytes it took.
    pub fn parse(data: &'a [u8]) -> Result<(Ipv4Option<'a>, usize)> {
        let Some(&kind) = data.first() else {
            return Err(Error::truncated(Layer::Ipv4Option, 1, 0, LenSource::Slice));
        };
        match kind {
            option_kind::EOL => return Ok((Ipv4Option::EndOfList, 1)),
            option_kind::NOP => return Ok((Ipv4Option::Nop, 1)),
            _ => {}
        }
        if data.len() < 2 {
            return Err(Error::truncated(
                Layer::Ipv4Option,
                2,
                data.len(),
                LenSource::Slice,
            ));
        }
        let len = data[1] as usize;
        // RFC 791: the length octet counts the type, the length and the data.
        if len < 2 {
            return Err(Error::BadLength {
                layer: Layer::Ipv4Option,
                field: "option length",
                value: len,
                min: 2,
            });
        }
        if data.len() < len {
            return Err(Error::truncated(
                Layer::Ipv4Option,
                len,
                data.len(),
                LenSource::OptionLen,
            ));
        }
        let body = &data[2..len];
        let min = |m: usize| -> Result<()> {
            if len < m {
                Err(Error::BadLength {
                    layer: Layer::Ipv4Option,
                    field: "option length",
                    value: len,
                    min: m,
                })
            } else {
                Ok(())
            }
        };
        let opt = match kind {
            option_kind::RR | option_kind::LSRR | option_kind::SSRR => {
                min(3)?;
                let pointer = body[0];
                let data = &body[1..];
                match kind {
                    option_kind::RR => Ipv4Option::RecordRoute { pointer, data },
                    option_kind::LSRR => Ipv4Option::LooseSourceRoute { pointer, data },
                    _ => Ipv4Option::StrictSourceRoute { pointer, data },
                }
            }
            option_kind::TS => {
                min(4)?;
                Ipv4Option::Timestamp {
                    pointer: body[0],
                    overflow: body[1] >> 4,
                    flags: body[1] & 0x0f,
                    data: &body[2..],
                }
            }
            option_kind::RA if len == 4 => {
                Ipv4Option::RouterAlert(u16::from_be_bytes([body[0], body[1]]))
            }
            _ => Ipv4Option::Unknown { kind, data: body },
        };
        Ok((opt, len))
    }

    /// Writes the option to the front of `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.buffer_len();
        if buf.len() < n {
            return Err(Error::BufferTooSmall {
                layer: Layer::Ipv4Option,
                need: n,
                have: buf.len(),
            });
        }
        if n > 255 {
            return Err(Error::Invalid {
                layer: Layer::Ipv4Option,
                reason: "option longer than 255 bytes",
            });
        }
        match *self {
            Ipv4Option::EndOfList => buf[0] = option_kind::EOL,
            Ipv4Option::Nop => buf[0] = option_kind::NOP,
            Ipv4Option::Padding(p) => buf[..n].copy_from_slice(p),
            Ipv4Option::RecordRoute { pointer, data }
            | Ipv4Option::LooseSourceRoute { pointer, data }
            | Ipv4Option::StrictSourceRoute { pointer, data } => {
                buf[0] = self.kind();
                buf[1] = n as u8;
                buf[2] = pointer;
                buf[3..n].copy_from_slice(data);
            }
            Ipv4Option::Timestamp {
                pointer,
                overflow,
                flags,
                data,
            } => {
                buf[0] = option_kind::TS;
                buf[1] = n as u8;
                buf[2] = pointer;
                buf[3] = (overflow << 4) | (flags & 0x0f);
                buf[4..n].copy_from_slice(data);
            }
            Ipv4Option::RouterAlert(v) => {
                buf[0] = option_kind::RA;
                buf[1] = 4;
                buf[2..4].copy_from_slice(&v.to_be_bytes());
            }
            Ipv4Option::Unknown { kind, data } => {
                buf[0] = kind;
                buf[1] = n as u8;
                buf[2..n].copy_from_slice(data);
            }
        }
        Ok(n)
    }

    /// The addresses in a route option's slots (record route, LSRR, SSRR), or in a timestamp
    /// option with address flags. Empty for other options.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + use<'a> {
        let data: &'a [u8] = match *self {
            Ipv4Option::RecordRoute { data, .. }
            | Ipv4Option::LooseSourceRoute { data, .. }
            | Ipv4Option::StrictSourceRoute { data, .. } => data,
            _ => &[],
        };
        data.chunks_exact(4)
            .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
    }
}

impl fmt::Display for Ipv4Option<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let route = |f: &mut fmt::Formatter<'_>, name: &str, ptr: u8, opt: &Ipv4Option<'_>| {
            write!(f, "{name} ptr={ptr}")?;
            for a in opt.addresses() {
                write!(f, " {a}")?;
            }
            Ok(())
        };
        match self {
            Ipv4Option::EndOfList => f.write_str("EOL"),
            Ipv4Option::Padding(p) => write!(f, "pad({})", p.len()),
            Ipv4Option::Nop => f.write_str("NOP"),
            Ipv4Option::RecordRoute { pointer, .. } => route(f, "RR", *pointer, self),
            Ipv4Option::LooseSourceRoute { pointer, .. } => route(f, "LSRR", *pointer, self),
            Ipv4Option::StrictSourceRoute { pointer, .. } => route(f, "SSRR", *pointer, self),
            Ipv4Option::Timestamp {
                pointer,
                overflow,
                flags,
                data,
            } => write!(
                f,
                "TS ptr={pointer} oflw={overflow} flg={flags} len={}",
                data.len()
            ),
            Ipv4Option::RouterAlert(v) => write!(f, "RA value {v}"),
            Ipv4Option::Unknown { kind, data } => {
                write!(f, "opt-{kind} len={}", data.len() + 2)
            }
        }
    }
}

/// Iterator over the options of a header. After an end-of-list option, what remains comes out as
/// one [`Ipv4Option::Padding`] when it holds a non-zero byte (zero padding after the end-of-list
/// comes out as further end-of-list options, which emit back to the same zeros); a malformed
/// option ends the iteration with an error.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    data: &'a [u8],
    pos: usize,
    seen_eol: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterates over raw option bytes.
    pub fn new(data: &'a [u8]) -> Self {
        OptionIter {
            data,
            pos: 0,
            seen_eol: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<Ipv4Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        // RFC 791: the end of option list marks the end of the options; what follows is padding,
        // normally zero. Non-zero padding is kept whole rather than parsed.
        if self.seen_eol && rest.iter().any(|&b| b != 0) {
            self.pos = self.data.len();
            return Some(Ok(Ipv4Option::Padding(rest)));
        }
        match Ipv4Option::parse(rest) {
            Ok((opt, n)) => {
                self.pos += n;
                self.seen_eol |= opt == Ipv4Option::EndOfList;
                Some(Ok(opt))
            }
            Err(e) => {
                let at = self.pos;
                self.pos = self.data.len();
                Some(Err(e.add_offset(HEADER_LEN + at)))
            }
        }
    }
}

/// Parses a whole option area into `out`, returning how many options were stored; the same items
/// as [`OptionIter`], so [`emit_options`] over the result gives back the same bytes.
pub fn parse_options<'a>(data: &'a [u8], out: &mut [Ipv4Option<'a>]) -> Result<usize> {
    let mut n = 0;
    for opt in OptionIter::new(data) {
        let opt = opt?;
        if n >= out.len() {
            return Err(Error::BufferTooSmall {
                layer: Layer::Ipv4Option,
                need: n + 1,
                have: out.len(),
            });
        }
        out[n] = opt;
        n += 1;
    }
    Ok(n)
}

/// Writes options one after another into `buf`; returns the bytes written (no padding added).
pub fn emit_options(options: &[Ipv4Option<'_>], buf: &mut [u8]) -> Result<usize> {
    let mut pos = 0;
    for o in options {
        let at = pos.min(buf.len());
        pos += o.emit(&mut buf[at..])?;
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    // An echo request from `ping -c1 -s 8 127.0.0.1`, IPv4 header and 16 bytes of ICMP, as
    // captured on lo: DF set, TTL 64, id 0x8a1d.
    static ECHO: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x8a, 0x1d, 0x40, 0x00, 0x40, 0x01, 0xb2, 0xb9, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01, 0x08, 0x00, 0x1d, 0x6b, 0x00, 0x07, 0x00, 0x01, 0x13, 0xb3,
        0x47, 0x69, 0x00, 0x00, 0x00, 0x00,
    ];

    // A header with Record Route (9 slots, one filled), NOP and EOL: IHL 15.
    fn with_options() -> Vec<u8> {
        let mut v = vec![
            0x4f, 0xb8, 0x00, 0x3c, 0x12, 0x34, 0x80, 0x05, 0x01, 0x11, 0x00, 0x00, 198, 18, 0, 1,
            198, 19, 0, 2,
        ];
        let mut rr = vec![0x07, 39, 8, 198, 18, 0, 1];
        rr.extend_from_slice(&[0u8; 32]);
        v.extend_from_slice(&rr); // 39 bytes
        v.push(0x00); // EOL, 40 bytes of options in all
        let c = checksum::checksum(&v);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v
    }

    #[test]
    fn deconstruct_captured_echo_request() {
        let p = Ipv4Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp(), 0);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 36);
        assert_eq!(p.ident(), 0x8a1d);
        assert!(!p.reserved_flag());
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Icmp);
        assert_eq!(p.src_addr(), Ipv4Addr::LOCALHOST);
        assert_eq!(p.dst_addr(), Ipv4Addr::LOCALHOST);
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), &ECHO[20..]);
        assert!(p.verify_checksum());
        assert_eq!(p.compute_checksum(), p.checksum());
    }

    #[test]
    fn construct_from_a5_filled_buffer_sets_every_field() {
        let mut buf = [0xa5u8; 36];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_ihl(5);
        p.set_dscp(0);
        p.set_ecn(0);
        p.set_total_len(36);
        p.set_ident(0x8a1d);
        p.clear_flags();
        p.set_dont_frag(true);
        p.set_frag_offset(0);
        p.set_ttl(64);
        p.set_protocol(IpProtocol::Icmp);
        p.set_src_addr(Ipv4Addr::LOCALHOST);
        p.set_dst_addr(Ipv4Addr::LOCALHOST);
        p.payload_mut().copy_from_slice(&ECHO[20..]);
        p.fill_checksum();
        assert_eq!(&buf[..], &ECHO[..]);
    }

    #[test]
    fn flag_setters_touch_only_their_bit() {
        let mut buf = ECHO;
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_frag_offset(0x1fff);
        p.set_reserved_flag(true);
        p.set_more_frags(true);
        p.set_dont_frag(false);
        assert_eq!(p.frag_offset(), 0x1fff);
        assert!(p.reserved_flag() && p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset_bytes(), 0x1fff * 8);
        p.set_dscp(46);
        p.set_ecn(3);
        assert_eq!((p.dscp(), p.ecn(), p.tos()), (46, 3, 0xbb));
    }

    #[test]
    fn repr_parse_and_emit_round_trip() {
        let p = Ipv4Packet::new_checked(&ECHO[..]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 16);
        assert!(r.dont_frag);
        let mut buf = [0xa5u8; 36];
        let mut q = Ipv4Packet::new_unchecked(&mut buf[..]);
        r.emit(&mut q);
        q.payload_mut().copy_from_slice(&ECHO[20..]);
        assert_eq!(&buf[..], &ECHO[..]);
    }

    #[test]
    fn repr_rejects_bad_checksum_and_version() {
        let mut buf = ECHO;
        buf[10] ^= 0xff;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(matches!(
            Ipv4Repr::parse(&p),
            Err(Error::Checksum {
                found: 0x4db9,
                expected: 0xb2b9,
                ..
            })
        ));
        let mut buf = ECHO;
        buf[0] = 0x65;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        let e = Ipv4Repr::parse(&p).unwrap_err();
        assert_eq!(e.to_string(), "ipv4: version is 6, expected 4");
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..ECHO.len() {
            assert!(Ipv4Packet::new_checked(&ECHO[..len]).is_err(), "len {len}");
        }
        let e = Ipv4Packet::new_checked(&ECHO[..12]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ipv4: truncated: need 20 bytes, have 12 (required by the minimum header size)"
        );
        let e = Ipv4Packet::new_checked(&ECHO[..30]).unwrap_err();
        assert_eq!(
            e,
            Error::Truncated {
                layer: Layer::Ipv4,
                need: 36,
                have: 30,
                source: LenSource::Ipv4TotalLen,
                offset: 0
            }
        );
    }

    #[test]
    fn ihl_below_five_and_total_below_header_are_rejected() {
        let mut buf = ECHO;
        buf[0] = 0x44;
        assert!(matches!(
            Ipv4Packet::new_checked(&buf[..]),
            Err(Error::BadLength {
                field: "IHL*4",
                value: 16,
                ..
            })
        ));
        let mut buf = ECHO;
        buf[3] = 19;
        assert!(matches!(
            Ipv4Packet::new_checked(&buf[..]),
            Err(Error::BadLength {
                field: "total length",
                ..
            })
        ));
        let mut buf = ECHO;
        buf[0] = 0x4f; // IHL 15 needs 60 bytes
        assert!(matches!(
            Ipv4Packet::new_checked(&buf[..]),
            Err(Error::Truncated {
                need: 60,
                have: 36,
                source: LenSource::Ipv4Ihl,
                ..
            })
        ));
    }

    #[test]
    fn quoted_header_shorter_than_total_len_parses_lax() {
        // A router quoted the header and 8 bytes of a 1500-byte datagram.
        let mut q = ECHO[..28].to_vec();
        q[2..4].copy_from_slice(&1500u16.to_be_bytes());
        assert!(Ipv4Packet::new_checked(&q[..]).is_err());
        let p = Ipv4Packet::new_lax(&q[..]).unwrap();
        assert!(p.is_lax());
        assert!(p.is_payload_truncated());
        assert_eq!(p.payload(), &ECHO[20..28]);
        assert_eq!(p.total_len(), 1500);
        assert!(Ipv4Packet::new_lax(&q[..19]).is_err());
    }

    #[test]
    fn padding_after_total_len_is_not_payload() {
        let mut v = ECHO.to_vec();
        v.extend_from_slice(&[0u8; 10]); // Ethernet minimum-frame padding
        let p = Ipv4Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.payload().len(), 16);
    }

    #[test]
    fn options_parse_into_a_list_and_emit_back_byte_for_byte() {
        let v = with_options();
        let p = Ipv4Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.header_len(), 60);
        assert!(p.verify_checksum());
        assert!(p.reserved_flag() && p.frag_offset() == 5);
        assert_eq!(p.dscp(), 46);
        let mut list = [Ipv4Option::Nop; 8];
        let n = parse_options(p.options(), &mut list).unwrap();
        assert_eq!(n, 2);
        match list[0] {
            Ipv4Option::RecordRoute { pointer, data } => {
                assert_eq!(pointer, 8);
                assert_eq!(data.len(), 36);
                let first = list[0].addresses().next().unwrap();
                assert_eq!(first, Ipv4Addr::new(198, 18, 0, 1));
                assert_eq!(list[0].addresses().count(), 9);
            }
            o => panic!("not RR: {o:?}"),
        }
        assert_eq!(list[1], Ipv4Option::EndOfList);
        let mut out = [0u8; 40];
        let m = emit_options(&list[..n], &mut out).unwrap();
        assert_eq!(&out[..m], p.options());
    }

    #[test]
    fn every_option_kind_round_trips() {
        let bytes: Vec<u8> = [
            &[0x01][..],                                       // NOP
            &[0x94, 0x04, 0x00, 0x00],                         // Router Alert
            &[0x44, 0x0c, 0x05, 0x01, 1, 2, 3, 4, 0, 0, 0, 0], // TS, flags 1
            &[0x83, 0x07, 0x04, 198, 18, 1, 1],                // LSRR
            &[0x89, 0x07, 0x04, 198, 18, 2, 2],                // SSRR
            &[0x1e, 0x03, 0xaa],                               // unknown 30
            &[0x00, 0x00, 0x00],                               // EOL, padding
        ]
        .concat();
        let kinds: Vec<Ipv4Option<'_>> = OptionIter::new(&bytes).map(|o| o.unwrap()).collect();
        assert_eq!(kinds[1], Ipv4Option::RouterAlert(0));
        assert!(matches!(
            kinds[2],
            Ipv4Option::Timestamp {
                pointer: 5,
                overflow: 0,
                flags: 1,
                ..
            }
        ));
        assert_eq!(
            kinds[3].addresses().next(),
            Some(Ipv4Addr::new(198, 18, 1, 1))
        );
        assert!(kinds[3].is_copied() && kinds[4].is_copied() && !kinds[2].is_copied());
        assert_eq!(
            kinds[5],
            Ipv4Option::Unknown {
                kind: 0x1e,
                data: &[0xaa]
            }
        );
        let mut out = vec![0u8; bytes.len()];
        assert_eq!(emit_options(&kinds, &mut out).unwrap(), bytes.len());
        assert_eq!(out, bytes);
    }

    #[test]
    fn nonzero_bytes_after_end_of_list_are_kept_as_padding() {
        let bytes = [0x01, 0x00, 0xde, 0xad];
        let opts: Vec<_> = OptionIter::new(&bytes).map(|o| o.unwrap()).collect();
        assert_eq!(
            opts,
            vec![
                Ipv4Option::Nop,
                Ipv4Option::EndOfList,
                Ipv4Option::Padding(&[0xde, 0xad])
            ]
        );
    }

    #[test]
    fn malformed_options_are_errors_with_offsets() {
        // Length byte 1 is below the minimum of 2 (RFC 791: length counts type and length).
        let e = OptionIter::new(&[0x07, 0x01]).next().unwrap().unwrap_err();
        assert!(matches!(
            e,
            Error::BadLength {
                value: 1,
                min: 2,
                ..
            }
        ));
        // Length runs past the option area.
        let e = OptionIter::new(&[0x01, 0x07, 0x09, 0x04])
            .nth(1)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e,
            Error::Truncated {
                layer: Layer::Ipv4Option,
                need: 9,
                have: 3,
                source: LenSource::OptionLen,
                offset: 21
            }
        );
        // A lone type byte.
        assert!(OptionIter::new(&[0x44]).next().unwrap().is_err());
        // A timestamp option shorter than its fixed part.
        assert!(
            OptionIter::new(&[0x44, 0x03, 0x05])
                .next()
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn protocol_numbers_keep_unknown_values() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(n)), n);
        }
        assert_eq!(IpProtocol::from(253).to_string(), "ip-proto-253");
    }
}
