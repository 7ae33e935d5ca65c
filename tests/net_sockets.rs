//! Tier 3: the socket layer against the real kernel, each test in a network namespace of its
//! own (see `common::enter_netns`). Packets are built and parsed with etherparse, an encoder
//! independent of rawkit's own, and sent only to 127.0.0.0/8.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{
    IcmpEchoHeader, Icmpv4Header, Icmpv4Slice, Icmpv4Type, IpNumber, Ipv4Header, Ipv4Slice,
    NetSlice, PacketBuilder, SlicedPacket, TransportSlice, UdpSlice,
};
use rawkit::net::capture::{Capture, CaptureOptions, LinkType, PacketType};
use rawkit::net::{
    BpfProgram, DgramIcmpSocket, ErrorOrigin, HdrInclSender, Incoming, NetError, PmtuMode,
    RawIcmpSocket, Received, privilege,
};

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// How long a test waits for something that should take microseconds on `lo`.
const PATIENCE: Duration = Duration::from_secs(2);
/// How long a test listens to be sure nothing more arrives.
const QUIET: Duration = Duration::from_millis(300);

// ---- packets, built with etherparse -------------------------------------------------------

fn echo_request_datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let builder =
        PacketBuilder::ipv4(src.octets(), dst.octets(), 64).icmpv4_echo_request(ident, seq);
    let mut out = Vec::with_capacity(builder.size(data.len()));
    builder
        .write(&mut out, data)
        .expect("etherparse writes an echo request");
    out
}

fn echo_request_message(ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let header = Icmpv4Header::with_checksum(
        Icmpv4Type::EchoRequest(IcmpEchoHeader { id: ident, seq }),
        data,
    );
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

fn udp_datagram(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), data: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64).udp(src.1, dst.1);
    let mut out = Vec::with_capacity(builder.size(data.len()));
    builder
        .write(&mut out, data)
        .expect("etherparse writes a UDP datagram");
    out
}

/// A host-unreachable error from `from` to `to`, quoting `quoted` whole.
fn host_unreachable(from: Ipv4Addr, to: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ipv4(from.octets(), to.octets(), 64).icmpv4(
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Host),
    );
    let mut out = Vec::with_capacity(builder.size(quoted.len()));
    builder
        .write(&mut out, quoted)
        .expect("etherparse writes an ICMP error");
    out
}

/// The IPv4 header and ICMP message of a datagram, parsed by etherparse.
fn parse_icmp(datagram: &[u8]) -> Option<(Ipv4Header, Icmpv4Slice<'_>)> {
    let packet = SlicedPacket::from_ip(datagram).ok()?;
    let Some(NetSlice::Ipv4(ip)) = &packet.net else {
        return None;
    };
    let header = ip.header().to_header();
    match packet.transport {
        Some(TransportSlice::Icmpv4(icmp)) => Some((header, icmp)),
        _ => None,
    }
}

fn echo_of(icmp: &Icmpv4Slice<'_>) -> Option<(bool, IcmpEchoHeader)> {
    match icmp.icmp_type() {
        Icmpv4Type::EchoRequest(echo) => Some((true, echo)),
        Icmpv4Type::EchoReply(echo) => Some((false, echo)),
        _ => None,
    }
}

/// Reads from a raw ICMP socket until `window` has passed; returns everything read.
fn collect_raw(sock: &RawIcmpSocket, window: Duration) -> Vec<(Received, Vec<u8>)> {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    let deadline = Instant::now() + window;
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if let Some(r) = sock.recv(&mut buf).expect("recv") {
            out.push((r, buf[..r.len].to_vec()));
        }
    }
    out
}

// ---- HdrInclSender and Capture --------------------------------------------------------------

