//! Human-readable renderings: a one-line summary per datagram in tcpdump's spirit, a layered
//! decode, and a hex dump.
//!
//! Nothing here panics on any input: a datagram that does not parse is summarised as far as it
//! goes, then the error is named.

use super::icmp::{DstUnreachable, IcmpPacket, IcmpRepr, IcmpType, QuotedTransport, TimeExceeded};
use super::ipv4::{IpProtocol, Ipv4Packet, OptionIter};
use super::udp::UdpPacket;
use core::fmt::{self, Write};

/// One line for an IPv4 datagram, such as
/// `IP 127.0.0.1 > 127.0.0.1: ICMP echo request, id 4660, seq 1, length 64`.
pub fn summary(datagram: &[u8]) -> String {
    let mut s = String::with_capacity(96);
    // Writing into a String cannot fail.
    let _ = write_summary(&mut s, datagram);
    s
}

/// What a summary includes beyond [`summary`]'s line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SummaryOptions {
    /// For an ICMP error, the datagram it quotes, after the message:
    /// `[quote: IP 127.0.0.1.40000 > 127.0.0.1.33434: udp, ttl 1, length 33]` (tcpdump prints
    /// it with `-v`). What a capture needs to tell which probe an error answers.
    pub quote: bool,
}

/// [`summary`] with more detail as `opts` asks, such as
/// `IP 127.0.0.1 > 127.0.0.1: ICMP 127.0.0.1 udp port 9 unreachable, length 41 [quote: IP
/// 127.0.0.1.40000 > 127.0.0.1.9: udp, ttl 64, length 33]` (one line).
pub fn summary_with(datagram: &[u8], opts: SummaryOptions) -> String {
    let mut s = String::with_capacity(160);
    // Writing into a String cannot fail.
    let _ = write_summary_with(&mut s, datagram, opts);
    s
}

/// [`summary`] into any writer.
pub fn write_summary<W: Write>(w: &mut W, datagram: &[u8]) -> fmt::Result {
    write_summary_with(w, datagram, SummaryOptions::default())
}

/// [`summary_with`] into any writer.
pub fn write_summary_with<W: Write>(
    w: &mut W,
    datagram: &[u8],
    opts: SummaryOptions,
) -> fmt::Result {
    let ip = match Ipv4Packet::new_checked(datagram) {
        Ok(ip) => ip,
        Err(e) => {
            // A short capture: say what there is.
            return match Ipv4Packet::new_lax(datagram) {
                Ok(ip) => write!(
                    w,
                    "IP {} > {}: [|{}] {e}",
                    ip.src_addr(),
                    ip.dst_addr(),
                    ip.protocol()
                ),
                Err(_) => write!(w, "IP [|ip] {e}"),
            };
        }
    };
    if ip.version() != 4 {
        return write!(
            w,
            "IP bad version {}, length {}",
            ip.version(),
            datagram.len()
        );
    }
    let payload = ip.payload();
    let first = ip.frag_offset() == 0;
    match ip.protocol() {
        IpProtocol::Udp if first => match UdpPacket::new_checked(payload) {
            Ok(udp) => {
                write!(
                    w,
                    "IP {}.{} > {}.{}: UDP, length {}",
                    ip.src_addr(),
                    udp.src_port(),
                    ip.dst_addr(),
                    udp.dst_port(),
                    udp.payload().len()
                )?;
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                if !ip.more_frags() && udp.is_partial_checksum(src, dst) {
                    w.write_str(", cksum partial (offloaded)")?;
                } else if !ip.more_frags() && !udp.verify_checksum(src, dst) {
                    write!(w, ", bad udp cksum 0x{:04x}", udp.checksum())?;
                }
            }
            // RFC 791: the first fragment carries the UDP header, whose length field counts
            // the whole datagram, beyond this fragment; tcpdump prints it as the length.
            Err(_)
                if ip.more_frags()
                    && payload.len() >= 8
                    && UdpPacket::new_unchecked(payload).len() >= 8 =>
            {
                let udp = UdpPacket::new_unchecked(payload);
                write!(
                    w,
                    "IP {}.{} > {}.{}: UDP, length {}",
                    ip.src_addr(),
                    udp.src_port(),
                    ip.dst_addr(),
                    udp.dst_port(),
                    udp.len() - 8
                )?;
            }
            Err(e) => write!(
                w,
                "IP {} > {}: UDP [|udp] {e}",
                ip.src_addr(),
                ip.dst_addr()
            )?,
        },
        IpProtocol::Icmp if first => {
            write!(w, "IP {} > {}: ICMP ", ip.src_addr(), ip.dst_addr())?;
            match IcmpPacket::new_checked(payload) {
                Ok(icmp) => {
                    write_icmp(w, &icmp)?;
                    write!(w, ", length {}", payload.len())?;
                    if !ip.more_frags() && !icmp.verify_checksum() {
                        write!(w, ", bad icmp cksum 0x{:04x}", icmp.checksum())?;
                    }
                    if opts.quote && icmp.msg_type().is_error() {
                        write_quote(w, &icmp)?;
                    }
                }
                Err(e) => write!(w, "[|icmp] {e}")?,
            }
        }
        p => write!(
            w,
            "IP {} > {}: {p}, length {}",
            ip.src_addr(),
            ip.dst_addr(),
            payload.len()
        )?,
    }
    if ip.is_fragment() {
        write!(
            w,
            " (frag {}:{}@{}{})",
            ip.ident(),
            payload.len(),
            ip.frag_offset_bytes(),
            if ip.more_frags() { "+" } else { "" }
        )?;
    }
    if !ip.options().is_empty() {
        w.write_str(" (options")?;
        for o in OptionIter::new(ip.options()) {
            match o {
                Ok(o) => write!(w, " {o}")?,
                Err(e) => {
                    write!(w, " [{e}]")?;
                    break;
                }
            }
        }
        w.write_str(")")?;
    }
    if !ip.verify_checksum() {
        write!(w, " [bad ip cksum 0x{:04x}]", ip.checksum())?;
    }
    Ok(())
}

