//! Decode an IPv4 datagram given as hex on the command line, layer by layer, with rawkit's
//! parsers. Spaces, colons and `0x` prefixes are allowed between bytes.
//!
//! ```text
//! cargo run --example parse_hex -- 45000024d8824000400164547f0000017f000001 0800399a19640001a500000000000000
//! ```

use rawkit::packet::display;
use rawkit::packet::icmp::{IcmpPacket, IcmpRepr, QuotedTransport};
use rawkit::packet::ipv4::{IpProtocol, Ipv4Packet, OptionIter};
use rawkit::packet::udp::UdpPacket;
use std::process::ExitCode;

fn main() -> ExitCode {
    let text = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if text.trim().is_empty() {
        eprintln!("usage: parse_hex HEX...   (an IPv4 datagram, e.g. from tcpdump -x)");
        return ExitCode::from(2);
    }
    let bytes = match display::parse_hex(&text) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("parse_hex: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", display::summary(&bytes));
    let ip = match Ipv4Packet::new_checked(&bytes[..]) {
        Ok(ip) => ip,
        Err(e) => {
            eprintln!("parse_hex: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "ipv4: version {} ihl {} ({} bytes) dscp {} ecn {} total length {} id 0x{:04x}",
        ip.version(),
        ip.ihl(),
        ip.header_len(),
        ip.dscp(),
        ip.ecn(),
        ip.total_len(),
        ip.ident()
    );
    println!(
        "      flags{}{}{} offset {} ttl {} protocol {} checksum 0x{:04x} ({})",
        if ip.reserved_flag() { " evil" } else { "" },
        if ip.dont_frag() { " DF" } else { "" },
        if ip.more_frags() { " MF" } else { "" },
        ip.frag_offset_bytes(),
        ip.ttl(),
        ip.protocol(),
        ip.checksum(),
        if ip.verify_checksum() { "good" } else { "BAD" }
    );
    println!("      {} > {}", ip.src_addr(), ip.dst_addr());
    for opt in OptionIter::new(ip.options()) {
        match opt {
            Ok(o) => println!("      option {o}"),
            Err(e) => println!("      option error: {e}"),
        }
    }
    let payload = ip.payload();
    match ip.protocol() {
        IpProtocol::Icmp if ip.frag_offset() == 0 => decode_icmp(payload),
        IpProtocol::Udp if ip.frag_offset() == 0 => match UdpPacket::new_checked(payload) {
            Ok(u) => println!(
                "udp:  {} > {} length {} checksum 0x{:04x} ({}) payload {} bytes",
                u.src_port(),
                u.dst_port(),
                u.len(),
                u.checksum(),
                if u.verify_checksum(ip.src_addr(), ip.dst_addr()) {
                    "good"
                } else {
                    "BAD"
                },
                u.payload().len()
            ),
            Err(e) => println!("udp:  {e}"),
        },
        p => println!("{p}: {} bytes", payload.len()),
    }
    ExitCode::SUCCESS
}

fn decode_icmp(payload: &[u8]) {
    let icmp = match IcmpPacket::new_checked(payload) {
        Ok(p) => p,
        Err(e) => return println!("icmp: {e}"),
    };
    println!(
        "icmp: type {} ({}) code {} checksum 0x{:04x} ({})",
        u8::from(icmp.msg_type()),
        icmp.msg_type(),
        icmp.msg_code(),
        icmp.checksum(),
        if icmp.verify_checksum() {
            "good"
        } else {
            "BAD"
        }
    );
    match IcmpRepr::parse(&icmp, false) {
        Ok(IcmpRepr::EchoRequest {
            ident,
            seq_no,
            data,
        })
        | Ok(IcmpRepr::EchoReply {
            ident,
            seq_no,
            data,
        }) => {
            println!("      id {ident} seq {seq_no} data {} bytes", data.len())
        }
        Ok(_) if icmp.msg_type().is_error() => {
            if let Some(q) = icmp.quote_info() {
                print!(
                    "      quoted: {} > {} {} id 0x{:04x} ttl {}",
                    q.src_addr, q.dst_addr, q.protocol, q.ident, q.ttl
                );
                match q.transport {
                    QuotedTransport::Ports {
                        src_port, dst_port, ..
                    } => println!(" ports {src_port} > {dst_port}"),
                    QuotedTransport::Icmp {
                        msg_type,
                        ident,
                        seq_no,
                        ..
                    } => println!(" icmp type {msg_type} id {ident} seq {seq_no}"),
                    _ => println!(),
                }
            }
            if let Some(Ok(ext)) = icmp.extensions() {
                println!(
                    "      extensions: version {} checksum 0x{:04x} ({})",
                    ext.version(),
                    ext.checksum(),
                    if ext.verify_checksum() { "good" } else { "BAD" }
                );
                for o in ext.objects().flatten() {
                    if o.is_mpls() {
                        for e in o.mpls_entries() {
                            println!("      MPLS {e}");
                        }
                    } else {
                        println!(
                            "      object class {} c-type {} {} bytes",
                            o.class_num,
                            o.c_type,
                            o.payload.len()
                        );
                    }
                }
            }
        }
        Ok(r) => println!("      {r:?}"),
        Err(e) => println!("      {e}"),
    }
}
