//! An MPLS label switching router for the lab, as far as traceroute can tell: router `ri`
//! answers the probes that expire at it with an ICMP time exceeded that carries an RFC 4884
//! extension structure holding an RFC 4950 incoming label stack, as MPLS routers do. This
//! kernel adds no ICMP extensions itself, so:
//!
//! * nftables in `ri` drops the kernel's own time exceeded (outgoing, unmarked);
//! * an `AF_PACKET` capture on `ri`'s left interface sees each datagram that arrives with TTL 1
//!   (which `ri` will not forward), and an `IP_HDRINCL` socket opened in `ri` (its packets
//!   marked, so nftables lets them through) sends the time exceeded rawkit's builder made:
//!   from `ri`'s address to the probe's source, quoting the probe (RFC 4884: the original
//!   datagram field padded to 128 bytes, length in 32-bit words), then the extension.
//!
//! The responder never sends anything but these replies, only inside the lab, and stops on
//! [`MplsResponder::stop`], on drop, or after [`LIFETIME`] or [`MAX_ANSWERS`] at the latest.
#![allow(dead_code)]

use crate::common::lab::{Lab, Node};
use rawkit::net::capture::{Capture, CaptureOptions};
use rawkit::net::socket::HdrInclSender;
use rawkit::packet::builder::Ipv4Builder;
use rawkit::packet::icmp::{
    EXTENSION_MIN_QUOTE, ErrorBody, IcmpRepr, MplsEntry, ObjectRepr, TimeExceeded, emit_extensions,
};
use rawkit::packet::ipv4::Ipv4Packet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The firewall mark of the responder's packets.
pub const MARK: u32 = 0x4d50;
/// The longest a responder runs.
pub const LIFETIME: Duration = Duration::from_secs(60);
/// The most answers a responder sends.
pub const MAX_ANSWERS: u64 = 2000;

/// The published vector (trippy's MPLS test): label 19380, TC 0, bottom of stack, TTL 1.
pub const VECTOR_ENTRY: MplsEntry = MplsEntry {
    label: 19380,
    tc: 0,
    bottom: true,
    ttl: 1,
};

/// The RFC 4884 extension structure for `stack`, checksum filled.
pub fn extension_bytes(stack: &[MplsEntry]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + 4 * stack.len()];
    let n = emit_extensions(&[ObjectRepr::Mpls(stack)], &mut buf).expect("extension fits");
    buf.truncate(n);
    buf
}

/// The time exceeded `router` sends for `probe` (a whole IPv4 datagram), with `extension`.
pub fn time_exceeded(router: Ipv4Addr, probe: &[u8], extension: &[u8]) -> Option<Vec<u8>> {
    let ip = Ipv4Packet::new_checked(probe).ok()?;
    let quote = &probe[..probe.len().min(EXTENSION_MIN_QUOTE)];
    let repr = IcmpRepr::TimeExceeded {
        code: TimeExceeded::TtlExpired,
        body: ErrorBody {
            quote,
            extensions: Some(extension),
        },
    };
    let mut buf = vec![0u8; 20 + 8 + EXTENSION_MIN_QUOTE + extension.len()];
    let n = Ipv4Builder::new(router, ip.src_addr())
        .ttl(64)
        .icmp(&repr)
        .emit(&mut buf)
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A running responder.
#[derive(Debug)]
pub struct MplsResponder {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl MplsResponder {
    /// Makes router `router` of `lab` answer with `stack`. Panics when it cannot be set up.
    pub fn start(lab: &Lab, router: usize, stack: &[MplsEntry]) -> MplsResponder {
        let node = Node::Router(router);
        lab.nft(
            node,
            &format!(
                "table inet mpls_responder {{\n  chain out {{\n    type filter hook output priority 0;\n    icmp type time-exceeded meta mark != {MARK} drop\n  }}\n}}\n"
            ),
        );
        let iface = lab.iface(router);
        let addr = lab.router_addr(router);
        let (mut capture, tx) = lab.run_in(node, move || {
            let opts = CaptureOptions {
                read_timeout: Some(Duration::from_millis(20)),
                ..CaptureOptions::default()
            };
            let capture = Capture::open(&iface, opts)
                .unwrap_or_else(|e| panic!("mpls responder: capture on {iface}: {e}"));
            let tx = HdrInclSender::open().expect("mpls responder: IP_HDRINCL socket");
            tx.set_mark(MARK).expect("mpls responder: SO_MARK");
            (capture, tx)
        });
        let extension = extension_bytes(stack);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let mut buf = vec![0u8; 65_600];
            let mut answered = 0u64;
            while !flag.load(Ordering::Relaxed)
                && started.elapsed() < LIFETIME
                && answered < MAX_ANSWERS
            {
                let Ok(Some(frame)) = capture.next(&mut buf) else {
                    continue;
                };
                let Some(datagram) = frame.ip_payload(&buf) else {
                    continue;
                };
                let Ok(ip) = Ipv4Packet::new_checked(datagram) else {
                    continue;
                };
                // Only what this router would expire rather than forward or take itself.
                if ip.ttl() != 1 || ip.dst_addr() == addr || ip.is_fragment() {
                    continue;
                }
                if let Some(reply) = time_exceeded(addr, datagram, &extension)
                    && tx.send_to(&reply, ip.src_addr()).is_ok()
                {
                    answered += 1;
                }
            }
            answered
        });
        MplsResponder {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the responder; returns how many probes it answered.
    pub fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or(0)
    }
}

impl Drop for MplsResponder {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawkit::packet::icmp::IcmpPacket;

    #[test]
    fn extension_matches_the_published_vector_byte_for_byte() {
        // Version 2, checksum 0x993a; one object of 8 bytes, class 1 (MPLS), c-type 1
        // (incoming stack); the entry 04 bb 41 01 = label 19380, TC 0, S 1, TTL 1.
        assert_eq!(
            extension_bytes(&[VECTOR_ENTRY]),
            [
                0x20, 0x00, 0x99, 0x3a, 0x00, 0x08, 0x01, 0x01, 0x04, 0xbb, 0x41, 0x01
            ]
        );
    }

    #[test]
    fn the_reply_quotes_the_probe_padded_to_128_bytes_then_the_extension() {
        let mut probe = [0u8; 60];
        let n = Ipv4Builder::new(Ipv4Addr::new(198, 18, 1, 1), Ipv4Addr::new(198, 18, 4, 2))
            .ttl(1)
            .udp(40000, 33437, &[0x40; 32])
            .emit(&mut probe)
            .unwrap();
        let ext = extension_bytes(&[VECTOR_ENTRY]);
        let reply = time_exceeded(Ipv4Addr::new(198, 18, 2, 2), &probe[..n], &ext).unwrap();
        let ip = Ipv4Packet::new_checked(&reply[..]).unwrap();
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(198, 18, 1, 1));
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.rfc4884_length(), 32, "128 bytes of original datagram");
        assert_eq!(&icmp.data()[..n], &probe[..n]);
        assert!(icmp.data()[n..128].iter().all(|b| *b == 0));
        assert_eq!(&icmp.data()[128..], &ext[..]);
        let ext = icmp.extensions().unwrap().unwrap();
        let entries: Vec<MplsEntry> = ext
            .objects()
            .flat_map(|o| o.unwrap().mpls_entries().collect::<Vec<_>>())
            .collect();
        assert_eq!(entries, vec![VECTOR_ENTRY]);
        assert_eq!(entries[0].to_string(), "L=19380,E=0,S=1,T=1");
    }
}