#[test]
fn hdrincl_echo_request_and_kernel_reply_are_each_captured_once() {
    if !common::enter_netns("hdrincl_echo_request_and_kernel_reply_are_each_captured_once") {
        return;
    }
    let sniffer = common::Sniffer::start("lo");
    let sender = HdrInclSender::open().expect("open IP_HDRINCL sender");
    let data = *b"rawkit tier 3: hello, loopback!!";
    let request = echo_request_datagram(LOCALHOST, LOCALHOST, 0x5151, 7, &data);
    let sent = sender.send_to(&request, LOCALHOST).expect("sendto");
    assert_eq!(sent, request.len());

    assert!(
        sniffer.wait_for(|d| d.len() >= 2, PATIENCE),
        "expected the request and the reply on lo"
    );
    std::thread::sleep(QUIET);
    let (sniffed, stats) = sniffer.stop();
    assert_eq!(sniffed.len(), 2, "each packet exactly once: {sniffed:?}");

    let (req_ip, req_icmp) = parse_icmp(&sniffed[0].datagram).expect("request parses");
    assert_eq!(req_ip.source, [127, 0, 0, 1]);
    assert_eq!(req_ip.destination, [127, 0, 0, 1]);
    assert_eq!(req_ip.time_to_live, 64);
    assert_eq!(req_ip.protocol, IpNumber::ICMP);
    assert_eq!(usize::from(req_ip.total_len), request.len());
    assert_eq!(
        sniffed[0].datagram, request,
        "sent as given (length and checksum were right)"
    );
    assert_eq!(
        echo_of(&req_icmp),
        Some((true, IcmpEchoHeader { id: 0x5151, seq: 7 }))
    );

    let (rep_ip, rep_icmp) = parse_icmp(&sniffed[1].datagram).expect("reply parses");
    assert_eq!(rep_ip.source, [127, 0, 0, 1]);
    assert_eq!(rep_ip.destination, [127, 0, 0, 1]);
    assert_eq!(
        echo_of(&rep_icmp),
        Some((false, IcmpEchoHeader { id: 0x5151, seq: 7 }))
    );
    assert_eq!(rep_icmp.payload(), &data);
    // The kernel computed a correct checksum for its reply.
    let expected = rep_icmp.icmp_type().calc_checksum(rep_icmp.payload());
    assert_eq!(rep_icmp.checksum(), expected);

    for s in &sniffed {
        assert_eq!(s.frame.pkttype, PacketType::Host);
        assert_eq!(s.frame.link_type, LinkType::Loopback);
        assert_eq!(s.frame.protocol, 0x0800);
        assert_eq!(s.frame.orig_len, 14 + s.datagram.len());
        assert!(s.frame.timestamp.is_some(), "kernel timestamp on capture");
    }
    let stats = stats.expect("statistics");
    assert_eq!(stats.packets, 2);
    assert_eq!(stats.drops, 0);
}

#[test]
fn capture_without_ignore_outgoing_sees_each_packet_twice_on_lo() {
    if !common::enter_netns("capture_without_ignore_outgoing_sees_each_packet_twice_on_lo") {
        return;
    }
    let opts = CaptureOptions {
        ignore_outgoing: false,
        ..CaptureOptions::default()
    };
    let sniffer = common::Sniffer::start_with("lo", opts);
    let sender = HdrInclSender::open().expect("open");
    let request = echo_request_datagram(LOCALHOST, LOCALHOST, 0x2222, 1, &[0xa5; 8]);
    sender.send_to(&request, LOCALHOST).expect("sendto");
    assert!(sniffer.wait_for(|d| d.len() >= 4, PATIENCE));
    std::thread::sleep(QUIET);
    let (sniffed, _) = sniffer.stop();
    let kinds: Vec<PacketType> = sniffed.iter().map(|s| s.frame.pkttype).collect();
    assert_eq!(
        kinds,
        [
            PacketType::Outgoing,
            PacketType::Host,
            PacketType::Outgoing,
            PacketType::Host
        ]
    );
    assert_eq!(sniffed[0].datagram, sniffed[1].datagram);
}

#[test]
fn capture_reports_the_real_length_of_a_truncated_frame() {
    if !common::enter_netns("capture_reports_the_real_length_of_a_truncated_frame") {
        return;
    }
    let opts = CaptureOptions {
        read_timeout: Some(Duration::from_millis(50)),
        ..CaptureOptions::default()
    };
    let mut capture = Capture::open("lo", opts).expect("capture");
    assert_eq!(capture.link_type(), LinkType::Loopback);
    let sender = HdrInclSender::open().expect("open");
    let request = echo_request_datagram(LOCALHOST, LOCALHOST, 0x3333, 1, &[0x5a; 200]);
    sender.send_to(&request, LOCALHOST).expect("sendto");
    let mut small = [0u8; 40];
    let deadline = Instant::now() + PATIENCE;
    let frame = loop {
        assert!(Instant::now() < deadline, "no frame");
        if let Some(f) = capture.next(&mut small).expect("next") {
            break f;
        }
    };
    assert_eq!(frame.len, 40);
    assert_eq!(frame.orig_len, 14 + request.len());
    assert!(frame.is_truncated());
    assert_eq!(frame.ip_payload(&small), Some(&request[..26]));
}

