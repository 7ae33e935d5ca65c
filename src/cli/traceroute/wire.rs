//! The probes of `rawkit traceroute` on the wire, and the replies that come back: building a
//! probe (IPv4 + UDP or ICMP echo, with the fields the engine chose and, for Paris traceroute,
//! the two payload bytes that give the checksum the engine asked for), and decoding a datagram
//! from the raw ICMP socket into a [`Reply`] plus the [`ProbeEcho`] that says which probe it
//! answers.
//!
//! Pure functions over bytes: no sockets, no clock. The driver owns both.

use crate::packet;
use crate::packet::builder::Ipv4Builder;
use crate::packet::icmp::{IcmpPacket, IcmpRepr, IcmpType, QuotedTransport};
use crate::packet::ipv4::{IpProtocol, Ipv4Packet};
use crate::probe::trace::{ExtObject, HEADERS_LEN, Method, ProbeEcho, ProbeSpec, ReplyKind};
use std::net::Ipv4Addr;

/// What every probe of a run shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTemplate {
    /// Source address (as the kernel would choose it, or `-s`).
    pub src: Ipv4Addr,
    /// The target.
    pub dst: Ipv4Addr,
    /// UDP or ICMP.
    pub method: Method,
    /// The UDP source port, or the ICMP identifier.
    pub port_or_ident: u16,
    /// The TOS byte (`-t`).
    pub tos: u8,
    /// Don't Fragment (`-F`, `--mtu`).
    pub dont_frag: bool,
}

/// The payload byte at `i`, as the Linux traceroute fills its probes (`0x40 + (i & 0x3f)`,
/// counted from the start of the transport header for ICMP).
fn payload_byte(method: Method, i: usize) -> u8 {
    let at = if method == Method::Icmp { i + 8 } else { i };
    0x40 + (at & 0x3f) as u8
}

/// Ones' complement addition of two 16-bit words.
fn ones_add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The word that, added to a message whose checksum is `current` (with that word at zero), makes
/// its checksum `target`: the sum must become `!target`, and it is `!current` now.
fn compensation(current: u16, target: u16) -> u16 {
    ones_add(!target, current)
}

/// Writes the probe `spec` into `buf`; returns its length. The payload has the Linux
/// traceroute's pattern; with a checksum to reach (Paris), its first two bytes are chosen so
/// that the UDP or ICMP checksum comes out as asked.
pub fn build_probe(
    t: &ProbeTemplate,
    spec: &ProbeSpec,
    buf: &mut [u8],
) -> Result<usize, packet::error::Error> {
    let data_len = spec.packet_len.saturating_sub(HEADERS_LEN);
    let mut data: Vec<u8> = (0..data_len).map(|i| payload_byte(t.method, i)).collect();
    let f = spec.fields;
    let target = match t.method {
        Method::Icmp => f.icmp_checksum,
        _ => f.udp_checksum,
    };
    if target.is_some() && data.len() >= 2 {
        data[0] = 0;
        data[1] = 0;
    }
    let emit = |data: &[u8], buf: &mut [u8]| -> Result<usize, packet::error::Error> {
        let b = Ipv4Builder::new(t.src, t.dst)
            .ttl(spec.ttl)
            .tos(t.tos)
            .ident(f.ip_id)
            .dont_frag(t.dont_frag);
        let echo = IcmpRepr::EchoRequest {
            ident: t.port_or_ident,
            seq_no: f.icmp_seq,
            data,
        };
        match t.method {
            Method::Icmp => b.icmp(&echo).emit(buf),
            Method::Udp | Method::UdpFixed => b.udp(t.port_or_ident, f.dst_port, data).emit(buf),
        }
    };
    let n = emit(&data, buf)?;
    if let Some(target) = target
        && data.len() >= 2
    {
        // The checksum sits at offset 2 (ICMP) or 6 (UDP) of the transport header.
        let at = 20 + if t.method == Method::Icmp { 2 } else { 6 };
        let current = u16::from_be_bytes([buf[at], buf[at + 1]]);
        let w = compensation(current, target);
        data[..2].copy_from_slice(&w.to_be_bytes());
        let n2 = emit(&data, buf)?;
        debug_assert_eq!(n, n2);
    }
    Ok(n)
}

