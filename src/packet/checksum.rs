//! The RFC 1071 internet checksum.
//!
//! One-shot ([`checksum`], [`verify`]), incremental over pieces that are not contiguous
//! ([`Accumulator`]), and the IPv4 pseudo-header of UDP ([`pseudo_header`]).
//!
//! Speed: the sum runs over 32-bit words in the machine's own byte order into eight independent
//! 64-bit lanes (no carry handling in the loop), the tail in fixed-size pieces, and is folded and
//! byte-swapped once at the end. RFC 1071 section 2 (B) "byte order independence" is what makes
//! that correct.

use std::net::Ipv4Addr;

/// Sums `data` as big-endian 16-bit words in ones' complement, folded to 16 bits, not inverted.
/// An odd trailing byte counts as the high byte of a word whose low byte is zero.
#[inline(always)]
pub fn sum(data: &[u8]) -> u16 {
    // 8 GiB pieces keep every accumulator below 2^62 (see `sum_native`).
    if data.len() <= PIECE {
        return u16::from_be(fold64(sum_native(data)));
    }
    let mut total = 0u16;
    for piece in data.chunks(PIECE) {
        // PIECE is even, so every piece starts at an even offset: sums add as they are.
        total = add16(total, fold64(sum_native(piece)));
    }
    u16::from_be(total)
}

const PIECE: usize = 1 << 33;

/// The unfolded sum of `data` as native-order 32-bit words (at most 8 GiB: 2^28 words per lane
/// of at most 2^32 each stay below 2^60, eight lanes below 2^63).
#[inline(always)]
fn sum_native(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut blocks = data.chunks_exact(32);
    // Short pieces (IPv4 headers, quoted errors) go straight to the 4-byte loop below; the
    // lanes pay off beyond.
    if data.len() >= 128 {
        // Eight independent lanes of native-order 32-bit words: no carries to propagate in
        // the loop and no dependency between the adds, so it runs at several words per cycle
        // without vector instructions or unsafe code.
        let mut lanes = [0u64; 8];
        for b in &mut blocks {
            for (i, lane) in lanes.iter_mut().enumerate() {
                let w = &b[i * 4..i * 4 + 4];
                *lane += u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) as u64;
            }
        }
        acc = lanes.iter().sum();
    }
    // The tail in fixed-size pieces (a variable-length copy into a zeroed word would stall on
    // store forwarding, which dominated the cost of summing a 20-byte header).
    let mut rest = if data.len() >= 128 {
        blocks.remainder()
    } else {
        data
    };
    while let Some((w, r)) = rest.split_first_chunk::<4>() {
        acc += u32::from_ne_bytes(*w) as u64;
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<2>() {
        acc += u16::from_ne_bytes(*w) as u64;
        rest = r;
    }
    if let Some(&b) = rest.first() {
        // The odd byte sits at an even offset: the first byte of a 16-bit word.
        acc += u16::from_ne_bytes([b, 0]) as u64;
    }
    acc
}

/// Folds a native-order sum to 16 bits with end-around carries. On a little-endian machine the
/// result is the byte-swapped checksum sum (RFC 1071 section 2 (B), byte order independence).
#[inline]
fn fold64(s: u64) -> u16 {
    let mut t = (s & 0xffff_ffff) + (s >> 32);
    t = (t & 0xffff_ffff) + (t >> 32);
    let mut u = (t & 0xffff) + (t >> 16);
    u = (u & 0xffff) + (u >> 16);
    u as u16
}

#[inline]
fn add16(a: u16, b: u16) -> u16 {
    let (s, carry) = a.overflowing_add(b);
    s + carry as u16
}

/// The checksum field value for `data` (whose own checksum field must be zero): the ones'
/// complement of [`sum`].
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// True when `data`, checksum field included, sums to 0xffff (RFC 1071: a correct message sums to
/// all ones).
#[inline]
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// An incremental ones' complement sum over pieces that need not be contiguous nor of even length.
///
/// ```
/// use rawkit::packet::checksum::{Accumulator, checksum};
/// let data = [0x45u8, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0x40];
/// let mut acc = Accumulator::new();
/// acc.add(&data[..3]);
/// acc.add(&data[3..]);
/// assert_eq!(acc.checksum(), checksum(&data));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accumulator {
    sum: u16,
    odd: bool,
}

impl Accumulator {
    /// An empty sum.
    pub const fn new() -> Self {
        Accumulator { sum: 0, odd: false }
    }

    /// Adds the next piece of the message.
    #[inline]
    pub fn add(&mut self, piece: &[u8]) -> &mut Self {
        let s = sum(piece);
        // A piece that starts at an odd offset has its bytes one position over: its sum is the
        // byte-swapped sum (RFC 1071 section 2 (B)).
        let s = if self.odd { s.swap_bytes() } else { s };
        self.sum = add16(self.sum, s);
        self.odd ^= piece.len() % 2 == 1;
        self
    }

