//! One captured packet, from a live frame or a pcap record, as a text line or a JSON event.
//!
//! The line is the packet layer's own one-line decode ([`display::summary_with`], quoting the
//! datagram an ICMP error answers) after the timestamp; the JSON event carries the same line
//! and the decoded fields, read through the packet layer's views. Nothing here decodes bytes
//! by hand, and nothing panics on any input.

use crate::cli::output::Out;
use crate::net::capture::{Frame, PacketType};
use crate::packet::display::{self, SummaryOptions};
use crate::packet::icmp::{IcmpPacket, IcmpType, QuotedTransport};
use crate::packet::ipv4::{IpProtocol, Ipv4Packet};
use crate::packet::udp::UdpPacket;
use crate::pcap::{LinkType, PcapRecord, ipv4_payload};
use serde_json::{Map, Value, json};
use std::time::SystemTime;

/// Text is written in pieces of about this size (and whenever the capture waits).
const TEXT_CHUNK: usize = 32 * 1024;

const ETHERTYPE_IPV4: u16 = 0x0800;

/// One packet to print.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packet<'a> {
    /// When the kernel saw it.
    ts: SystemTime,
    /// Its captured bytes, link header included.
    frame: &'a [u8],
    /// Its length on the wire.
    orig_len: usize,
    /// The IPv4 datagram in it (cut to its total length), if it carries one.
    ip: Option<&'a [u8]>,
    /// Its ethertype, when known.
    ethertype: Option<u16>,
    /// True when this host sent it; `None` for a file, which does not say.
    outgoing: Option<bool>,
}

