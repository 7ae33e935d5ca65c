//! Tier 3: the `TPACKET_V3` ring of [`RingCapture`] and the filtered opening of [`Capture`],
//! through the library, on the `lo` of a private network namespace.
//!
//! What is proven: frames come out of the ring whole, in order and unaltered while the ring
//! wraps round a hundred times; a ring that fills up drops frames and counts every drop, and
//! the frames it kept are intact (frames read + dropped = frames sent); a frame longer than a
//! block is cut and says so, and `lo`'s 64 KiB frames fit the default ring whole; directions
//! pick the copies they should; the filter is in the kernel before the first frame arrives
//! (under a flood of other traffic, the counters never see one that fails it, with the ring
//! and with `recvmsg`); and the kernel accepts every program [`CaptureFilter`] compiles.
//!
//! Every sending loop is bounded in count and time, and sends only to 127.0.0.1.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rawkit::net::capture::{
    Capture, CaptureOptions, Frame, LinkType, PacketType, RingCapture, RingOptions,
};
use rawkit::net::filter::{CaptureFilter, Direction, FrameLayout};
use rawkit::net::poll::poll_readable;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A ring of four one-page blocks, handed over after 1 ms: it wraps round quickly.
fn tiny_ring() -> RingOptions {
    RingOptions {
        buffer_bytes: 4 * 4096,
        block_bytes: 4096,
        block_timeout: Duration::from_millis(1),
    }
}

fn opts() -> CaptureOptions {
    CaptureOptions::default()
}

/// Only UDP datagrams to or from `port`, received copies only.
fn port_filter(port: u16) -> impl FnOnce(LinkType) -> Option<rawkit::net::BpfProgram> {
    move |_| {
        Some(
            CaptureFilter {
                protocol: Some(17),
                port: Some(port),
                direction: Direction::In,
                ..CaptureFilter::default()
            }
            .compile(FrameLayout::Ethernet),
        )
    }
}

/// A bound socket that receives (and never reads) what is sent to it, so no port unreachable
/// is sent back; and a sender.
fn pair() -> (UdpSocket, UdpSocket, u16) {
    let sink = UdpSocket::bind((LO, 0)).expect("bind sink");
    let port = sink.local_addr().expect("addr").port();
    let tx = UdpSocket::bind((LO, 0)).expect("bind sender");
    tx.connect((LO, port)).expect("connect");
    (sink, tx, port)
}

/// The UDP payload of a captured lo frame.
fn udp_payload<'a>(frame: &Frame, data: &'a [u8]) -> &'a [u8] {
    let ip = frame.ip_payload(data).expect("IPv4");
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    &ip[ihl + 8..]
}

/// A datagram payload that says its sequence number, then a pattern derived from it.
fn payload(seq: u32, len: usize) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend((0..len.saturating_sub(4)).map(|i| (seq as usize + i) as u8));
    p
}

/// Reads frames until `want` arrived or `limit` passed, waiting on the descriptor in between;
/// hands each to `each`. Returns how many were read.
fn read_frames(
    ring: &mut RingCapture,
    want: usize,
    limit: Duration,
    mut each: impl FnMut(&Frame, &[u8]),
) -> usize {
    let deadline = Instant::now() + limit;
    let mut n = 0;
    loop {
        while let Some((frame, data)) = ring.next_frame().expect("ring") {
            each(&frame, data);
            n += 1;
        }
        let now = Instant::now();
        if n >= want || now >= deadline {
            return n;
        }
        let mut ready = [false];
        let wait = (deadline - now).min(Duration::from_millis(20));
        // Ready, timed out or interrupted: look again either way.
        let _ =
            poll_readable(&[std::os::fd::AsFd::as_fd(ring)], Some(wait), &mut ready).expect("poll");
    }
}