fn write_icmp<W: Write, T: AsRef<[u8]>>(w: &mut W, icmp: &IcmpPacket<T>) -> fmt::Result {
    let repr = match IcmpRepr::parse(icmp, false) {
        Ok(r) => r,
        Err(e) => return write!(w, "[|icmp] {e}"),
    };
    match repr {
        IcmpRepr::EchoRequest { ident, seq_no, .. } => {
            write!(w, "echo request, id {ident}, seq {seq_no}")
        }
        IcmpRepr::EchoReply { ident, seq_no, .. } => {
            write!(w, "echo reply, id {ident}, seq {seq_no}")
        }
        IcmpRepr::DstUnreachable {
            code, next_hop_mtu, ..
        } => {
            let q = icmp.quote_info();
            let dst = q.map(|q| q.dst_addr.to_string()).unwrap_or_default();
            match (code, q.map(|q| q.transport)) {
                (
                    DstUnreachable::PortUnreachable,
                    Some(QuotedTransport::Ports { dst_port, .. }),
                ) => {
                    let proto = q.map(|q| q.protocol).unwrap_or(IpProtocol::Udp);
                    write!(w, "{dst} {proto} port {dst_port} unreachable")
                }
                (DstUnreachable::FragRequired, _) => {
                    write!(w, "{dst} unreachable - need to frag (mtu {next_hop_mtu})")
                }
                (DstUnreachable::NetUnreachable, _) => write!(w, "net {dst} unreachable"),
                (DstUnreachable::HostUnreachable, _) => write!(w, "host {dst} unreachable"),
                (DstUnreachable::ProtoUnreachable, _) => {
                    let proto = q.map(|q| q.protocol).unwrap_or(IpProtocol::Unknown(0));
                    write!(w, "{dst} protocol {} unreachable", u8::from(proto))
                }
                (DstUnreachable::CommProhibited, _) => {
                    write!(w, "host {dst} unreachable - admin prohibited filter")
                }
                (c, _) => write!(w, "{dst} unreachable: {c}"),
            }?;
            write_extensions(w, icmp)
        }
        IcmpRepr::TimeExceeded { code, .. } => {
            match code {
                TimeExceeded::TtlExpired => w.write_str("time exceeded in-transit"),
                TimeExceeded::FragExpired => w.write_str("ip reassembly time exceeded"),
                TimeExceeded::Unknown(c) => write!(w, "time exceeded, code {c}"),
            }?;
            write_extensions(w, icmp)
        }
        IcmpRepr::ParamProblem { code, pointer, .. } => {
            write!(w, "parameter problem - code {code} octet {pointer}")?;
            write_extensions(w, icmp)
        }
        IcmpRepr::Redirect { code, gateway, .. } => {
            let dst = icmp
                .quote_info()
                .map(|q| q.dst_addr.to_string())
                .unwrap_or_default();
            write!(w, "redirect {dst} to {gateway} ({code})")
        }
        IcmpRepr::SourceQuench { .. } => w.write_str("source quench"),
        IcmpRepr::Timestamp {
            reply,
            ident,
            seq_no,
            ..
        } => write!(
            w,
            "time stamp {}, id {ident}, seq {seq_no}",
            if reply { "reply" } else { "query" }
        ),
        IcmpRepr::Other { msg_type, code, .. } => {
            write!(w, "{}, code {code}", IcmpType::from(msg_type))
        }
    }
}

