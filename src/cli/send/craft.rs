//! From validated flags to the bytes of one datagram, its fragments, and what changes from one
//! datagram to the next.
//!
//! Everything is built with [`Ipv4Builder`], [`IcmpRepr`], [`emit_extensions`] and
//! [`Fragmenter`]; this module only decides what to ask them for, refuses what cannot be built
//! (one message naming the flag and the fix), and applies the overrides the builder has no
//! setter for (a "bad" checksum, an ICMP rest-of-header). It sends nothing; it reads the payload
//! file and asks the routing table for the source address.

use super::args::{
    ChecksumArg, FragArgs, FragOrder, IcmpArgs, IpOptArg, Ipv4Args, PayloadArgs, ProtoArgs,
    QuoteCli, QuoteLen, RawArgs, RunArgs, UdpArgs, UdpChecksumArg, icmp_code, split_words,
};
use crate::net::route;
use crate::packet::builder::{Ipv4Builder, UdpChecksum};
use crate::packet::checksum;
use crate::packet::fragment::Fragmenter;
use crate::packet::icmp::{
    ErrorBody, IcmpPacket, IcmpRepr, MplsEntry, ObjectRepr, emit_extensions,
};
use crate::packet::ipv4::{self, IpProtocol, Ipv4Option, Ipv4Packet, emit_options};
use crate::packet::udp;
use clap::Parser;
use std::io::Read;
use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Quotes inside quotes are allowed this deep.
const MAX_QUOTE_DEPTH: usize = 4;

/// ICMP types that quote the datagram that caused them (RFC 792, RFC 1122 3.2.2).
pub fn is_error_type(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// ICMP types with an identifier and a sequence number in bytes 4..8.
pub fn is_query_type(t: u8) -> bool {
    matches!(t, 0 | 8 | 13..=18)
}

/// The reply type of a query type (echo 8 -> 0, timestamp 13 -> 14, info 15 -> 16, mask 17 ->
/// 18).
pub fn reply_type(t: u8) -> Option<u8> {
    match t {
        8 => Some(0),
        13 | 15 | 17 => Some(t + 1),
        _ => None,
    }
}

/// A small xorshift generator for identifiers, ports and shuffles (not for secrets).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the process's hash keys and the clock.
    pub fn new() -> Rng {
        Rng(crate::cli::random_u64() | 1)
    }

    /// Seeded with `seed` (tests).
    #[cfg(test)]
    pub fn with_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Shuffles `v` (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.range(0, i as u64) as usize;
            v.swap(i, j);
        }
    }
}

impl Default for Rng {
    fn default() -> Rng {
        Rng::new()
    }
}

/// A 16-bit field that is either the same in every datagram or counts up from its first value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progression {
    /// Value in the first datagram.
    pub first: u16,
    /// True when the value never changes.
    pub fixed: bool,
}

impl Progression {
    /// The IPv4 identification of datagram `k` (from 0): counts 1..=65535, never 0, which the
    /// kernel would replace.
    pub fn ident(&self, k: u64) -> u16 {
        if self.fixed {
            return self.first;
        }
        let base = u64::from(self.first.max(1)) - 1;
        ((base + k) % 65_535 + 1) as u16
    }

    /// The sequence number of datagram `k`: wraps through all 65536 values.
    pub fn seq(&self, k: u64) -> u16 {
        if self.fixed {
            self.first
        } else {
            self.first.wrapping_add(k as u16)
        }
    }

    /// True when `id` is the identification of one of the first `sent` datagrams.
    pub fn ident_sent(&self, id: u16, sent: u64) -> bool {
        if self.fixed {
            return id == self.first;
        }
        if id == 0 {
            return false;
        }
        sent >= 65_535 || (u64::from(id) + 65_535 - u64::from(self.first.max(1))) % 65_535 < sent
    }

    /// True when `seq` is the sequence number of one of the first `sent` datagrams.
    pub fn seq_sent(&self, seq: u16, sent: u64) -> bool {
        if self.fixed {
            return seq == self.first;
        }
        sent >= 65_536 || u64::from(seq.wrapping_sub(self.first)) < sent
    }

    /// The latest datagram number below `sent` whose identification is `id`, if any.
    pub fn ident_index(&self, id: u16, sent: u64) -> Option<u64> {
        if sent == 0 || !self.ident_sent(id, sent) {
            return None;
        }
        if self.fixed {
            return Some(sent - 1);
        }
        let d = (u64::from(id) + 65_535 - u64::from(self.first.max(1))) % 65_535;
        Some(d + (sent - 1 - d) / 65_535 * 65_535)
    }