    /// Adds a 16-bit word (big-endian, as on the wire) at the current position.
    #[inline]
    pub fn add_u16(&mut self, word: u16) -> &mut Self {
        // Two bytes keep the parity of the position; at an odd position the word's bytes fall
        // into two words of the message, which the byte-swapped sum accounts for.
        let w = if self.odd { word.swap_bytes() } else { word };
        self.sum = add16(self.sum, w);
        self
    }

    /// Adds a 32-bit value as two 16-bit words.
    #[inline]
    pub fn add_u32(&mut self, word: u32) -> &mut Self {
        self.add_u16((word >> 16) as u16).add_u16(word as u16)
    }

    /// The folded sum so far, not inverted.
    pub fn sum(&self) -> u16 {
        self.sum
    }

    /// The checksum field value: the inverted sum.
    pub fn checksum(&self) -> u16 {
        !self.sum
    }

    /// True when the sum so far is all ones, as over a message with a correct checksum.
    pub fn verifies(&self) -> bool {
        self.sum == 0xffff
    }
}

/// An accumulator primed with the IPv4 pseudo-header of RFC 768 / RFC 793: source, destination,
/// a zero byte, the protocol and the transport length.
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> Accumulator {
    let mut acc = Accumulator::new();
    let mut bytes = [0u8; 12];
    bytes[0..4].copy_from_slice(&src.octets());
    bytes[4..8].copy_from_slice(&dst.octets());
    bytes[9] = protocol;
    bytes[10..12].copy_from_slice(&length.to_be_bytes());
    acc.add(&bytes);
    acc
}

/// Adjusts a checksum after one 16-bit word changed from `old` to `new`, as RFC 1624 eqn. 3.
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    !add16(add16(!check, !old), new)
}

/// The plain byte-pair loop of RFC 1071's reference code; kept as the baseline for benchmarks and
/// as the oracle of the property tests.
pub fn sum_reference(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        acc += u16::from_be_bytes([data[i], data[i + 1]]) as u32;
        i += 2;
    }
    if i < data.len() {
        acc += (data[i] as u32) << 8;
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 section 3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
    #[test]
    fn rfc1071_example_sums_to_ddf2() {
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn real_ipv4_header_verifies() {
        // 127.0.0.1 > 127.0.0.1 ICMP, captured on lo.
        let hdr = [
            0x45, 0x00, 0x00, 0x54, 0x8a, 0x1d, 0x40, 0x00, 0x40, 0x01, 0xb2, 0x89, 0x7f, 0x00,
            0x00, 0x01, 0x7f, 0x00, 0x00, 0x01,
        ];
        assert!(verify(&hdr));
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb289);
    }

    #[test]
    fn every_length_matches_reference() {
        let data: Vec<u8> = (0..1200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            assert_eq!(sum(&data[..len]), sum_reference(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn all_ones_data_folds_without_losing_carries() {
        let data = vec![0xffu8; 65535];
        assert_eq!(sum(&data), sum_reference(&data));
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn accumulator_over_odd_pieces_equals_one_shot() {
        let data: Vec<u8> = (0..97u8).map(|i| i.wrapping_mul(37)).collect();
        for cut1 in 0..data.len() {
            let cut2 = (cut1 + 13).min(data.len());
            let mut acc = Accumulator::new();
            acc.add(&data[..cut1])
                .add(&data[cut1..cut2])
                .add(&data[cut2..]);
            assert_eq!(acc.sum(), sum(&data), "cuts {cut1} {cut2}");
        }
    }

    #[test]
    fn words_added_at_odd_positions_match_the_bytes() {
        let bytes = [0x12u8, 0xab, 0xcd, 0x01, 0x02, 0x03, 0x04];
        let mut by_words = Accumulator::new();
        by_words
            .add(&bytes[..1])
            .add_u16(0xabcd)
            .add_u32(0x0102_0304);
        assert_eq!(by_words.sum(), sum(&bytes));
        let mut even = Accumulator::new();
        even.add_u16(0x12ab).add(&bytes[2..]);
        assert_eq!(even.sum(), sum(&bytes));
    }

    #[test]
    fn pseudo_header_matches_manual_sum() {
        let acc = pseudo_header(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            17,
            12,
        );
        let bytes = [10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 12];
        assert_eq!(acc.sum(), sum_reference(&bytes));
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut hdr = [
            0x45u8, 0x00, 0x00, 0x54, 0x8a, 0x1d, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0x7f, 0x00,
            0x00, 0x01, 0x7f, 0x00, 0x00, 0x01,
        ];
        let c = checksum(&hdr);
        hdr[8] = 0x3f; // TTL 64 -> 63
        let c2 = update(c, 0x4001, 0x3f01);
        assert_eq!(c2, checksum(&hdr));
    }
}
