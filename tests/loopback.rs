//! Tier 3: rawkit's own bytes on the wire. Each test runs in a private network namespace, sends
//! datagrams built by rawkit's builder through the `IP_HDRINCL` sender, captures them on `lo` and
//! checks them with independent parsers (etherparse and pnet_packet), never with rawkit's.

mod common;

use etherparse::{Icmpv4Type, IpNumber, Ipv4Slice};
use pnet_packet::Packet as _;
use rawkit::net::socket::HdrInclSender;
use rawkit::packet::builder::{Ipv4Builder, UdpChecksum};
use rawkit::packet::fragment::fragment;
use rawkit::packet::icmp::IcmpRepr;
use rawkit::packet::ipv4::{Ipv4Option, emit_options};
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const WAIT: Duration = Duration::from_secs(3);

fn build(b: Ipv4Builder<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 65_535];
    let n = b.emit(&mut buf).expect("builder");
    buf.truncate(n);
    buf
}

/// Reads one counter of the `Udp:` line of this thread's namespace's /proc/net/snmp.
fn udp_counter(name: &str) -> u64 {
    // /proc/self/net would be the main thread's (host) namespace: use the thread's own.
    let text = std::fs::read_to_string("/proc/thread-self/net/snmp").expect("snmp");
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == name)
        .expect("counter");
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

#[test]
fn echo_request_on_the_wire_has_every_field_as_built_and_the_kernel_answers() {
    if !common::enter_netns(
        "echo_request_on_the_wire_has_every_field_as_built_and_the_kernel_answers",
    ) {
        return;
    }
    let sniffer = common::Sniffer::start("lo");
    let data: Vec<u8> = (0..56u8).collect();
    let mut opts = [0u8; 4];
    let olen = emit_options(&[Ipv4Option::RouterAlert(0)], &mut opts).unwrap();
    let datagram = build(
        Ipv4Builder::new(LO, LO)
            .ttl(33)
            .dscp(46)
            .ecn(1)
            .ident(0x4242)
            .dont_frag(true)
            .options(&opts[..olen])
            .icmp(&IcmpRepr::EchoRequest {
                ident: 0xbeef,
                seq_no: 7,
                data: &data,
            }),
    );
    let sender = HdrInclSender::open().expect("IP_HDRINCL sender");
    assert_eq!(sender.send_to(&datagram, LO).unwrap(), datagram.len());

    let is_reply = |d: &Vec<u8>| {
        Ipv4Slice::from_slice(d).is_ok_and(|ip| {
            etherparse::Icmpv4Slice::from_slice(ip.payload().payload)
                .is_ok_and(|i| matches!(i.icmp_type(), Icmpv4Type::EchoReply(e) if e.id == 0xbeef && e.seq == 7))
        })
    };
    assert!(
        sniffer.wait_for(|ds| ds.iter().any(is_reply), WAIT),
        "no echo reply from the kernel"
    );
    let (seen, _) = sniffer.stop();
    let requests: Vec<_> = seen
        .iter()
        .filter(|s| s.datagram.get(20 + 4) == Some(&8))
        .collect();
    assert_eq!(requests.len(), 1, "the request is captured exactly once");
    let wire = &requests[0].datagram;
    // The kernel keeps what rawkit built, byte for byte (it rewrites only length, checksum,
    // and a zero ident or source, none of which apply here).
    assert_eq!(wire, &datagram);

    // etherparse's reading of the wire bytes.
    let ip = Ipv4Slice::from_slice(wire).expect("etherparse parses the request");
    let h = ip.header();
    assert_eq!(h.version(), 4);
    assert_eq!(h.ihl(), 6);
    assert_eq!(h.dcp().value(), 46);
    assert_eq!(h.ecn().value(), 1);
    assert_eq!(h.total_len() as usize, 20 + 4 + 8 + 56);
    assert_eq!(h.identification(), 0x4242);
    assert!(h.dont_fragment() && !h.more_fragments());
    assert_eq!(h.fragments_offset().value(), 0);
    assert_eq!(h.ttl(), 33);
    assert_eq!(h.protocol(), IpNumber::ICMP);
    assert_eq!(h.source_addr(), LO);
    assert_eq!(h.destination_addr(), LO);
    assert_eq!(h.options(), &[0x94, 0x04, 0x00, 0x00]);
    let hdr = h.to_header();
    assert_eq!(
        hdr.calc_header_checksum(),
        hdr.header_checksum,
        "IPv4 checksum"
    );
    let icmp = etherparse::Icmpv4Slice::from_slice(ip.payload().payload).unwrap();
    match icmp.icmp_type() {
        Icmpv4Type::EchoRequest(e) => assert_eq!((e.id, e.seq), (0xbeef, 7)),
        t => panic!("not an echo request: {t:?}"),
    }
    assert_eq!(icmp.payload(), &data[..]);
    assert_eq!(
        icmp.header().icmp_type.calc_checksum(icmp.payload()),
        icmp.checksum(),
        "ICMP checksum"
    );

    // pnet's reading of the same bytes.
    let p = pnet_packet::ipv4::Ipv4Packet::new(wire).unwrap();
    assert_eq!(p.get_checksum(), pnet_packet::ipv4::checksum(&p));
    assert_eq!(p.get_dscp(), 46);
    assert_eq!(p.get_ecn(), 1);
    assert_eq!(p.get_flags(), 0b010);
    let e = pnet_packet::icmp::echo_request::EchoRequestPacket::new(p.payload()).unwrap();
    assert_eq!(e.get_identifier(), 0xbeef);
    assert_eq!(e.get_sequence_number(), 7);
    let i = pnet_packet::icmp::IcmpPacket::new(p.payload()).unwrap();
    assert_eq!(i.get_checksum(), pnet_packet::icmp::checksum(&i));
}

