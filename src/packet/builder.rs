//! Compose an IPv4 datagram with an ICMP, UDP or raw payload into the caller's buffer.
//!
//! Lengths and checksums are filled in unless an override says otherwise; every override is an
//! explicit call (`checksum`, `total_len`, `ihl`, `icmp_checksum`, `udp_len`, `udp_checksum`,
//! `protocol`, `version`), so a wrong value is always on purpose. Nothing allocates.
//!
//! ```
//! use rawkit::packet::builder::{Ipv4Builder, UdpChecksum};
//! use std::net::Ipv4Addr;
//!
//! let mut buf = [0u8; 64];
//! let n = Ipv4Builder::new(Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2))
//!     .ttl(1)
//!     .ident(0x1234)
//!     .udp(40000, 33434, b"probe")
//!     .udp_checksum(UdpChecksum::Value(0xdead)) // deliberately wrong
//!     .emit(&mut buf)
//!     .unwrap();
//! assert_eq!(n, 20 + 8 + 5);
//! ```

use super::error::{Error, Layer, Result};
use super::icmp::{IcmpPacket, IcmpRepr};
use super::ipv4::{self, IpProtocol};
use super::udp::{self, UdpPacket};
use std::net::Ipv4Addr;

/// How the UDP checksum is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UdpChecksum {
    /// Computed over the pseudo-header (0 sent as 0xffff).
    #[default]
    Auto,
    /// 0: no checksum (RFC 768).
    None,
    /// The given value, right or wrong.
    Value(u16),
    /// The correct value with its low bit flipped: always wrong, never 0.
    Bad,
}

/// What follows the IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// Nothing: a bare header.
    Empty,
    /// Raw bytes (protocol field set by [`Ipv4Builder::protocol`], default 255 "reserved").
    Raw(&'a [u8]),
    /// An ICMP message.
    Icmp(IcmpRepr<'a>),
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Payload.
        payload: &'a [u8],
    },
}

/// Builds one IPv4 datagram. Cheap to copy; every setter returns the builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Builder<'a> {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    tos: u8,
    ident: u16,
    ttl: u8,
    dont_frag: bool,
    more_frags: bool,
    reserved_flag: bool,
    frag_offset: u16,
    options: &'a [u8],
    version: u8,
    protocol: Option<IpProtocol>,
    ihl: Option<u8>,
    total_len: Option<u16>,
    checksum: Option<u16>,
    transport: Transport<'a>,
    icmp_checksum: Option<u16>,
    udp_len: Option<u16>,
    udp_checksum: UdpChecksum,
}