/// What the decoder needs to know to recognise replies to this run's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// UDP or ICMP.
    pub method: Method,
    /// The UDP source port, or the ICMP identifier, of every probe.
    pub port_or_ident: u16,
    /// Our source address (a "fragmentation needed" from it is the kernel refusing our own
    /// send, which `sendto` reports anyway).
    pub source: Ipv4Addr,
    /// The target.
    pub target: Ipv4Addr,
}

/// A decoded reply to one of our probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Who sent it.
    pub from: Ipv4Addr,
    /// What it is.
    pub kind: ReplyKind,
    /// Which probe it answers.
    pub echo: ProbeEcho,
    /// The TTL it arrived with.
    pub reply_ttl: u8,
    /// The ICMP type and code.
    pub icmp_type: u8,
    /// The ICMP code.
    pub code: u8,
    /// RFC 4884 extensions (empty when absent or malformed).
    pub extensions: Vec<ExtObject>,
}

/// Decodes one datagram from the raw ICMP socket (IPv4 header included). `None` for anything
/// that is not a reply to this run's probes, and for anything malformed: a raw socket delivers
/// whatever arrives, so no input panics here.
pub fn decode(ctx: &DecodeContext, datagram: &[u8]) -> Option<Decoded> {
    let ip = Ipv4Packet::new_checked(datagram).ok()?;
    if ip.protocol() != IpProtocol::Icmp || ip.is_fragment() {
        return None;
    }
    let icmp = IcmpPacket::new_checked(ip.payload()).ok()?;
    // Raw sockets deliver packets whose checksum is wrong (DESIGN section 3).
    if !icmp.verify_checksum() {
        return None;
    }
    let from = ip.src_addr();
    let t = icmp.msg_type();
    let code = icmp.msg_code();
    let base = |kind, echo| Decoded {
        from,
        kind,
        echo,
        reply_ttl: ip.ttl(),
        icmp_type: t.into(),
        code,
        extensions: Vec::new(),
    };
    if t == IcmpType::EchoReply {
        // The Linux traceroute connects its ICMP socket to the target: replies from elsewhere
        // are not the destination's.
        if ctx.method != Method::Icmp || icmp.echo_ident() != ctx.port_or_ident {
            return None;
        }
        if from != ctx.target {
            return None;
        }
        let echo = ProbeEcho {
            icmp_seq: Some(icmp.echo_seq_no()),
            ..ProbeEcho::default()
        };
        return Some(base(ReplyKind::EchoReply, echo));
    }
    let kind = match t {
        IcmpType::TimeExceeded => ReplyKind::TimeExceeded { code },
        IcmpType::DstUnreachable => ReplyKind::DstUnreachable {
            code,
            mtu: if code == 4 { icmp.next_hop_mtu() } else { 0 },
        },
        IcmpType::ParamProblem => ReplyKind::Other {
            icmp_type: t.into(),
            code,
        },
        // Redirects and source quenches are advice, not answers (as the Linux traceroute).
        _ => return None,
    };
    if t == IcmpType::DstUnreachable && code == 4 && from == ctx.source {
        return None;
    }
    let q = icmp.quote_info()?;
    if q.dst_addr != ctx.target {
        return None;
    }
    let echo = match (ctx.method, q.transport) {
        (
            Method::Udp | Method::UdpFixed,
            QuotedTransport::Ports {
                src_port,
                dst_port,
                checksum,
            },
        ) if q.protocol == IpProtocol::Udp && src_port == ctx.port_or_ident => ProbeEcho {
            ip_id: Some(q.ident),
            dst_port: Some(dst_port),
            udp_checksum: Some(checksum),
            icmp_seq: None,
        },
        (
            Method::Icmp,
            QuotedTransport::Icmp {
                msg_type: 8,
                ident,
                seq_no,
                ..
            },
        ) if ident == ctx.port_or_ident => ProbeEcho {
            ip_id: Some(q.ident),
            icmp_seq: Some(seq_no),
            ..ProbeEcho::default()
        },
        _ => return None,
    };
    let mut d = base(kind, echo);
    d.extensions = extensions(&icmp);
    Some(d)
}