    /// The latest datagram number below `sent` whose sequence number is `seq`, if any.
    pub fn seq_index(&self, seq: u16, sent: u64) -> Option<u64> {
        if sent == 0 || !self.seq_sent(seq, sent) {
            return None;
        }
        if self.fixed {
            return Some(sent - 1);
        }
        let d = u64::from(seq.wrapping_sub(self.first));
        Some(d + (sent - 1 - d) / 65_536 * 65_536)
    }
}

/// What the transport of the sent datagram is, for matching replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentTransport {
    /// UDP ports.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMP type and, for queries, the identifier.
    Icmp {
        /// Type sent.
        msg_type: u8,
        /// Identifier (queries only).
        ident: Option<u16>,
    },
    /// Anything else.
    Other,
}

/// What was sent, in the terms replies quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentMeta {
    /// Source address in the header (0.0.0.0: the kernel fills it).
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol field.
    pub protocol: u8,
    /// Transport.
    pub transport: SentTransport,
    /// IPv4 identification, per datagram.
    pub ident: Progression,
    /// True when the kernel chooses the identification (0 with DF clear).
    pub kernel_ident: bool,
    /// ICMP sequence number per datagram, for queries.
    pub seq: Option<Progression>,
}

/// One datagram, built.
#[derive(Debug, Clone)]
pub struct Built {
    /// The whole datagram.
    pub bytes: Vec<u8>,
    /// What replies will quote.
    pub meta: SentMeta,
    /// True when `--ip-checksum VALUE` fixed the header checksum: kept as given.
    pub ip_checksum_fixed: bool,
    /// True when `--icmp-checksum VALUE` fixed the ICMP checksum: kept as given.
    pub icmp_checksum_fixed: bool,
}

/// Where the source address comes from when `--src` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrcDefault {
    /// The route to the destination (the top-level datagram).
    Route,
    /// This address (a quoted datagram: it was sent by whoever receives the error).
    Addr(Ipv4Addr),
}

/// Everything about the datagrams to send, per repetition.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The pieces on the wire in offset order: one datagram, or its fragments.
    pub pieces: Vec<Vec<u8>>,
    /// True when `--fragment` split it.
    pub fragmented: bool,
    /// Order of the pieces on the wire.
    pub order: FragOrder,
    /// What replies will quote.
    pub meta: SentMeta,
    ip_checksum_fixed: bool,
    icmp_checksum_fixed: bool,
}

impl Plan {
    /// A plan of fixed datagrams (a replay): nothing changes between repetitions.
    pub fn fixed(pieces: Vec<Vec<u8>>) -> Plan {
        Plan {
            pieces,
            fragmented: false,
            order: FragOrder::In,
            meta: SentMeta {
                src: Ipv4Addr::UNSPECIFIED,
                dst: Ipv4Addr::UNSPECIFIED,
                protocol: 0,
                transport: SentTransport::Other,
                ident: Progression {
                    first: 0,
                    fixed: true,
                },
                kernel_ident: false,
                seq: None,
            },
            ip_checksum_fixed: true,
            icmp_checksum_fixed: true,
        }
    }