#[test]
fn frames_come_out_whole_and_in_order_while_the_ring_wraps_round() {
    if !common::enter_netns("frames_come_out_whole_and_in_order_while_the_ring_wraps_round") {
        return;
    }
    let (_sink, tx, port) = pair();
    let mut ring = RingCapture::open("lo", opts(), tiny_ring(), port_filter(port)).expect("ring");
    assert_eq!(ring.ring_size(), (4096, 4));
    assert_eq!(ring.link_type(), LinkType::Loopback);
    const TOTAL: u32 = 3000;
    const BURST: u32 = 10;
    let mut next = 0u32;
    let mut bytes = 0usize;
    let mut last_ts = None;
    for burst in 0..TOTAL / BURST {
        for i in 0..BURST {
            let seq = burst * BURST + i;
            // 1 to 200 bytes: frames of many sizes, so blocks end at many offsets.
            tx.send(&payload(seq, 1 + (seq as usize * 7) % 200))
                .expect("send");
        }
        let got = read_frames(&mut ring, BURST as usize, Duration::from_secs(5), |f, d| {
            assert_eq!(f.pkttype, PacketType::Host);
            assert_eq!(f.len, d.len());
            assert_eq!(f.orig_len, f.len, "nothing cut");
            let p = udp_payload(f, d);
            let seq = u32::from_be_bytes(p[..4].try_into().expect("seq"));
            assert_eq!(seq, next, "in order, none missing");
            assert_eq!(p, payload(seq, 1 + (seq as usize * 7) % 200), "unaltered");
            assert!(f.timestamp >= last_ts, "timestamps never go back");
            last_ts = f.timestamp;
            next += 1;
            bytes += d.len();
        });
        assert_eq!(got, BURST as usize, "burst {burst}");
    }
    assert_eq!(next, TOTAL);
    let stats = ring.statistics().expect("stats");
    assert_eq!((stats.packets, stats.drops), (u64::from(TOTAL), 0));
    // The frames' bytes alone (their headers in the ring aside) fill the 16 KiB ring more
    // than twenty times over: it went round and round.
    assert!(bytes / (4 * 4096) >= 20, "{bytes} bytes of frames");
}

#[test]
fn a_full_ring_drops_and_counts_and_keeps_what_it_holds_intact() {
    if !common::enter_netns("a_full_ring_drops_and_counts_and_keeps_what_it_holds_intact") {
        return;
    }
    let (_sink, tx, port) = pair();
    let mut ring = RingCapture::open("lo", opts(), tiny_ring(), port_filter(port)).expect("ring");
    const SENT: u32 = 600;
    for seq in 0..SENT {
        tx.send(&payload(seq, 100)).expect("send");
    }
    let mut seqs = Vec::new();
    read_frames(
        &mut ring,
        SENT as usize,
        Duration::from_millis(300),
        |f, d| {
            let p = udp_payload(f, d);
            let seq = u32::from_be_bytes(p[..4].try_into().expect("seq"));
            assert_eq!(p, payload(seq, 100), "a kept frame is intact");
            seqs.push(seq);
        },
    );
    let stats = ring.statistics().expect("stats");
    assert_eq!(
        stats.packets,
        u64::from(SENT),
        "every frame passed the filter"
    );
    assert!(stats.drops > 0, "four pages cannot hold {SENT} frames");
    assert_eq!(
        seqs.len() as u64 + stats.drops,
        u64::from(SENT),
        "read + dropped = sent"
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    // Once read, the ring takes new frames again.
    tx.send(&payload(SENT, 100)).expect("send");
    let mut after = Vec::new();
    read_frames(&mut ring, 1, Duration::from_secs(5), |f, d| {
        after.push(udp_payload(f, d)[..4].to_vec());
    });
    assert_eq!(after, [SENT.to_be_bytes().to_vec()]);
}

#[test]
fn a_frame_longer_than_a_block_is_cut_and_lo_frames_fit_the_default_ring() {
    if !common::enter_netns("a_frame_longer_than_a_block_is_cut_and_lo_frames_fit_the_default_ring")
    {
        return;
    }
    let (_sink, tx, port) = pair();
    let mut small =
        RingCapture::open("lo", opts(), tiny_ring(), port_filter(port)).expect("small ring");
    let mut big = RingCapture::open("lo", opts(), RingOptions::default(), port_filter(port))
        .expect("default ring");
    let long = payload(7, 65_000);
    tx.send(&long).expect("send 65000 bytes");
    let mut cut = None;
    read_frames(&mut small, 1, Duration::from_secs(5), |f, d| {
        cut = Some((*f, d.to_vec()));
    });
    let (f, d) = cut.expect("the long frame, cut");
    assert!(f.is_truncated());
    assert_eq!(f.orig_len, 14 + 20 + 8 + 65_000);
    assert!(f.len < 4096 && f.len == d.len(), "{}", f.len);
    assert_eq!(
        &d[14 + 28..],
        &long[..d.len() - 42],
        "the bytes that fit are right"
    );
    let mut whole = None;
    read_frames(&mut big, 1, Duration::from_secs(5), |f, d| {
        whole = Some((*f, udp_payload(f, d).to_vec()));
    });
    let (f, p) = whole.expect("the long frame, whole");
    assert!(!f.is_truncated());
    assert_eq!(f.len, 14 + 20 + 8 + 65_000);
    assert_eq!(p, long);
}

#[test]
fn directions_pick_the_outgoing_or_the_incoming_copy_or_both() {
    if !common::enter_netns("directions_pick_the_outgoing_or_the_incoming_copy_or_both") {
        return;
    }
    let (_sink, tx, port) = pair();
    let open = |direction| {
        let filter = CaptureFilter {
            port: Some(port),
            direction,
            ..CaptureFilter::default()
        };
        let o = CaptureOptions {
            ignore_outgoing: false,
            ..opts()
        };
        RingCapture::open("lo", o, tiny_ring(), move |_| {
            Some(filter.compile(FrameLayout::Ethernet))
        })
        .expect("ring")
    };
    let mut rings = [
        open(Direction::In),
        open(Direction::Out),
        open(Direction::Both),
    ];
    for seq in 0..3 {
        tx.send(&payload(seq, 8)).expect("send");
    }
    let mut seen: Vec<Vec<PacketType>> = Vec::new();
    for (ring, want) in rings.iter_mut().zip([3, 3, 6]) {
        let mut types = Vec::new();
        read_frames(ring, want, Duration::from_secs(5), |f, _| {
            types.push(f.pkttype)
        });
        seen.push(types);
    }
    assert_eq!(seen[0], [PacketType::Host; 3]);
    assert_eq!(seen[1], [PacketType::Outgoing; 3]);
    assert_eq!(seen[2].len(), 6);
    assert_eq!(
        seen[2]
            .iter()
            .filter(|t| **t == PacketType::Outgoing)
            .count(),
        3
    );
}

/// Sends to `port` from another thread (same namespace) as fast as it can until stopped, at
/// most 50,000 datagrams or 10 s.
fn background_flood(port: u16, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let tx = UdpSocket::bind((LO, 0)).expect("bind");
        let started = Instant::now();
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) && sent < 50_000 && started.elapsed().as_secs() < 10 {
            if tx.send_to(b"noise", (LO, port)).is_ok() {
                sent += 1;
            }
        }
        sent
    })
}