/// The RFC 4884 extension objects of an error, as the Linux traceroute accepts them: version 2,
/// a checksum that is 0 or verifies, objects of whole 32-bit words that fill the structure
/// exactly. Anything else gives no extensions at all.
fn extensions<T: AsRef<[u8]>>(icmp: &IcmpPacket<T>) -> Vec<ExtObject> {
    let Some(Ok(ext)) = icmp.extensions() else {
        return Vec::new();
    };
    if ext.version() != 2 || !ext.verify_checksum() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for obj in ext.objects() {
        let Ok(obj) = obj else {
            return Vec::new();
        };
        if obj.payload.len() % 4 != 0 {
            return Vec::new();
        }
        if obj.is_mpls() {
            out.push(ExtObject::Mpls(obj.mpls_entries().collect()));
        } else {
            out.push(ExtObject::Other {
                class_num: obj.class_num,
                c_type: obj.c_type,
                words: obj
                    .payload
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::icmp::{
        DstUnreachable, ErrorBody, MplsEntry, ObjectRepr, TimeExceeded, emit_extensions,
    };
    use crate::packet::udp;
    use crate::probe::trace::{Flow, ProbeFields};

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 4, 2);
    const R2: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);

    fn template(method: Method) -> ProbeTemplate {
        ProbeTemplate {
            src: SRC,
            dst: DST,
            method,
            port_or_ident: 40_000,
            tos: 0,
            dont_frag: false,
        }
    }

    fn spec(flow: &Flow, tag: u16, ttl: u8, len: usize) -> ProbeSpec {
        ProbeSpec {
            index: usize::from(tag),
            ttl,
            probe: 0,
            tag,
            fields: flow.fields(tag),
            packet_len: len,
        }
    }

    fn built(t: &ProbeTemplate, s: &ProbeSpec) -> Vec<u8> {
        let mut buf = vec![0u8; 2000];
        let n = build_probe(t, s, &mut buf).expect("build");
        buf.truncate(n);
        buf
    }

    fn ctx(method: Method) -> DecodeContext {
        DecodeContext {
            method,
            port_or_ident: 40_000,
            source: SRC,
            target: DST,
        }
    }

    /// The error a router sends.
    #[derive(Clone, Copy)]
    enum Err {
        TimeExceeded,
        Unreachable(DstUnreachable, u16),
    }

    /// A router's error quoting `probe` (header + 8 bytes), with extensions `ext`.
    fn error_from(from: Ipv4Addr, e: Err, probe: &[u8], ext: Option<&[u8]>) -> Vec<u8> {
        let body = ErrorBody {
            quote: &probe[..28.min(probe.len())],
            extensions: ext,
        };
        let r = match e {
            Err::TimeExceeded => IcmpRepr::TimeExceeded {
                code: TimeExceeded::TtlExpired,
                body,
            },
            Err::Unreachable(code, mtu) => IcmpRepr::DstUnreachable {
                code,
                next_hop_mtu: mtu,
                body,
            },
        };
        let mut buf = vec![0u8; 600];
        let n = Ipv4Builder::new(from, SRC)
            .ttl(62)
            .icmp(&r)
            .emit(&mut buf)
            .unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn classic_udp_probe_has_the_linux_shape() {
        let flow = Flow::new(Method::Udp, None, false);
        let p = built(&template(Method::Udp), &spec(&flow, 2, 3, 60));
        assert_eq!(p.len(), 60);
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.ttl(), 3);
        assert_eq!(ip.ident(), flow.fields(2).ip_id);
        assert!(!ip.dont_frag());
        assert!(ip.verify_checksum());
        let u = udp::UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (40_000, 33436));
        assert!(u.verify_checksum(SRC, DST));
        assert_eq!(&u.payload()[..4], &[0x40, 0x41, 0x42, 0x43]);
        // Independent oracle: etherparse agrees on every field.
        let e = etherparse::SlicedPacket::from_ip(&p).unwrap();
        match e.transport {
            Some(etherparse::TransportSlice::Udp(u)) => {
                assert_eq!(u.destination_port(), 33436);
                assert_eq!(u.source_port(), 40_000);
            }
            other => panic!("not UDP: {other:?}"),
        }
    }

    #[test]
    fn paris_udp_probes_keep_ports_and_carry_the_tag_in_the_checksum() {
        let flow = Flow::new(Method::Udp, None, true);
        let t = template(Method::Udp);
        for tag in [0u16, 1, 2, 77, 0xfffe] {
            let p = built(&t, &spec(&flow, tag, 5, 60));
            let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
            let u = udp::UdpPacket::new_checked(ip.payload()).unwrap();
            assert_eq!((u.src_port(), u.dst_port()), (40_000, 33434), "tag {tag}");
            assert_eq!(
                Some(u.checksum()),
                flow.fields(tag).udp_checksum,
                "tag {tag}"
            );
            assert!(u.verify_checksum(SRC, DST), "tag {tag}");
        }
    }

    #[test]
    fn paris_icmp_probes_keep_the_checksum_constant_while_seq_counts_up() {
        let flow = Flow::new(Method::Icmp, None, true);
        let t = template(Method::Icmp);
        let mut sums = vec![];
        for tag in 0u16..20 {
            let p = built(&t, &spec(&flow, tag, 5, 60));
            let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
            let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
            assert!(icmp.verify_checksum());
            assert_eq!(icmp.echo_seq_no(), 1 + tag);
            assert_eq!(icmp.echo_ident(), 40_000);
            sums.push(icmp.checksum());
        }
        assert!(sums.iter().all(|c| *c == flow.icmp_checksum), "{sums:x?}");
        // Without Paris the checksum follows the sequence number.
        let classic = Flow::new(Method::Icmp, None, false);
        let a = built(&t, &spec(&classic, 0, 1, 60));
        let b = built(&t, &spec(&classic, 1, 1, 60));
        assert_ne!(a[22..24], b[22..24]);
    }

    #[test]
    fn a_probe_of_28_bytes_has_no_payload_and_paris_needs_none_to_stay_valid() {
        let flow = Flow::new(Method::Udp, None, false);
        let p = built(&template(Method::Udp), &spec(&flow, 0, 1, 28));
        assert_eq!(p.len(), 28);
        let f = ProbeFields {
            udp_checksum: Some(9),
            ..flow.fields(0)
        };
        let s = ProbeSpec {
            fields: f,
            ..spec(&flow, 0, 1, 28)
        };
        // No room for the compensation: still a valid datagram (checksum as computed).
        let p = built(&template(Method::Udp), &s);
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert!(
            udp::UdpPacket::new_checked(ip.payload())
                .unwrap()
                .verify_checksum(SRC, DST)
        );
    }

    #[test]
    fn time_exceeded_quoting_our_udp_probe_is_decoded_with_its_fields() {
        let flow = Flow::new(Method::Udp, None, false);
        let probe = built(&template(Method::Udp), &spec(&flow, 4, 2, 60));
        let reply = error_from(R2, Err::TimeExceeded, &probe, None);
        let d = decode(&ctx(Method::Udp), &reply).expect("ours");
        assert_eq!(d.from, R2);
        assert_eq!(d.kind, ReplyKind::TimeExceeded { code: 0 });
        assert_eq!(d.echo.dst_port, Some(33438));
        assert_eq!(d.echo.ip_id, Some(flow.fields(4).ip_id));
        assert_eq!(d.reply_ttl, 62);
        assert!(d.extensions.is_empty());
        // Another source port, another target, or ICMP mode: not ours.
        let mut other = template(Method::Udp);
        other.port_or_ident = 40_001;
        let theirs = built(&other, &spec(&flow, 4, 2, 60));
        assert!(
            decode(
                &ctx(Method::Udp),
                &error_from(R2, Err::TimeExceeded, &theirs, None)
            )
            .is_none()
        );
        assert!(decode(&ctx(Method::Icmp), &reply).is_none());
        let mut c = ctx(Method::Udp);
        c.target = R2;
        assert!(decode(&c, &reply).is_none());
        // Every truncation is refused without a panic.
        for cut in 0..reply.len() {
            let _ = decode(&ctx(Method::Udp), &reply[..cut]);
        }
        // A corrupted checksum is refused.
        let mut bad = reply.clone();
        bad[22] ^= 0xff;
        assert!(decode(&ctx(Method::Udp), &bad).is_none());
    }

    #[test]
    fn unreachables_echo_replies_and_self_sent_frag_needed() {
        let flow = Flow::new(Method::Icmp, None, false);
        let probe = built(&template(Method::Icmp), &spec(&flow, 1, 9, 60));
        let r = error_from(
            R2,
            Err::Unreachable(DstUnreachable::CommProhibited, 0),
            &probe,
            None,
        );
        let d = decode(&ctx(Method::Icmp), &r).unwrap();
        assert_eq!(d.kind, ReplyKind::DstUnreachable { code: 13, mtu: 0 });
        assert_eq!(d.echo.icmp_seq, Some(2));
        let r = error_from(
            R2,
            Err::Unreachable(DstUnreachable::FragRequired, 1280),
            &probe,
            None,
        );
        let d = decode(&ctx(Method::Icmp), &r).unwrap();
        assert_eq!(d.kind, ReplyKind::DstUnreachable { code: 4, mtu: 1280 });
        // The kernel's own "fragmentation needed", from our address, is not an answer.
        let r = error_from(
            SRC,
            Err::Unreachable(DstUnreachable::FragRequired, 1280),
            &probe,
            None,
        );
        assert!(decode(&ctx(Method::Icmp), &r).is_none());
        // An echo reply from the target with our identifier ends the trace.
        let mut buf = vec![0u8; 100];
        let n = Ipv4Builder::new(DST, SRC)
            .ttl(61)
            .icmp(&IcmpRepr::EchoReply {
                ident: 40_000,
                seq_no: 7,
                data: &[0x48; 32],
            })
            .emit(&mut buf)
            .unwrap();
        let d = decode(&ctx(Method::Icmp), &buf[..n]).unwrap();
        assert_eq!(d.kind, ReplyKind::EchoReply);
        assert_eq!(d.echo.icmp_seq, Some(7));
        assert!(decode(&ctx(Method::Udp), &buf[..n]).is_none());
        let mut c = ctx(Method::Icmp);
        c.port_or_ident = 1;
        assert!(decode(&c, &buf[..n]).is_none());
    }

    #[test]
    fn mpls_extensions_are_decoded_and_malformed_ones_dropped() {
        let flow = Flow::new(Method::Udp, None, false);
        let probe = built(&template(Method::Udp), &spec(&flow, 0, 2, 60));
        let entry = MplsEntry {
            label: 19380,
            tc: 0,
            bottom: true,
            ttl: 1,
        };
        let mut ext = [0u8; 12];
        let n = emit_extensions(&[ObjectRepr::Mpls(&[entry])], &mut ext).unwrap();
        // trippy's published vector for this entry.
        assert_eq!(&ext[8..12], &[0x04, 0xbb, 0x41, 0x01]);
        let reply = error_from(R2, Err::TimeExceeded, &probe, Some(&ext[..n]));
        let d = decode(&ctx(Method::Udp), &reply).unwrap();
        assert_eq!(d.extensions, vec![ExtObject::Mpls(vec![entry])]);
        assert_eq!(d.echo.dst_port, Some(33434));
        // A wrong extension checksum: no extensions (the reply still counts).
        let mut bad = ext;
        bad[2] ^= 1;
        let reply = error_from(R2, Err::TimeExceeded, &probe, Some(&bad[..n]));
        let d = decode(&ctx(Method::Udp), &reply).unwrap();
        assert!(d.extensions.is_empty());
    }
}
