//! Which received datagrams answer what `rawkit send` sent.
//!
//! The receive sockets see far more than the answers: a raw ICMP socket gets every ICMP packet
//! of the host (on `lo` that includes rawkit's own datagrams), a raw UDP socket every UDP
//! datagram. [`Matcher::classify`] keeps:
//!
//! * the reply to a query (echo 8 -> 0, timestamp 13 -> 14, information 15 -> 16, address mask
//!   17 -> 18) with the identifier sent and a sequence number sent;
//! * an ICMP error (3, 4, 5, 11, 12) whose quoted IPv4 header has the destination, source,
//!   protocol and an identification sent (unless the kernel chose it), and whose quoted
//!   transport, when quoted, has the ports (UDP), or the type, identifier and a sequence number
//!   (ICMP) sent;
//! * a UDP datagram from the destination's port to the source port.
//!
//! A copy of what was sent (same addresses, protocol, identification and transport) is never a
//! reply. Pure: no I/O, nothing here panics on any input.

use super::craft::{SentMeta, SentTransport, is_error_type, reply_type};
use crate::packet::icmp::{IcmpPacket, MplsEntry, QuotedTransport};
use crate::packet::ipv4::Ipv4Packet;
use crate::packet::udp::UdpPacket;
use std::net::Ipv4Addr;

/// What kind of answer a datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// An echo, timestamp, information or address mask reply.
    QueryReply,
    /// An ICMP error quoting a datagram sent.
    IcmpError,
    /// A UDP datagram back to the source port.
    Udp,
}

impl ReplyKind {
    /// The name in JSON events.
    pub fn name(self) -> &'static str {
        match self {
            ReplyKind::QueryReply => "query_reply",
            ReplyKind::IcmpError => "icmp_error",
            ReplyKind::Udp => "udp",
        }
    }
}

/// A datagram that answers what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What it is.
    pub kind: ReplyKind,
    /// Its source.
    pub from: Ipv4Addr,
    /// Its TTL.
    pub ttl: u8,
    /// ICMP type and code, for ICMP.
    pub icmp: Option<(u8, u8)>,
    /// Which datagram (from 0) it answers, when that can be told.
    pub index: Option<u64>,
    /// RFC 4950 MPLS label stack entries of an error's RFC 4884 extension.
    pub mpls: Vec<MplsEntry>,
}

/// Recognises the answers to one plan's datagrams.
#[derive(Debug, Clone)]
pub struct Matcher {
    meta: SentMeta,
}

impl Matcher {
    /// For datagrams described by `meta`.
    pub fn new(meta: SentMeta) -> Matcher {
        Matcher { meta }
    }

    fn ident_ok(&self, id: u16, sent: u64) -> bool {
        self.meta.kernel_ident || self.meta.ident.ident_sent(id, sent)
    }

    fn src_ok(&self, a: Ipv4Addr) -> bool {
        self.meta.src.is_unspecified() || a == self.meta.src
    }

    /// True when `ip` is one of the datagrams sent, seen again (on `lo`, raw sockets receive
    /// what this host sends to itself).
    fn is_own(&self, ip: &Ipv4Packet<&[u8]>, sent: u64) -> bool {
        let m = &self.meta;
        if ip.dst_addr() != m.dst
            || !self.src_ok(ip.src_addr())
            || u8::from(ip.protocol()) != m.protocol
            || !self.ident_ok(ip.ident(), sent)
        {
            return false;
        }
        let t = ip.payload();
        match m.transport {
            SentTransport::Udp { sport, dport } => {
                t.len() >= 4
                    && u16::from_be_bytes([t[0], t[1]]) == sport
                    && u16::from_be_bytes([t[2], t[3]]) == dport
            }
            SentTransport::Icmp { msg_type, .. } => t.first() == Some(&msg_type),
            SentTransport::Other => true,
        }
    }

