//! Split an IPv4 datagram into fragments (RFC 791 section 3.2, "fragmentation").
//!
//! Each fragment carries `size` bytes of the original payload (the last one the rest); offsets
//! are in 8-byte units, so `size` must be a multiple of 8. The first fragment keeps every option;
//! later ones keep only the options whose "copied" bit is set. A datagram that is itself a
//! fragment can be split again: offsets add up, and the last piece keeps the original MF bit.
//!
//! [`Fragmenter`] writes one fragment at a time into the caller's buffer; [`fragment`] collects
//! them into vectors for convenience. [`Fragmenter::with_overlap`] makes each fragment start some
//! bytes before the previous one ended (the same bytes twice, as attacks and fragmentation tests
//! do): RFC 791 reassembly keeps either copy, while Linux (like RFC 5722 for IPv6) drops the
//! whole datagram when fragments overlap partially.

use super::error::{Error, Layer, Result};
use super::ipv4::{self, Ipv4Option, Ipv4Packet, OptionIter};

/// Writes the fragments of one datagram one by one.
#[derive(Debug, Clone)]
pub struct Fragmenter<'a> {
    packet: Ipv4Packet<&'a [u8]>,
    size: usize,
    /// Payload bytes between the starts of two fragments: `size` less the overlap.
    step: usize,
    pos: usize,
    copied_options: [u8; 40],
    copied_len: usize,
}

impl<'a> Fragmenter<'a> {
    /// Prepares to split `datagram` (a whole IPv4 datagram: header checks of
    /// [`Ipv4Packet::new_checked`]) into pieces of `size` payload bytes.
    pub fn new(datagram: &'a [u8], size: usize) -> Result<Self> {
        Fragmenter::with_overlap(datagram, size, 0)
    }

    /// Like [`Fragmenter::new`], but every fragment after the first starts `overlap` bytes
    /// before the previous one ended, repeating those bytes. `overlap` must be a multiple of 8
    /// (offsets count 8-byte units) and smaller than `size`; 0 gives [`Fragmenter::new`].
    pub fn with_overlap(datagram: &'a [u8], size: usize, overlap: usize) -> Result<Self> {
        if size == 0 || size % 8 != 0 {
            return Err(Error::Invalid {
                layer: Layer::Fragment,
                reason: "fragment size must be a positive multiple of 8 (offsets count 8-byte units)",
            });
        }
        if overlap % 8 != 0 || overlap >= size {
            return Err(Error::Invalid {
                layer: Layer::Fragment,
                reason: "fragment overlap must be a multiple of 8 and smaller than the fragment size",
            });
        }
        let packet = Ipv4Packet::new_checked(datagram)?;
        // Offsets count 8-byte units in 13 bits: the last fragment must start at or below
        // 65528, and RFC 791 datagrams end at 65535.
        if packet.frag_offset_bytes() + packet.payload().len() > 65_535 {
            return Err(Error::Invalid {
                layer: Layer::Fragment,
                reason: "fragment offset plus payload passes 65535 bytes: the offsets would wrap",
            });
        }
        let mut copied_options = [0u8; 40];
        let mut copied_len = 0;
        for opt in OptionIter::new(packet.options()) {
            let opt: Ipv4Option<'_> = opt?;
            if opt.is_copied() {
                copied_len += opt.emit(&mut copied_options[copied_len..])?;
            }
        }
        Ok(Fragmenter {
            packet,
            size,
            step: size - overlap,
            pos: 0,
            copied_options,
            copied_len,
        })
    }

    /// How many fragments there will be (at least one, even for an empty payload).
    pub fn count(&self) -> usize {
        let len = self.packet.payload().len();
        if len <= self.size {
            1
        } else {
            1 + (len - self.size).div_ceil(self.step)
        }
    }

    /// The largest fragment in bytes (the first, which has all the options).
    pub fn max_fragment_len(&self) -> usize {
        self.packet.header_len() + self.size.min(self.packet.payload().len())
    }

