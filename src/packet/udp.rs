//! UDP headers (RFC 768): a zero-copy view and a small repr.
//!
//! The checksum covers the IPv4 pseudo-header, the UDP header and the payload. RFC 768: a
//! transmitted checksum of 0 means "none"; a computed checksum of 0 is sent as 0xffff.

use super::checksum;
use super::error::{Error, Layer, LenSource, Result};
use super::ipv4::IpProtocol;
use super::{read_u16, write_u16};
use std::net::Ipv4Addr;

/// Size of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after checking `8 <= length field <= buffer length`; afterwards no
    /// accessor panics. Bytes beyond the length field are ignored by [`UdpPacket::payload`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = UdpPacket::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The checks of [`UdpPacket::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::truncated(
                Layer::Udp,
                HEADER_LEN,
                have,
                LenSource::Header,
            ));
        }
        let len = self.len() as usize;
        if len < HEADER_LEN {
            return Err(Error::BadLength {
                layer: Layer::Udp,
                field: "length",
                value: len,
                min: HEADER_LEN,
            });
        }
        if have < len {
            return Err(Error::truncated(Layer::Udp, len, have, LenSource::UdpLen));
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Length field (header plus payload).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Checksum field; 0 means none was computed.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The payload, up to the length field (or the buffer end, if the buffer is shorter).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (self.len() as usize).clamp(HEADER_LEN.min(b.len()), b.len());
        &b[HEADER_LEN.min(end)..end]
    }

    /// The checksum this datagram should carry, over the pseudo-header and the bytes covered by
    /// the length field; 0 computed is returned as 0xffff (RFC 768).
    pub fn compute_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let b = self.buffer.as_ref();
        let end = (self.len() as usize).clamp(HEADER_LEN, b.len());
        let mut acc = checksum::pseudo_header(src, dst, IpProtocol::Udp.into(), self.len());
        acc.add(&b[..field::CHECKSUM.start])
            .add(&b[field::CHECKSUM.end..end]);
        match acc.checksum() {
            0 => 0xffff,
            c => c,
        }
    }

    /// True when the checksum field holds only the folded pseudo-header sum: what Linux leaves
    /// for the NIC to finish (checksum offload, `CHECKSUM_PARTIAL`), as seen in captures of a
    /// host's own datagrams on `lo` and on veth. Not a valid checksum, and not an error either.
    pub fn is_partial_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let c = self.checksum();
        c != 0 && c == checksum::pseudo_header(src, dst, IpProtocol::Udp.into(), self.len()).sum()
    }

    /// True when the checksum is 0 (none) or verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let c = self.checksum();
        c == 0 || c == self.compute_checksum(src, dst)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT.start, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT.start, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, v);
    }

    /// Sets the checksum field to any value (0 for none).
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// The payload, mutable (whole buffer after the header).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes and writes the checksum.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = self.compute_checksum(src, dst);
        self.set_checksum(c);
    }
}