#[test]
fn capture_statistics_count_packets_as_running_totals() {
    if !common::enter_netns("capture_statistics_count_packets_as_running_totals") {
        return;
    }
    let opts = CaptureOptions {
        read_timeout: Some(Duration::from_millis(20)),
        ..CaptureOptions::default()
    };
    let mut capture = Capture::open("lo", opts).expect("capture");
    let sender = HdrInclSender::open().expect("open");
    const PINGS: u16 = 5;
    for seq in 0..PINGS {
        let request = echo_request_datagram(LOCALHOST, LOCALHOST, 0x4444, seq, &[1; 16]);
        sender.send_to(&request, LOCALHOST).expect("sendto");
    }
    let mut buf = [0u8; 2048];
    let mut frames = 0u64;
    let deadline = Instant::now() + PATIENCE;
    while frames < u64::from(PINGS) * 2 && Instant::now() < deadline {
        if capture.next(&mut buf).expect("next").is_some() {
            frames += 1;
        }
    }
    assert_eq!(frames, u64::from(PINGS) * 2, "requests and replies");
    let first = capture.statistics().expect("statistics");
    assert_eq!(first.packets, frames);
    assert_eq!(first.drops, 0);
    // The kernel zeroes its counters on each read; the totals must not go back.
    let again = capture.statistics().expect("statistics");
    assert_eq!(again, first);
    let request = echo_request_datagram(LOCALHOST, LOCALHOST, 0x4444, 99, &[1; 16]);
    sender.send_to(&request, LOCALHOST).expect("sendto");
    assert!(common::wait_for(
        || capture.statistics().is_ok_and(|s| s.packets == frames + 2),
        PATIENCE
    ));
    assert_eq!(capture.drain().expect("drain"), 2);
}

