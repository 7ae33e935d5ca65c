//! The bodies of rawkit's fuzz targets: every accessor of one parser on arbitrary bytes.
//!
//! Each function returns whether the input parsed, so that the corpus replay in the root crate
//! (`tests/fuzz_corpus.rs`, which includes this file) can check that every seed still reaches
//! the deep end. The only panics here are the invariants fuzzing is meant to break: no accessor
//! panics after `new_checked`, whatever parses emits again, every fragment parses.

use rawkit::packet::display;
use rawkit::packet::fragment::Fragmenter;
use rawkit::packet::icmp::{IcmpPacket, IcmpRepr, MplsEntry};
use rawkit::packet::ipv4::{self, Ipv4Option, Ipv4Packet, Ipv4Repr};
use rawkit::packet::udp::{UdpPacket, UdpRepr};
use std::hint::black_box;
use std::net::Ipv4Addr;

/// `Ipv4Packet::new_checked` and `new_lax`, every getter, the options, `Ipv4Repr::parse`.
pub fn ipv4(data: &[u8]) -> bool {
    for ip in [Ipv4Packet::new_checked(data), Ipv4Packet::new_lax(data)]
        .into_iter()
        .flatten()
    {
        black_box((
            ip.version(),
            ip.ihl(),
            ip.header_len(),
            ip.dscp(),
            ip.ecn(),
            ip.tos(),
        ));
        black_box((
            ip.total_len(),
            ip.ident(),
            ip.reserved_flag(),
            ip.dont_frag(),
        ));
        black_box((
            ip.more_frags(),
            ip.frag_offset(),
            ip.frag_offset_bytes(),
            ip.ttl(),
        ));
        black_box((ip.protocol(), ip.checksum(), ip.src_addr(), ip.dst_addr()));
        black_box((
            ip.verify_checksum(),
            ip.compute_checksum(),
            ip.is_fragment(),
        ));
        black_box((
            ip.payload(),
            ip.is_payload_truncated(),
            Ipv4Repr::parse(&ip).is_ok(),
        ));
        for opt in ip.option_iter().flatten() {
            black_box((opt.kind(), opt.is_copied(), opt.to_string()));
            black_box(opt.addresses().count());
        }
        let mut opts = [Ipv4Option::Nop; 40];
        if let Ok(n) = ipv4::parse_options(ip.options(), &mut opts) {
            // What parses emits back to the same bytes.
            let mut out = [0u8; 40];
            let m = ipv4::emit_options(&opts[..n], &mut out).expect("emit parsed options");
            assert_eq!(&out[..m], ip.options());
        }
    }
    Ipv4Packet::new_checked(data).is_ok()
}

/// `IcmpPacket` with every getter, the quote, the RFC 4884 extensions and `IcmpRepr`.
pub fn icmp(data: &[u8]) -> bool {
    let Ok(p) = IcmpPacket::new_checked(data) else {
        return false;
    };
    black_box((p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header()));
    black_box((
        p.echo_ident(),
        p.echo_seq_no(),
        p.pointer(),
        p.rfc4884_length(),
    ));
    black_box((p.next_hop_mtu(), p.gateway(), p.data(), p.verify_checksum()));
    black_box((
        p.compute_checksum(),
        p.quoted_datagram(),
        p.extension_offset(),
    ));
    black_box((
        p.quote_info(),
        p.quoted_ipv4().map(|q| q.payload().len()).ok(),
    ));
    if let Some(Ok(ext)) = p.extensions() {
        black_box((ext.version(), ext.checksum(), ext.verify_checksum()));
        for obj in ext.objects().flatten() {
            for e in obj.mpls_entries() {
                assert_eq!(MplsEntry::from_u32(e.to_u32()), e);
                black_box(e.to_string());
            }
        }
    }
    if let Ok(repr) = IcmpRepr::parse(&p, false) {
        // Whatever parses can be emitted again.
        let mut buf = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut buf).expect("emit a parsed message");
        assert!(IcmpPacket::new_checked(&buf[..n]).is_ok_and(|q| q.verify_checksum()));
    }
    true
}

/// `UdpPacket` with every getter and the pseudo-header checksum.
pub fn udp(data: &[u8]) -> bool {
    let Ok(u) = UdpPacket::new_checked(data) else {
        return false;
    };
    let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 7));
    black_box((
        u.src_port(),
        u.dst_port(),
        u.len(),
        u.checksum(),
        u.payload(),
    ));
    black_box((u.compute_checksum(src, dst), u.verify_checksum(src, dst)));
    black_box(UdpRepr::parse(&u, src, dst).is_ok());
    assert!(u.payload().len() + 8 <= data.len());
    true
}

/// The one-line summary, the hex dump and the hex parser.
pub fn display(data: &[u8]) -> bool {
    let line = display::summary(data);
    assert!(!line.is_empty() && !line.contains('\n'));
    let dump = display::hexdump(data);
    assert_eq!(dump.lines().count(), data.len().div_ceil(16));
    let hex = display::hex(data);
    assert_eq!(display::parse_hex(&hex).as_deref(), Ok(data));
    black_box(display::parse_hex(&String::from_utf8_lossy(data)).ok());
    Ipv4Packet::new_checked(data).is_ok()
}

/// `Fragmenter` over the datagram after the first byte, which picks the fragment size
/// (8 to 512 bytes in steps of 8); every fragment must parse.
pub fn fragment(data: &[u8]) -> bool {
    let Some((&sel, datagram)) = data.split_first() else {
        return false;
    };
    let size = (sel as usize % 64 + 1) * 8;
    let Ok(mut f) = Fragmenter::new(datagram, size) else {
        return false;
    };
    let mut buf = vec![0u8; f.max_fragment_len()];
    let mut count = 0;
    while let Some(r) = f.next_into(&mut buf) {
        let n = r.expect("max_fragment_len holds any fragment");
        let frag = Ipv4Packet::new_checked(&buf[..n]).expect("a fragment parses");
        assert!(frag.verify_checksum());
        count += 1;
    }
    assert_eq!(count, f.count());
    true
}