/// The everyday fields of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Parses a checked datagram; a checksum that is neither 0 nor correct is an error.
    pub fn parse<T: AsRef<[u8]>>(p: &UdpPacket<T>, src: Ipv4Addr, dst: Ipv4Addr) -> Result<Self> {
        p.check_len()?;
        if !p.verify_checksum(src, dst) {
            return Err(Error::Checksum {
                layer: Layer::Udp,
                found: p.checksum(),
                expected: p.compute_checksum(src, dst),
            });
        }
        Ok(UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
        })
    }

    /// Bytes the header and `payload_len` bytes occupy.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes header and payload into `buf`, with length and checksum; returns the bytes written.
    pub fn emit(
        &self,
        buf: &mut [u8],
        payload: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<usize> {
        let n = HEADER_LEN + payload.len();
        if n > u16::MAX as usize {
            return Err(Error::Invalid {
                layer: Layer::Udp,
                reason: "datagram longer than 65535 bytes",
            });
        }
        if buf.len() < n {
            return Err(Error::BufferTooSmall {
                layer: Layer::Udp,
                need: n,
                have: buf.len(),
            });
        }
        let mut p = UdpPacket::new_unchecked(&mut buf[..n]);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(n as u16);
        p.payload_mut().copy_from_slice(payload);
        p.fill_checksum(src, dst);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
    // 127.0.0.1.51278 > 127.0.0.1.33434, payload "probe", full checksum 0x7213. (On lo the
    // kernel's own datagrams are captured with the partial checksum 0xfe20: see below.)
    static DATAGRAM: [u8; 13] = [
        0xc8, 0x4e, 0x82, 0x9a, 0x00, 0x0d, 0x72, 0x13, 0x70, 0x72, 0x6f, 0x62, 0x65,
    ];

    #[test]
    fn loopback_capture_shows_the_partial_checksum() {
        // As captured on lo from a plain UDP socket: checksum offload leaves the folded
        // pseudo-header sum in the field (CHECKSUM_PARTIAL).
        let mut buf = DATAGRAM;
        buf[6..8].copy_from_slice(&[0xfe, 0x20]);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum(LO, LO));
        assert!(p.is_partial_checksum(LO, LO));
        assert!(
            !UdpPacket::new_checked(&DATAGRAM[..])
                .unwrap()
                .is_partial_checksum(LO, LO)
        );
    }

    #[test]
    fn deconstruct_captured_datagram() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(p.src_port(), 51278);
        assert_eq!(p.dst_port(), 33434);
        assert_eq!(p.len(), 13);
        assert_eq!(p.checksum(), 0x7213);
        assert_eq!(p.payload(), b"probe");
        assert!(p.verify_checksum(LO, LO));
        assert!(!p.verify_checksum(LO, Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(
            UdpRepr::parse(&p, LO, LO).unwrap(),
            UdpRepr {
                src_port: 51278,
                dst_port: 33434
            }
        );
    }

    #[test]
    fn construct_from_a5_filled_buffer() {
        let mut buf = [0xa5u8; 13];
        let n = UdpRepr {
            src_port: 51278,
            dst_port: 33434,
        }
        .emit(&mut buf, b"probe", LO, LO)
        .unwrap();
        assert_eq!(n, 13);
        assert_eq!(buf, DATAGRAM);
    }

    #[test]
    fn zero_checksum_means_none_and_computed_zero_is_sent_as_ffff() {
        let mut buf = DATAGRAM;
        buf[6] = 0;
        buf[7] = 0;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(LO, LO));
        // Find a payload whose checksum computes to 0: adjust two payload bytes so the sum is
        // 0xffff before inversion.
        let mut d = [0u8; 10];
        UdpRepr {
            src_port: 1,
            dst_port: 2,
        }
        .emit(&mut d, &[0, 0], LO, LO)
        .unwrap();
        let c = UdpPacket::new_checked(&d[..]).unwrap().checksum();
        // Putting the checksum value into the payload word drives the sum to all ones.
        let mut d2 = [0u8; 10];
        UdpRepr {
            src_port: 1,
            dst_port: 2,
        }
        .emit(&mut d2, &c.to_be_bytes(), LO, LO)
        .unwrap();
        let p2 = UdpPacket::new_checked(&d2[..]).unwrap();
        assert_eq!(p2.checksum(), 0xffff);
        assert!(p2.verify_checksum(LO, LO));
    }

    #[test]
    fn wrong_checksum_and_lengths_are_errors() {
        let mut buf = DATAGRAM;
        buf[7] ^= 1;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(matches!(
            UdpRepr::parse(&p, LO, LO),
            Err(Error::Checksum { .. })
        ));
        for len in 0..DATAGRAM.len() {
            assert!(
                UdpPacket::new_checked(&DATAGRAM[..len]).is_err(),
                "len {len}"
            );
        }
        let mut buf = DATAGRAM;
        buf[5] = 7;
        assert!(matches!(
            UdpPacket::new_checked(&buf[..]),
            Err(Error::BadLength { value: 7, .. })
        ));
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..12])
                .unwrap_err()
                .to_string(),
            "udp: truncated: need 13 bytes, have 12 (required by the UDP length field)"
        );
    }
}
