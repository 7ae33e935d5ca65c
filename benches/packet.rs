//! Packet codec benchmarks: rawkit beside etherparse and pnet_packet doing the same work, in the
//! same run, so that the ratios can be read off one report.
//!
//! Groups:
//! * `parse_echo_reply`: an 84-byte IPv4 + ICMP echo reply; read every header field, verify
//!   both checksums.
//! * `parse_time_exceeded`: a time exceeded quoting an IPv4 + UDP header; verify both checksums,
//!   read the quoted addresses and ports.
//! * `emit_echo_request`: IPv4 + ICMP echo request with 56 bytes of data into a buffer allocated
//!   beforehand, lengths and checksums filled.
//! * `checksum`: the RFC 1071 sum over 64, 1500 and 65535 bytes: rawkit's word-at-a-time sum,
//!   its byte-pair reference loop, pnet's and etherparse's.
//!
//! Run: `cargo bench --bench packet -- --warm-up-time 1 --measurement-time 2`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::{Icmpv4Slice, Icmpv4Type, Ipv4HeaderSlice, PacketBuilder, UdpHeaderSlice};
use pnet_packet::Packet as _;
use rawkit::packet::builder::Ipv4Builder;
use rawkit::packet::checksum;
use rawkit::packet::icmp::{ErrorBody, IcmpPacket, IcmpRepr, QuotedTransport, TimeExceeded};
use rawkit::packet::ipv4::Ipv4Packet;
use std::hint::black_box;
use std::net::Ipv4Addr;

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const DATA: [u8; 56] = {
    let mut d = [0u8; 56];
    let mut i = 0;
    while i < 56 {
        d[i] = i as u8;
        i += 1;
    }
    d
};

fn echo_reply() -> Vec<u8> {
    let mut buf = vec![0u8; 84];
    let n = Ipv4Builder::new(DST, SRC)
        .ttl(63)
        .ident(0x9e01)
        .icmp(&IcmpRepr::EchoReply {
            ident: 0x0d21,
            seq_no: 7,
            data: &DATA,
        })
        .emit(&mut buf)
        .expect("echo reply");
    assert_eq!(n, 84);
    buf
}

fn time_exceeded() -> Vec<u8> {
    let mut probe = [0u8; 60];
    let n = Ipv4Builder::new(SRC, DST)
        .ttl(1)
        .ident(0x4242)
        .udp(43210, 33435, &[0x40; 32])
        .emit(&mut probe)
        .expect("probe");
    assert_eq!(n, 60);
    let mut buf = vec![0u8; 20 + 8 + 28];
    Ipv4Builder::new(ROUTER, SRC)
        .ttl(254)
        .icmp(&IcmpRepr::TimeExceeded {
            code: TimeExceeded::TtlExpired,
            body: ErrorBody::quote(&probe[..28]),
        })
        .emit(&mut buf)
        .expect("time exceeded");
    buf
}

/// Every IPv4 header field and both checksums, as rawkit reads them.
#[inline(never)]
fn rawkit_parse_echo_reply(bytes: &[u8]) -> Option<u64> {
    let ip = Ipv4Packet::new_checked(bytes).ok()?;
    if ip.version() != 4 || !ip.verify_checksum() {
        return None;
    }
    let fields = ip.header_len() as u64
        + ip.dscp() as u64
        + ip.ecn() as u64
        + ip.total_len() as u64
        + ip.ident() as u64
        + ip.dont_frag() as u64
        + ip.more_frags() as u64
        + ip.frag_offset() as u64
        + ip.ttl() as u64
        + u8::from(ip.protocol()) as u64
        + u32::from(ip.src_addr()) as u64
        + u32::from(ip.dst_addr()) as u64;
    let icmp = IcmpPacket::new_checked(ip.payload()).ok()?;
    match IcmpRepr::parse(&icmp, true).ok()? {
        IcmpRepr::EchoReply {
            ident,
            seq_no,
            data,
        } => Some(fields + ident as u64 + seq_no as u64 + data.len() as u64),
        _ => None,
    }
}

