//! The packet layer: pure bytes.
//!
//! Hand-written codecs for IPv4 ([`ipv4`]), ICMPv4 ([`icmp`]) and UDP ([`udp`]), the RFC 1071
//! checksum ([`checksum`]), a builder that composes datagrams with every field reachable
//! ([`builder`]), fragmentation ([`fragment`]) and human-readable output ([`display`]).
//!
//! The contract, after smoltcp's `wire`: each protocol has a zero-copy view (`Ipv4Packet<T>`,
//! `IcmpPacket<T>`, `UdpPacket<T>`) with a getter for every field and, where `T: AsMut<[u8]>`, a
//! setter; and a small `Repr` for everyday use. Once a `new_checked` constructor succeeds, no
//! accessor of that view can panic; parsers never panic on any input. This module does no I/O,
//! reads no clock and never needs to allocate to parse.
#![forbid(unsafe_code)]

pub mod builder;
pub mod checksum;
pub mod display;
pub mod error;
pub mod fragment;
pub mod icmp;
pub mod ipv4;
pub mod udp;

pub use error::{Error, Layer, LenSource, Result};

use std::net::Ipv4Addr;

// Big-endian field access shared by the views; callers have checked the bounds.
#[inline(always)]
pub(crate) fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(crate) fn write_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn read_addr(b: &[u8], at: usize) -> Ipv4Addr {
    // One 32-bit load and store: built from four byte stores, an address returned in a struct
    // stalls the caller's 32-bit load of it (store forwarding).
    Ipv4Addr::from_bits(read_u32(b, at))
}