#[test]
fn udp_datagram_with_good_checksum_is_delivered_and_bad_one_is_dropped() {
    if !common::enter_netns("udp_datagram_with_good_checksum_is_delivered_and_bad_one_is_dropped") {
        return;
    }
    let sock = UdpSocket::bind((LO, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let sniffer = common::Sniffer::start("lo");
    let sender = HdrInclSender::open().expect("IP_HDRINCL sender");

    let good = build(Ipv4Builder::new(LO, LO).ident(1).ttl(5).udp(
        40_000,
        port,
        b"rawkit says hello",
    ));
    sender.send_to(&good, LO).unwrap();
    let mut buf = [0u8; 100];
    let (n, from) = sock.recv_from(&mut buf).expect("the good datagram arrives");
    assert_eq!(&buf[..n], b"rawkit says hello");
    assert_eq!(from.port(), 40_000);

    let errors_before = udp_counter("InCsumErrors");
    let bad = build(
        Ipv4Builder::new(LO, LO)
            .ident(2)
            .udp(40_000, port, b"corrupt")
            .udp_checksum(UdpChecksum::Bad),
    );
    sender.send_to(&bad, LO).unwrap();
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "a datagram with a wrong checksum must not be delivered"
    );
    assert!(common::wait_for(
        || udp_counter("InCsumErrors") == errors_before + 1,
        WAIT
    ));

    let (seen, _) = sniffer.stop();
    let udp: Vec<_> = seen
        .iter()
        .filter(|s| s.datagram.get(9) == Some(&17))
        .collect();
    assert_eq!(udp.len(), 2);
    for (s, want_ok) in udp.iter().zip([true, false]) {
        let ip = pnet_packet::ipv4::Ipv4Packet::new(&s.datagram).unwrap();
        let u = pnet_packet::udp::UdpPacket::new(ip.payload()).unwrap();
        assert_eq!(u.get_source(), 40_000);
        assert_eq!(u.get_destination(), port);
        assert_eq!(u.get_length() as usize, ip.payload().len());
        let ok = u.get_checksum() == pnet_packet::udp::ipv4_checksum(&u, &LO, &LO);
        assert_eq!(ok, want_ok, "pnet's verdict on the UDP checksum");
        let e = etherparse::SlicedPacket::from_ip(&s.datagram).unwrap();
        match e.transport {
            Some(etherparse::TransportSlice::Udp(u)) => {
                let calc = u
                    .to_header()
                    .calc_checksum_ipv4_raw(LO.octets(), LO.octets(), u.payload())
                    .unwrap();
                assert_eq!(calc == u.checksum(), want_ok, "etherparse's verdict");
            }
            other => panic!("etherparse: not UDP: {other:?}"),
        }
    }
}

#[test]
fn rawkit_fragments_are_reassembled_by_the_kernel_in_any_order() {
    if !common::enter_netns("rawkit_fragments_are_reassembled_by_the_kernel_in_any_order") {
        return;
    }
    let sock = UdpSocket::bind((LO, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let sender = HdrInclSender::open().expect("IP_HDRINCL sender");
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    for (round, ident) in [(0, 0x1001u16), (1, 0x1002)] {
        // A non-zero identification, or the receiver cannot tell datagrams apart.
        let datagram = build(
            Ipv4Builder::new(LO, LO)
                .ident(ident)
                .udp(5000, port, &payload),
        );
        let mut frags = fragment(&datagram, 1000).unwrap();
        assert_eq!(frags.len(), 4);
        if round == 1 {
            frags.reverse();
        }
        for f in &frags {
            // etherparse agrees on each fragment's offset and MF bit.
            let ip = Ipv4Slice::from_slice(f).unwrap();
            assert_eq!(ip.header().identification(), ident);
            assert!(ip.is_payload_fragmented());
            sender.send_to(f, LO).unwrap();
        }
        let mut buf = vec![0u8; 4000];
        let (n, _) = sock.recv_from(&mut buf).expect("reassembled datagram");
        assert_eq!(&buf[..n], &payload[..], "round {round}");
    }
}