#[inline(never)]
fn etherparse_parse_echo_reply(bytes: &[u8]) -> Option<u64> {
    let ip = etherparse::Ipv4Slice::from_slice(bytes).ok()?;
    let h = ip.header();
    if etherparse::checksum::Sum16BitWords::new()
        .add_slice(h.slice())
        .ones_complement()
        != 0
    {
        return None;
    }
    let fields = h.ihl() as u64 * 4
        + h.dcp().value() as u64
        + h.ecn().value() as u64
        + h.total_len() as u64
        + h.identification() as u64
        + h.dont_fragment() as u64
        + h.more_fragments() as u64
        + h.fragments_offset().value() as u64
        + h.ttl() as u64
        + h.protocol().0 as u64
        + u32::from(h.source_addr()) as u64
        + u32::from(h.destination_addr()) as u64;
    let icmp = Icmpv4Slice::from_slice(ip.payload().payload).ok()?;
    let t = icmp.icmp_type();
    if t.calc_checksum(icmp.payload()) != icmp.checksum() {
        return None;
    }
    match t {
        Icmpv4Type::EchoReply(e) => {
            Some(fields + e.id as u64 + e.seq as u64 + icmp.payload().len() as u64)
        }
        _ => None,
    }
}

#[inline(never)]
fn pnet_parse_echo_reply(bytes: &[u8]) -> Option<u64> {
    use pnet_packet::icmp::{IcmpPacket, IcmpTypes, echo_reply::EchoReplyPacket};
    use pnet_packet::ipv4::Ipv4Packet;
    let ip = Ipv4Packet::new(bytes)?;
    if ip.get_version() != 4 || pnet_packet::ipv4::checksum(&ip) != ip.get_checksum() {
        return None;
    }
    let fields = ip.get_header_length() as u64 * 4
        + ip.get_dscp() as u64
        + ip.get_ecn() as u64
        + ip.get_total_length() as u64
        + ip.get_identification() as u64
        + ip.get_flags() as u64
        + ip.get_fragment_offset() as u64
        + ip.get_ttl() as u64
        + ip.get_next_level_protocol().0 as u64
        + u32::from(ip.get_source()) as u64
        + u32::from(ip.get_destination()) as u64;
    let icmp = IcmpPacket::new(ip.payload())?;
    if icmp.get_icmp_type() != IcmpTypes::EchoReply
        || pnet_packet::icmp::checksum(&icmp) != icmp.get_checksum()
    {
        return None;
    }
    let e = EchoReplyPacket::new(ip.payload())?;
    Some(
        fields
            + e.get_identifier() as u64
            + e.get_sequence_number() as u64
            + e.payload().len() as u64,
    )
}

#[inline(never)]
fn rawkit_parse_time_exceeded(bytes: &[u8]) -> Option<(Ipv4Addr, u16, u16)> {
    let ip = Ipv4Packet::new_checked(bytes).ok()?;
    if !ip.verify_checksum() {
        return None;
    }
    let icmp = IcmpPacket::new_checked(ip.payload()).ok()?;
    if !icmp.verify_checksum() || icmp.msg_code() != 0 {
        return None;
    }
    let q = icmp.quote_info()?;
    match q.transport {
        QuotedTransport::Ports {
            src_port, dst_port, ..
        } => Some((q.dst_addr, src_port, dst_port)),
        _ => None,
    }
}

#[inline(never)]
fn etherparse_parse_time_exceeded(bytes: &[u8]) -> Option<(Ipv4Addr, u16, u16)> {
    let ip = etherparse::Ipv4Slice::from_slice(bytes).ok()?;
    if etherparse::checksum::Sum16BitWords::new()
        .add_slice(ip.header().slice())
        .ones_complement()
        != 0
    {
        return None;
    }
    let icmp = Icmpv4Slice::from_slice(ip.payload().payload).ok()?;
    let t = icmp.icmp_type();
    if t.calc_checksum(icmp.payload()) != icmp.checksum() {
        return None;
    }
    let Icmpv4Type::TimeExceeded(_) = t else {
        return None;
    };
    let quoted = Ipv4HeaderSlice::from_slice(icmp.payload()).ok()?;
    let udp = UdpHeaderSlice::from_slice(&icmp.payload()[quoted.slice().len()..]).ok()?;
    Some((
        quoted.destination_addr(),
        udp.source_port(),
        udp.destination_port(),
    ))
}