#[test]
fn the_filter_is_in_the_kernel_before_the_first_frame_arrives() {
    if !common::enter_netns("the_filter_is_in_the_kernel_before_the_first_frame_arrives") {
        return;
    }
    let noise_sink = UdpSocket::bind((LO, 0)).expect("bind");
    let noise_port = noise_sink.local_addr().expect("addr").port();
    let (_sink, tx, port) = pair();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = background_flood(noise_port, Arc::clone(&stop));
    // Let the noise flow before and while the captures open.
    thread::sleep(Duration::from_millis(20));
    let mut ring =
        RingCapture::open("lo", opts(), RingOptions::default(), port_filter(port)).expect("ring");
    let mut recv = Capture::open_filtered("lo", opts(), port_filter(port)).expect("capture");
    recv.set_nonblocking(true).expect("nonblocking");
    for seq in 0..10 {
        tx.send(&payload(seq, 8)).expect("send");
    }
    thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let noise = flood.join().expect("flood");
    assert!(noise > 0);
    let n = read_frames(&mut ring, 10, Duration::from_secs(5), |f, d| {
        assert_eq!(udp_payload(f, d).len(), 8, "only our datagrams");
    });
    assert_eq!(n, 10);
    let mut buf = vec![0u8; 2048];
    let mut from_recv = 0;
    while let Some(f) = recv.next(&mut buf).expect("recv") {
        assert_eq!(
            udp_payload(&f, &buf[..f.len]).len(),
            8,
            "only our datagrams"
        );
        from_recv += 1;
    }
    assert_eq!(from_recv, 10);
    // The kernel's counters saw none of the noise: no frame got in before the filter.
    assert_eq!(
        ring.statistics().expect("stats").packets,
        10,
        "{noise} noise datagrams"
    );
    assert_eq!(
        recv.statistics().expect("stats").packets,
        10,
        "{noise} noise datagrams"
    );
}

#[test]
fn the_kernel_accepts_every_program_capture_filters_compile() {
    if !common::enter_netns("the_kernel_accepts_every_program_capture_filters_compile") {
        return;
    }
    // One socket, every program attached in turn (SO_ATTACH_FILTER replaces the last): the
    // kernel's checker runs on each. (Closing a packet socket waits for an RCU grace period,
    // so one socket per program would make this slow.)
    let capture = Capture::open("lo", opts()).expect("capture");
    let mut n = 0;
    for protocol in [None, Some(1), Some(17), Some(6), Some(132), Some(47)] {
        for host in [None, Some(Ipv4Addr::new(198, 18, 0, 1))] {
            for port in [None, Some(0), Some(65_535)] {
                for direction in [Direction::In, Direction::Out, Direction::Both] {
                    for layout in [
                        FrameLayout::Ethernet,
                        FrameLayout::RawIp,
                        FrameLayout::LinuxSll,
                        FrameLayout::LinuxSll2,
                    ] {
                        let f = CaptureFilter {
                            protocol,
                            host,
                            port,
                            direction,
                        };
                        capture
                            .attach_filter(&f.compile(layout))
                            .unwrap_or_else(|e| panic!("{f:?} {layout:?}: {e}"));
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n, 6 * 2 * 3 * 3 * 4);
}
