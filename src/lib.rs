//! rawkit: a raw-socket ICMP/IPv4/UDP toolkit.
//!
//! The crate has three layers whose arrows point one way:
//!
//! * [`packet`] — pure bytes. Hand-written IPv4, ICMPv4 and UDP codecs, the RFC 1071 checksum, a
//!   builder that fills lengths and checksums (with explicit overrides for every field, wrong
//!   values included), fragmentation and human-readable display. No I/O, no clock, no unsafe.
//! * [`net`] — every syscall: raw ICMP sockets, the `IP_HDRINCL` sender, `AF_PACKET` capture and
//!   privilege checks. The only module allowed to use `unsafe`.
//! * [`cli`] — the `rawkit` command line.
//!
//! ```
//! use rawkit::packet::{builder::Ipv4Builder, icmp::IcmpRepr, display};
//! use std::net::Ipv4Addr;
//!
//! let mut buf = [0u8; 128];
//! let len = Ipv4Builder::new(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST)
//!     .ttl(64)
//!     .icmp(&IcmpRepr::EchoRequest { ident: 0x1234, seq_no: 1, data: &[0u8; 56] })
//!     .emit(&mut buf)
//!     .unwrap();
//! assert_eq!(len, 84);
//! assert_eq!(
//!     display::summary(&buf[..len]),
//!     "IP 127.0.0.1 > 127.0.0.1: ICMP echo request, id 4660, seq 1, length 64"
//! );
//! ```
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod cli;
pub mod net;
pub mod packet;
pub mod pcap;
pub mod probe;