    /// Writes the next fragment into `buf`; `None` when all were written.
    pub fn next_into(&mut self, buf: &mut [u8]) -> Option<Result<usize>> {
        let payload = self.packet.payload();
        let first = self.pos == 0;
        if !first && self.pos >= payload.len() {
            return None;
        }
        let end = (self.pos + self.size).min(payload.len());
        let chunk = &payload[self.pos..end];
        let opts_len = if first {
            self.packet.options().len()
        } else {
            self.copied_len.next_multiple_of(4)
        };
        let hl = ipv4::HEADER_LEN + opts_len;
        let n = hl + chunk.len();
        if buf.len() < n {
            return Some(Err(Error::BufferTooSmall {
                layer: Layer::Fragment,
                need: n,
                have: buf.len(),
            }));
        }
        let src = self.packet.as_bytes();
        buf[..ipv4::HEADER_LEN].copy_from_slice(&src[..ipv4::HEADER_LEN]);
        if first {
            buf[ipv4::HEADER_LEN..hl].copy_from_slice(self.packet.options());
        } else {
            buf[ipv4::HEADER_LEN..hl].fill(0);
            buf[ipv4::HEADER_LEN..ipv4::HEADER_LEN + self.copied_len]
                .copy_from_slice(&self.copied_options[..self.copied_len]);
        }
        buf[hl..n].copy_from_slice(chunk);
        let last = end >= payload.len();
        let base = self.packet.frag_offset_bytes();
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[..n]);
        ip.set_ihl((hl / 4) as u8);
        ip.set_total_len(n as u16);
        ip.set_more_frags(!last || self.packet.more_frags());
        ip.set_frag_offset(((base + self.pos) / 8) as u16);
        ip.set_checksum(0);
        ip.fill_checksum();
        self.pos = if first && payload.is_empty() {
            1
        } else if last {
            end
        } else {
            self.pos + self.step
        };
        Some(Ok(n))
    }
}