    /// Largest piece in bytes.
    pub fn max_len(&self) -> usize {
        self.pieces.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// True when the bytes of every repetition are the same.
    pub fn is_constant(&self) -> bool {
        self.meta.ident.fixed && self.meta.seq.is_none_or(|s| s.fixed)
    }

    /// Writes piece `i` (offset order) of repetition `k` into `buf`; returns its length.
    /// The identification and the ICMP sequence number move on with `k`, and their checksums
    /// with them (incrementally, RFC 1624), unless a checksum was fixed to a value.
    pub fn piece_into(&self, k: u64, i: usize, buf: &mut [u8]) -> usize {
        let src = &self.pieces[i];
        let n = src.len();
        buf[..n].copy_from_slice(src);
        let d = &mut buf[..n];
        if n < ipv4::HEADER_LEN {
            return n;
        }
        let id0 = self.meta.ident.first;
        let id = self.meta.ident.ident(k);
        if id != id0 {
            d[4..6].copy_from_slice(&id.to_be_bytes());
            if !self.ip_checksum_fixed {
                let c = u16::from_be_bytes([d[10], d[11]]);
                d[10..12].copy_from_slice(&checksum::update(c, id0, id).to_be_bytes());
            }
        }
        if let Some(seq) = self.meta.seq
            && i == 0
        {
            let (s0, s) = (seq.first, seq.seq(k));
            let hl = usize::from(d[0] & 0x0f) * 4;
            if s != s0 && hl >= ipv4::HEADER_LEN && n >= hl + 8 {
                d[hl + 6..hl + 8].copy_from_slice(&s.to_be_bytes());
                if !self.icmp_checksum_fixed {
                    let c = u16::from_be_bytes([d[hl + 2], d[hl + 3]]);
                    d[hl + 2..hl + 4].copy_from_slice(&checksum::update(c, s0, s).to_be_bytes());
                }
            }
        }
        n
    }

    /// The order pieces go out in for one repetition.
    pub fn order_into(&self, rng: &mut Rng, order: &mut Vec<usize>) {
        order.clear();
        order.extend(0..self.pieces.len());
        match self.order {
            FragOrder::In => {}
            FragOrder::Reverse => order.reverse(),
            FragOrder::Random => {
                if order.len() > 1 {
                    // Shuffled, but never in offset order: "random" must differ from "in".
                    loop {
                        rng.shuffle(order);
                        if order.windows(2).any(|w| w[0] > w[1]) {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Builds the plan for the top-level datagram (the source from the route when not given).
pub fn plan(p: &ProtoArgs, rng: &mut Rng, warnings: &mut Vec<String>) -> Result<Plan, String> {
    let built = build(p, SrcDefault::Route, rng, 0, warnings)?;
    let frag = p.frag();
    let ip = p.ip();
    let Some(size) = frag.fragment else {
        return Ok(Plan {
            pieces: vec![built.bytes],
            fragmented: false,
            order: FragOrder::In,
            meta: built.meta,
            ip_checksum_fixed: built.ip_checksum_fixed,
            icmp_checksum_fixed: built.icmp_checksum_fixed,
        });
    };
    if size % 8 != 0 {
        let lo = size / 8 * 8;
        return Err(format!(
            "--fragment {size}: not a multiple of 8: fragment offsets count 8-byte units; use {}{}",
            if lo > 0 {
                format!("{lo} or ")
            } else {
                String::new()
            },
            lo + 8
        ));
    }
    for (set, flag) in [
        (ip.ip_len.is_some(), "--ip-len"),
        (ip.ip_checksum.is_some(), "--ip-checksum"),
        (ip.ihl.is_some(), "--ihl"),
    ] {
        if set {
            return Err(format!(
                "conflicting options: {flag} sets a field of one datagram, but with --fragment \
                 each fragment gets its own length, IHL and checksum: drop {flag} or --fragment"
            ));
        }
    }
    let overlap = frag.overlap.unwrap_or(0);
    if overlap % 8 != 0 || overlap >= size {
        return Err(format!(
            "--overlap {overlap}: must be a multiple of 8 and smaller than --fragment {size}"
        ));
    }
    if built.meta.kernel_ident {
        warnings.push(
            "--id 0 without --df: the kernel gives each fragment an identification of its own, \
             so the receiver cannot reassemble them"
                .into(),
        );
    }
    let mut f = Fragmenter::with_overlap(&built.bytes, size, overlap)
        .map_err(|e| format!("--fragment {size}: {e}"))?;
    let mut pieces = Vec::with_capacity(f.count());
    let mut buf = vec![0u8; f.max_fragment_len()];
    while let Some(r) = f.next_into(&mut buf) {
        let n = r.map_err(|e| format!("--fragment {size}: {e}"))?;
        pieces.push(buf[..n].to_vec());
    }
    Ok(Plan {
        pieces,
        fragmented: true,
        order: frag.frag_order.unwrap_or(FragOrder::In),
        meta: built.meta,
        ip_checksum_fixed: built.ip_checksum_fixed,
        icmp_checksum_fixed: built.icmp_checksum_fixed,
    })
}

/// The payload the flags ask for.
pub fn payload(p: &PayloadArgs) -> Result<Vec<u8>, String> {
    if let Some(t) = &p.payload {
        return Ok(t.as_bytes().to_vec());
    }
    if let Some(h) = &p.payload_hex {
        return Ok(h.0.clone());
    }
    if let Some(path) = &p.payload_file {
        // At most one byte more than any datagram holds: enough to say it does not fit, and a
        // device like /dev/zero cannot make rawkit read for ever.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                f.take(ipv4::MAX_PACKET_LEN as u64 + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(|e| format!("--payload-file {}: cannot read: {e}", path.display()))?;
        if bytes.len() > ipv4::MAX_PACKET_LEN {
            return Err(format!(
                "--payload-file {}: more than 65535 bytes, and an IPv4 datagram holds at most \
                 65535 in all: use a smaller file",
                path.display()
            ));
        }
        return Ok(bytes);
    }
    if let Some(size) = p.size {
        return Ok(match &p.pattern {
            Some(pat) => pat.0.iter().copied().cycle().take(size).collect(),
            None => vec![0; size],
        });
    }
    Ok(Vec::new())
}

fn payload_given(p: &PayloadArgs) -> bool {
    p.payload.is_some() || p.payload_hex.is_some() || p.payload_file.is_some() || p.size.is_some()
}

/// The option bytes of the `--ip-opt` list, in order.
pub fn options(list: &[IpOptArg]) -> Result<Vec<u8>, String> {
    let zeros = [0u8; 40];
    let mut out = vec![0u8; 512];
    let mut len = 0;
    for o in list {
        let route;
        let opt = match o {
            IpOptArg::RecordRoute(n) => Ipv4Option::RecordRoute {
                pointer: 4,
                data: &zeros[..n * 4],
            },
            IpOptArg::Timestamp(n) => Ipv4Option::Timestamp {
                pointer: 5,
                overflow: 0,
                flags: 0,
                data: &zeros[..n * 4],
            },
            IpOptArg::TimestampAddr(n) => Ipv4Option::Timestamp {
                pointer: 5,
                overflow: 0,
                flags: 1,
                data: &zeros[..n * 8],
            },
            IpOptArg::Lsrr(hops) | IpOptArg::Ssrr(hops) => {
                route = hops.iter().flat_map(|a| a.octets()).collect::<Vec<u8>>();
                if matches!(o, IpOptArg::Lsrr(_)) {
                    Ipv4Option::LooseSourceRoute {
                        pointer: 4,
                        data: &route,
                    }
                } else {
                    Ipv4Option::StrictSourceRoute {
                        pointer: 4,
                        data: &route,
                    }
                }
            }
            IpOptArg::RouterAlert(v) => Ipv4Option::RouterAlert(*v),
            IpOptArg::Nop => Ipv4Option::Nop,
            IpOptArg::Eol => Ipv4Option::EndOfList,
            IpOptArg::Hex(b) => Ipv4Option::Padding(b),
        };
        len += emit_options(&[opt], &mut out[len..]).map_err(|e| format!("--ip-opt: {e}"))?;
    }
    let max = ipv4::MAX_HEADER_LEN - ipv4::HEADER_LEN;
    if len > max {
        return Err(format!(
            "--ip-opt: the options take {len} bytes; an IPv4 header holds at most {max} (IHL 15)"
        ));
    }
    out.truncate(len);
    Ok(out)
}

/// Turns a clap error about `--quote` text into one line.
fn quote_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid description");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("--quote: {first}")
}

/// True when a quoted description set flags that only make sense for what is sent.
fn run_flags_set(r: &RunArgs, f: &FragArgs) -> bool {
    r.count.is_some()
        || r.interval.is_some()
        || r.rate.is_some()
        || r.flood
        || r.dry_run
        || r.verbose
        || r.listen.is_some()
        || r.json
        || r.pcap.is_some()
        || f.fragment.is_some()
}

/// Builds one datagram from its flags.
pub fn build(
    p: &ProtoArgs,
    src_default: SrcDefault,
    rng: &mut Rng,
    depth: usize,
    warnings: &mut Vec<String>,
) -> Result<Built, String> {
    let ip = p.ip();
    let Some(dst) = ip.dst else {
        return Err(format!(
            "missing --dst ADDR: the destination address is required (rawkit send {} --dst \
             127.0.0.1 ...; see --help)",
            p.name()
        ));
    };
    if let Some(ihl) = ip.ihl
        && ihl < 5
        && !ip.force
    {
        return Err(format!(
            "--ihl {ihl}: a header of {} bytes is shorter than the 20-byte minimum; no stack \
             accepts it and Linux refuses to send it (EINVAL): add --force to build it anyway \
             (for --dry-run or --pcap)",
            usize::from(ihl) * 4
        ));
    }
    let src = match (ip.src, src_default) {
        (Some(a), _) => a,
        (None, SrcDefault::Addr(a)) => a,
        (None, SrcDefault::Route) => route::source_for(dst, None)
            .map_err(|e| format!("--dst {dst}: no source address ({e}): give one with --src"))?,
    };
    let opts = options(&ip.ip_opt)?;
    let payload = payload(p.payload())?;
    let kernel_ident = ip.id == Some(0) && !ip.df;
    let ident = Progression {
        first: ip.id.unwrap_or_else(|| rng.range(1, 65_535) as u16),
        fixed: ip.id.is_some(),
    };
    let mut b = Ipv4Builder::new(src, dst)
        .ttl(ip.ttl.unwrap_or(64))
        .ident(ident.first)
        .dont_frag(ip.df)
        .more_frags(ip.mf)
        .reserved_flag(ip.evil)
        .frag_offset(ip.frag_offset.unwrap_or(0))
        .options(&opts);
    if let Some(t) = ip.tos {
        b = b.tos(t);
    }
    if let Some(d) = ip.dscp {
        b = b.dscp(d);
    }
    if let Some(e) = ip.ecn {
        b = b.ecn(e);
    }
    if let Some(v) = ip.ip_version {
        b = b.version(v);
    }
    if let Some(n) = ip.proto {
        b = b.protocol(IpProtocol::from(n));
    }
    if let Some(i) = ip.ihl {
        b = b.ihl(i);
    }
    if let Some(l) = ip.ip_len {
        b = b.total_len(l);
    }
    if let Some(ChecksumArg::Value(c)) = ip.ip_checksum {
        b = b.checksum(c);
    }
    let header_len = b.header_len();

    match p {
        ProtoArgs::Udp(a) => build_udp(
            a,
            b,
            &payload,
            src,
            dst,
            kernel_ident,
            ident,
            header_len,
            rng,
            warnings,
        ),
        ProtoArgs::Raw(a) => build_raw(a, b, &payload, src, dst, kernel_ident, ident, header_len),
        ProtoArgs::Icmp(a) => build_icmp(
            a,
            b,
            &payload,
            src,
            dst,
            kernel_ident,
            ident,
            rng,
            depth,
            warnings,
        ),
    }
}

/// Refuses a payload the datagram cannot hold.
fn check_fits(
    header_len: usize,
    transport_header: usize,
    payload: usize,
    what: &str,
) -> Result<(), String> {
    let total = header_len + transport_header + payload;
    if total > ipv4::MAX_PACKET_LEN {
        let max = ipv4::MAX_PACKET_LEN - header_len - transport_header;
        let th = if transport_header > 0 {
            format!(" and an {transport_header}-byte {what} header")
        } else {
            String::new()
        };
        return Err(format!(
            "a payload of {payload} bytes does not fit: with a {header_len}-byte IPv4 header{th} \
             an IPv4 datagram (65535 bytes at most) carries at most {max} bytes of payload: \
             shorten it"
        ));
    }
    Ok(())
}

/// Emits the builder into a fresh vector and applies the IPv4 "bad" checksum.
fn emit(b: &Ipv4Builder<'_>, ip: &Ipv4Args) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; b.len()];
    let n = b
        .emit(&mut buf)
        .map_err(|e| format!("cannot build the datagram: {e}"))?;
    buf.truncate(n);
    if ip.ip_checksum == Some(ChecksumArg::Bad) {
        let c = u16::from_be_bytes([buf[10], buf[11]]) ^ 1;
        buf[10..12].copy_from_slice(&c.to_be_bytes());
    }
    Ok(buf)
}

#[allow(clippy::too_many_arguments)]
fn build_udp(
    a: &UdpArgs,
    b: Ipv4Builder<'_>,
    payload: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    kernel_ident: bool,
    ident: Progression,
    header_len: usize,
    rng: &mut Rng,
    warnings: &mut Vec<String>,
) -> Result<Built, String> {
    check_fits(header_len, udp::HEADER_LEN, payload.len(), "UDP")?;
    let sport = a.sport.unwrap_or_else(|| rng.range(32_768, 60_999) as u16);
    let dport = a.dport.unwrap_or(33_434);
    let mut b = b
        .udp(sport, dport, payload)
        .udp_checksum(match a.udp_checksum {
            None => UdpChecksum::Auto,
            Some(UdpChecksumArg::None) => UdpChecksum::None,
            Some(UdpChecksumArg::Bad) => UdpChecksum::Bad,
            Some(UdpChecksumArg::Value(v)) => UdpChecksum::Value(v),
        });
    if let Some(l) = a.udp_len {
        b = b.udp_len(l);
    }
    if src.is_unspecified() && a.udp_checksum.is_none() {
        warnings.push(
            "--src 0.0.0.0: the kernel fills in the source after rawkit computed the UDP \
             checksum over 0.0.0.0, so the checksum will be wrong on the wire"
                .into(),
        );
    }
    let bytes = emit(&b, &a.ip)?;
    Ok(Built {
        bytes,
        meta: SentMeta {
            src,
            dst,
            protocol: a.ip.proto.unwrap_or(17),
            transport: SentTransport::Udp { sport, dport },
            ident,
            kernel_ident,
            seq: None,
        },
        ip_checksum_fixed: matches!(a.ip.ip_checksum, Some(ChecksumArg::Value(_))),
        icmp_checksum_fixed: true,
    })
}

#[allow(clippy::too_many_arguments)]
fn build_raw(
    a: &RawArgs,
    b: Ipv4Builder<'_>,
    payload: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    kernel_ident: bool,
    ident: Progression,
    header_len: usize,
) -> Result<Built, String> {
    check_fits(header_len, 0, payload.len(), "")?;
    let bytes = emit(&b.raw(payload), &a.ip)?;
    Ok(Built {
        bytes,
        meta: SentMeta {
            src,
            dst,
            protocol: a.ip.proto.unwrap_or(255),
            transport: SentTransport::Other,
            ident,
            kernel_ident,
            seq: None,
        },
        ip_checksum_fixed: matches!(a.ip.ip_checksum, Some(ChecksumArg::Value(_))),
        icmp_checksum_fixed: true,
    })
}

/// Milliseconds since midnight UT (RFC 792 timestamps).
fn ms_since_midnight() -> u32 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    (ms % 86_400_000) as u32
}

/// The quoted datagram of an error, from `--quote-hex` or a `--quote` description.
fn quote_bytes(
    a: &IcmpArgs,
    dst: Ipv4Addr,
    rng: &mut Rng,
    depth: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, String> {
    if let Some(h) = &a.quote_hex {
        return Ok(h.0.clone());
    }
    let Some(text) = &a.quote else {
        return Ok(Vec::new());
    };
    if depth + 1 > MAX_QUOTE_DEPTH {
        return Err(format!(
            "--quote: quotes nest at most {MAX_QUOTE_DEPTH} deep"
        ));
    }
    let words = split_words(text).map_err(|e| format!("--quote: {e}"))?;
    let q = QuoteCli::try_parse_from(&words).map_err(|e| quote_error(&e))?;
    if run_flags_set(q.proto.run(), q.proto.frag()) {
        return Err(
            "--quote describes one datagram: timing, output and --fragment flags do not apply \
             inside it"
                .into(),
        );
    }
    if let ProtoArgs::Raw(r) = &q.proto
        && r.from_pcap.is_some()
    {
        return Err("--quote: --from-pcap does not apply inside a quote".into());
    }
    // The quoted datagram was sent by whoever receives the error: this message's destination.
    let inner = build(&q.proto, SrcDefault::Addr(dst), rng, depth + 1, warnings)
        .map_err(|e| format!("--quote '{text}': {e}"))?;
    let bytes = inner.bytes;
    let n = match a.quote_len {
        Some(QuoteLen::All) => bytes.len(),
        Some(QuoteLen::Bytes(n)) => n.min(bytes.len()),
        // RFC 792: the internet header plus the first 64 bits of the datagram's data.
        None => {
            let hl = Ipv4Packet::new_unchecked(&bytes[..]).header_len();
            (hl + 8).min(bytes.len())
        }
    };
    Ok(bytes[..n].to_vec())
}

#[allow(clippy::too_many_arguments)]
fn build_icmp(
    a: &IcmpArgs,
    b: Ipv4Builder<'_>,
    payload: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    kernel_ident: bool,
    ident_ip: Progression,
    rng: &mut Rng,
    depth: usize,
    warnings: &mut Vec<String>,
) -> Result<Built, String> {
    let t = a.icmp_type.unwrap_or(8);
    let code = match &a.code {
        Some(c) => icmp_code(t, c)?,
        None => 0,
    };
    let error = is_error_type(t);
    let query = is_query_type(t);
    let conflict = |flag: &str, applies: &str| {
        Err(format!(
            "conflicting options: {flag} applies to {applies}, not to ICMP type {t}"
        ))
    };
    if error && payload_given(&a.payload) {
        return Err(format!(
            "conflicting options: ICMP type {t} is an error message and carries a quoted \
             datagram: use --quote or --quote-hex, not a payload"
        ));
    }
    if !error && (a.quote.is_some() || a.quote_hex.is_some()) {
        return conflict("--quote", "error types (3, 4, 5, 11, 12)");
    }
    if (!a.mpls.is_empty() || !a.ext_object.is_empty()) && !matches!(t, 3 | 11 | 12) {
        return conflict(
            "--mpls/--ext-object",
            "types with an RFC 4884 length (3, 11, 12)",
        );
    }
    if (a.ident.is_some() || a.seq.is_some()) && !query {
        return conflict(
            "--ident/--seq",
            "echo, timestamp, information and mask messages",
        );
    }
    if a.mtu.is_some() && t != 3 {
        return conflict("--mtu", "destination unreachable (3)");
    }
    if a.pointer.is_some() && t != 12 {
        return conflict("--pointer", "parameter problem (12)");
    }
    if a.gateway.is_some() && t != 5 {
        return conflict("--gateway", "redirect (5)");
    }

    let quote = if error {
        quote_bytes(a, dst, rng, depth, warnings)?
    } else {
        Vec::new()
    };
    let mut ext = Vec::new();
    if !a.mpls.is_empty() || !a.ext_object.is_empty() {
        let last = a.mpls.len().saturating_sub(1);
        let stack: Vec<MplsEntry> = a
            .mpls
            .iter()
            .enumerate()
            .map(|(i, m)| MplsEntry {
                label: m.label,
                tc: m.tc,
                bottom: m.bottom.unwrap_or(i == last),
                ttl: m.ttl,
            })
            .collect();
        let mut objects = Vec::new();
        if !stack.is_empty() {
            objects.push(ObjectRepr::Mpls(&stack));
        }
        for o in &a.ext_object {
            objects.push(ObjectRepr::Raw {
                class_num: o.class_num,
                c_type: o.c_type,
                payload: &o.payload,
            });
        }
        let need = 4 + objects.iter().map(|o| o.buffer_len()).sum::<usize>();
        ext = vec![0u8; need];
        let n = emit_extensions(&objects, &mut ext).map_err(|e| format!("--ext-object: {e}"))?;
        ext.truncate(n);
    }
    let ident = a.ident.unwrap_or_else(|| rng.range(0, 65_535) as u16);
    let seq = Progression {
        first: a.seq.unwrap_or(1),
        fixed: a.seq.is_some(),
    };
    let body = ErrorBody {
        quote: &quote,
        extensions: (!ext.is_empty()).then_some(&ext[..]),
    };
    let query_rest = (u32::from(ident) << 16) | u32::from(seq.first);
    let repr = match t {
        8 if code == 0 => IcmpRepr::EchoRequest {
            ident,
            seq_no: seq.first,
            data: payload,
        },
        0 if code == 0 => IcmpRepr::EchoReply {
            ident,
            seq_no: seq.first,
            data: payload,
        },
        13 | 14 if code == 0 && !payload_given(&a.payload) => IcmpRepr::Timestamp {
            reply: t == 14,
            ident,
            seq_no: seq.first,
            originate: ms_since_midnight(),
            receive: 0,
            transmit: 0,
        },
        3 => IcmpRepr::DstUnreachable {
            code: code.into(),
            next_hop_mtu: a.mtu.unwrap_or(0),
            body,
        },
        11 => IcmpRepr::TimeExceeded {
            code: code.into(),
            body,
        },
        12 => IcmpRepr::ParamProblem {
            code,
            pointer: a.pointer.unwrap_or(0),
            body,
        },
        5 => IcmpRepr::Redirect {
            code: code.into(),
            gateway: a.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED),
            quote: &quote,
        },
        4 => IcmpRepr::SourceQuench { quote: &quote },
        _ => IcmpRepr::Other {
            msg_type: t,
            code,
            rest_of_header: if query { query_rest } else { 0 },
            data: if error { &quote } else { payload },
        },
    };
    let header_len = b.header_len();
    check_fits(header_len, 8, repr.buffer_len() - 8, "ICMP")?;
    let mut bytes = emit(&b.icmp(&repr), &a.ip)?;
    let hl = header_len;
    {
        let mut icmp = IcmpPacket::new_unchecked(&mut bytes[hl..]);
        if let Some(rest) = a.rest {
            icmp.set_rest_of_header(rest);
            icmp.fill_checksum();
        }
        match a.icmp_checksum {
            Some(ChecksumArg::Value(v)) => icmp.set_checksum(v),
            Some(ChecksumArg::Bad) => {
                let c = icmp.checksum() ^ 1;
                icmp.set_checksum(c);
            }
            None => {}
        }
    }
    Ok(Built {
        bytes,
        meta: SentMeta {
            src,
            dst,
            protocol: a.ip.proto.unwrap_or(1),
            transport: SentTransport::Icmp {
                msg_type: t,
                ident: (query && a.rest.is_none()).then_some(ident),
            },
            ident: ident_ip,
            kernel_ident,
            seq: (query && a.rest.is_none()).then_some(seq),
        },
        ip_checksum_fixed: matches!(a.ip.ip_checksum, Some(ChecksumArg::Value(_))),
        icmp_checksum_fixed: matches!(a.icmp_checksum, Some(ChecksumArg::Value(_))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifications_count_up_skipping_zero_and_are_recognised() {
        let p = Progression {
            first: 65_534,
            fixed: false,
        };
        let ids: Vec<u16> = (0..4).map(|k| p.ident(k)).collect();
        assert_eq!(ids, vec![65_534, 65_535, 1, 2]);
        assert!(p.ident_sent(1, 3) && !p.ident_sent(2, 3) && !p.ident_sent(0, 3));
        assert_eq!(p.ident_index(1, 3), Some(2));
        assert_eq!(p.ident_index(65_534, 3), Some(0));
        let fixed = Progression {
            first: 7,
            fixed: true,
        };
        assert_eq!((fixed.ident(0), fixed.ident(9)), (7, 7));
        assert!(fixed.ident_sent(7, 100) && !fixed.ident_sent(8, 100));
        assert_eq!(fixed.ident_index(7, 100), Some(99));
    }

    #[test]
    fn sequence_numbers_wrap_and_map_back_to_the_latest_datagram() {
        let p = Progression {
            first: 65_535,
            fixed: false,
        };
        assert_eq!((p.seq(0), p.seq(1), p.seq(2)), (65_535, 0, 1));
        assert!(p.seq_sent(0, 2) && !p.seq_sent(1, 2));
        assert_eq!(p.seq_index(0, 2), Some(1));
        // After a wrap, the latest datagram with that number.
        assert_eq!(p.seq_index(65_535, 65_537), Some(65_536));
    }

    #[test]
    fn random_order_is_a_shuffle_never_the_offset_order() {
        let mut plan = Plan::fixed(vec![vec![0; 20], vec![1; 20], vec![2; 20]]);
        plan.order = FragOrder::Random;
        let mut rng = Rng::with_seed(42);
        let mut order = Vec::new();
        for _ in 0..50 {
            plan.order_into(&mut rng, &mut order);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2]);
            assert_ne!(order, vec![0, 1, 2]);
        }
        plan.order = FragOrder::Reverse;
        plan.order_into(&mut rng, &mut order);
        assert_eq!(order, vec![2, 1, 0]);
    }

    fn plan_of(args: &[&str]) -> Plan {
        let q = QuoteCli::try_parse_from(args).expect("flags");
        plan(&q.proto, &mut Rng::with_seed(7), &mut Vec::new()).expect("plan")
    }

    #[test]
    fn each_repetition_moves_ident_and_seq_on_with_checksums_kept_right_or_wrong() {
        let p = plan_of(&[
            "icmp",
            "--dst",
            "127.0.0.1",
            "--src",
            "127.0.0.1",
            "--id",
            "65535",
        ]);
        assert!(!p.is_constant());
        let mut buf = [0u8; 64];
        for k in 0..3u64 {
            let n = p.piece_into(k, 0, &mut buf);
            let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
            assert!(ip.verify_checksum(), "{k}");
            let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
            assert!(icmp.verify_checksum(), "{k}");
            assert_eq!(icmp.echo_seq_no(), 1 + k as u16);
            // A given --id stays; the sequence number still counts up.
            assert_eq!(ip.ident(), 65535);
        }
        let p = plan_of(&[
            "icmp",
            "--dst",
            "127.0.0.1",
            "--src",
            "127.0.0.1",
            "--seq",
            "9",
            "--icmp-checksum",
            "0x1111",
            "--ip-checksum",
            "bad",
        ]);
        let ids: Vec<u16> = (0..3)
            .map(|k| {
                let n = p.piece_into(k, 0, &mut buf);
                let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
                assert!(!ip.verify_checksum(), "bad stays bad");
                let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
                assert_eq!((icmp.checksum(), icmp.echo_seq_no()), (0x1111, 9));
                ip.ident()
            })
            .collect();
        assert_eq!(ids[1], ids[0] % 65_535 + 1);
        assert_eq!(ids[2], ids[1] % 65_535 + 1);
    }

    #[test]
    fn fragments_share_the_ident_of_their_datagram() {
        let p = plan_of(&[
            "udp",
            "--dst",
            "127.0.0.1",
            "--src",
            "127.0.0.1",
            "--size",
            "40",
            "--fragment",
            "16",
        ]);
        assert_eq!(p.pieces.len(), 3);
        let mut buf = [0u8; 64];
        for k in 0..2 {
            let ids: Vec<u16> = (0..3)
                .map(|i| {
                    let n = p.piece_into(k, i, &mut buf);
                    let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
                    assert!(ip.verify_checksum());
                    ip.ident()
                })
                .collect();
            assert!(ids.iter().all(|i| *i == p.meta.ident.ident(k)), "{ids:?}");
        }
    }

    #[test]
    fn option_lists_emit_in_order_and_refuse_more_than_40_bytes() {
        let bytes = options(&[
            IpOptArg::Nop,
            IpOptArg::RouterAlert(0),
            IpOptArg::Lsrr(vec![Ipv4Addr::new(127, 0, 0, 2)]),
        ])
        .unwrap();
        assert_eq!(bytes, vec![1, 148, 4, 0, 0, 131, 7, 4, 127, 0, 0, 2]);
        assert_eq!(options(&[IpOptArg::RecordRoute(9)]).unwrap().len(), 39);
        let e = options(&[IpOptArg::RecordRoute(9), IpOptArg::RouterAlert(0)]).unwrap_err();
        assert!(e.contains("take 43 bytes"), "{e}");
    }
}