#[test]
fn capture_on_an_unknown_interface_names_it() {
    if !common::enter_netns("capture_on_an_unknown_interface_names_it") {
        return;
    }
    let err = Capture::open("nosuch0", CaptureOptions::default()).expect_err("no such interface");
    assert!(
        matches!(&err, NetError::NoSuchInterface { name: Some(n), .. } if n == "nosuch0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no such interface: nosuch0 (list the interfaces with `ip link`)"
    );
    let sock = RawIcmpSocket::open().expect("open");
    let err = sock.bind_device("nosuch0").expect_err("no such interface");
    assert!(matches!(err, NetError::NoSuchInterface { .. }), "{err:?}");
    sock.bind_device("lo").expect("lo exists");
}

#[test]
fn hdrincl_udp_datagram_reaches_a_udp_socket_and_a_bad_checksum_does_not() {
    if !common::enter_netns("hdrincl_udp_datagram_reaches_a_udp_socket_and_a_bad_checksum_does_not")
    {
        return;
    }
    let receiver = UdpSocket::bind((LOCALHOST, 0)).expect("bind UDP");
    receiver.set_read_timeout(Some(QUIET)).expect("timeout");
    let port = receiver.local_addr().expect("addr").port();
    let sender = HdrInclSender::open().expect("open");

    let mut bad = udp_datagram((LOCALHOST, 40000), (LOCALHOST, port), b"corrupted");
    bad[26] ^= 0xff; // the UDP checksum
    sender.send_to(&bad, LOCALHOST).expect("sendto");
    let mut buf = [0u8; 1500];
    assert!(
        receiver.recv_from(&mut buf).is_err(),
        "a datagram with a wrong UDP checksum must be dropped"
    );

    let good = udp_datagram((LOCALHOST, 40001), (LOCALHOST, port), b"hello from rawkit");
    assert_eq!(
        UdpSlice::from_slice(&good[20..]).expect("udp").length(),
        8 + 17
    );
    sender.send_to(&good, LOCALHOST).expect("sendto");
    receiver.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let (n, from) = receiver.recv_from(&mut buf).expect("the datagram arrives");
    assert_eq!(&buf[..n], b"hello from rawkit");
    assert_eq!(from, (LOCALHOST, 40001).into());
}

#[test]
fn hdrincl_datagram_over_the_mtu_is_refused_with_emsgsize() {
    if !common::enter_netns("hdrincl_datagram_over_the_mtu_is_refused_with_emsgsize") {
        return;
    }
    common::set_mtu("lo", 1500).expect("set lo mtu");
    let sender = HdrInclSender::open().expect("open");
    let data = vec![0u8; 2000 - 28];
    let datagram = udp_datagram((LOCALHOST, 9), (LOCALHOST, 9), &data);
    assert_eq!(datagram.len(), 2000);
    assert!(
        Ipv4Slice::from_slice(&datagram)
            .expect("ipv4")
            .header()
            .dont_fragment()
    );
    let err = sender
        .send_to(&datagram, LOCALHOST)
        .expect_err("over the MTU");
    assert!(
        matches!(
            err,
            NetError::MessageTooLong {
                len: Some(2000),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE));
    assert!(
        err.to_string()
            .starts_with("datagram of 2000 bytes exceeds the MTU")
    );
    // Without DF too: the kernel never fragments what it did not build (it rewrites the
    // header checksum, so clearing the flag needs no checksum update).
    let mut no_df = datagram.clone();
    no_df[6] &= !0x40;
    let err = sender.send_to(&no_df, LOCALHOST).expect_err("over the MTU");
    assert!(matches!(err, NetError::MessageTooLong { .. }), "{err:?}");
    // Exactly the MTU goes.
    let fits = udp_datagram((LOCALHOST, 9), (LOCALHOST, 9), &data[..1500 - 28]);
    assert_eq!(sender.send_to(&fits, LOCALHOST).expect("fits"), 1500);
}

// ---- RawIcmpSocket and the BPF filter -------------------------------------------------------

#[test]
fn raw_icmp_socket_receives_the_kernel_reply_with_a_kernel_timestamp() {
    if !common::enter_netns("raw_icmp_socket_receives_the_kernel_reply_with_a_kernel_timestamp") {
        return;
    }
    let sock = RawIcmpSocket::open().expect("open raw ICMP socket");
    sock.attach_filter(&BpfProgram::icmp_echo_reply_ident(0x6161))
        .expect("attach");
    sock.drain().expect("drain");
    let before = SystemTime::now();
    let message = echo_request_message(0x6161, 42, b"timestamped");
    assert_eq!(
        sock.send_to(&message, LOCALHOST).expect("send"),
        message.len()
    );
    let got = collect_raw(&sock, QUIET.max(Duration::from_millis(500)));
    let after = SystemTime::now();
    assert_eq!(got.len(), 1, "only our reply passes the filter: {got:?}");
    let (received, bytes) = &got[0];
    assert_eq!(received.from, LOCALHOST);
    assert!(!received.truncated);
    assert_eq!(received.ttl, None);
    let stamp = received.kernel_time.expect("SO_TIMESTAMPNS");
    assert!(
        stamp >= before && stamp <= after,
        "{stamp:?} not in [{before:?}, {after:?}]"
    );
    let (ip, icmp) = parse_icmp(bytes).expect("IPv4 header then ICMP");
    assert_eq!(ip.source, [127, 0, 0, 1]);
    assert_eq!(
        echo_of(&icmp),
        Some((
            false,
            IcmpEchoHeader {
                id: 0x6161,
                seq: 42
            }
        ))
    );
    assert_eq!(icmp.payload(), b"timestamped");
}

#[test]
fn raw_icmp_socket_without_filter_sees_every_icmp_packet() {
    if !common::enter_netns("raw_icmp_socket_without_filter_sees_every_icmp_packet") {
        return;
    }
    let sock = RawIcmpSocket::open().expect("open");
    let message = echo_request_message(0x7171, 1, b"x");
    sock.send_to(&message, LOCALHOST).expect("send");
    let got = collect_raw(&sock, QUIET);
    let echoes: Vec<_> = got
        .iter()
        .filter_map(|(_, b)| parse_icmp(b).and_then(|(_, i)| echo_of(&i)))
        .collect();
    // Our own request on lo, then the reply.
    assert_eq!(
        echoes,
        [
            (true, IcmpEchoHeader { id: 0x7171, seq: 1 }),
            (false, IcmpEchoHeader { id: 0x7171, seq: 1 })
        ]
    );
    // ICMP_FILTER by type: only replies now.
    sock.set_icmp_type_filter(&[0]).expect("ICMP_FILTER");
    sock.send_to(&message, LOCALHOST).expect("send");
    let got = collect_raw(&sock, QUIET);
    assert_eq!(got.len(), 1);
    assert_eq!(
        parse_icmp(&got[0].1).and_then(|(_, i)| echo_of(&i)),
        Some((false, IcmpEchoHeader { id: 0x7171, seq: 1 }))
    );
}

#[test]
fn bpf_filter_drops_replies_with_another_ident_and_passes_ours() {
    if !common::enter_netns("bpf_filter_drops_replies_with_another_ident_and_passes_ours") {
        return;
    }
    const OURS: u16 = 0x0a0a;
    const THEIRS: u16 = 0x0b0b;
    let filtered = RawIcmpSocket::open().expect("open");
    filtered
        .attach_filter(&BpfProgram::icmp_echo_reply_ident(OURS))
        .expect("attach");
    filtered.drain().expect("drain");
    let control = RawIcmpSocket::open().expect("open");
    control.set_icmp_type_filter(&[0]).expect("replies only");

    let sender = HdrInclSender::open().expect("open");
    for ident in [THEIRS, OURS, THEIRS] {
        let request = echo_request_datagram(LOCALHOST, LOCALHOST, ident, 1, b"who?");
        sender.send_to(&request, LOCALHOST).expect("sendto");
    }
    let idents = |got: Vec<(Received, Vec<u8>)>| -> Vec<u16> {
        got.iter()
            .filter_map(|(_, b)| parse_icmp(b).and_then(|(_, i)| echo_of(&i)))
            .map(|(_, e)| e.id)
            .collect()
    };
    assert_eq!(idents(collect_raw(&control, QUIET)), [THEIRS, OURS, THEIRS]);
    assert_eq!(idents(collect_raw(&filtered, QUIET)), [OURS]);
}

#[test]
fn bpf_filter_passes_icmp_errors_quoting_our_echo_request_only() {
    if !common::enter_netns("bpf_filter_passes_icmp_errors_quoting_our_echo_request_only") {
        return;
    }
    const OURS: u16 = 0x0c0c;
    let router = Ipv4Addr::new(127, 0, 0, 2);
    let target = Ipv4Addr::new(127, 0, 0, 3);
    let filtered = RawIcmpSocket::open().expect("open");
    filtered
        .attach_filter(&BpfProgram::icmp_echo_reply_ident(OURS))
        .expect("attach");
    filtered.drain().expect("drain");
    let sender = HdrInclSender::open().expect("open");
    for ident in [0x0d0d, OURS] {
        let quoted = echo_request_datagram(LOCALHOST, target, ident, 5, &[0; 8]);
        let error = host_unreachable(router, LOCALHOST, &quoted);
        sender.send_to(&error, LOCALHOST).expect("sendto");
    }
    let got = collect_raw(&filtered, QUIET);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.from, router);
    let (_, icmp) = parse_icmp(&got[0].1).expect("parses");
    assert_eq!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Host)
    );
    let (quoted_ip, quoted_icmp) = parse_icmp(icmp.payload()).expect("quote parses");
    assert_eq!(quoted_ip.destination, target.octets());
    assert_eq!(
        echo_of(&quoted_icmp),
        Some((true, IcmpEchoHeader { id: OURS, seq: 5 }))
    );
}