/// ` [quote: IP src[.port] > dst[.port]: what, ttl T, length L]`: the datagram an ICMP error
/// quotes, as far as it was quoted.
fn write_quote<W: Write, T: AsRef<[u8]>>(w: &mut W, icmp: &IcmpPacket<T>) -> fmt::Result {
    let Some(q) = icmp.quote_info() else {
        return write!(w, " [quote: [|ip] {} bytes]", icmp.quoted_datagram().len());
    };
    let (src, dst) = (q.src_addr, q.dst_addr);
    w.write_str(" [quote: IP ")?;
    match q.transport {
        QuotedTransport::Ports {
            src_port, dst_port, ..
        } => write!(w, "{src}.{src_port} > {dst}.{dst_port}: {}", q.protocol)?,
        QuotedTransport::Icmp {
            msg_type,
            code,
            ident,
            seq_no,
            ..
        } => {
            write!(w, "{src} > {dst}: ICMP ")?;
            match msg_type {
                8 => write!(w, "echo request, id {ident}, seq {seq_no}")?,
                0 => write!(w, "echo reply, id {ident}, seq {seq_no}")?,
                t => write!(w, "type {t}, code {code}")?,
            }
        }
        QuotedTransport::Other | QuotedTransport::Missing => {
            write!(w, "{src} > {dst}: {}", q.protocol)?
        }
    }
    write!(w, ", ttl {}, length {}]", q.ttl, q.total_len)
}

fn write_extensions<W: Write, T: AsRef<[u8]>>(w: &mut W, icmp: &IcmpPacket<T>) -> fmt::Result {
    let Some(ext) = icmp.extensions() else {
        return Ok(());
    };
    let ext = match ext {
        Ok(e) => e,
        Err(e) => return write!(w, ", [{e}]"),
    };
    for obj in ext.objects() {
        match obj {
            Ok(o) if o.is_mpls() => {
                w.write_str(", MPLS")?;
                for e in o.mpls_entries() {
                    write!(w, " {e}")?;
                }
            }
            Ok(o) => write!(
                w,
                ", ext class {} type {} len {}",
                o.class_num,
                o.c_type,
                o.payload.len()
            )?,
            Err(e) => return write!(w, ", [{e}]"),
        }
    }
    Ok(())
}

/// A hex dump with offsets and printable ASCII, 16 bytes a line:
/// `0000  45 00 00 54 8a 1d 40 00  40 01 b2 89 7f 00 00 01  E..T..@.@.......`.
pub fn hexdump(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 4 + 16);
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(s, "{:04x}  ", i * 16);
        for j in 0..16 {
            match line.get(j) {
                Some(b) => {
                    let _ = write!(s, "{b:02x} ");
                }
                None => s.push_str("   "),
            }
            if j == 7 {
                s.push(' ');
            }
        }
        s.push(' ');
        for &b in line {
            s.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        s.push('\n');
    }
    s
}