    /// Classifies one received datagram (IPv4 header first), given how many datagrams (whole
    /// ones, not fragments) were sent so far.
    pub fn classify(&self, datagram: &[u8], sent: u64) -> Option<Reply> {
        let ip = Ipv4Packet::new_checked(datagram).ok()?;
        if ip.version() != 4 || ip.is_fragment() || self.is_own(&ip, sent) {
            return None;
        }
        let m = &self.meta;
        match u8::from(ip.protocol()) {
            1 => {
                let icmp = IcmpPacket::new_checked(ip.payload()).ok()?;
                let t = u8::from(icmp.msg_type());
                if let SentTransport::Icmp {
                    msg_type,
                    ident: Some(ident),
                } = m.transport
                    && reply_type(msg_type) == Some(t)
                {
                    let seq = icmp.echo_seq_no();
                    if icmp.echo_ident() != ident || !m.seq.is_some_and(|s| s.seq_sent(seq, sent)) {
                        return None;
                    }
                    return Some(Reply {
                        kind: ReplyKind::QueryReply,
                        from: ip.src_addr(),
                        ttl: ip.ttl(),
                        icmp: Some((t, icmp.msg_code())),
                        index: m.seq.and_then(|s| s.seq_index(seq, sent)),
                        mpls: Vec::new(),
                    });
                }
                if !is_error_type(t) {
                    return None;
                }
                let index = self.quote_matches(&icmp, sent)?;
                let mpls = match icmp.extensions() {
                    Some(Ok(ext)) => ext
                        .objects()
                        .filter_map(Result::ok)
                        .flat_map(|o| o.mpls_entries().collect::<Vec<_>>())
                        .collect(),
                    _ => Vec::new(),
                };
                Some(Reply {
                    kind: ReplyKind::IcmpError,
                    from: ip.src_addr(),
                    ttl: ip.ttl(),
                    icmp: Some((t, icmp.msg_code())),
                    index,
                    mpls,
                })
            }
            17 => {
                let SentTransport::Udp { sport, dport } = m.transport else {
                    return None;
                };
                let udp = UdpPacket::new_checked(ip.payload()).ok()?;
                if ip.src_addr() != m.dst
                    || !self.src_ok(ip.dst_addr())
                    || udp.src_port() != dport
                    || udp.dst_port() != sport
                {
                    return None;
                }
                Some(Reply {
                    kind: ReplyKind::Udp,
                    from: ip.src_addr(),
                    ttl: ip.ttl(),
                    icmp: None,
                    index: (sent == 1).then_some(0),
                    mpls: Vec::new(),
                })
            }
            _ => None,
        }
    }