// ---- DgramIcmpSocket ------------------------------------------------------------------------

/// Widens ping_group_range in the test's namespace, after checking the default refuses us and
/// that the host's value is untouched.
fn allow_ping_sockets() {
    let host_value =
        || common::in_main_thread_netns(|| common::read_sysctl("net.ipv4.ping_group_range").ok());
    let before = host_value();
    let own = common::read_sysctl("net.ipv4.ping_group_range").expect("read");
    if own.split_whitespace().collect::<Vec<_>>() == ["1", "0"] {
        let err = DgramIcmpSocket::open().expect_err("the default range admits nobody");
        assert!(matches!(err, NetError::PingGroupDenied { .. }), "{err:?}");
        assert!(err.is_permission());
        let text = err.to_string();
        assert!(
            text.contains("net.ipv4.ping_group_range (1 0) does not include your group"),
            "{text}"
        );
        assert!(
            text.contains("sysctl -w net.ipv4.ping_group_range=\"0 2147483647\""),
            "{text}"
        );
    }
    common::write_sysctl("net.ipv4.ping_group_range", "0 2147483647").expect("write sysctl");
    assert_eq!(
        common::read_sysctl("net.ipv4.ping_group_range").expect("read"),
        "0\t2147483647"
    );
    assert_eq!(host_value(), before, "the host's sysctl must not change");
}