/// The datagram cut to its total length when that is consistent (removing Ethernet padding),
/// as [`Frame::ip_payload`] does for live frames.
fn cut_to_total_len(ip: &[u8]) -> &[u8] {
    match ip.get(2..4) {
        Some(&[hi, lo]) => {
            let total = usize::from(u16::from_be_bytes([hi, lo]));
            if (20..=ip.len()).contains(&total) {
                &ip[..total]
            } else {
                ip
            }
        }
        _ => ip,
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

impl<'a> Packet<'a> {
    /// A frame from a live capture: `data` its captured bytes.
    pub(super) fn live(frame: &Frame, data: &'a [u8], ts: SystemTime) -> Packet<'a> {
        Packet {
            ts,
            frame: data,
            orig_len: frame.orig_len.max(data.len()),
            ip: frame.ip_payload(data),
            ethertype: Some(frame.protocol),
            outgoing: Some(frame.pkttype == PacketType::Outgoing),
        }
    }

    /// A record of a pcap file.
    pub(super) fn record(record: &'a PcapRecord) -> Packet<'a> {
        let data = &record.data[..];
        let ethertype = match record.link {
            LinkType::Ethernet => be16(data, 12),
            LinkType::LinuxSll => be16(data, 14),
            LinkType::LinuxSll2 => be16(data, 0),
            LinkType::RawIpv4 | LinkType::Ipv4 => match data.first().map(|b| b >> 4) {
                Some(4) => Some(ETHERTYPE_IPV4),
                Some(6) => Some(0x86dd),
                _ => None,
            },
        };
        Packet {
            ts: record.ts,
            frame: data,
            orig_len: record.orig_len.max(data.len()),
            ip: ipv4_payload(record).map(cut_to_total_len),
            ethertype,
            outgoing: None,
        }
    }

    /// The one-line decode, without the timestamp.
    fn summary(&self) -> String {
        match self.ip {
            Some(ip) => display::summary_with(ip, SummaryOptions { quote: true }),
            None => {
                let what = match self.ethertype {
                    Some(0x86dd) => "ethertype 0x86dd (IPv6)".to_string(),
                    Some(0x0806) => "ethertype 0x0806 (ARP)".to_string(),
                    Some(0x8100) => "ethertype 0x8100 (802.1Q)".to_string(),
                    Some(e) => format!("ethertype 0x{e:04x}"),
                    None => "unknown network protocol".to_string(),
                };
                format!("{what}, length {}", self.orig_len)
            }
        }
    }

    /// What the hex dump shows: the IPv4 datagram (as tcpdump -x, without the link header), or
    /// the whole frame.
    fn dump_bytes(&self) -> &[u8] {
        self.ip.unwrap_or(self.frame)
    }
}

/// `HH:MM:SS.ffffff` in UTC, as tcpdump prints its timestamps (in UTC with `TZ=UTC`).
pub(super) fn utc_time(ts: SystemTime) -> String {
    let since = ts
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_micros()
    )
}

/// Prints packets as text lines or JSON events, buffering text between waits.
#[derive(Debug)]
pub(super) struct Printer {
    out: Out,
    hex: bool,
    quiet: bool,
    show_direction: bool,
    pending: usize,
}

impl Printer {
    /// With `quiet`, [`Printer::packet`] is not to be called (and JSON keeps only `start` and
    /// `summary`); with `show_direction`, lines say `In` or `Out`.
    pub(super) fn new(mut out: Out, hex: bool, quiet: bool, show_direction: bool) -> Printer {
        out.set_quiet(quiet);
        Printer {
            out,
            hex,
            quiet,
            show_direction,
            pending: 0,
        }
    }

    /// The output, for the start and summary events.
    pub(super) fn out(&mut self) -> &mut Out {
        &mut self.out
    }

    /// False with `-q`.
    pub(super) fn wants_packets(&self) -> bool {
        !self.quiet
    }

    /// True once stdout was closed by its reader.
    pub(super) fn is_broken(&self) -> bool {
        self.out.is_broken()
    }

    /// Writes what is buffered.
    pub(super) fn flush(&mut self) {
        self.out.flush();
        self.pending = 0;
    }

    /// Prints packet number `n` (counting from 1).
    pub(super) fn packet(&mut self, n: u64, p: &Packet<'_>) {
        let summary = p.summary();
        if self.out.is_json() {
            let mut m = Map::new();
            m.insert("n".into(), n.into());
            let since =
                p.ts.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
            m.insert("ts".into(), json!(since.as_secs_f64()));
            m.insert("time".into(), utc_time(p.ts).into());
            m.insert("len".into(), p.orig_len.into());
            m.insert("caplen".into(), p.frame.len().into());
            m.insert(
                "direction".into(),
                match p.outgoing {
                    Some(true) => "out".into(),
                    Some(false) => "in".into(),
                    None => Value::Null,
                },
            );
            m.insert("ethertype".into(), p.ethertype.into());
            if let Some(ip) = p.ip {
                ipv4_fields(ip, &mut m);
            }
            m.insert("summary".into(), summary.into());
            if self.hex {
                m.insert("hex".into(), display::hex(p.dump_bytes()).into());
            }
            self.out.event("packet", Value::Object(m));
            return;
        }
        let mut line = utc_time(p.ts);
        line.push(' ');
        if self.show_direction {
            line.push_str(match p.outgoing {
                Some(true) => "Out ",
                _ => "In  ",
            });
        }
        line.push_str(&summary);
        line.push('\n');
        if self.hex {
            for l in display::hexdump(p.dump_bytes()).lines() {
                line.push_str("  ");
                line.push_str(l);
                line.push('\n');
            }
        }
        self.pending += line.len();
        self.out.text_later(&line);
        if self.pending >= TEXT_CHUNK {
            self.flush();
        }
    }
}

/// The decoded fields of an IPv4 datagram, into a JSON event: addresses and header fields,
/// then those of the UDP or ICMP message in a first fragment, the datagram an ICMP error
/// quotes, and its RFC 4884 extensions.
fn ipv4_fields(datagram: &[u8], m: &mut Map<String, Value>) {
    let ip = match Ipv4Packet::new_checked(datagram) {
        Ok(ip) => ip,
        Err(e) => {
            if let Ok(ip) = Ipv4Packet::new_lax(datagram) {
                m.insert("src".into(), ip.src_addr().to_string().into());
                m.insert("dst".into(), ip.dst_addr().to_string().into());
                m.insert("proto".into(), u8::from(ip.protocol()).into());
            }
            m.insert("error".into(), e.to_string().into());
            return;
        }
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    m.insert("src".into(), src.to_string().into());
    m.insert("dst".into(), dst.to_string().into());
    m.insert("proto".into(), u8::from(ip.protocol()).into());
    m.insert("ttl".into(), ip.ttl().into());
    m.insert("tos".into(), ip.tos().into());
    m.insert("ip_len".into(), ip.total_len().into());
    m.insert("ip_id".into(), ip.ident().into());
    m.insert("df".into(), ip.dont_frag().into());
    m.insert("mf".into(), ip.more_frags().into());
    m.insert("frag_offset".into(), ip.frag_offset_bytes().into());
    m.insert("ip_checksum_ok".into(), ip.verify_checksum().into());
    if ip.frag_offset() != 0 {
        return;
    }
    let payload = ip.payload();
    match ip.protocol() {
        IpProtocol::Udp => {
            let Ok(udp) = UdpPacket::new_checked(payload) else {
                return;
            };
            m.insert("sport".into(), udp.src_port().into());
            m.insert("dport".into(), udp.dst_port().into());
            m.insert("udp_len".into(), udp.len().into());
            m.insert("payload_len".into(), udp.payload().len().into());
            let checksum = if ip.more_frags() {
                "unchecked"
            } else if udp.checksum() == 0 {
                "none"
            } else if udp.is_partial_checksum(src, dst) {
                "partial"
            } else if udp.verify_checksum(src, dst) {
                "ok"
            } else {
                "bad"
            };
            m.insert("udp_checksum".into(), checksum.into());
        }
        IpProtocol::Icmp => {
            let Ok(icmp) = IcmpPacket::new_checked(payload) else {
                return;
            };
            icmp_fields(&icmp, ip.more_frags(), m);
        }
        _ => {}
    }
}

fn icmp_fields(icmp: &IcmpPacket<&[u8]>, fragment: bool, m: &mut Map<String, Value>) {
    let t = icmp.msg_type();
    m.insert("type".into(), u8::from(t).into());
    m.insert("code".into(), icmp.msg_code().into());
    if !fragment {
        m.insert("icmp_checksum_ok".into(), icmp.verify_checksum().into());
    }
    match t {
        IcmpType::EchoRequest | IcmpType::EchoReply => {
            m.insert("ident".into(), icmp.echo_ident().into());
            m.insert("seq".into(), icmp.echo_seq_no().into());
        }
        IcmpType::DstUnreachable if icmp.msg_code() == 4 => {
            m.insert("mtu".into(), icmp.next_hop_mtu().into());
        }
        IcmpType::Redirect => {
            m.insert("gateway".into(), icmp.gateway().to_string().into());
        }
        IcmpType::ParamProblem => {
            m.insert("pointer".into(), icmp.pointer().into());
        }
        _ => {}
    }
    if !t.is_error() {
        return;
    }
    if let Some(q) = icmp.quote_info() {
        let mut quote = Map::new();
        quote.insert("src".into(), q.src_addr.to_string().into());
        quote.insert("dst".into(), q.dst_addr.to_string().into());
        quote.insert("proto".into(), u8::from(q.protocol).into());
        quote.insert("ttl".into(), q.ttl.into());
        quote.insert("ip_id".into(), q.ident.into());
        quote.insert("ip_len".into(), q.total_len.into());
        match q.transport {
            QuotedTransport::Ports {
                src_port, dst_port, ..
            } => {
                quote.insert("sport".into(), src_port.into());
                quote.insert("dport".into(), dst_port.into());
            }
            QuotedTransport::Icmp {
                msg_type,
                code,
                ident,
                seq_no,
                ..
            } => {
                quote.insert("type".into(), msg_type.into());
                quote.insert("code".into(), code.into());
                quote.insert("ident".into(), ident.into());
                quote.insert("seq".into(), seq_no.into());
            }
            QuotedTransport::Other | QuotedTransport::Missing => {}
        }
        m.insert("quote".into(), Value::Object(quote));
    }
    let Some(Ok(ext)) = icmp.extensions() else {
        return;
    };
    let mut mpls = Vec::new();
    let mut others = Vec::new();
    for obj in ext.objects().flatten() {
        if obj.is_mpls() {
            mpls.extend(
                obj.mpls_entries()
                    .map(|e| json!({ "label": e.label, "tc": e.tc, "s": e.bottom, "ttl": e.ttl })),
            );
        } else {
            others.push(json!({
                "class": obj.class_num, "ctype": obj.c_type, "length": obj.payload.len(),
            }));
        }
    }
    m.insert("mpls".into(), mpls.into());
    m.insert("extensions".into(), others.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::builder::Ipv4Builder;
    use crate::packet::icmp::{DstUnreachable, ErrorBody, IcmpRepr};
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

    fn build(b: Ipv4Builder<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let n = b.emit(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn fields(datagram: &[u8]) -> Value {
        let mut m = Map::new();
        ipv4_fields(datagram, &mut m);
        Value::Object(m)
    }

    #[test]
    fn utc_times_read_like_tcpdump() {
        let ts = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(utc_time(ts), "22:13:20.123456");
        assert_eq!(utc_time(SystemTime::UNIX_EPOCH), "00:00:00.000000");
    }

    #[test]
    fn padding_is_cut_and_inconsistent_lengths_kept() {
        let mut d = build(Ipv4Builder::new(LO, LO).udp(1, 2, b"x"));
        let n = d.len();
        d.extend_from_slice(&[0; 17]);
        assert_eq!(cut_to_total_len(&d).len(), n);
        d[3] = 0xff;
        assert_eq!(cut_to_total_len(&d).len(), n + 17);
        assert_eq!(cut_to_total_len(&[0x45]), &[0x45]);
    }

    #[test]
    fn echo_and_udp_fields_are_numbers_and_strings() {
        let echo = build(
            Ipv4Builder::new(LO, LO)
                .ttl(64)
                .ident(7)
                .icmp(&IcmpRepr::EchoRequest {
                    ident: 4660,
                    seq_no: 2,
                    data: &[0; 56],
                }),
        );
        let f = fields(&echo);
        assert_eq!(f["src"], "127.0.0.1");
        assert_eq!(f["proto"], 1);
        assert_eq!(f["ttl"], 64);
        assert_eq!(f["ip_len"], 84);
        assert_eq!(f["ip_id"], 7);
        assert_eq!((f["type"].as_u64(), f["code"].as_u64()), (Some(8), Some(0)));
        assert_eq!(
            (f["ident"].as_u64(), f["seq"].as_u64()),
            (Some(4660), Some(2))
        );
        assert_eq!(f["icmp_checksum_ok"], true);
        let udp = build(Ipv4Builder::new(LO, LO).udp(40000, 53, b"abc"));
        let f = fields(&udp);
        assert_eq!(
            (f["sport"].as_u64(), f["dport"].as_u64()),
            (Some(40000), Some(53))
        );
        assert_eq!(f["udp_len"], 11);
        assert_eq!(f["payload_len"], 3);
        assert_eq!(f["udp_checksum"], "ok");
    }

    #[test]
    fn errors_carry_their_quote_and_garbage_an_error() {
        let probe = build(Ipv4Builder::new(LO, LO).ttl(3).udp(40000, 33434, b"probe"));
        let unreach = build(Ipv4Builder::new(LO, LO).icmp(&IcmpRepr::DstUnreachable {
            code: DstUnreachable::PortUnreachable,
            next_hop_mtu: 0,
            body: ErrorBody::quote(&probe),
        }));
        let f = fields(&unreach);
        assert_eq!((f["type"].as_u64(), f["code"].as_u64()), (Some(3), Some(3)));
        assert_eq!(f["quote"]["dport"], 33434);
        assert_eq!(f["quote"]["ttl"], 3);
        assert_eq!(f["quote"]["proto"], 17);
        assert!(fields(&unreach[..12])["error"].is_string());
        let short = fields(&unreach[..24]);
        assert_eq!(short["src"], "127.0.0.1");
        assert!(short["error"].as_str().unwrap().contains("truncated"));
        for len in 0..unreach.len() {
            let _ = fields(&unreach[..len]);
        }
    }

    #[test]
    fn records_of_every_link_type_give_the_same_summary() {
        let d = build(Ipv4Builder::new(LO, LO).udp(1, 2, b"hello"));
        let ts = SystemTime::UNIX_EPOCH;
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[8, 0]);
        eth.extend_from_slice(&d);
        eth.extend_from_slice(&[0; 10]);
        let records = [
            (LinkType::Ethernet, eth),
            (LinkType::RawIpv4, d.clone()),
            (LinkType::Ipv4, d.clone()),
        ];
        for (link, data) in records {
            let r = PcapRecord {
                ts,
                orig_len: data.len(),
                data,
                link,
            };
            let p = Packet::record(&r);
            assert_eq!(p.ip, Some(&d[..]), "{link:?}");
            assert_eq!(p.summary(), "IP 127.0.0.1.1 > 127.0.0.1.2: UDP, length 5");
        }
        let arp = PcapRecord {
            ts,
            data: [&[0xff; 12][..], &[8, 6], &[0; 28]].concat(),
            orig_len: 60,
            link: LinkType::Ethernet,
        };
        assert_eq!(
            Packet::record(&arp).summary(),
            "ethertype 0x0806 (ARP), length 60"
        );
    }
}