#[inline(never)]
fn pnet_parse_time_exceeded(bytes: &[u8]) -> Option<(Ipv4Addr, u16, u16)> {
    use pnet_packet::icmp::{IcmpPacket, IcmpTypes, time_exceeded::TimeExceededPacket};
    use pnet_packet::ipv4::Ipv4Packet;
    use pnet_packet::udp::UdpPacket;
    let ip = Ipv4Packet::new(bytes)?;
    if pnet_packet::ipv4::checksum(&ip) != ip.get_checksum() {
        return None;
    }
    let icmp = IcmpPacket::new(ip.payload())?;
    if icmp.get_icmp_type() != IcmpTypes::TimeExceeded
        || pnet_packet::icmp::checksum(&icmp) != icmp.get_checksum()
    {
        return None;
    }
    let te = TimeExceededPacket::new(ip.payload())?;
    let quoted = Ipv4Packet::new(te.payload())?;
    let udp = UdpPacket::new(quoted.payload())?;
    Some((
        quoted.get_destination(),
        udp.get_source(),
        udp.get_destination(),
    ))
}

#[inline(never)]
fn rawkit_emit_echo_request(buf: &mut [u8], seq_no: u16) -> usize {
    Ipv4Builder::new(SRC, DST)
        .ttl(64)
        .ident(0x1c46)
        .dont_frag(true)
        .icmp(&IcmpRepr::EchoRequest {
            ident: 0x0d21,
            seq_no,
            data: &DATA,
        })
        .emit(buf)
        .unwrap_or(0)
}

#[inline(never)]
fn etherparse_emit_echo_request(buf: &mut Vec<u8>, seq_no: u16) -> usize {
    buf.clear();
    let mut ip = etherparse::Ipv4Header::new(
        0,
        64,
        etherparse::IpNumber::ICMP,
        SRC.octets(),
        DST.octets(),
    )
    .expect("header");
    ip.identification = 0x1c46;
    PacketBuilder::ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .icmpv4_echo_request(0x0d21, seq_no)
        .write(buf, &DATA)
        .map_or(0, |()| buf.len())
}

#[inline(never)]
fn pnet_emit_echo_request(buf: &mut [u8], seq_no: u16) -> usize {
    use pnet_packet::icmp::{
        IcmpCode, IcmpPacket, IcmpTypes, echo_request::MutableEchoRequestPacket,
    };
    use pnet_packet::ip::IpNextHeaderProtocols;
    use pnet_packet::ipv4::MutableIpv4Packet;
    let total = 20 + 8 + DATA.len();
    let buf = &mut buf[..total];
    {
        let mut icmp = MutableEchoRequestPacket::new(&mut buf[20..]).expect("icmp");
        icmp.set_icmp_type(IcmpTypes::EchoRequest);
        icmp.set_icmp_code(IcmpCode(0));
        icmp.set_identifier(0x0d21);
        icmp.set_sequence_number(seq_no);
        icmp.set_payload(&DATA);
        icmp.set_checksum(0);
        let c = pnet_packet::icmp::checksum(&IcmpPacket::new(icmp.packet()).expect("icmp"));
        icmp.set_checksum(c);
    }
    let mut ip = MutableIpv4Packet::new(buf).expect("ipv4");
    ip.set_version(4);
    ip.set_header_length(5);
    ip.set_dscp(0);
    ip.set_ecn(0);
    ip.set_total_length(total as u16);
    ip.set_identification(0x1c46);
    ip.set_flags(0b010);
    ip.set_fragment_offset(0);
    ip.set_ttl(64);
    ip.set_next_level_protocol(IpNextHeaderProtocols::Icmp);
    ip.set_source(SRC);
    ip.set_destination(DST);
    ip.set_checksum(0);
    let c = pnet_packet::ipv4::checksum(&ip.to_immutable());
    ip.set_checksum(c);
    total
}