/// Hex bytes without separators (for scripts and `--json`).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses hex: pairs of hex digits, with optional `0x` prefix and any whitespace, `:` or `-`
/// between bytes. Returns what is wrong, in words, on failure.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut digits = Vec::with_capacity(text.len());
    for token in text.split(|c: char| c.is_whitespace() || c == ':' || c == '-' || c == ',') {
        let t = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
            .unwrap_or(token);
        digits.extend(t.chars());
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "odd number of hex digits ({}): write each byte as two digits",
            digits.len()
        ));
    }
    for pair in digits.chunks(2) {
        let hi = pair[0].to_digit(16);
        let lo = pair[1].to_digit(16);
        match (hi, lo) {
            (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
            _ => {
                return Err(format!(
                    "'{}{}' is not a hex byte (use 0-9 and a-f)",
                    pair[0], pair[1]
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::builder::Ipv4Builder;
    use crate::packet::icmp::{ErrorBody, MplsEntry, ObjectRepr, emit_extensions};
    use std::net::Ipv4Addr;

    const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

    fn build(b: Ipv4Builder<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let n = b.emit(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn echo_request_reads_like_tcpdump() {
        let d = build(Ipv4Builder::new(LO, LO).icmp(&IcmpRepr::EchoRequest {
            ident: 4660,
            seq_no: 1,
            data: &[0; 56],
        }));
        assert_eq!(
            summary(&d),
            "IP 127.0.0.1 > 127.0.0.1: ICMP echo request, id 4660, seq 1, length 64"
        );
    }

    #[test]
    fn udp_port_unreachable_and_time_exceeded_with_mpls() {
        let probe = build(Ipv4Builder::new(LO, LO).udp(40000, 33434, b"probe"));
        assert_eq!(
            summary(&probe),
            "IP 127.0.0.1.40000 > 127.0.0.1.33434: UDP, length 5"
        );
        let unreach = build(Ipv4Builder::new(LO, LO).icmp(&IcmpRepr::DstUnreachable {
            code: DstUnreachable::PortUnreachable,
            next_hop_mtu: 0,
            body: ErrorBody::quote(&probe),
        }));
        assert_eq!(
            summary(&unreach),
            "IP 127.0.0.1 > 127.0.0.1: ICMP 127.0.0.1 udp port 33434 unreachable, length 41"
        );
        let mut ext = [0u8; 16];
        let stack = [MplsEntry {
            label: 24001,
            tc: 0,
            bottom: true,
            ttl: 1,
        }];
        let n = emit_extensions(&[ObjectRepr::Mpls(&stack)], &mut ext).unwrap();
        let te = build(Ipv4Builder::new(Ipv4Addr::new(198, 18, 1, 1), LO).icmp(
            &IcmpRepr::TimeExceeded {
                code: TimeExceeded::TtlExpired,
                body: ErrorBody {
                    quote: &probe,
                    extensions: Some(&ext[..n]),
                },
            },
        ));
        assert_eq!(
            summary(&te),
            "IP 198.18.1.1 > 127.0.0.1: ICMP time exceeded in-transit, MPLS L=24001,E=0,S=1,T=1, length 148"
        );
    }

    #[test]
    fn errors_quote_the_datagram_they_answer_when_asked() {
        let quote = SummaryOptions { quote: true };
        let probe = build(Ipv4Builder::new(LO, LO).ttl(1).udp(40000, 33434, b"probe"));
        let unreach = build(Ipv4Builder::new(LO, LO).icmp(&IcmpRepr::DstUnreachable {
            code: DstUnreachable::PortUnreachable,
            next_hop_mtu: 0,
            body: ErrorBody::quote(&probe),
        }));
        assert_eq!(
            summary_with(&unreach, quote),
            "IP 127.0.0.1 > 127.0.0.1: ICMP 127.0.0.1 udp port 33434 unreachable, length 41 \
             [quote: IP 127.0.0.1.40000 > 127.0.0.1.33434: udp, ttl 1, length 33]"
        );
        assert_eq!(
            summary_with(&unreach, SummaryOptions::default()),
            summary(&unreach)
        );
        // A time exceeded quoting an echo request, with an MPLS extension.
        let echo = build(
            Ipv4Builder::new(LO, Ipv4Addr::new(198, 18, 4, 2))
                .ttl(1)
                .icmp(&IcmpRepr::EchoRequest {
                    ident: 4660,
                    seq_no: 3,
                    data: &[0; 56],
                }),
        );
        let mut ext = [0u8; 16];
        let stack = [MplsEntry {
            label: 24001,
            tc: 0,
            bottom: true,
            ttl: 1,
        }];
        let n = emit_extensions(&[ObjectRepr::Mpls(&stack)], &mut ext).unwrap();
        let te = build(Ipv4Builder::new(Ipv4Addr::new(198, 18, 1, 2), LO).icmp(
            &IcmpRepr::TimeExceeded {
                code: TimeExceeded::TtlExpired,
                body: ErrorBody {
                    quote: &echo[..28],
                    extensions: Some(&ext[..n]),
                },
            },
        ));
        assert_eq!(
            summary_with(&te, quote),
            "IP 198.18.1.2 > 127.0.0.1: ICMP time exceeded in-transit, MPLS L=24001,E=0,S=1,T=1, \
             length 148 [quote: IP 127.0.0.1 > 198.18.4.2: ICMP echo request, id 4660, seq 3, \
             ttl 1, length 84]"
        );
        // Too little quoted for an IPv4 header; echo replies have no quote.
        let short = build(Ipv4Builder::new(LO, LO).icmp(&IcmpRepr::TimeExceeded {
            code: TimeExceeded::TtlExpired,
            body: ErrorBody::quote(&probe[..12]),
        }));
        assert!(
            summary_with(&short, quote).ends_with("length 20 [quote: [|ip] 12 bytes]"),
            "{}",
            summary_with(&short, quote)
        );
        let reply = build(Ipv4Builder::new(LO, LO).icmp(&IcmpRepr::EchoReply {
            ident: 1,
            seq_no: 2,
            data: &[],
        }));
        assert_eq!(summary_with(&reply, quote), summary(&reply));
        for len in 0..te.len() {
            let _ = summary_with(&te[..len], quote);
        }
    }

    #[test]
    fn a_first_fragment_shows_the_ports_and_the_whole_udp_length() {
        let mut big = vec![0u8; 4096];
        let n = Ipv4Builder::new(LO, LO)
            .ident(77)
            .udp(40000, 53, &[7; 3000])
            .emit(&mut big)
            .unwrap();
        big.truncate(n);
        let frags = crate::packet::fragment::fragment(&big, 1480).unwrap();
        assert_eq!(
            summary(&frags[0]),
            "IP 127.0.0.1.40000 > 127.0.0.1.53: UDP, length 3000 (frag 77:1480@0+)"
        );
        assert_eq!(
            summary(&frags[1]),
            "IP 127.0.0.1 > 127.0.0.1: udp, length 1480 (frag 77:1480@1480+)"
        );
        // A datagram cut short by a capture, not fragmented, is still reported as truncated.
        assert!(
            summary(&big[..200]).contains("[|udp]"),
            "{}",
            summary(&big[..200])
        );
    }

    #[test]
    fn fragments_options_and_bad_checksums_are_marked() {
        let d = build(
            Ipv4Builder::new(LO, LO)
                .ident(7)
                .more_frags(true)
                .options(&[1, 1, 1, 0])
                .checksum(0x1234)
                .udp(1, 2, &[0; 16]),
        );
        let s = summary(&d);
        assert!(
            s.starts_with("IP 127.0.0.1.1 > 127.0.0.1.2: UDP, length 16 (frag 7:24@0+)"),
            "{s}"
        );
        assert!(s.contains("(options NOP NOP NOP EOL)"), "{s}");
        assert!(s.ends_with("[bad ip cksum 0x1234]"), "{s}");
    }

    #[test]
    fn garbage_never_panics_and_says_what_is_wrong() {
        assert_eq!(
            summary(&[0x45, 0, 0]),
            "IP [|ip] ipv4: truncated: need 20 bytes, have 3 (required by the minimum header size)"
        );
        let mut d = build(Ipv4Builder::new(LO, LO).udp(1, 2, b"abc"));
        d[3] = 200;
        assert!(summary(&d).contains("[|udp] ipv4: truncated: need 200 bytes, have 31"));
        for len in 0..d.len() {
            let _ = summary(&d[..len]);
        }
    }

    #[test]
    fn hexdump_and_hex_parse() {
        let dump = hexdump(b"E\x00\x00\x54abcdefghijklmnopq");
        assert_eq!(
            dump,
            "0000  45 00 00 54 61 62 63 64  65 66 67 68 69 6a 6b 6c  E..Tabcdefghijkl\n\
             0010  6d 6e 6f 70 71                                    mnopq\n"
        );
        assert_eq!(
            parse_hex("45 00:0x54-ff").unwrap(),
            vec![0x45, 0, 0x54, 0xff]
        );
        assert!(parse_hex("abc").unwrap_err().contains("odd number"));
        assert!(parse_hex("zz").unwrap_err().contains("not a hex byte"));
        assert_eq!(hex(&[0xde, 0xad]), "dead");
    }
}