#[test]
fn dgram_icmp_socket_gets_a_reply_with_its_own_ident() {
    if !common::enter_netns("dgram_icmp_socket_gets_a_reply_with_its_own_ident") {
        return;
    }
    allow_ping_sockets();
    let sniffer = common::Sniffer::start("lo");
    let sock = DgramIcmpSocket::open().expect("open ping socket");
    let ident = sock.local_ident();
    assert_ne!(ident, 0, "bound at open, so the ident is known");
    sock.set_read_timeout(Some(PATIENCE)).expect("timeout");
    sock.set_ttl(33).expect("ttl");
    // The identifier and checksum we put are replaced by the kernel.
    let message = {
        let mut m = echo_request_message(0, 9, b"ping socket");
        m[2..4].copy_from_slice(&[0, 0]);
        m
    };
    let before = SystemTime::now();
    sock.send_to(&message, LOCALHOST).expect("send");
    let mut buf = [0u8; 1500];
    let got = sock.recv(&mut buf).expect("recv").expect("a reply");
    assert_eq!(got.from, LOCALHOST);
    assert_eq!(got.ttl, Some(64), "the reply's TTL via IP_RECVTTL");
    assert!(got.kernel_time.is_some_and(|t| t >= before));
    let icmp = Icmpv4Slice::from_slice(&buf[..got.len]).expect("an ICMP message, no IPv4 header");
    assert_eq!(
        echo_of(&icmp),
        Some((false, IcmpEchoHeader { id: ident, seq: 9 }))
    );
    assert_eq!(icmp.payload(), b"ping socket");

    assert!(sniffer.wait_for(|d| d.len() >= 2, PATIENCE));
    let request = &sniffer.datagrams()[0];
    let (ip, icmp) = parse_icmp(request).expect("parses");
    assert_eq!(ip.time_to_live, 33);
    assert_eq!(
        echo_of(&icmp),
        Some((true, IcmpEchoHeader { id: ident, seq: 9 }))
    );
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload()),
        "the kernel computed the checksum"
    );
}

#[test]
fn dgram_icmp_socket_reads_icmp_errors_from_the_error_queue() {
    if !common::enter_netns("dgram_icmp_socket_reads_icmp_errors_from_the_error_queue") {
        return;
    }
    allow_ping_sockets();
    let router = Ipv4Addr::new(127, 0, 0, 2);
    let target = Ipv4Addr::new(127, 0, 0, 3);
    let sock = DgramIcmpSocket::open().expect("open");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let ident = sock.local_ident();
    // A router's "host unreachable" about a request of ours, forged on lo.
    let quoted = echo_request_datagram(LOCALHOST, target, ident, 17, b"lost");
    let error = host_unreachable(router, LOCALHOST, &quoted);
    HdrInclSender::open()
        .expect("open")
        .send_to(&error, LOCALHOST)
        .expect("sendto");

    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + PATIENCE;
    let queued = loop {
        assert!(Instant::now() < deadline, "no error arrived");
        match sock.recv_any(&mut buf).expect("recv_any") {
            Some(Incoming::Error(e)) => break e,
            Some(Incoming::Datagram(d)) => panic!("unexpected datagram {d:?}"),
            None => {}
        }
    };
    assert_eq!(queued.origin, ErrorOrigin::Icmp);
    assert_eq!((queued.icmp_type, queued.icmp_code), (3, 1));
    assert_eq!(queued.errno, libc::EHOSTUNREACH);
    assert_eq!(queued.offender, Some(router));
    assert_eq!(queued.original_dst, Some(target));
    let payload = Icmpv4Slice::from_slice(&buf[..queued.len]).expect("the quoted ICMP message");
    assert_eq!(
        echo_of(&payload),
        Some((true, IcmpEchoHeader { id: ident, seq: 17 }))
    );
    assert_eq!(
        sock.recv_error(&mut buf).expect("recv_error"),
        None,
        "read once"
    );

    // The kernel also reports the error's errno once from the next plain receive (sk_err);
    // the details stay on the error queue.
    let error = host_unreachable(router, LOCALHOST, &quoted);
    HdrInclSender::open()
        .expect("open")
        .send_to(&error, LOCALHOST)
        .expect("sendto");
    assert!(common::wait_for(
        || match sock.recv(&mut buf) {
            Err(e) => e.raw_os_error() == Some(libc::EHOSTUNREACH),
            Ok(_) => false,
        },
        PATIENCE
    ));
    let queued = sock
        .recv_error(&mut buf)
        .expect("recv_error")
        .expect("queued");
    assert_eq!(queued.offender, Some(router));
    assert_eq!(sock.recv(&mut buf).expect("no error any more"), None);
}