fn parse(c: &mut Criterion) {
    let reply = echo_reply();
    let expect = rawkit_parse_echo_reply(&reply);
    assert!(expect.is_some());
    assert_eq!(etherparse_parse_echo_reply(&reply), expect);
    // pnet reads the three flags as one number (DF = 2) where the others read DF as 1: both 0.
    assert_eq!(pnet_parse_echo_reply(&reply), expect);
    let mut g = c.benchmark_group("parse_echo_reply");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rawkit", |b| {
        b.iter(|| rawkit_parse_echo_reply(black_box(&reply)))
    });
    g.bench_function("etherparse", |b| {
        b.iter(|| etherparse_parse_echo_reply(black_box(&reply)))
    });
    g.bench_function("pnet", |b| {
        b.iter(|| pnet_parse_echo_reply(black_box(&reply)))
    });
    g.finish();

    let te = time_exceeded();
    let expect = Some((DST, 43210, 33435));
    assert_eq!(rawkit_parse_time_exceeded(&te), expect);
    assert_eq!(etherparse_parse_time_exceeded(&te), expect);
    assert_eq!(pnet_parse_time_exceeded(&te), expect);
    let mut g = c.benchmark_group("parse_time_exceeded");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rawkit", |b| {
        b.iter(|| rawkit_parse_time_exceeded(black_box(&te)))
    });
    g.bench_function("etherparse", |b| {
        b.iter(|| etherparse_parse_time_exceeded(black_box(&te)))
    });
    g.bench_function("pnet", |b| {
        b.iter(|| pnet_parse_time_exceeded(black_box(&te)))
    });
    g.finish();
}

fn emit(c: &mut Criterion) {
    // All three write the same 84 bytes.
    let mut a = [0u8; 128];
    let mut b = Vec::with_capacity(128);
    let mut p = [0u8; 128];
    let n = rawkit_emit_echo_request(&mut a, 9);
    assert_eq!(n, 84);
    assert_eq!(etherparse_emit_echo_request(&mut b, 9), 84);
    assert_eq!(pnet_emit_echo_request(&mut p, 9), 84);
    assert_eq!(&a[..n], &b[..]);
    assert_eq!(&a[..n], &p[..n]);

    let mut g = c.benchmark_group("emit_echo_request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rawkit", |bn| {
        bn.iter(|| rawkit_emit_echo_request(black_box(&mut a), black_box(9)))
    });
    g.bench_function("etherparse", |bn| {
        bn.iter(|| etherparse_emit_echo_request(black_box(&mut b), black_box(9)))
    });
    g.bench_function("pnet", |bn| {
        bn.iter(|| pnet_emit_echo_request(black_box(&mut p), black_box(9)))
    });
    g.finish();
}

fn checksums(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for len in [64usize, 1500, 65535] {
        let data: Vec<u8> = (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let want = checksum::checksum(&data);
        assert_eq!(!checksum::sum_reference(&data), want);
        assert_eq!(pnet_packet::util::checksum(&data, usize::MAX), want);
        assert_eq!(
            etherparse::checksum::Sum16BitWords::new()
                .add_slice(&data)
                .ones_complement()
                .to_be(),
            want
        );
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("rawkit/{len}"), |b| {
            b.iter(|| checksum::checksum(black_box(&data)))
        });
        g.bench_function(format!("byte_pair_reference/{len}"), |b| {
            b.iter(|| !checksum::sum_reference(black_box(&data)))
        });
        g.bench_function(format!("pnet/{len}"), |b| {
            b.iter(|| pnet_packet::util::checksum(black_box(&data), usize::MAX))
        });
        g.bench_function(format!("etherparse/{len}"), |b| {
            b.iter(|| {
                etherparse::checksum::Sum16BitWords::new()
                    .add_slice(black_box(&data))
                    .ones_complement()
                    .to_be()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse, emit, checksums);
criterion_main!(benches);