    /// `Some(index)` when the error quotes one of the datagrams sent (`index` is which, when it
    /// can be told); `None` when it quotes something else.
    fn quote_matches<T: AsRef<[u8]>>(
        &self,
        icmp: &IcmpPacket<T>,
        sent: u64,
    ) -> Option<Option<u64>> {
        let m = &self.meta;
        let q = icmp.quote_info()?;
        if q.dst_addr != m.dst
            || !self.src_ok(q.src_addr)
            || u8::from(q.protocol) != m.protocol
            || !self.ident_ok(q.ident, sent)
        {
            return None;
        }
        let by_ident = if m.kernel_ident {
            None
        } else {
            m.ident.ident_index(q.ident, sent)
        };
        match (m.transport, q.transport) {
            (
                SentTransport::Udp { sport, dport },
                QuotedTransport::Ports {
                    src_port, dst_port, ..
                },
            ) => (src_port == sport && dst_port == dport).then_some(by_ident),
            (
                SentTransport::Icmp { msg_type, ident },
                QuotedTransport::Icmp {
                    msg_type: qt,
                    ident: qi,
                    seq_no,
                    ..
                },
            ) => {
                if qt != msg_type || ident.is_some_and(|i| i != qi) {
                    return None;
                }
                match m.seq {
                    Some(s) if !s.seq_sent(seq_no, sent) => None,
                    Some(s) => Some(s.seq_index(seq_no, sent).or(by_ident)),
                    None => Some(by_ident),
                }
            }
            (_, QuotedTransport::Missing) | (SentTransport::Other, _) => Some(by_ident),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::send::craft::Progression;
    use crate::packet::builder::Ipv4Builder;
    use crate::packet::icmp::{
        DstUnreachable, ErrorBody, IcmpRepr, ObjectRepr, TimeExceeded, emit_extensions,
    };

    const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
    const R1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    fn build(b: Ipv4Builder<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let n = b.emit(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn echo_meta() -> SentMeta {
        SentMeta {
            src: LO,
            dst: LO,
            protocol: 1,
            transport: SentTransport::Icmp {
                msg_type: 8,
                ident: Some(0x1234),
            },
            ident: Progression {
                first: 100,
                fixed: false,
            },
            kernel_ident: false,
            seq: Some(Progression {
                first: 1,
                fixed: false,
            }),
        }
    }

    fn echo(reply: bool, ident: u16, seq: u16, ip_id: u16) -> Vec<u8> {
        let data = [0u8; 8];
        let repr = if reply {
            IcmpRepr::EchoReply {
                ident,
                seq_no: seq,
                data: &data,
            }
        } else {
            IcmpRepr::EchoRequest {
                ident,
                seq_no: seq,
                data: &data,
            }
        };
        build(Ipv4Builder::new(LO, LO).ident(ip_id).icmp(&repr))
    }

    #[test]
    fn echo_replies_match_by_ident_and_sequence_and_own_requests_do_not() {
        let m = Matcher::new(echo_meta());
        let r = m.classify(&echo(true, 0x1234, 2, 999), 3).expect("reply");
        assert_eq!(r.kind, ReplyKind::QueryReply);
        assert_eq!((r.icmp, r.index), (Some((0, 0)), Some(1)));
        assert!(m.classify(&echo(true, 0x1235, 2, 999), 3).is_none());
        assert!(m.classify(&echo(true, 0x1234, 4, 999), 3).is_none());
        // Our own request, seen on lo.
        assert!(m.classify(&echo(false, 0x1234, 1, 100), 3).is_none());
        let whole = echo(true, 0x1234, 2, 9);
        for len in 0..whole.len() {
            assert!(m.classify(&whole[..len], 3).is_none(), "cut to {len}");
        }
    }

    #[test]
    fn errors_match_by_the_quoted_header_and_ports_and_carry_mpls() {
        let meta = SentMeta {
            src: LO,
            dst: Ipv4Addr::new(198, 18, 0, 9),
            protocol: 17,
            transport: SentTransport::Udp {
                sport: 40_000,
                dport: 33_434,
            },
            ident: Progression {
                first: 7,
                fixed: true,
            },
            kernel_ident: false,
            seq: None,
        };
        let m = Matcher::new(meta);
        let probe = |sport: u16, id: u16| {
            build(
                Ipv4Builder::new(LO, meta.dst)
                    .ident(id)
                    .ttl(1)
                    .udp(sport, 33_434, b"x"),
            )
        };
        let mut ext = [0u8; 12];
        let stack = [MplsEntry {
            label: 24_001,
            tc: 0,
            bottom: true,
            ttl: 1,
        }];
        let n = emit_extensions(&[ObjectRepr::Mpls(&stack)], &mut ext).unwrap();
        let te = |quote: &[u8]| {
            build(Ipv4Builder::new(R1, LO).icmp(&IcmpRepr::TimeExceeded {
                code: TimeExceeded::TtlExpired,
                body: ErrorBody {
                    quote,
                    extensions: Some(&ext[..n]),
                },
            }))
        };
        let r = m.classify(&te(&probe(40_000, 7)), 1).expect("error");
        assert_eq!(r.kind, ReplyKind::IcmpError);
        assert_eq!((r.from, r.icmp, r.index), (R1, Some((11, 0)), Some(0)));
        assert_eq!(r.mpls, stack.to_vec());
        assert!(
            m.classify(&te(&probe(40_001, 7)), 1).is_none(),
            "other port"
        );
        assert!(m.classify(&te(&probe(40_000, 8)), 1).is_none(), "other id");
        // A quote of the IPv4 header alone still matches on the header.
        let unreach = build(Ipv4Builder::new(R1, LO).icmp(&IcmpRepr::DstUnreachable {
            code: DstUnreachable::HostUnreachable,
            next_hop_mtu: 0,
            body: ErrorBody::quote(&probe(40_000, 7)[..20]),
        }));
        assert!(m.classify(&unreach, 1).is_some());
    }

    #[test]
    fn udp_answers_come_from_the_destination_port_to_the_source_port() {
        let meta = SentMeta {
            src: LO,
            dst: LO,
            protocol: 17,
            transport: SentTransport::Udp {
                sport: 40_000,
                dport: 7,
            },
            ident: Progression {
                first: 5,
                fixed: true,
            },
            kernel_ident: false,
            seq: None,
        };
        let m = Matcher::new(meta);
        let answer = build(Ipv4Builder::new(LO, LO).ident(99).udp(7, 40_000, b"pong"));
        let r = m.classify(&answer, 1).expect("answer");
        assert_eq!((r.kind, r.index), (ReplyKind::Udp, Some(0)));
        let own = build(Ipv4Builder::new(LO, LO).ident(5).udp(40_000, 7, b"ping"));
        assert!(m.classify(&own, 1).is_none());
        let other = build(Ipv4Builder::new(LO, LO).ident(99).udp(8, 40_000, b"x"));
        assert!(m.classify(&other, 1).is_none());
    }
}