#[test]
fn dgram_icmp_socket_over_the_mtu_queues_a_local_error_with_the_mtu() {
    if !common::enter_netns("dgram_icmp_socket_over_the_mtu_queues_a_local_error_with_the_mtu") {
        return;
    }
    allow_ping_sockets();
    common::set_mtu("lo", 1500).expect("mtu");
    let sock = DgramIcmpSocket::open().expect("open");
    sock.set_mtu_discover(PmtuMode::Do)
        .expect("IP_MTU_DISCOVER");
    let message = echo_request_message(0, 1, &[0u8; 2000 - 8]);
    let err = sock
        .send_to(&message, LOCALHOST)
        .expect_err("DF and over the MTU");
    assert!(
        matches!(
            err,
            NetError::MessageTooLong {
                len: Some(2000),
                ..
            }
        ),
        "{err:?}"
    );
    let mut buf = [0u8; 64];
    let queued = sock
        .recv_error(&mut buf)
        .expect("recv_error")
        .expect("a local error");
    assert_eq!(queued.origin, ErrorOrigin::Local);
    assert_eq!(queued.errno, libc::EMSGSIZE);
    assert_eq!(queued.info, 1500, "the MTU");
    assert_eq!(queued.offender, None);
    // With fragmentation allowed the same message goes, and the reply comes back whole.
    sock.set_mtu_discover(PmtuMode::Dont)
        .expect("IP_MTU_DISCOVER");
    sock.drain().expect("drain");
    sock.set_read_timeout(Some(PATIENCE)).expect("timeout");
    sock.send_to(&message, LOCALHOST)
        .expect("fragmented by the kernel");
    let mut big = [0u8; 4096];
    let got = sock.recv(&mut big).expect("recv").expect("reply");
    assert_eq!(got.len, 2000);
}

// ---- privilege ------------------------------------------------------------------------------

/// Runs in a forked child, whose only thread is this one: drops everything, then checks the
/// whole process (`/proc/self/status`) holds no capability and raw sockets are refused.
fn drop_caps_in_child() -> i32 {
    if privilege::drop_all_capabilities().is_err() {
        return 10;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 11;
    };
    for key in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:"] {
        let value = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
        if value != Some(0) {
            return 12;
        }
    }
    if privilege::has_cap_net_raw() || privilege::effective_caps().ok() != Some(0) {
        return 13;
    }
    let needs_cap_net_raw = |e: &NetError| {
        e.is_permission()
            && e.to_string()
                .starts_with("raw sockets need CAP_NET_RAW: run as root")
    };
    if !RawIcmpSocket::open().is_err_and(|e| needs_cap_net_raw(&e)) {
        return 14;
    }
    if !HdrInclSender::open().is_err_and(|e| needs_cap_net_raw(&e)) {
        return 15;
    }
    if !Capture::open("lo", CaptureOptions::default()).is_err_and(|e| needs_cap_net_raw(&e)) {
        return 16;
    }
    // This namespace keeps the default range, which admits nobody.
    match DgramIcmpSocket::open() {
        Err(NetError::PingGroupDenied { .. }) => 0,
        _ => 17,
    }
}

#[test]
fn drop_all_capabilities_leaves_the_process_without_any() {
    if !common::enter_netns("drop_all_capabilities_leaves_the_process_without_any") {
        return;
    }
    assert!(privilege::has_cap_net_raw());
    // SAFETY: the child runs only `drop_caps_in_child` (plain syscalls and file reads, no
    // locks held by other threads are needed) and leaves with `_exit`, never returning into
    // the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(drop_caps_in_child).unwrap_or(99);
        // SAFETY: `_exit` ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a live int.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() >= deadline {
            // SAFETY: `pid` is the child forked above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("the child did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "see drop_caps_in_child for the codes"
    );
    // The parent is untouched.
    assert!(privilege::has_cap_net_raw());
}