/// Splits `datagram` into fragments of `size` payload bytes each.
///
/// ```
/// use rawkit::packet::{builder::Ipv4Builder, fragment::fragment, ipv4::Ipv4Packet};
/// use std::net::Ipv4Addr;
/// let payload = [7u8; 100];
/// let mut buf = [0u8; 200];
/// let n = Ipv4Builder::new(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST)
///     .ident(42)
///     .udp(1, 2, &payload)
///     .emit(&mut buf)
///     .unwrap();
/// let frags = fragment(&buf[..n], 48).unwrap();
/// assert_eq!(frags.len(), 3); // 108 bytes of UDP: 48 + 48 + 12
/// let last = Ipv4Packet::new_checked(&frags[2][..]).unwrap();
/// assert_eq!((last.frag_offset(), last.more_frags()), (12, false));
/// ```
pub fn fragment(datagram: &[u8], size: usize) -> Result<Vec<Vec<u8>>> {
    let mut f = Fragmenter::new(datagram, size)?;
    let mut out = Vec::with_capacity(f.count());
    let mut buf = vec![0u8; f.max_fragment_len()];
    while let Some(r) = f.next_into(&mut buf) {
        let n = r?;
        out.push(buf[..n].to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::builder::Ipv4Builder;
    use crate::packet::ipv4::{Ipv4Option, emit_options};
    use std::net::Ipv4Addr;

    fn datagram(payload: &[u8], options: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 2000];
        let n = Ipv4Builder::new(Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2))
            .ident(0x4242)
            .options(options)
            .udp(7, 9, payload)
            .emit(&mut buf)
            .unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn pieces_reassemble_to_the_original_payload() {
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let d = datagram(&payload, &[]);
        let frags = fragment(&d, 256).unwrap();
        assert_eq!(frags.len(), 4); // 1008 bytes of UDP
        let mut whole = vec![0u8; 1008];
        for (i, f) in frags.iter().enumerate() {
            let ip = Ipv4Packet::new_checked(&f[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.ident(), 0x4242);
            assert_eq!(ip.more_frags(), i < 3);
            assert_eq!(ip.frag_offset_bytes(), i * 256);
            let off = ip.frag_offset_bytes();
            whole[off..off + ip.payload().len()].copy_from_slice(ip.payload());
        }
        assert_eq!(
            &whole[..],
            Ipv4Packet::new_checked(&d[..]).unwrap().payload()
        );
    }

    #[test]
    fn only_copied_options_go_past_the_first_fragment() {
        let mut opts = [0u8; 24];
        let rr = [0u8; 8];
        let n = emit_options(
            &[
                Ipv4Option::RecordRoute {
                    pointer: 4,
                    data: &rr,
                },
                Ipv4Option::LooseSourceRoute {
                    pointer: 4,
                    data: &[198, 18, 0, 2],
                },
            ],
            &mut opts,
        )
        .unwrap();
        let d = datagram(&[1u8; 100], &opts[..n]);
        let frags = fragment(&d, 64).unwrap();
        let first = Ipv4Packet::new_checked(&frags[0][..]).unwrap();
        assert_eq!(first.options().len(), 20);
        let second = Ipv4Packet::new_checked(&frags[1][..]).unwrap();
        assert_eq!(second.options(), &[131, 7, 4, 198, 18, 0, 2, 0]);
        assert!(second.verify_checksum());
    }

    #[test]
    fn refragmenting_a_fragment_keeps_offsets_and_mf() {
        let d = datagram(&[3u8; 200], &[]);
        let frags = fragment(&d, 104).unwrap();
        let again = fragment(&frags[0], 48).unwrap();
        let offs: Vec<_> = again
            .iter()
            .map(|f| {
                let p = Ipv4Packet::new_checked(&f[..]).unwrap();
                (p.frag_offset_bytes(), p.more_frags())
            })
            .collect();
        assert_eq!(offs, vec![(0, true), (48, true), (96, true)]);
    }

    #[test]
    fn overlapping_fragments_repeat_the_bytes_before_each_start() {
        let payload: Vec<u8> = (0..100u8).collect();
        let d = datagram(&payload, &[]); // 108 bytes of UDP
        let mut f = Fragmenter::with_overlap(&d, 48, 16).unwrap();
        assert_eq!(f.count(), 3); // starts at 0, 32, 64
        let mut buf = [0u8; 200];
        let mut pieces = Vec::new();
        while let Some(r) = f.next_into(&mut buf) {
            let n = r.unwrap();
            let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
            assert!(ip.verify_checksum());
            pieces.push((
                ip.frag_offset_bytes(),
                ip.payload().to_vec(),
                ip.more_frags(),
            ));
        }
        let shape: Vec<_> = pieces.iter().map(|(o, p, mf)| (*o, p.len(), *mf)).collect();
        assert_eq!(shape, vec![(0, 48, true), (32, 48, true), (64, 44, false)]);
        let udp = &d[20..];
        for (off, bytes, _) in &pieces {
            assert_eq!(&bytes[..], &udp[*off..*off + bytes.len()]);
        }
        // No overlap is the plain split.
        let plain = Fragmenter::with_overlap(&d, 48, 0).unwrap();
        assert_eq!(plain.count(), Fragmenter::new(&d, 48).unwrap().count());
        for bad in [8, 12, 48, 56] {
            let size = if bad == 8 { 8 } else { 48 };
            assert!(Fragmenter::with_overlap(&d, size, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        let d = datagram(b"x", &[]);
        for size in [0, 7, 100] {
            let e = Fragmenter::new(&d, size).unwrap_err();
            assert!(e.to_string().contains("multiple of 8"), "{e}");
        }
        assert!(Fragmenter::new(&d[..10], 8).is_err());
        let mut f = Fragmenter::new(&d, 8).unwrap();
        assert!(matches!(
            f.next_into(&mut [0u8; 10]),
            Some(Err(Error::BufferTooSmall { .. }))
        ));
    }
}