impl<'a> Ipv4Builder<'a> {
    /// A header from `src` to `dst`: TTL 64, TOS 0, identification 0, no flags, no options,
    /// no payload.
    pub const fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Ipv4Builder {
            src,
            dst,
            tos: 0,
            ident: 0,
            ttl: 64,
            dont_frag: false,
            more_frags: false,
            reserved_flag: false,
            frag_offset: 0,
            options: &[],
            version: 4,
            protocol: None,
            ihl: None,
            total_len: None,
            checksum: None,
            transport: Transport::Empty,
            icmp_checksum: None,
            udp_len: None,
            udp_checksum: UdpChecksum::Auto,
        }
    }

    /// Source address (0.0.0.0 lets the kernel fill it on an `IP_HDRINCL` socket; a UDP checksum
    /// is then computed over 0.0.0.0 and will be wrong: resolve the source first).
    pub const fn src(mut self, a: Ipv4Addr) -> Self {
        self.src = a;
        self
    }

    /// Destination address.
    pub const fn dst(mut self, a: Ipv4Addr) -> Self {
        self.dst = a;
        self
    }

    /// Time to live.
    pub const fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// The whole TOS byte.
    pub const fn tos(mut self, tos: u8) -> Self {
        self.tos = tos;
        self
    }

    /// DSCP (upper six bits of the TOS byte).
    pub const fn dscp(mut self, dscp: u8) -> Self {
        self.tos = (self.tos & 0x03) | (dscp << 2);
        self
    }

    /// ECN (lower two bits of the TOS byte).
    pub const fn ecn(mut self, ecn: u8) -> Self {
        self.tos = (self.tos & 0xfc) | (ecn & 0x03);
        self
    }

    /// Identification. On an `IP_HDRINCL` socket Linux fills 0 in itself when DF is clear.
    pub const fn ident(mut self, id: u16) -> Self {
        self.ident = id;
        self
    }

    /// Don't fragment.
    pub const fn dont_frag(mut self, on: bool) -> Self {
        self.dont_frag = on;
        self
    }

    /// More fragments.
    pub const fn more_frags(mut self, on: bool) -> Self {
        self.more_frags = on;
        self
    }

    /// The reserved ("evil", RFC 3514) flag bit.
    pub const fn reserved_flag(mut self, on: bool) -> Self {
        self.reserved_flag = on;
        self
    }

    /// Fragment offset in 8-byte units (13 bits).
    pub const fn frag_offset(mut self, units: u16) -> Self {
        self.frag_offset = units;
        self
    }

    /// Raw option bytes, padded with zeros (end of list) to a 32-bit boundary on emit. Build
    /// them with [`ipv4::emit_options`]. At most 40 bytes.
    pub const fn options(mut self, options: &'a [u8]) -> Self {
        self.options = options;
        self
    }

    /// Overrides the version nibble (default 4).
    pub const fn version(mut self, v: u8) -> Self {
        self.version = v;
        self
    }

    /// Overrides the protocol field (default: from the payload; 255 for raw bytes).
    pub const fn protocol(mut self, p: IpProtocol) -> Self {
        self.protocol = Some(p);
        self
    }

    /// Overrides the IHL field (default: 5 plus the padded options). The bytes written do not
    /// change: the header then lies about its own length.
    pub const fn ihl(mut self, ihl: u8) -> Self {
        self.ihl = Some(ihl);
        self
    }

    /// Overrides the total length field.
    pub const fn total_len(mut self, len: u16) -> Self {
        self.total_len = Some(len);
        self
    }

    /// Overrides the header checksum.
    pub const fn checksum(mut self, c: u16) -> Self {
        self.checksum = Some(c);
        self
    }

    /// An ICMP message as payload (protocol 1).
    pub const fn icmp(mut self, repr: &IcmpRepr<'a>) -> Self {
        self.transport = Transport::Icmp(*repr);
        self
    }

    /// Overrides the ICMP checksum.
    pub const fn icmp_checksum(mut self, c: u16) -> Self {
        self.icmp_checksum = Some(c);
        self
    }

    /// A UDP datagram as payload (protocol 17).
    pub const fn udp(mut self, src_port: u16, dst_port: u16, payload: &'a [u8]) -> Self {
        self.transport = Transport::Udp {
            src_port,
            dst_port,
            payload,
        };
        self
    }

    /// Overrides the UDP length field.
    pub const fn udp_len(mut self, len: u16) -> Self {
        self.udp_len = Some(len);
        self
    }

    /// How to set the UDP checksum.
    pub const fn udp_checksum(mut self, c: UdpChecksum) -> Self {
        self.udp_checksum = c;
        self
    }

    /// Raw bytes as payload; set the protocol with [`Ipv4Builder::protocol`].
    pub const fn raw(mut self, payload: &'a [u8]) -> Self {
        self.transport = Transport::Raw(payload);
        self
    }

    /// Any payload.
    pub const fn transport(mut self, t: Transport<'a>) -> Self {
        self.transport = t;
        self
    }

    /// The destination.
    pub const fn dst_addr(&self) -> Ipv4Addr {
        self.dst
    }

    /// The source.
    pub const fn src_addr(&self) -> Ipv4Addr {
        self.src
    }

    /// Header bytes written: 20 plus the options padded to 4.
    pub const fn header_len(&self) -> usize {
        ipv4::HEADER_LEN + self.options.len().next_multiple_of(4)
    }

    /// Bytes after the header.
    pub fn transport_len(&self) -> usize {
        match self.transport {
            Transport::Empty => 0,
            Transport::Raw(p) => p.len(),
            Transport::Icmp(r) => r.buffer_len(),
            Transport::Udp { payload, .. } => udp::HEADER_LEN + payload.len(),
        }
    }

    /// Bytes [`Ipv4Builder::emit`] writes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.header_len() + self.transport_len()
    }

    /// Checks what can be checked without a buffer: options fit in 40 bytes, the datagram fits
    /// in 65535 bytes, the fragment offset fits in 13 bits, the IHL override fits in 4 bits.
    pub fn validate(&self) -> Result<()> {
        if self.options.len() > ipv4::MAX_HEADER_LEN - ipv4::HEADER_LEN {
            return Err(Error::Invalid {
                layer: Layer::Builder,
                reason: "IPv4 options longer than 40 bytes (IHL 15 is the largest header)",
            });
        }
        if self.len() > ipv4::MAX_PACKET_LEN {
            return Err(Error::Invalid {
                layer: Layer::Builder,
                reason: "datagram longer than 65535 bytes: shorten the payload",
            });
        }
        if self.frag_offset > 0x1fff {
            return Err(Error::Invalid {
                layer: Layer::Builder,
                reason: "fragment offset above 8191 (13 bits, in 8-byte units)",
            });
        }
        if matches!(self.ihl, Some(i) if i > 15) {
            return Err(Error::Invalid {
                layer: Layer::Builder,
                reason: "IHL above 15 (4 bits)",
            });
        }
        if self.version > 15 {
            return Err(Error::Invalid {
                layer: Layer::Builder,
                reason: "version above 15 (4 bits)",
            });
        }
        Ok(())
    }

    /// Writes the datagram to the front of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.validate()?;
        let total = self.len();
        if buf.len() < total {
            return Err(Error::BufferTooSmall {
                layer: Layer::Builder,
                need: total,
                have: buf.len(),
            });
        }
        let buf = &mut buf[..total];
        let hl = self.header_len();

        // Transport first: the IPv4 header does not depend on it, except for the protocol.
        let protocol = {
            let body = &mut buf[hl..];
            match self.transport {
                Transport::Empty => self.protocol.unwrap_or(IpProtocol::Unknown(255)),
                Transport::Raw(p) => {
                    body.copy_from_slice(p);
                    self.protocol.unwrap_or(IpProtocol::Unknown(255))
                }
                Transport::Icmp(repr) => {
                    repr.emit(body)?;
                    if let Some(c) = self.icmp_checksum {
                        IcmpPacket::new_unchecked(&mut *body).set_checksum(c);
                    }
                    self.protocol.unwrap_or(IpProtocol::Icmp)
                }
                Transport::Udp {
                    src_port,
                    dst_port,
                    payload,
                } => {
                    let mut p = UdpPacket::new_unchecked(&mut *body);
                    p.set_src_port(src_port);
                    p.set_dst_port(dst_port);
                    let len = self
                        .udp_len
                        .unwrap_or((udp::HEADER_LEN + payload.len()) as u16);
                    p.set_len(len);
                    p.payload_mut().copy_from_slice(payload);
                    p.set_checksum(0);
                    match self.udp_checksum {
                        UdpChecksum::None => {}
                        UdpChecksum::Value(v) => p.set_checksum(v),
                        UdpChecksum::Auto => p.fill_checksum(self.src, self.dst),
                        UdpChecksum::Bad => {
                            let good = p.compute_checksum(self.src, self.dst);
                            // Flipping bit 0 of 0x0001 would give 0 ("none"): flip bit 1 there.
                            let bad = if good == 1 { good ^ 2 } else { good ^ 1 };
                            p.set_checksum(bad);
                        }
                    }
                    self.protocol.unwrap_or(IpProtocol::Udp)
                }
            }
        };

        if hl > ipv4::HEADER_LEN {
            buf[ipv4::HEADER_LEN..hl].fill(0);
            buf[ipv4::HEADER_LEN..ipv4::HEADER_LEN + self.options.len()]
                .copy_from_slice(self.options);
        }
        // The fixed header as five 32-bit words, written at once: its checksum comes from these
        // values, not from bytes read back after many narrow stores (a store-forwarding stall).
        let ihl = self.ihl.unwrap_or((hl / 4) as u8);
        let flags = (u16::from(self.reserved_flag) << 15)
            | (u16::from(self.dont_frag) << 14)
            | (u16::from(self.more_frags) << 13)
            | (self.frag_offset & 0x1fff);
        let w0 = (u32::from(self.version & 0x0f) << 28)
            | (u32::from(ihl & 0x0f) << 24)
            | (u32::from(self.tos) << 16)
            | u32::from(self.total_len.unwrap_or(total as u16));
        let w1 = (u32::from(self.ident) << 16) | u32::from(flags);
        let ttl_proto = (u16::from(self.ttl) << 8) | u16::from(u8::from(protocol));
        let c = match self.checksum {
            Some(c) => c,
            // The checksum covers the bytes actually written as header, whatever IHL says.
            None => {
                let mut acc = super::checksum::Accumulator::new();
                acc.add_u32(w0)
                    .add_u32(w1)
                    .add_u16(ttl_proto)
                    .add_u32(self.src.to_bits())
                    .add_u32(self.dst.to_bits());
                if !self.options.is_empty() {
                    // Padding after the options is zeros: nothing to add.
                    acc.add(self.options);
                }
                acc.checksum()
            }
        };
        let mut header = [0u8; ipv4::HEADER_LEN];
        header[0..4].copy_from_slice(&w0.to_be_bytes());
        header[4..8].copy_from_slice(&w1.to_be_bytes());
        header[8..10].copy_from_slice(&ttl_proto.to_be_bytes());
        header[10..12].copy_from_slice(&c.to_be_bytes());
        header[12..16].copy_from_slice(&self.src.octets());
        header[16..20].copy_from_slice(&self.dst.octets());
        buf[..ipv4::HEADER_LEN].copy_from_slice(&header);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum;
    use crate::packet::icmp::IcmpType;
    use crate::packet::ipv4::Ipv4Packet;
    use crate::packet::ipv4::{Ipv4Option, emit_options};

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    #[test]
    fn echo_request_has_lengths_and_checksums_filled() {
        let data = [0x5au8; 56];
        let mut buf = [0xa5u8; 100];
        let n = Ipv4Builder::new(A, B)
            .ttl(7)
            .tos(0xb8)
            .ident(99)
            .dont_frag(true)
            .icmp(&IcmpRepr::EchoRequest {
                ident: 1,
                seq_no: 2,
                data: &data,
            })
            .emit(&mut buf)
            .unwrap();
        assert_eq!(n, 84);
        let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.ttl(), ip.tos(), ip.ident(), ip.dont_frag()),
            (7, 0xb8, 99, true)
        );
        assert_eq!(ip.protocol(), IpProtocol::Icmp);
        assert_eq!(ip.total_len(), 84);
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.msg_type(), IcmpType::EchoRequest);
    }

    #[test]
    fn every_override_lands_in_the_bytes() {
        let mut buf = [0u8; 64];
        let n = Ipv4Builder::new(A, B)
            .version(6)
            .ihl(4)
            .total_len(9999)
            .checksum(0xbeef)
            .reserved_flag(true)
            .more_frags(true)
            .frag_offset(0x1fff)
            .protocol(IpProtocol::Tcp)
            .udp(1, 2, b"hello")
            .udp_len(99)
            .udp_checksum(UdpChecksum::Value(0x1234))
            .emit(&mut buf)
            .unwrap();
        assert_eq!(n, 33);
        let ip = Ipv4Packet::new_unchecked(&buf[..n]);
        assert_eq!((ip.version(), ip.ihl(), ip.total_len()), (6, 4, 9999));
        assert_eq!(ip.checksum(), 0xbeef);
        assert!(ip.reserved_flag() && ip.more_frags() && !ip.dont_frag());
        assert_eq!(ip.frag_offset(), 0x1fff);
        assert_eq!(ip.protocol(), IpProtocol::Tcp);
        let udp = UdpPacket::new_unchecked(&buf[20..n]);
        assert_eq!((udp.len(), udp.checksum()), (99, 0x1234));
        assert_eq!(&buf[28..n], b"hello");
    }

    #[test]
    fn udp_checksum_modes() {
        let mut buf = [0u8; 64];
        let b = Ipv4Builder::new(A, B).udp(5000, 6000, b"x");
        for (mode, ok) in [
            (UdpChecksum::Auto, true),
            (UdpChecksum::None, true),
            (UdpChecksum::Bad, false),
        ] {
            let n = b.udp_checksum(mode).emit(&mut buf).unwrap();
            let udp = UdpPacket::new_checked(&buf[20..n]).unwrap();
            assert_eq!(udp.verify_checksum(A, B), ok, "{mode:?}");
            assert_eq!(udp.checksum() == 0, mode == UdpChecksum::None);
        }
    }

    #[test]
    fn options_are_padded_and_counted_in_ihl() {
        let mut opts = [0u8; 8];
        let n = emit_options(&[Ipv4Option::Nop, Ipv4Option::RouterAlert(0)], &mut opts).unwrap();
        let mut buf = [0u8; 64];
        let len = Ipv4Builder::new(A, B)
            .options(&opts[..n])
            .raw(b"abcd")
            .protocol(IpProtocol::Unknown(253))
            .emit(&mut buf)
            .unwrap();
        assert_eq!(len, 20 + 8 + 4);
        let ip = Ipv4Packet::new_checked(&buf[..len]).unwrap();
        assert_eq!(ip.ihl(), 7);
        assert_eq!(ip.options(), &[1, 148, 4, 0, 0, 0, 0, 0]);
        assert!(ip.verify_checksum());
        assert_eq!(ip.payload(), b"abcd");
        assert_eq!(checksum::checksum(&buf[..0]), 0xffff);
    }

    #[test]
    fn impossible_requests_are_errors_not_panics() {
        let big = vec![0u8; 65_516];
        let mut buf = vec![0u8; 70_000];
        let e = Ipv4Builder::new(A, B).raw(&big).emit(&mut buf).unwrap_err();
        assert_eq!(
            e.to_string(),
            "builder: datagram longer than 65535 bytes: shorten the payload"
        );
        assert!(
            Ipv4Builder::new(A, B)
                .options(&[1; 41])
                .emit(&mut buf)
                .is_err()
        );
        assert!(
            Ipv4Builder::new(A, B)
                .frag_offset(0x2000)
                .emit(&mut buf)
                .is_err()
        );
        assert!(Ipv4Builder::new(A, B).ihl(16).emit(&mut buf).is_err());
        assert_eq!(
            Ipv4Builder::new(A, B).raw(b"abc").emit(&mut [0u8; 22]),
            Err(Error::BufferTooSmall {
                layer: Layer::Builder,
                need: 23,
                have: 22
            })
        );
        // The largest datagram that fits is accepted.
        let max = vec![0u8; 65_515];
        assert_eq!(Ipv4Builder::new(A, B).raw(&max).emit(&mut buf), Ok(65_535));
    }

    #[test]
    fn icmp_checksum_override_is_kept() {
        let mut buf = [0u8; 64];
        let n = Ipv4Builder::new(A, B)
            .icmp(&IcmpRepr::EchoRequest {
                ident: 1,
                seq_no: 1,
                data: &[],
            })
            .icmp_checksum(0)
            .emit(&mut buf)
            .unwrap();
        assert_eq!(&buf[22..24], &[0, 0]);
        assert_eq!(n, 28);
    }
}
