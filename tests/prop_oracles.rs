//! Hermetic property tests: rawkit's packet layer against two independent codecs.
//!
//! etherparse 0.21 and pnet_packet 0.35 were written by other people from the same RFCs; where
//! rawkit and both of them agree on every field of thousands of generated packets, the codecs are
//! right or all three are wrong in the same way. The tests go both ways (rawkit emits and the
//! oracles parse; etherparse emits and rawkit parses), compare the checksum code with the RFC 1071
//! byte-pair loop and pnet's, cut valid datagrams at every length and feed arbitrary bytes to every
//! parser (an `Err`, never a panic), and check the round trips (repr, options, fragments).
//!
//! Nothing here needs privileges or the network. Failures are kept next to this file
//! (`prop_oracles.regressions`) and replayed first on the next run.

use etherparse::icmpv4::{DestUnreachableHeader, ParameterProblemHeader, TimeExceededCode};
use etherparse::{
    IcmpEchoHeader, Icmpv4Slice, Icmpv4Type, IpDscp, IpEcn, IpFragOffset, IpNumber, Ipv4Header,
    Ipv4HeaderSlice, Ipv4Options, Ipv4Slice, LaxIpv4Slice, NetSlice, PacketBuilder, SlicedPacket,
    TransportSlice, UdpHeaderSlice,
};
use pnet_packet::Packet as _;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::FileFailurePersistence;
use rawkit::packet::builder::Ipv4Builder;
use rawkit::packet::checksum;
use rawkit::packet::display;
use rawkit::packet::fragment::{Fragmenter, fragment};
use rawkit::packet::icmp::{
    self, ErrorBody, IcmpPacket, IcmpRepr, IcmpType, MplsEntry, ObjectRepr, QuotedTransport,
};
use rawkit::packet::ipv4::{self, IpProtocol, Ipv4Option, Ipv4Packet, Ipv4Repr};
use rawkit::packet::udp::{UdpPacket, UdpRepr};
use std::net::Ipv4Addr;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

/// Generators and an independent model of what they generate. The encoders here are the test's
/// own (written from RFC 791, RFC 4884 and RFC 4950), so that a rawkit emitter is compared with
/// something other than itself.
mod arb {
    use super::*;

    pub fn addr() -> impl Strategy<Value = Ipv4Addr> {
        any::<[u8; 4]>().prop_map(Ipv4Addr::from)
    }

    /// One IPv4 option as the test understands it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Opt {
        Eol,
        Nop,
        /// Record route (7), loose (131) or strict (137) source route.
        Route {
            kind: u8,
            pointer: u8,
            slots: Vec<u8>,
        },
        Timestamp {
            pointer: u8,
            overflow: u8,
            flags: u8,
            slots: Vec<u8>,
        },
        RouterAlert(u16),
        Unknown {
            kind: u8,
            data: Vec<u8>,
        },
    }

    impl Opt {
        pub fn kind(&self) -> u8 {
            match self {
                Opt::Eol => 0,
                Opt::Nop => 1,
                Opt::Route { kind, .. } => *kind,
                Opt::Timestamp { .. } => 68,
                Opt::RouterAlert(_) => 148,
                Opt::Unknown { kind, .. } => *kind,
            }
        }

        /// The bytes after the type and length bytes.
        pub fn body(&self) -> Vec<u8> {
            match self {
                Opt::Eol | Opt::Nop => Vec::new(),
                Opt::Route { pointer, slots, .. } => {
                    let mut b = vec![*pointer];
                    b.extend_from_slice(slots);
                    b
                }
                Opt::Timestamp {
                    pointer,
                    overflow,
                    flags,
                    slots,
                } => {
                    let mut b = vec![*pointer, (overflow << 4) | flags];
                    b.extend_from_slice(slots);
                    b
                }
                Opt::RouterAlert(v) => v.to_be_bytes().to_vec(),
                Opt::Unknown { data, .. } => data.clone(),
            }
        }

        pub fn encode(&self, out: &mut Vec<u8>) {
            match self {
                Opt::Eol | Opt::Nop => out.push(self.kind()),
                _ => {
                    let body = self.body();
                    out.push(self.kind());
                    out.push((body.len() + 2) as u8);
                    out.extend_from_slice(&body);
                }
            }
        }

        pub fn len(&self) -> usize {
            let mut v = Vec::new();
            self.encode(&mut v);
            v.len()
        }

        /// What rawkit's parser gives, in the test's terms.
        pub fn from_rawkit(o: &Ipv4Option<'_>) -> Opt {
            match *o {
                Ipv4Option::EndOfList => Opt::Eol,
                Ipv4Option::Nop => Opt::Nop,
                Ipv4Option::RecordRoute { pointer, data } => Opt::Route {
                    kind: 7,
                    pointer,
                    slots: data.to_vec(),
                },
                Ipv4Option::LooseSourceRoute { pointer, data } => Opt::Route {
                    kind: 131,
                    pointer,
                    slots: data.to_vec(),
                },
                Ipv4Option::StrictSourceRoute { pointer, data } => Opt::Route {
                    kind: 137,
                    pointer,
                    slots: data.to_vec(),
                },
                Ipv4Option::Timestamp {
                    pointer,
                    overflow,
                    flags,
                    data,
                } => Opt::Timestamp {
                    pointer,
                    overflow,
                    flags,
                    slots: data.to_vec(),
                },
                Ipv4Option::RouterAlert(v) => Opt::RouterAlert(v),
                Ipv4Option::Unknown { kind, data } => Opt::Unknown {
                    kind,
                    data: data.to_vec(),
                },
                // Never generated: non-zero bytes after an end of list. Marked so it compares
                // unequal to anything generated.
                Ipv4Option::Padding(p) => Opt::Unknown {
                    kind: 0,
                    data: p.to_vec(),
                },
            }
        }
    }

    const KNOWN_KINDS: [u8; 7] = [0, 1, 7, 68, 131, 137, 148];

    pub fn opt() -> impl Strategy<Value = Opt> {
        let route =
            (prop::sample::select(vec![7u8, 131, 137]), 0usize..=9).prop_flat_map(|(kind, n)| {
                // RFC 791: the pointer is 1-based from the option's type byte, at least 4.
                let len = 3 + 4 * n;
                (4u8..=(len as u8 + 1), vec(any::<u8>(), 4 * n)).prop_map(
                    move |(pointer, slots)| Opt::Route {
                        kind,
                        pointer,
                        slots,
                    },
                )
            });
        let ts = (0usize..=9).prop_flat_map(|n| {
            let len = 4 + 4 * n;
            (
                5u8..=(len as u8 + 1),
                0u8..16,
                prop::sample::select(vec![0u8, 1, 3]),
                vec(any::<u8>(), 4 * n),
            )
                .prop_map(|(pointer, overflow, flags, slots)| Opt::Timestamp {
                    pointer,
                    overflow,
                    flags,
                    slots,
                })
        });
        let unknown = (
            any::<u8>().prop_filter("known option kind", |k| !KNOWN_KINDS.contains(k)),
            vec(any::<u8>(), 0..=8),
        )
            .prop_map(|(kind, data)| Opt::Unknown { kind, data });
        prop_oneof![
            2 => Just(Opt::Nop),
            3 => route,
            2 => ts,
            2 => any::<u16>().prop_map(Opt::RouterAlert),
            2 => unknown,
        ]
    }

    /// A whole option area: the options, an optional end of list, zero padding to 32 bits.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OptList {
        /// Every item rawkit should report, padding zeros included (each one an end of list).
        pub items: Vec<Opt>,
        /// The encoded area, a multiple of 4 bytes, at most 40.
        pub bytes: Vec<u8>,
    }

    pub fn opt_list() -> impl Strategy<Value = OptList> {
        (vec(opt(), 0..6), any::<bool>()).prop_map(|(opts, eol)| {
            let mut items = Vec::new();
            let mut bytes = Vec::new();
            for o in opts {
                if bytes.len() + o.len() + eol as usize > 40 {
                    break;
                }
                o.encode(&mut bytes);
                items.push(o);
            }
            if eol {
                bytes.push(0);
                items.push(Opt::Eol);
            }
            while bytes.len() % 4 != 0 {
                bytes.push(0);
                items.push(Opt::Eol);
            }
            OptList { items, bytes }
        })
    }

    /// Every field of an IPv4 header the builder can set.
    #[derive(Debug, Clone)]
    pub struct IpHdr {
        pub dscp: u8,
        pub ecn: u8,
        pub ident: u16,
        pub dont_frag: bool,
        pub more_frags: bool,
        pub reserved: bool,
        pub frag_offset: u16,
        pub ttl: u8,
        pub src: Ipv4Addr,
        pub dst: Ipv4Addr,
        pub options: OptList,
    }

    impl IpHdr {
        pub fn builder(&self) -> Ipv4Builder<'_> {
            Ipv4Builder::new(self.src, self.dst)
                .dscp(self.dscp)
                .ecn(self.ecn)
                .ident(self.ident)
                .dont_frag(self.dont_frag)
                .more_frags(self.more_frags)
                .reserved_flag(self.reserved)
                .frag_offset(self.frag_offset)
                .ttl(self.ttl)
                .options(&self.options.bytes)
        }

        pub fn header_len(&self) -> usize {
            20 + self.options.bytes.len()
        }

        pub fn is_fragment(&self) -> bool {
            self.more_frags || self.frag_offset != 0
        }
    }

    fn ip_hdr_with(
        more_frags: BoxedStrategy<bool>,
        frag_offset: BoxedStrategy<u16>,
    ) -> impl Strategy<Value = IpHdr> {
        (
            (0u8..64, 0u8..4, any::<u16>(), any::<bool>(), more_frags),
            (any::<bool>(), frag_offset, any::<u8>(), addr(), addr()),
            opt_list(),
        )
            .prop_map(
                |(
                    (dscp, ecn, ident, dont_frag, more_frags),
                    (reserved, frag_offset, ttl, src, dst),
                    options,
                )| IpHdr {
                    dscp,
                    ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    reserved,
                    frag_offset,
                    ttl,
                    src,
                    dst,
                    options,
                },
            )
    }

    /// Any header, fragments included.
    pub fn ip_hdr() -> impl Strategy<Value = IpHdr> {
        ip_hdr_with(any::<bool>().boxed(), (0u16..8192).boxed())
    }

    /// A header of a whole (unfragmented) datagram, so that the oracles decode its transport.
    pub fn ip_hdr_whole() -> impl Strategy<Value = IpHdr> {
        ip_hdr_with(Just(false).boxed(), Just(0u16).boxed())
    }

    /// Protocol numbers for raw payloads; 51 (AH) is left out because etherparse parses it as
    /// an extension header, which would change what it calls the payload.
    pub fn raw_protocol() -> impl Strategy<Value = u8> {
        any::<u8>().prop_filter("AH is an extension header for etherparse", |p| *p != 51)
    }

    /// The transport header of the datagram an ICMP error quotes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum QuotedL4 {
        Udp { src_port: u16, dst_port: u16 },
        Echo { ident: u16, seq_no: u16 },
    }

    /// The datagram an ICMP error quotes, built by etherparse (not rawkit), and how much of it
    /// the "router" quoted.
    #[derive(Debug, Clone)]
    pub struct Quoted {
        pub ttl: u8,
        pub ident: u16,
        pub tos: u8,
        pub src: Ipv4Addr,
        pub dst: Ipv4Addr,
        pub l4: QuotedL4,
        /// The whole original datagram.
        pub datagram: Vec<u8>,
        /// The quoted prefix: the IPv4 header, 8 transport bytes and `extra` more.
        pub quote: Vec<u8>,
    }

    pub fn quoted() -> impl Strategy<Value = Quoted> {
        let l4 = prop_oneof![
            (any::<u16>(), any::<u16>())
                .prop_map(|(src_port, dst_port)| QuotedL4::Udp { src_port, dst_port }),
            (any::<u16>(), any::<u16>())
                .prop_map(|(ident, seq_no)| QuotedL4::Echo { ident, seq_no }),
        ];
        (
            (any::<u8>(), any::<u16>(), 0u8..64, addr(), addr()),
            l4,
            vec(any::<u8>(), 0..200),
            any::<prop::sample::Index>(),
        )
            .prop_map(|((ttl, ident, dscp, src, dst), l4, payload, extra)| {
                let mut h = Ipv4Header::new(0, ttl, IpNumber(0), src.octets(), dst.octets())
                    .expect("ipv4 header");
                h.identification = ident;
                h.dscp = IpDscp::try_new(dscp).expect("dscp");
                let b = PacketBuilder::ip(etherparse::IpHeaders::Ipv4(h, Default::default()));
                let mut datagram = Vec::new();
                match l4 {
                    QuotedL4::Udp { src_port, dst_port } => b
                        .udp(src_port, dst_port)
                        .write(&mut datagram, &payload)
                        .expect("etherparse udp"),
                    QuotedL4::Echo { ident, seq_no } => b
                        .icmpv4_echo_request(ident, seq_no)
                        .write(&mut datagram, &payload)
                        .expect("etherparse echo"),
                }
                // RFC 792: the header and at least 8 bytes of data; RFC 1812 routers quote more.
                let cut = 28 + extra.index(payload.len() + 1);
                let quote = datagram[..cut].to_vec();
                Quoted {
                    ttl,
                    ident,
                    tos: dscp << 2,
                    src,
                    dst,
                    l4,
                    datagram,
                    quote,
                }
            })
    }

    /// An RFC 4884 extension object.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Obj {
        Mpls(Vec<MplsEntry>),
        Raw {
            class_num: u8,
            c_type: u8,
            payload: Vec<u8>,
        },
    }

    impl Obj {
        pub fn as_repr(&self) -> ObjectRepr<'_> {
            match self {
                Obj::Mpls(e) => ObjectRepr::Mpls(e),
                Obj::Raw {
                    class_num,
                    c_type,
                    payload,
                } => ObjectRepr::Raw {
                    class_num: *class_num,
                    c_type: *c_type,
                    payload,
                },
            }
        }
    }

    pub fn mpls_entry() -> impl Strategy<Value = MplsEntry> {
        (0u32..(1 << 20), 0u8..8, any::<bool>(), any::<u8>()).prop_map(
            |(label, tc, bottom, ttl)| MplsEntry {
                label,
                tc,
                bottom,
                ttl,
            },
        )
    }

    pub fn obj() -> impl Strategy<Value = Obj> {
        prop_oneof![
            vec(mpls_entry(), 1..=4).prop_map(Obj::Mpls),
            (
                2u8..=255,
                any::<u8>(),
                (0usize..=3).prop_flat_map(|w| vec(any::<u8>(), 4 * w))
            )
                .prop_map(|(class_num, c_type, payload)| Obj::Raw {
                    class_num,
                    c_type,
                    payload,
                }),
        ]
    }

    /// The test's own RFC 4884 encoder: version 2, objects as given, checksum by pnet.
    pub fn encode_extensions(objs: &[Obj]) -> Vec<u8> {
        let mut out = vec![0x20, 0, 0, 0];
        for o in objs {
            let (class, ctype, payload) = match o {
                Obj::Mpls(entries) => (
                    1u8,
                    1u8,
                    entries
                        .iter()
                        .flat_map(|e| {
                            ((e.label << 12)
                                | ((e.tc as u32) << 9)
                                | ((e.bottom as u32) << 8)
                                | e.ttl as u32)
                                .to_be_bytes()
                        })
                        .collect::<Vec<u8>>(),
                ),
                Obj::Raw {
                    class_num,
                    c_type,
                    payload,
                } => (*class_num, *c_type, payload.clone()),
            };
            out.extend_from_slice(&((4 + payload.len()) as u16).to_be_bytes());
            out.push(class);
            out.push(ctype);
            out.extend_from_slice(&payload);
        }
        let c = pnet_packet::util::checksum(&out, 1);
        out[2..4].copy_from_slice(&c.to_be_bytes());
        out
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ErrKind {
        DstUnreachable { code: u8, mtu: u16 },
        TimeExceeded { code: u8 },
        ParamProblem { code: u8, pointer: u8 },
    }

    impl ErrKind {
        pub fn msg_type(&self) -> u8 {
            match self {
                ErrKind::DstUnreachable { .. } => 3,
                ErrKind::TimeExceeded { .. } => 11,
                ErrKind::ParamProblem { .. } => 12,
            }
        }

        pub fn code(&self) -> u8 {
            match *self {
                ErrKind::DstUnreachable { code, .. }
                | ErrKind::TimeExceeded { code }
                | ErrKind::ParamProblem { code, .. } => code,
            }
        }
    }

    pub fn err_kind() -> impl Strategy<Value = ErrKind> {
        prop_oneof![
            (0u8..=15, any::<u16>()).prop_map(|(code, mtu)| ErrKind::DstUnreachable {
                code,
                // RFC 1191: only code 4 carries the next-hop MTU; the field is unused otherwise.
                mtu: if code == 4 { mtu } else { 0 },
            }),
            (0u8..=1).prop_map(|code| ErrKind::TimeExceeded { code }),
            (0u8..=2, any::<u8>()).prop_map(|(code, pointer)| ErrKind::ParamProblem {
                code,
                pointer: if code == 0 { pointer } else { 0 },
            }),
        ]
    }

    /// An ICMP error message, canonical: with extensions, the quote is already zero-padded to
    /// the RFC 4884 original datagram field (32-bit aligned, at least 128 bytes).
    #[derive(Debug, Clone)]
    pub struct ErrorMsg {
        pub kind: ErrKind,
        pub quoted: Quoted,
        /// The original datagram field as emitted (the quote, padded when extensions follow).
        pub field: Vec<u8>,
        pub objects: Option<Vec<Obj>>,
        pub ext: Option<Vec<u8>>,
    }

    impl ErrorMsg {
        pub fn body(&self) -> ErrorBody<'_> {
            ErrorBody {
                quote: &self.field,
                extensions: self.ext.as_deref(),
            }
        }

        pub fn repr(&self) -> IcmpRepr<'_> {
            let body = self.body();
            match self.kind {
                ErrKind::DstUnreachable { code, mtu } => IcmpRepr::DstUnreachable {
                    code: code.into(),
                    next_hop_mtu: mtu,
                    body,
                },
                ErrKind::TimeExceeded { code } => IcmpRepr::TimeExceeded {
                    code: code.into(),
                    body,
                },
                ErrKind::ParamProblem { code, pointer } => IcmpRepr::ParamProblem {
                    code,
                    pointer,
                    body,
                },
            }
        }

        /// The RFC 4884 length byte: the original datagram field in 32-bit words, 0 without
        /// extensions.
        pub fn length_words(&self) -> u8 {
            if self.ext.is_some() {
                (self.field.len() / 4) as u8
            } else {
                0
            }
        }

        /// Bytes 5 to 8 of the ICMP header, independently of rawkit.
        pub fn bytes5to8(&self) -> [u8; 4] {
            let len = self.length_words();
            match self.kind {
                ErrKind::DstUnreachable { mtu, .. } => {
                    let m = mtu.to_be_bytes();
                    [0, len, m[0], m[1]]
                }
                ErrKind::TimeExceeded { .. } => [0, len, 0, 0],
                ErrKind::ParamProblem { pointer, .. } => [pointer, len, 0, 0],
            }
        }

        /// Everything after the 8-byte ICMP header.
        pub fn data(&self) -> Vec<u8> {
            let mut d = self.field.clone();
            if let Some(e) = &self.ext {
                d.extend_from_slice(e);
            }
            d
        }
    }

    pub fn error_msg() -> impl Strategy<Value = ErrorMsg> {
        (err_kind(), quoted(), prop::option::of(vec(obj(), 1..=3))).prop_map(
            |(kind, quoted, objects)| {
                let mut field = quoted.quote.clone();
                let ext = objects.as_ref().map(|o| encode_extensions(o));
                if ext.is_some() {
                    // RFC 4884 section 4.1: pad to 32 bits and to at least 128 bytes.
                    let len = field.len().next_multiple_of(4).max(128);
                    field.resize(len, 0);
                }
                ErrorMsg {
                    kind,
                    quoted,
                    field,
                    objects,
                    ext,
                }
            },
        )
    }

    /// An echo request or reply.
    #[derive(Debug, Clone)]
    pub struct Echo {
        pub reply: bool,
        pub ident: u16,
        pub seq_no: u16,
        pub data: Vec<u8>,
    }

    impl Echo {
        pub fn repr(&self) -> IcmpRepr<'_> {
            if self.reply {
                IcmpRepr::EchoReply {
                    ident: self.ident,
                    seq_no: self.seq_no,
                    data: &self.data,
                }
            } else {
                IcmpRepr::EchoRequest {
                    ident: self.ident,
                    seq_no: self.seq_no,
                    data: &self.data,
                }
            }
        }
    }

    pub fn echo() -> impl Strategy<Value = Echo> {
        (
            any::<bool>(),
            any::<u16>(),
            any::<u16>(),
            vec(any::<u8>(), 0..600),
        )
            .prop_map(|(reply, ident, seq_no, data)| Echo {
                reply,
                ident,
                seq_no,
                data,
            })
    }

    /// A UDP datagram's header fields and payload.
    #[derive(Debug, Clone)]
    pub struct Udp {
        pub src_port: u16,
        pub dst_port: u16,
        pub payload: Vec<u8>,
    }

    pub fn udp() -> impl Strategy<Value = Udp> {
        (any::<u16>(), any::<u16>(), vec(any::<u8>(), 0..600)).prop_map(
            |(src_port, dst_port, payload)| Udp {
                src_port,
                dst_port,
                payload,
            },
        )
    }

    /// A whole, valid datagram of any of the kinds above, emitted by rawkit.
    pub fn datagram() -> impl Strategy<Value = Vec<u8>> {
        let echo = (ip_hdr_whole(), echo()).prop_map(|(h, e)| emit(&h.builder().icmp(&e.repr())));
        let error =
            (ip_hdr_whole(), error_msg()).prop_map(|(h, e)| emit(&h.builder().icmp(&e.repr())));
        let udp = (ip_hdr_whole(), udp())
            .prop_map(|(h, u)| emit(&h.builder().udp(u.src_port, u.dst_port, &u.payload)));
        let raw = (ip_hdr(), raw_protocol(), vec(any::<u8>(), 0..300))
            .prop_map(|(h, p, d)| emit(&h.builder().protocol(IpProtocol::from(p)).raw(&d)));
        prop_oneof![echo, error, udp, raw]
    }

    /// Emits with rawkit into an exact-size vector.
    pub fn emit(b: &Ipv4Builder<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; b.len()];
        let n = b.emit(&mut buf).expect("rawkit emit");
        assert_eq!(n, buf.len());
        buf
    }
}

use arb::{ErrKind, ErrorMsg, IpHdr, Opt, QuotedL4};

/// Checks the IPv4 header in `bytes` against what was asked for, in rawkit, etherparse and pnet.
fn assert_ipv4_agrees(
    bytes: &[u8],
    h: &IpHdr,
    protocol: u8,
    payload: &[u8],
) -> Result<(), TestCaseError> {
    let hl = h.header_len();
    let total = hl + payload.len();
    prop_assert_eq!(bytes.len(), total);

    // rawkit's own view.
    let ip = Ipv4Packet::new_checked(bytes).expect("rawkit new_checked");
    prop_assert_eq!(ip.version(), 4);
    prop_assert_eq!(ip.header_len(), hl);
    prop_assert_eq!(ip.dscp(), h.dscp);
    prop_assert_eq!(ip.ecn(), h.ecn);
    prop_assert_eq!(ip.total_len() as usize, total);
    prop_assert_eq!(ip.ident(), h.ident);
    prop_assert_eq!(ip.dont_frag(), h.dont_frag);
    prop_assert_eq!(ip.more_frags(), h.more_frags);
    prop_assert_eq!(ip.reserved_flag(), h.reserved);
    prop_assert_eq!(ip.frag_offset(), h.frag_offset);
    prop_assert_eq!(ip.ttl(), h.ttl);
    prop_assert_eq!(u8::from(ip.protocol()), protocol);
    prop_assert_eq!(ip.src_addr(), h.src);
    prop_assert_eq!(ip.dst_addr(), h.dst);
    prop_assert_eq!(ip.options(), &h.options.bytes[..]);
    prop_assert!(ip.verify_checksum());
    prop_assert_eq!(ip.compute_checksum(), ip.checksum());
    prop_assert_eq!(ip.payload(), payload);
    let opts: Vec<Opt> = ip
        .option_iter()
        .map(|o| Opt::from_rawkit(&o.expect("option parses")))
        .collect();
    prop_assert_eq!(&opts, &h.options.items);
    let repr = Ipv4Repr::parse(&ip).expect("rawkit Ipv4Repr::parse");
    prop_assert_eq!(repr.payload_len, payload.len());

    // etherparse.
    let e = Ipv4HeaderSlice::from_slice(bytes).expect("etherparse header");
    prop_assert_eq!(e.version(), 4);
    prop_assert_eq!(e.ihl() as usize * 4, hl);
    prop_assert_eq!(e.dcp().value(), h.dscp);
    prop_assert_eq!(e.ecn().value(), h.ecn);
    prop_assert_eq!(e.total_len() as usize, total);
    prop_assert_eq!(e.identification(), h.ident);
    prop_assert_eq!(e.dont_fragment(), h.dont_frag);
    prop_assert_eq!(e.more_fragments(), h.more_frags);
    // etherparse has no accessor for the reserved bit: read it from its header slice.
    prop_assert_eq!(e.slice()[6] & 0x80 != 0, h.reserved);
    prop_assert_eq!(e.fragments_offset().value(), h.frag_offset);
    prop_assert_eq!(e.ttl(), h.ttl);
    prop_assert_eq!(e.protocol().0, protocol);
    prop_assert_eq!(e.source_addr(), h.src);
    prop_assert_eq!(e.destination_addr(), h.dst);
    prop_assert_eq!(e.options(), &h.options.bytes[..]);
    prop_assert_eq!(e.header_checksum(), ip.checksum());
    prop_assert_eq!(e.is_fragmenting_payload(), h.is_fragment());
    // A header with a right checksum sums to all ones, so its complement is zero.
    prop_assert_eq!(
        etherparse::checksum::Sum16BitWords::new()
            .add_slice(e.slice())
            .ones_complement(),
        0
    );
    if !h.reserved {
        // etherparse recomputes from its decoded fields, which cannot hold the reserved bit.
        prop_assert_eq!(e.to_header().calc_header_checksum(), ip.checksum());
    }
    let s = Ipv4Slice::from_slice(bytes).expect("etherparse Ipv4Slice");
    prop_assert_eq!(s.payload().payload, payload);
    prop_assert_eq!(s.payload().ip_number.0, protocol);
    prop_assert_eq!(s.payload().fragmented, h.is_fragment());

    // pnet.
    let p = pnet_packet::ipv4::Ipv4Packet::new(bytes).expect("pnet ipv4");
    prop_assert_eq!(p.get_version(), 4);
    prop_assert_eq!(p.get_header_length() as usize * 4, hl);
    prop_assert_eq!(p.get_dscp(), h.dscp);
    prop_assert_eq!(p.get_ecn(), h.ecn);
    prop_assert_eq!(p.get_total_length() as usize, total);
    prop_assert_eq!(p.get_identification(), h.ident);
    let flags = (h.reserved as u8) << 2 | (h.dont_frag as u8) << 1 | h.more_frags as u8;
    prop_assert_eq!(p.get_flags(), flags);
    prop_assert_eq!(p.get_fragment_offset(), h.frag_offset);
    prop_assert_eq!(p.get_ttl(), h.ttl);
    prop_assert_eq!(p.get_next_level_protocol().0, protocol);
    prop_assert_eq!(p.get_checksum(), ip.checksum());
    prop_assert_eq!(pnet_packet::ipv4::checksum(&p), ip.checksum());
    prop_assert_eq!(p.get_source(), h.src);
    prop_assert_eq!(p.get_destination(), h.dst);
    prop_assert_eq!(p.get_options_raw(), &h.options.bytes[..]);
    prop_assert_eq!(p.payload(), payload);
    // pnet decides whether an option has a length byte from its 5-bit number alone, so it reads
    // a type such as 0x20 or 0xa1 (number 0 or 1 with the class or copied bits set) as a
    // one-byte option: its option list is only an oracle when no such type is present.
    let pnet_reads_options_right = h
        .options
        .items
        .iter()
        .all(|o| o.kind() <= 1 || o.kind() & 0x1f > 1);
    if !pnet_reads_options_right {
        return Ok(());
    }
    let pnet_opts: Vec<(u8, Vec<u8>)> = p
        .get_options_iter()
        .map(|o| {
            let kind = (o.get_copied() << 7) | (o.get_class() << 5) | o.get_number().0;
            (kind, o.payload().to_vec())
        })
        .collect();
    let want: Vec<(u8, Vec<u8>)> = h
        .options
        .items
        .iter()
        .map(|o| (o.kind(), o.body()))
        .collect();
    prop_assert_eq!(pnet_opts, want);
    Ok(())
}

/// The ICMP checksum as etherparse computes it, over all eight header bytes and the data
/// (`Icmpv4Type::Unknown` sums bytes 5-8 whatever the type).
fn etherparse_icmp_checksum(icmp: &[u8]) -> u16 {
    Icmpv4Type::Unknown {
        type_u8: icmp[0],
        code_u8: icmp[1],
        bytes5to8: [icmp[4], icmp[5], icmp[6], icmp[7]],
    }
    .calc_checksum(&icmp[8..])
}

/// Checks what rawkit reads of a quote against the datagram that was quoted.
fn assert_quote_agrees(
    icmp_view: &IcmpPacket<&[u8]>,
    q: &arb::Quoted,
) -> Result<(), TestCaseError> {
    let info = icmp_view.quote_info().expect("rawkit quote_info");
    prop_assert_eq!(info.src_addr, q.src);
    prop_assert_eq!(info.dst_addr, q.dst);
    prop_assert_eq!(info.ident, q.ident);
    prop_assert_eq!(info.ttl, q.ttl);
    prop_assert_eq!(info.tos, q.tos);
    prop_assert_eq!(info.total_len as usize, q.datagram.len());
    prop_assert_eq!(info.header_len, 20);
    // etherparse reads the same quoted header laxly (the total length exceeds the quote).
    let (lax, _) = LaxIpv4Slice::from_slice(&q.quote).expect("etherparse lax quote");
    prop_assert_eq!(lax.header().source_addr(), info.src_addr);
    prop_assert_eq!(lax.header().destination_addr(), info.dst_addr);
    prop_assert_eq!(lax.header().identification(), info.ident);
    prop_assert_eq!(lax.header().ttl(), info.ttl);
    prop_assert_eq!(lax.header().total_len(), info.total_len);
    prop_assert_eq!(lax.header().protocol().0, u8::from(info.protocol));
    let quoted_transport = lax.payload().payload;
    match q.l4 {
        QuotedL4::Udp { src_port, dst_port } => {
            let u = UdpHeaderSlice::from_slice(quoted_transport).expect("etherparse quoted udp");
            prop_assert_eq!(
                info.transport,
                QuotedTransport::Ports {
                    src_port,
                    dst_port,
                    checksum: u.checksum(),
                }
            );
            prop_assert_eq!(u.source_port(), src_port);
            prop_assert_eq!(u.destination_port(), dst_port);
        }
        QuotedL4::Echo { ident, seq_no } => {
            let e = Icmpv4Slice::from_slice(quoted_transport).expect("etherparse quoted icmp");
            prop_assert_eq!(
                e.icmp_type(),
                Icmpv4Type::EchoRequest(IcmpEchoHeader {
                    id: ident,
                    seq: seq_no
                })
            );
            prop_assert_eq!(
                info.transport,
                QuotedTransport::Icmp {
                    msg_type: 8,
                    code: 0,
                    checksum: e.checksum(),
                    ident,
                    seq_no,
                }
            );
        }
    }
    Ok(())
}

fn check_echo_emitted(h: &IpHdr, echo: &arb::Echo) -> Result<(), TestCaseError> {
    let repr = echo.repr();
    let bytes = arb::emit(&h.builder().icmp(&repr));
    let icmp_len = 8 + echo.data.len();
    let hl = h.header_len();
    assert_ipv4_agrees(&bytes, h, 1, &bytes[hl..])?;
    let icmp_bytes = &bytes[hl..];
    prop_assert_eq!(icmp_bytes.len(), icmp_len);

    // rawkit.
    let view = IcmpPacket::new_checked(icmp_bytes).expect("rawkit icmp");
    prop_assert!(view.verify_checksum());
    prop_assert_eq!(IcmpRepr::parse(&view, true).expect("rawkit parse"), repr);
    let t = if echo.reply { 0u8 } else { 8 };

    // etherparse: through the whole-packet slicer.
    let sliced = SlicedPacket::from_ip(&bytes).expect("etherparse from_ip");
    prop_assert!(matches!(sliced.net, Some(NetSlice::Ipv4(_))));
    let Some(TransportSlice::Icmpv4(e)) = sliced.transport else {
        return Err(TestCaseError::fail("etherparse saw no ICMPv4"));
    };
    let want = IcmpEchoHeader {
        id: echo.ident,
        seq: echo.seq_no,
    };
    if echo.reply {
        prop_assert_eq!(e.icmp_type(), Icmpv4Type::EchoReply(want));
    } else {
        prop_assert_eq!(e.icmp_type(), Icmpv4Type::EchoRequest(want));
    }
    prop_assert_eq!(e.type_u8(), t);
    prop_assert_eq!(e.code_u8(), 0);
    prop_assert_eq!(e.checksum(), view.checksum());
    prop_assert_eq!(e.icmp_type().calc_checksum(e.payload()), view.checksum());
    prop_assert_eq!(e.payload(), &echo.data[..]);

    // pnet.
    let p = pnet_packet::icmp::IcmpPacket::new(icmp_bytes).expect("pnet icmp");
    prop_assert_eq!(p.get_icmp_type().0, t);
    prop_assert_eq!(p.get_icmp_code().0, 0);
    prop_assert_eq!(pnet_packet::icmp::checksum(&p), p.get_checksum());
    prop_assert_eq!(p.get_checksum(), view.checksum());
    if echo.reply {
        let r = pnet_packet::icmp::echo_reply::EchoReplyPacket::new(icmp_bytes).expect("pnet");
        prop_assert_eq!(r.get_identifier(), echo.ident);
        prop_assert_eq!(r.get_sequence_number(), echo.seq_no);
        prop_assert_eq!(r.payload(), &echo.data[..]);
    } else {
        let r = pnet_packet::icmp::echo_request::EchoRequestPacket::new(icmp_bytes).expect("pnet");
        prop_assert_eq!(r.get_identifier(), echo.ident);
        prop_assert_eq!(r.get_sequence_number(), echo.seq_no);
        prop_assert_eq!(r.payload(), &echo.data[..]);
    }
    Ok(())
}

fn check_error_emitted(h: &IpHdr, m: &ErrorMsg) -> Result<(), TestCaseError> {
    let repr = m.repr();
    let bytes = arb::emit(&h.builder().icmp(&repr));
    let hl = h.header_len();
    assert_ipv4_agrees(&bytes, h, 1, &bytes[hl..])?;
    let icmp_bytes = &bytes[hl..];
    let data = m.data();
    prop_assert_eq!(icmp_bytes.len(), 8 + data.len());
    // Byte for byte what the test's own encoder says.
    prop_assert_eq!(icmp_bytes[0], m.kind.msg_type());
    prop_assert_eq!(icmp_bytes[1], m.kind.code());
    prop_assert_eq!(&icmp_bytes[4..8], &m.bytes5to8()[..]);
    prop_assert_eq!(&icmp_bytes[8..], &data[..]);

    // rawkit.
    let view = IcmpPacket::new_checked(icmp_bytes).expect("rawkit icmp");
    prop_assert!(view.verify_checksum());
    prop_assert_eq!(IcmpRepr::parse(&view, true).expect("rawkit parse"), repr);
    prop_assert_eq!(view.rfc4884_length(), m.length_words());
    prop_assert_eq!(view.quoted_datagram(), &m.field[..]);
    assert_quote_agrees(&view, &m.quoted)?;
    match (&m.objects, view.extensions()) {
        (None, None) => {}
        (Some(objs), Some(ext)) => {
            let ext = ext.expect("rawkit extensions");
            prop_assert_eq!(ext.version(), 2);
            prop_assert!(ext.verify_checksum());
            prop_assert_eq!(Some(ext.as_bytes()), m.ext.as_deref());
            let got: Vec<_> = ext.objects().map(|o| o.expect("object parses")).collect();
            prop_assert_eq!(got.len(), objs.len());
            for (g, want) in got.iter().zip(objs) {
                match want {
                    arb::Obj::Mpls(entries) => {
                        prop_assert!(g.is_mpls());
                        prop_assert_eq!(&g.mpls_entries().collect::<Vec<_>>(), entries);
                    }
                    arb::Obj::Raw {
                        class_num,
                        c_type,
                        payload,
                    } => {
                        prop_assert_eq!(g.class_num, *class_num);
                        prop_assert_eq!(g.c_type, *c_type);
                        prop_assert_eq!(g.payload, &payload[..]);
                        prop_assert_eq!(g.mpls_entries().count(), 0);
                    }
                }
            }
        }
        (want, got) => {
            return Err(TestCaseError::fail(format!(
                "extensions: wanted {want:?}, rawkit found {:?}",
                got.is_some()
            )));
        }
    }

    // etherparse.
    let sliced = SlicedPacket::from_ip(&bytes).expect("etherparse from_ip");
    let Some(TransportSlice::Icmpv4(e)) = sliced.transport else {
        return Err(TestCaseError::fail("etherparse saw no ICMPv4"));
    };
    prop_assert_eq!(e.type_u8(), m.kind.msg_type());
    prop_assert_eq!(e.code_u8(), m.kind.code());
    prop_assert_eq!(e.bytes5to8(), m.bytes5to8());
    prop_assert_eq!(e.checksum(), view.checksum());
    prop_assert_eq!(etherparse_icmp_checksum(icmp_bytes), view.checksum());
    prop_assert_eq!(e.payload(), &data[..]);
    let want_type = match m.kind {
        ErrKind::DstUnreachable { code, mtu } => Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::from_values(code, mtu).expect("known code"),
        ),
        ErrKind::TimeExceeded { code } => {
            Icmpv4Type::TimeExceeded(TimeExceededCode::from_u8(code).expect("known code"))
        }
        ErrKind::ParamProblem { code, pointer } => Icmpv4Type::ParameterProblem(
            ParameterProblemHeader::from_values(code, pointer).expect("known code"),
        ),
    };
    prop_assert_eq!(e.icmp_type(), want_type);
    if m.ext.is_none() {
        // Without the RFC 4884 length byte, etherparse's type-aware checksum covers every byte.
        prop_assert_eq!(e.icmp_type().calc_checksum(e.payload()), view.checksum());
    }

    // pnet.
    let p = pnet_packet::icmp::IcmpPacket::new(icmp_bytes).expect("pnet icmp");
    prop_assert_eq!(p.get_icmp_type().0, m.kind.msg_type());
    prop_assert_eq!(p.get_icmp_code().0, m.kind.code());
    prop_assert_eq!(pnet_packet::icmp::checksum(&p), view.checksum());
    match m.kind {
        ErrKind::DstUnreachable { mtu, .. } => {
            use pnet_packet::icmp::destination_unreachable::DestinationUnreachablePacket;
            let d = DestinationUnreachablePacket::new(icmp_bytes).expect("pnet unreachable");
            prop_assert_eq!(d.get_next_hop_mtu(), mtu);
            prop_assert_eq!(d.get_unused(), m.length_words() as u16);
            prop_assert_eq!(d.payload(), &data[..]);
        }
        ErrKind::TimeExceeded { .. } => {
            use pnet_packet::icmp::time_exceeded::TimeExceededPacket;
            let t = TimeExceededPacket::new(icmp_bytes).expect("pnet time exceeded");
            prop_assert_eq!(t.get_unused(), (m.length_words() as u32) << 16);
            prop_assert_eq!(t.payload(), &data[..]);
        }
        ErrKind::ParamProblem { .. } => {
            prop_assert_eq!(&p.payload()[4..], &data[..]);
        }
    }
    Ok(())
}

fn check_udp_emitted(h: &IpHdr, u: &arb::Udp) -> Result<(), TestCaseError> {
    let bytes = arb::emit(&h.builder().udp(u.src_port, u.dst_port, &u.payload));
    let hl = h.header_len();
    assert_ipv4_agrees(&bytes, h, 17, &bytes[hl..])?;
    let udp_bytes = &bytes[hl..];
    let len = 8 + u.payload.len();
    prop_assert_eq!(udp_bytes.len(), len);

    // rawkit.
    let view = UdpPacket::new_checked(udp_bytes).expect("rawkit udp");
    prop_assert_eq!(view.src_port(), u.src_port);
    prop_assert_eq!(view.dst_port(), u.dst_port);
    prop_assert_eq!(view.len() as usize, len);
    prop_assert_eq!(view.payload(), &u.payload[..]);
    prop_assert_ne!(view.checksum(), 0);
    prop_assert!(view.verify_checksum(h.src, h.dst));
    prop_assert_eq!(
        UdpRepr::parse(&view, h.src, h.dst).expect("rawkit UdpRepr::parse"),
        UdpRepr {
            src_port: u.src_port,
            dst_port: u.dst_port,
        }
    );

    // etherparse.
    let sliced = SlicedPacket::from_ip(&bytes).expect("etherparse from_ip");
    let Some(TransportSlice::Udp(e)) = sliced.transport else {
        return Err(TestCaseError::fail("etherparse saw no UDP"));
    };
    prop_assert_eq!(e.source_port(), u.src_port);
    prop_assert_eq!(e.destination_port(), u.dst_port);
    prop_assert_eq!(e.length() as usize, len);
    prop_assert_eq!(e.checksum(), view.checksum());
    prop_assert_eq!(e.payload(), &u.payload[..]);
    let eh = UdpHeaderSlice::from_slice(udp_bytes).expect("etherparse udp header");
    prop_assert_eq!(eh.length() as usize, len);
    let want = eh
        .to_header()
        .calc_checksum_ipv4_raw(h.src.octets(), h.dst.octets(), &u.payload)
        .expect("etherparse udp checksum");
    prop_assert_eq!(want, view.checksum());

    // pnet.
    let p = pnet_packet::udp::UdpPacket::new(udp_bytes).expect("pnet udp");
    prop_assert_eq!(p.get_source(), u.src_port);
    prop_assert_eq!(p.get_destination(), u.dst_port);
    prop_assert_eq!(p.get_length() as usize, len);
    prop_assert_eq!(p.get_checksum(), view.checksum());
    prop_assert_eq!(p.payload(), &u.payload[..]);
    // pnet leaves a computed 0 as 0; RFC 768 sends it as 0xffff.
    let pnet_sum = match pnet_packet::udp::ipv4_checksum(&p, &h.src, &h.dst) {
        0 => 0xffff,
        c => c,
    };
    prop_assert_eq!(pnet_sum, view.checksum());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    // ---- rawkit emits, the oracles parse ----

    #[test]
    fn rawkit_ipv4_header_with_options_parses_identically_in_etherparse_and_pnet(
        h in arb::ip_hdr(),
        protocol in arb::raw_protocol(),
        payload in vec(any::<u8>(), 0..300),
    ) {
        let bytes = arb::emit(&h.builder().protocol(IpProtocol::from(protocol)).raw(&payload));
        assert_ipv4_agrees(&bytes, &h, protocol, &payload)?;
    }

    #[test]
    fn rawkit_echo_request_and_reply_parse_identically_in_etherparse_and_pnet(
        h in arb::ip_hdr_whole(),
        echo in arb::echo(),
    ) {
        check_echo_emitted(&h, &echo)?;
    }

    #[test]
    fn rawkit_icmp_errors_with_quotes_and_extensions_parse_identically_in_etherparse_and_pnet(
        h in arb::ip_hdr_whole(),
        m in arb::error_msg(),
    ) {
        check_error_emitted(&h, &m)?;
    }

    #[test]
    fn rawkit_udp_datagram_parses_identically_in_etherparse_and_pnet(
        h in arb::ip_hdr_whole(),
        u in arb::udp(),
    ) {
        check_udp_emitted(&h, &u)?;
    }

    #[test]
    fn rawkit_extension_emit_matches_an_independent_rfc4884_encoding(
        objs in vec(arb::obj(), 0..=4),
    ) {
        let reprs: Vec<ObjectRepr<'_>> = objs.iter().map(|o| o.as_repr()).collect();
        let mut buf = vec![0xa5u8; 200];
        let n = icmp::emit_extensions(&reprs, &mut buf).expect("emit_extensions");
        prop_assert_eq!(&buf[..n], &arb::encode_extensions(&objs)[..]);
        prop_assert_eq!(pnet_packet::util::checksum(&buf[..n], 1), u16::from_be_bytes([buf[2], buf[3]]));
    }

    // ---- the oracles emit, rawkit parses ----

    #[test]
    fn etherparse_ipv4_header_with_options_parses_identically_in_rawkit(
        h in arb::ip_hdr(),
        protocol in any::<u8>(),
        payload in vec(any::<u8>(), 0..300),
    ) {
        let mut e = Ipv4Header {
            dscp: IpDscp::try_new(h.dscp).expect("dscp"),
            ecn: IpEcn::try_new(h.ecn).expect("ecn"),
            total_len: 0,
            identification: h.ident,
            dont_fragment: h.dont_frag,
            more_fragments: h.more_frags,
            fragment_offset: IpFragOffset::try_new(h.frag_offset).expect("offset"),
            time_to_live: h.ttl,
            protocol: IpNumber(protocol),
            header_checksum: 0,
            source: h.src.octets(),
            destination: h.dst.octets(),
            options: Ipv4Options::try_from(&h.options.bytes[..]).expect("options"),
        };
        e.set_payload_len(payload.len()).expect("payload len");
        let mut bytes = Vec::new();
        e.write(&mut bytes).expect("etherparse write");
        bytes.extend_from_slice(&payload);

        let ip = Ipv4Packet::new_checked(&bytes[..]).expect("rawkit new_checked");
        let repr = Ipv4Repr::parse(&ip).expect("rawkit verifies etherparse's checksum");
        prop_assert_eq!(repr, Ipv4Repr {
            src_addr: h.src,
            dst_addr: h.dst,
            protocol: IpProtocol::from(protocol),
            payload_len: payload.len(),
            ttl: h.ttl,
            tos: (h.dscp << 2) | h.ecn,
            ident: h.ident,
            dont_frag: h.dont_frag,
            more_frags: h.more_frags,
            frag_offset: h.frag_offset,
        });
        prop_assert_eq!(ip.header_len(), h.header_len());
        prop_assert_eq!(ip.dscp(), h.dscp);
        prop_assert_eq!(ip.ecn(), h.ecn);
        prop_assert!(!ip.reserved_flag());
        prop_assert_eq!(ip.checksum(), e.calc_header_checksum());
        prop_assert_eq!(ip.payload(), &payload[..]);
        prop_assert_eq!(ip.is_fragment(), h.is_fragment());
        let opts: Vec<Opt> = ip
            .option_iter()
            .map(|o| Opt::from_rawkit(&o.expect("option parses")))
            .collect();
        prop_assert_eq!(opts, h.options.items.clone());
    }

    #[test]
    fn etherparse_echo_request_and_reply_parse_identically_in_rawkit(
        src in arb::addr(),
        dst in arb::addr(),
        ttl in any::<u8>(),
        echo in arb::echo(),
    ) {
        let b = PacketBuilder::ipv4(src.octets(), dst.octets(), ttl);
        let b = if echo.reply {
            b.icmpv4_echo_reply(echo.ident, echo.seq_no)
        } else {
            b.icmpv4_echo_request(echo.ident, echo.seq_no)
        };
        let mut bytes = Vec::new();
        b.write(&mut bytes, &echo.data).expect("etherparse write");

        let ip = Ipv4Packet::new_checked(&bytes[..]).expect("rawkit ipv4");
        let repr = Ipv4Repr::parse(&ip).expect("rawkit verifies the header checksum");
        prop_assert_eq!((repr.src_addr, repr.dst_addr, repr.ttl), (src, dst, ttl));
        prop_assert_eq!(repr.protocol, IpProtocol::Icmp);
        prop_assert_eq!(repr.payload_len, 8 + echo.data.len());
        let view = IcmpPacket::new_checked(ip.payload()).expect("rawkit icmp");
        prop_assert!(view.verify_checksum());
        prop_assert_eq!(view.msg_type(), if echo.reply { IcmpType::EchoReply } else { IcmpType::EchoRequest });
        prop_assert_eq!(view.echo_ident(), echo.ident);
        prop_assert_eq!(view.echo_seq_no(), echo.seq_no);
        prop_assert_eq!(IcmpRepr::parse(&view, true).expect("rawkit parse"), echo.repr());
        prop_assert_eq!(
            display::summary(&bytes),
            format!(
                "IP {src} > {dst}: ICMP echo {}, id {}, seq {}, length {}",
                if echo.reply { "reply" } else { "request" },
                echo.ident,
                echo.seq_no,
                8 + echo.data.len()
            )
        );
    }

    #[test]
    fn etherparse_udp_datagram_parses_identically_in_rawkit(
        src in arb::addr(),
        dst in arb::addr(),
        ttl in any::<u8>(),
        u in arb::udp(),
    ) {
        let mut bytes = Vec::new();
        PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
            .udp(u.src_port, u.dst_port)
            .write(&mut bytes, &u.payload)
            .expect("etherparse write");

        let ip = Ipv4Packet::new_checked(&bytes[..]).expect("rawkit ipv4");
        prop_assert!(Ipv4Repr::parse(&ip).is_ok());
        prop_assert_eq!(ip.protocol(), IpProtocol::Udp);
        let view = UdpPacket::new_checked(ip.payload()).expect("rawkit udp");
        prop_assert_eq!(view.src_port(), u.src_port);
        prop_assert_eq!(view.dst_port(), u.dst_port);
        prop_assert_eq!(view.len() as usize, 8 + u.payload.len());
        prop_assert_eq!(view.payload(), &u.payload[..]);
        prop_assert!(view.verify_checksum(src, dst));
        prop_assert_eq!(view.compute_checksum(src, dst), view.checksum());
        prop_assert!(UdpRepr::parse(&view, src, dst).is_ok());
    }

    #[test]
    fn etherparse_icmp_errors_parse_identically_in_rawkit(
        src in arb::addr(),
        dst in arb::addr(),
        kind in arb::err_kind(),
        q in arb::quoted(),
    ) {
        let icmp_type = match kind {
            ErrKind::DstUnreachable { code, mtu } => Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::from_values(code, mtu).expect("known code"),
            ),
            ErrKind::TimeExceeded { code } => {
                Icmpv4Type::TimeExceeded(TimeExceededCode::from_u8(code).expect("known code"))
            }
            ErrKind::ParamProblem { code, pointer } => Icmpv4Type::ParameterProblem(
                ParameterProblemHeader::from_values(code, pointer).expect("known code"),
            ),
        };
        let mut bytes = Vec::new();
        PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
            .icmpv4(icmp_type)
            .write(&mut bytes, &q.quote)
            .expect("etherparse write");

        let ip = Ipv4Packet::new_checked(&bytes[..]).expect("rawkit ipv4");
        prop_assert!(Ipv4Repr::parse(&ip).is_ok());
        let view = IcmpPacket::new_checked(ip.payload()).expect("rawkit icmp");
        prop_assert!(view.verify_checksum());
        prop_assert_eq!(view.extension_offset(), None);
        prop_assert_eq!(view.quoted_datagram(), &q.quote[..]);
        let body = ErrorBody::quote(&q.quote);
        let want = match kind {
            ErrKind::DstUnreachable { code, mtu } => IcmpRepr::DstUnreachable {
                code: code.into(),
                next_hop_mtu: mtu,
                body,
            },
            ErrKind::TimeExceeded { code } => IcmpRepr::TimeExceeded { code: code.into(), body },
            ErrKind::ParamProblem { code, pointer } => IcmpRepr::ParamProblem { code, pointer, body },
        };
        prop_assert_eq!(IcmpRepr::parse(&view, true).expect("rawkit parse"), want);
        assert_quote_agrees(&view, &q)?;
    }

    #[test]
    fn etherparse_icmp_errors_with_rfc4884_extensions_parse_identically_in_rawkit(
        src in arb::addr(),
        dst in arb::addr(),
        m in arb::error_msg().prop_filter("with extensions", |m| m.ext.is_some()),
    ) {
        // etherparse has no RFC 4884 support: the length byte goes in through the raw type.
        let mut bytes = Vec::new();
        PacketBuilder::ipv4(src.octets(), dst.octets(), 255)
            .icmpv4(Icmpv4Type::Unknown {
                type_u8: m.kind.msg_type(),
                code_u8: m.kind.code(),
                bytes5to8: m.bytes5to8(),
            })
            .write(&mut bytes, &m.data())
            .expect("etherparse write");

        let ip = Ipv4Packet::new_checked(&bytes[..]).expect("rawkit ipv4");
        let view = IcmpPacket::new_checked(ip.payload()).expect("rawkit icmp");
        prop_assert!(view.verify_checksum());
        prop_assert_eq!(IcmpRepr::parse(&view, true).expect("rawkit parse"), m.repr());
        assert_quote_agrees(&view, &m.quoted)?;
        let ext = view.extensions().expect("extensions announced").expect("extensions parse");
        prop_assert!(ext.verify_checksum());
        let mpls: Vec<MplsEntry> = ext
            .objects()
            .map(|o| o.expect("object parses"))
            .filter(|o| o.is_mpls())
            .flat_map(|o| o.mpls_entries().collect::<Vec<_>>())
            .collect();
        let want: Vec<MplsEntry> = m
            .objects
            .iter()
            .flatten()
            .filter_map(|o| match o {
                arb::Obj::Mpls(e) => Some(e.clone()),
                arb::Obj::Raw { .. } => None,
            })
            .flatten()
            .collect();
        prop_assert_eq!(mpls, want);
    }

    // ---- the checksum ----

    #[test]
    fn checksum_equals_the_byte_pair_reference_and_pnet_for_any_length(
        data in vec(any::<u8>(), 0..=4000),
    ) {
        let s = checksum::sum(&data);
        prop_assert_eq!(s, checksum::sum_reference(&data));
        prop_assert_eq!(checksum::checksum(&data), !s);
        if !data.is_empty() {
            // pnet skips the word at `skipword`; past the end it skips nothing. It returns 0 for
            // an empty slice, where the complement of an empty sum is 0xffff.
            prop_assert_eq!(checksum::checksum(&data), pnet_packet::util::checksum(&data, usize::MAX));
        }
        prop_assert_eq!(
            checksum::checksum(&data),
            // etherparse sums in native byte order; its callers convert with to_be().
            etherparse::checksum::Sum16BitWords::new()
                .add_slice(&data)
                .ones_complement()
                .to_be()
        );
    }

    #[test]
    fn checksum_of_all_ones_data_matches_reference(len in 0usize..=4000, fill in prop::sample::select(vec![0x00u8, 0xff, 0x80, 0x01])) {
        let data = vec![fill; len];
        prop_assert_eq!(checksum::sum(&data), checksum::sum_reference(&data));
    }

    #[test]
    fn accumulator_over_random_splits_equals_one_shot(
        data in vec(any::<u8>(), 0..=4000),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.sort_unstable();
        let mut acc = checksum::Accumulator::new();
        let mut start = 0;
        for p in points.into_iter().chain(std::iter::once(data.len())) {
            acc.add(&data[start..p]);
            start = p;
        }
        prop_assert_eq!(acc.sum(), checksum::sum_reference(&data));
        prop_assert_eq!(acc.checksum(), checksum::checksum(&data));
    }

    #[test]
    fn pseudo_header_checksum_matches_pnet_udp_checksum(
        src in arb::addr(),
        dst in arb::addr(),
        u in arb::udp(),
    ) {
        let mut buf = vec![0u8; 8 + u.payload.len()];
        UdpRepr { src_port: u.src_port, dst_port: u.dst_port }
            .emit(&mut buf, &u.payload, src, dst)
            .expect("rawkit udp emit");
        let mut acc = checksum::pseudo_header(src, dst, 17, buf.len() as u16);
        let mut zeroed = buf.clone();
        zeroed[6] = 0;
        zeroed[7] = 0;
        acc.add(&zeroed);
        let pnet = pnet_packet::udp::ipv4_checksum(
            &pnet_packet::udp::UdpPacket::new(&buf).expect("pnet udp"),
            &src,
            &dst,
        );
        prop_assert_eq!(acc.checksum(), pnet);
        let sent = u16::from_be_bytes([buf[6], buf[7]]);
        prop_assert_eq!(sent, if pnet == 0 { 0xffff } else { pnet });
    }

    // ---- robustness: truncation and arbitrary bytes ----

    #[test]
    fn every_truncation_of_a_valid_datagram_is_an_error_never_a_panic(d in arb::datagram()) {
        let ip = Ipv4Packet::new_checked(&d[..]).expect("whole datagram parses");
        let hl = ip.header_len();
        let proto = ip.protocol();
        let first = ip.frag_offset() == 0;
        for len in 0..d.len() {
            let cut = &d[..len];
            prop_assert!(Ipv4Packet::new_checked(cut).is_err(), "ipv4 prefix {} accepted", len);
            match Ipv4Packet::new_lax(cut) {
                Ok(lax) => {
                    prop_assert!(len >= hl);
                    prop_assert_eq!(lax.payload(), &d[hl..len]);
                    prop_assert!(lax.is_payload_truncated());
                }
                Err(_) => prop_assert!(len < hl),
            }
            exercise_everything(cut);
        }
        let transport = &d[hl..];
        match proto {
            IpProtocol::Icmp if first => {
                for len in 0..=transport.len() {
                    let cut = &transport[..len];
                    match IcmpPacket::new_checked(cut) {
                        Ok(p) => {
                            prop_assert!(len >= 8);
                            // A cut message never verifies (unless the cut bytes summed to zero).
                            let _ = IcmpRepr::parse(&p, true);
                            let _ = IcmpRepr::parse(&p, false).expect("header present");
                            exercise_icmp(&p);
                        }
                        Err(_) => prop_assert!(len < 8),
                    }
                }
            }
            IpProtocol::Udp if first => {
                let udp_len = UdpPacket::new_checked(transport).expect("udp").len() as usize;
                for len in 0..udp_len {
                    prop_assert!(UdpPacket::new_checked(&transport[..len]).is_err());
                }
            }
            _ => {}
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_parser_or_display(data in vec(any::<u8>(), 0..2000)) {
        exercise_everything(&data);
        // Shaped like an IPv4 header, so that the deeper layers are reached too.
        if data.len() >= 20 {
            for (first, proto) in [(0x45u8, 1u8), (0x45, 17), (0x4f, 1), (0x46, 17)] {
                let mut d = data.clone();
                d[0] = first;
                d[9] = proto;
                let total = d.len().min(65535) as u16;
                d[2..4].copy_from_slice(&total.to_be_bytes());
                d[6] &= 0xe0;
                d[7] = 0;
                exercise_everything(&d);
                prop_assert!(Ipv4Packet::new_checked(&d[..]).is_ok() || (first & 0x0f) as usize * 4 > d.len());
            }
        }
    }

    #[test]
    fn mutated_valid_datagrams_never_panic_any_parser_or_display(
        d in arb::datagram(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut d = d;
        for (at, v) in flips {
            let i = at.index(d.len());
            d[i] = v;
        }
        exercise_everything(&d);
        prop_assert!(!display::summary(&d).is_empty());
    }

    // ---- round trips ----

    #[test]
    fn icmp_repr_parse_of_emit_is_identity(
        echo in arb::echo(),
        m in arb::error_msg(),
        other in (19u8..=255, any::<u8>(), any::<u32>(), vec(any::<u8>(), 0..64)),
        gateway in arb::addr(),
        redirect_code in 0u8..=3,
        ts in (any::<bool>(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>(), any::<u32>()),
    ) {
        let quote = m.quoted.quote.clone();
        let reprs = [
            echo.repr(),
            m.repr(),
            IcmpRepr::Redirect { code: redirect_code.into(), gateway, quote: &quote },
            IcmpRepr::SourceQuench { quote: &quote },
            IcmpRepr::Timestamp {
                reply: ts.0,
                ident: ts.1,
                seq_no: ts.2,
                originate: ts.3,
                receive: ts.4,
                transmit: ts.5,
            },
            IcmpRepr::Other { msg_type: other.0, code: other.1, rest_of_header: other.2, data: &other.3 },
        ];
        for repr in reprs {
            let mut buf = vec![0xa5u8; repr.buffer_len() + 7];
            let n = repr.emit(&mut buf).expect("emit");
            prop_assert_eq!(n, repr.buffer_len());
            let view = IcmpPacket::new_checked(&buf[..n]).expect("icmp");
            prop_assert!(view.verify_checksum());
            prop_assert_eq!(pnet_packet::icmp::checksum(&pnet_packet::icmp::IcmpPacket::new(&buf[..n]).expect("pnet")), view.checksum());
            prop_assert_eq!(IcmpRepr::parse(&view, true).expect("parse"), repr);
            prop_assert_eq!(buf[n], 0xa5, "emit wrote past its length");
            // etherparse decodes the same message.
            let e = Icmpv4Slice::from_slice(&buf[..n]).expect("etherparse icmp");
            prop_assert_eq!(etherparse_icmp_checksum(&buf[..n]), view.checksum());
            match repr {
                IcmpRepr::Timestamp { reply, ident, seq_no, originate, receive, transmit } => {
                    let msg = etherparse::icmpv4::TimestampMessage {
                        id: ident,
                        seq: seq_no,
                        originate_timestamp: originate,
                        receive_timestamp: receive,
                        transmit_timestamp: transmit,
                    };
                    let want = if reply {
                        Icmpv4Type::TimestampReply(msg)
                    } else {
                        Icmpv4Type::TimestampRequest(msg)
                    };
                    prop_assert_eq!(e.icmp_type(), want);
                }
                IcmpRepr::Redirect { code, gateway, .. } => {
                    let code = etherparse::icmpv4::RedirectCode::from_u8(code.into()).expect("code");
                    prop_assert_eq!(
                        e.icmp_type(),
                        Icmpv4Type::Redirect(etherparse::icmpv4::RedirectHeader {
                            code,
                            gateway_internet_address: gateway.octets(),
                        })
                    );
                }
                _ => prop_assert_eq!(
                    (e.type_u8(), e.code_u8(), e.payload().len()),
                    (u8::from(repr.msg_type()), repr.code(), n - 8)
                ),
            }
        }
    }

    #[test]
    fn ipv4_repr_parse_of_emit_is_identity_and_etherparse_agrees(
        src in arb::addr(),
        dst in arb::addr(),
        protocol in any::<u8>(),
        payload_len in 0usize..=(65535 - 20),
        ttl in any::<u8>(),
        tos in any::<u8>(),
        ident in any::<u16>(),
        flags in (any::<bool>(), any::<bool>(), 0u16..8192),
    ) {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: IpProtocol::from(protocol),
            payload_len,
            ttl,
            tos,
            ident,
            dont_frag: flags.0,
            more_frags: flags.1,
            frag_offset: flags.2,
        };
        let mut buf = [0xa5u8; 20];
        let mut view = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut view);
        // The header alone: parse it laxly (the payload is not there).
        let back = Ipv4Packet::new_lax(&buf[..]).expect("header");
        prop_assert!(back.verify_checksum());
        prop_assert!(!back.reserved_flag());
        let mut strict = buf.to_vec();
        strict.resize(20 + payload_len, 0);
        let whole = Ipv4Packet::new_checked(&strict[..]).expect("whole datagram");
        prop_assert_eq!(Ipv4Repr::parse(&whole).expect("parse"), repr);
        let e = Ipv4HeaderSlice::from_slice(&buf).expect("etherparse").to_header();
        prop_assert_eq!(e.calc_header_checksum(), back.checksum());
        prop_assert_eq!((e.source, e.destination, e.protocol.0), (src.octets(), dst.octets(), protocol));
        prop_assert_eq!(e.total_len as usize, 20 + payload_len);
        prop_assert_eq!((e.time_to_live, (e.dscp.value() << 2) | e.ecn.value(), e.identification), (ttl, tos, ident));
        prop_assert_eq!((e.dont_fragment, e.more_fragments, e.fragment_offset.value()), flags);
    }

    #[test]
    fn error_quote_without_padding_round_trips_to_the_padded_field(
        m in arb::error_msg().prop_filter("with extensions", |m| m.ext.is_some()),
    ) {
        // The caller hands the bare quote; emit pads it (RFC 4884 4.1) and parse gives the
        // padded field back, with the same extensions.
        let bare = m.quoted.quote.clone();
        let body = ErrorBody { quote: &bare, extensions: m.ext.as_deref() };
        let repr = IcmpRepr::TimeExceeded { code: icmp::TimeExceeded::TtlExpired, body };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).expect("emit");
        let view = IcmpPacket::new_checked(&buf[..]).expect("icmp");
        let IcmpRepr::TimeExceeded { body: got, .. } = IcmpRepr::parse(&view, true).expect("parse") else {
            return Err(TestCaseError::fail("not a time exceeded"));
        };
        prop_assert_eq!(got.quote, &m.field[..]);
        prop_assert_eq!(&got.quote[..bare.len()], &bare[..]);
        prop_assert!(got.quote[bare.len()..].iter().all(|&b| b == 0));
        prop_assert_eq!(got.extensions, m.ext.as_deref());
    }

    #[test]
    fn parse_options_then_emit_options_reproduces_the_option_bytes(list in arb::opt_list()) {
        let mut parsed = [Ipv4Option::Nop; 40];
        let n = ipv4::parse_options(&list.bytes, &mut parsed).expect("parse_options");
        prop_assert_eq!(n, list.items.len());
        let mut out = [0xa5u8; 40];
        let m = ipv4::emit_options(&parsed[..n], &mut out).expect("emit_options");
        prop_assert_eq!(&out[..m], &list.bytes[..]);
    }

    #[test]
    fn parse_options_on_arbitrary_bytes_emits_back_the_same_bytes_when_it_succeeds(
        bytes in vec(any::<u8>(), 0..=40),
    ) {
        let mut parsed = [Ipv4Option::Nop; 40];
        if let Ok(n) = ipv4::parse_options(&bytes, &mut parsed) {
            let mut out = [0u8; 40];
            let m = ipv4::emit_options(&parsed[..n], &mut out).expect("emit_options");
            prop_assert_eq!(&out[..m], &bytes[..]);
        }
    }

    #[test]
    fn fragments_reassemble_to_the_original_and_parse_in_etherparse(
        h in arb::ip_hdr_whole(),
        base_offset in 0u16..1000,
        original_mf in any::<bool>(),
        protocol in arb::raw_protocol(),
        payload in vec(any::<u8>(), 0..1500),
        units in 1usize..=64,
    ) {
        let size = units * 8;
        let bytes = arb::emit(
            &h.builder()
                .frag_offset(base_offset)
                .more_frags(original_mf)
                .protocol(IpProtocol::from(protocol))
                .raw(&payload),
        );
        let frags = fragment(&bytes, size).expect("fragment");
        let f = Fragmenter::new(&bytes, size).expect("fragmenter");
        prop_assert_eq!(frags.len(), f.count());
        prop_assert_eq!(frags.len(), payload.len().div_ceil(size).max(1));

        // The options later fragments must carry: those with the copied bit (RFC 791).
        let mut copied = Vec::new();
        let mut copied_items = Vec::new();
        for o in h.options.items.iter().filter(|o| o.kind() & 0x80 != 0) {
            o.encode(&mut copied);
            copied_items.push(o.clone());
        }
        while copied.len() % 4 != 0 {
            copied.push(0);
            copied_items.push(Opt::Eol);
        }

        let mut reassembled = vec![None::<u8>; payload.len()];
        for (i, frag) in frags.iter().enumerate() {
            let last = i + 1 == frags.len();
            let e = Ipv4HeaderSlice::from_slice(frag).expect("etherparse fragment header");
            prop_assert_eq!(e.total_len() as usize, frag.len());
            prop_assert_eq!(
                etherparse::checksum::Sum16BitWords::new().add_slice(e.slice()).ones_complement(),
                0,
                "fragment {} header checksum", i
            );
            prop_assert_eq!(e.more_fragments(), !last || original_mf);
            prop_assert_eq!(e.identification(), h.ident);
            prop_assert_eq!(e.protocol().0, protocol);
            prop_assert_eq!(e.source_addr(), h.src);
            prop_assert_eq!(e.destination_addr(), h.dst);
            prop_assert_eq!(e.ttl(), h.ttl);
            let off = e.fragments_offset().value() as usize;
            prop_assert!(off >= base_offset as usize);
            let rel = (off - base_offset as usize) * 8;
            prop_assert_eq!(rel, i * size);
            if i == 0 {
                prop_assert_eq!(e.options(), &h.options.bytes[..]);
            } else {
                prop_assert_eq!(e.options(), &copied[..]);
                let ip = Ipv4Packet::new_checked(&frag[..]).expect("rawkit fragment");
                let opts: Vec<Opt> = ip
                    .option_iter()
                    .map(|o| Opt::from_rawkit(&o.expect("option parses")))
                    .collect();
                prop_assert_eq!(&opts, &copied_items);
            }
            let data = &frag[e.slice().len()..];
            prop_assert!(data.len() == size || last, "fragment {} carries {} bytes", i, data.len());
            for (k, &b) in data.iter().enumerate() {
                prop_assert!(reassembled[rel + k].is_none(), "byte {} written twice", rel + k);
                reassembled[rel + k] = Some(b);
            }
        }
        let whole: Vec<u8> = reassembled.into_iter().map(|b| b.expect("hole")).collect();
        prop_assert_eq!(whole, payload);
    }
}

/// Every accessor rawkit has for IPv4, on any bytes: nothing may panic.
fn exercise_everything(data: &[u8]) {
    let _ = display::summary(data);
    let dump = display::hexdump(data);
    assert_eq!(dump.lines().count(), data.len().div_ceil(16));
    let _ = display::hex(data);
    let mut parsed = [Ipv4Option::Nop; 40];
    let _ = ipv4::parse_options(data, &mut parsed);
    for view in [Ipv4Packet::new_checked(data), Ipv4Packet::new_lax(data)]
        .into_iter()
        .flatten()
    {
        exercise_ipv4(&view);
    }
    if let Ok(p) = IcmpPacket::new_checked(data) {
        exercise_icmp(&p);
    }
    if let Ok(u) = UdpPacket::new_checked(data) {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let _ = (
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.checksum(),
            u.payload(),
        );
        let _ = (u.compute_checksum(a, a), u.verify_checksum(a, a));
        let _ = UdpRepr::parse(&u, a, a);
        assert!(u.payload().len() <= data.len() - 8);
    }
    for size in [8, 64, 1480] {
        if let Ok(mut f) = Fragmenter::new(data, size) {
            let mut buf = vec![0u8; f.max_fragment_len()];
            let count = f.count();
            let mut n = 0;
            while let Some(r) = f.next_into(&mut buf) {
                let len = r.expect("buffer of max_fragment_len is enough");
                assert!(Ipv4Packet::new_checked(&buf[..len]).is_ok());
                n += 1;
            }
            assert_eq!(n, count);
        }
    }
}

fn exercise_ipv4(ip: &Ipv4Packet<&[u8]>) {
    let _ = (
        ip.version(),
        ip.ihl(),
        ip.header_len(),
        ip.dscp(),
        ip.ecn(),
        ip.tos(),
    );
    let _ = (
        ip.total_len(),
        ip.ident(),
        ip.reserved_flag(),
        ip.dont_frag(),
        ip.more_frags(),
    );
    let _ = (
        ip.frag_offset(),
        ip.frag_offset_bytes(),
        ip.is_fragment(),
        ip.ttl(),
    );
    let _ = (
        ip.protocol(),
        ip.checksum(),
        ip.src_addr(),
        ip.dst_addr(),
        ip.options(),
    );
    let _ = (ip.verify_checksum(), ip.compute_checksum(), ip.payload());
    let _ = (ip.is_payload_truncated(), ip.is_lax(), Ipv4Repr::parse(ip));
    for o in ip.option_iter().flatten() {
        let _ = (o.kind(), o.is_copied(), o.buffer_len(), o.to_string());
        let _ = o.addresses().count();
        let mut out = [0u8; 64];
        let _ = o.emit(&mut out);
    }
    let payload = ip.payload();
    if let Ok(p) = IcmpPacket::new_checked(payload) {
        exercise_icmp(&p);
    }
    if let Ok(u) = UdpPacket::new_checked(payload) {
        let _ = u.verify_checksum(ip.src_addr(), ip.dst_addr());
    }
}

fn exercise_icmp<T: AsRef<[u8]>>(p: &IcmpPacket<T>) {
    let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header());
    let _ = (
        p.echo_ident(),
        p.echo_seq_no(),
        p.pointer(),
        p.rfc4884_length(),
    );
    let _ = (
        p.next_hop_mtu(),
        p.gateway(),
        p.data(),
        p.verify_checksum(),
        p.compute_checksum(),
    );
    let _ = (p.quoted_datagram(), p.extension_offset(), p.quote_info());
    if let Ok(q) = p.quoted_ipv4() {
        exercise_ipv4_quoted(&q);
    }
    if let Some(Ok(ext)) = p.extensions() {
        let _ = (
            ext.version(),
            ext.checksum(),
            ext.verify_checksum(),
            ext.as_bytes(),
        );
        for o in ext.objects().flatten() {
            let _ = (o.is_mpls(), o.buffer_len());
            for e in o.mpls_entries() {
                assert_eq!(MplsEntry::from_u32(e.to_u32()), e);
                let _ = e.to_string();
            }
        }
    }
    for verify in [false, true] {
        if let Ok(r) = IcmpRepr::parse(p, verify) {
            check_reemit(p.as_bytes(), &r);
        }
    }
}

/// What holds for any message that parses: the repr emits, with the same type, and gives back
/// the same bytes, except where rawkit canonicalizes: an echo's code (see
/// `echo_with_a_nonzero_code_keeps_its_code_through_parse_and_emit`) and an error's unused header
/// bytes, RFC 4884 length byte and the padding of its original datagram field (see
/// `icmp_error_parse_then_emit_keeps_every_header_byte`). An error whose parse found extensions
/// emits them whole, after the quote.
fn check_reemit(b: &[u8], r: &IcmpRepr<'_>) {
    let mut buf = vec![0u8; r.buffer_len()];
    let n = r
        .emit_without_checksum(&mut buf)
        .expect("emit what was parsed");
    assert_eq!(buf[0], b[0], "{r:?}");
    match *r {
        IcmpRepr::DstUnreachable { body, .. }
        | IcmpRepr::TimeExceeded { body, .. }
        | IcmpRepr::ParamProblem { body, .. } => {
            assert_eq!(buf[1], b[1], "{r:?}");
            let field = &buf[8..n - body.extensions.map_or(0, <[u8]>::len)];
            assert!(field.starts_with(body.quote), "{r:?}");
            assert!(field[body.quote.len()..].iter().all(|&z| z == 0));
            if let Some(ext) = body.extensions {
                assert!(buf[..n].ends_with(ext), "{r:?}");
                let back = IcmpPacket::new_checked(&buf[..n]).expect("emitted header");
                assert_eq!(back.split_extensions(), (field, Some(ext)), "{r:?}");
            }
        }
        IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. } => {
            assert_eq!(n, b.len(), "{r:?}");
            assert_eq!(&buf[4..n], &b[4..], "{r:?}");
        }
        _ => {
            assert_eq!(n, b.len(), "{r:?}");
            assert_eq!(buf[1], b[1], "{r:?}");
            assert_eq!(&buf[4..n], &b[4..], "{r:?}");
        }
    }
}

fn exercise_ipv4_quoted(ip: &Ipv4Packet<&[u8]>) {
    let _ = (
        ip.src_addr(),
        ip.dst_addr(),
        ip.protocol(),
        ip.payload(),
        ip.options(),
    );
    let _ = ip.option_iter().count();
}

// ---- known-answer tests the properties rest on ----

#[test]
fn generated_option_lists_hit_every_option_kind() {
    // The option generator is only useful if it reaches every branch of the parser.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..500 {
        let list = arb::opt_list()
            .new_tree(&mut runner)
            .expect("tree")
            .current();
        for o in list.items {
            seen.insert(match o {
                Opt::Unknown { .. } => 255,
                o => o.kind(),
            });
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec![0, 1, 7, 68, 131, 137, 148, 255]
    );
}

#[test]
fn generated_errors_cover_every_code_and_both_extension_kinds() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut codes = std::collections::BTreeSet::new();
    let (mut mpls, mut raw, mut bare) = (0, 0, 0);
    for _ in 0..2000 {
        let m = arb::error_msg()
            .new_tree(&mut runner)
            .expect("tree")
            .current();
        codes.insert((m.kind.msg_type(), m.kind.code()));
        match &m.objects {
            None => bare += 1,
            Some(objs) => {
                mpls += objs.iter().any(|o| matches!(o, arb::Obj::Mpls(_))) as u32;
                raw += objs.iter().any(|o| matches!(o, arb::Obj::Raw { .. })) as u32;
            }
        }
    }
    assert_eq!(codes.len(), 16 + 2 + 3, "{codes:?}");
    assert!(mpls > 0 && raw > 0 && bare > 0, "{mpls} {raw} {bare}");
}

// ---- bugs found by this suite (each fails until rawkit is fixed) ----

/// RFC 4884's length byte counts the original datagram field in 32-bit words, so it can announce
/// at most 1020 bytes. rawkit emits a longer quote with extensions, saturates the byte at 255 and
/// so points the receiver at the middle of the quote: a parse of its own output finds garbage
/// where the extensions should be.
#[test]
fn error_with_extensions_and_quote_over_1020_bytes_is_refused_or_round_trips() {
    let quote = vec![0x45u8; 1100];
    let mut ext = [0u8; 64];
    let n = icmp::emit_extensions(
        &[ObjectRepr::Mpls(&[MplsEntry {
            label: 24001,
            tc: 0,
            bottom: true,
            ttl: 1,
        }])],
        &mut ext,
    )
    .expect("extensions");
    let repr = IcmpRepr::TimeExceeded {
        code: icmp::TimeExceeded::TtlExpired,
        body: ErrorBody {
            quote: &quote,
            extensions: Some(&ext[..n]),
        },
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    match repr.emit(&mut buf) {
        Err(_) => {}
        Ok(len) => {
            let view = IcmpPacket::new_checked(&buf[..len]).expect("icmp");
            let back = IcmpRepr::parse(&view, true).expect("parse");
            let IcmpRepr::TimeExceeded { body, .. } = back else {
                panic!("parsed as another type");
            };
            assert_eq!(
                (body.quote.len(), body.extensions == Some(&ext[..n])),
                (quote.len(), true),
                "emit accepted a 1100-byte quote with extensions but its length byte ({}) \
                 announces {} bytes",
                view.rfc4884_length(),
                view.rfc4884_length() as usize * 4
            );
        }
    }
}

/// Fragment offsets are 13 bits of 8-byte units. Splitting a datagram that already sits near the
/// top of that range must fail rather than wrap an offset to a small number, which would make a
/// receiver write the bytes at the start of the datagram.
#[test]
fn fragmenting_near_the_largest_offset_never_wraps_an_offset() {
    let payload = [0x11u8; 24];
    let mut buf = [0u8; 64];
    let n = Ipv4Builder::new(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2))
        .ident(7)
        .frag_offset(8190)
        .protocol(IpProtocol::Udp)
        .raw(&payload)
        .emit(&mut buf)
        .expect("emit");
    match fragment(&buf[..n], 8) {
        Err(_) => {}
        Ok(frags) => {
            for (i, f) in frags.iter().enumerate() {
                let off = Ipv4Packet::new_checked(&f[..])
                    .expect("fragment")
                    .frag_offset();
                assert!(
                    off >= 8190,
                    "fragment {i} has offset {off} (wrapped from {})",
                    8190 + i
                );
            }
        }
    }
}

/// An echo request or reply with a non-zero code is not what RFC 792 defines (code 0). rawkit
/// still parses it as `EchoRequest`/`EchoReply`, whose emit writes code 0: the code byte is lost
/// and `display::summary` calls it a plain echo. etherparse keeps such a message as `Unknown`,
/// as rawkit itself does for a timestamp with a non-zero code.
#[test]
fn echo_with_a_nonzero_code_keeps_its_code_through_parse_and_emit() {
    let mut bytes = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .icmpv4_raw(8, 5, [0x12, 0x34, 0x00, 0x01])
        .write(&mut bytes, b"payload!")
        .expect("etherparse write");
    let e = SlicedPacket::from_ip(&bytes).expect("etherparse");
    let Some(TransportSlice::Icmpv4(e)) = e.transport else {
        panic!("etherparse saw no ICMPv4");
    };
    assert!(matches!(
        e.icmp_type(),
        Icmpv4Type::Unknown { code_u8: 5, .. }
    ));

    let ip = Ipv4Packet::new_checked(&bytes[..]).expect("ipv4");
    let view = IcmpPacket::new_checked(ip.payload()).expect("icmp");
    let repr = IcmpRepr::parse(&view, true).expect("parse");
    let mut out = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut out).expect("emit");
    assert_eq!(
        &out[..n],
        ip.payload(),
        "parse -> emit changed the message (parsed as {repr:?})"
    );
}

/// DESIGN.md section 2 promises that a parse -> emit round trip never loses a byte. ICMP errors
/// whose unused rest-of-header bytes are set (byte 4 of a destination unreachable or time
/// exceeded, bytes 6-7 of a time exceeded or parameter problem) must come back unchanged (they
/// parse as `Other`); the RFC 4884 length byte is the one documented normalisation.
#[test]
fn icmp_error_parse_then_emit_keeps_every_header_byte() {
    let quote: Vec<u8> = (0u8..28).collect();
    let cases: [(u8, u8, [u8; 4]); 3] = [
        (3, 1, [0x01, 0x00, 0x00, 0x00]), // unused byte 4 of a host unreachable
        (11, 0, [0x00, 0x00, 0xbe, 0xef]), // unused bytes 6-7 of a time exceeded
        (11, 0, [0x00, 0x20, 0x00, 0x00]), // length byte (32 words) with no extension after it
    ];
    let mut failures = Vec::new();
    for (t, c, rest) in cases {
        let mut bytes = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_raw(t, c, rest)
            .write(&mut bytes, &quote)
            .expect("etherparse write");
        let ip = Ipv4Packet::new_checked(&bytes[..]).expect("ipv4");
        let view = IcmpPacket::new_checked(ip.payload()).expect("icmp");
        let repr = IcmpRepr::parse(&view, true).expect("parse");
        let mut out = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut out).expect("emit");
        // IcmpRepr documents one normalisation: the RFC 4884 length byte is recomputed from
        // the body (0 here: no extension). Every other byte must come back.
        let mut want = ip.payload().to_vec();
        if t == 11 && rest[1] != 0 {
            assert_eq!(out[5], 0, "length byte recomputed as 0 without extensions");
            want[5] = 0;
            let c = checksum::checksum(&{
                let mut w = want.clone();
                w[2] = 0;
                w[3] = 0;
                w
            });
            want[2..4].copy_from_slice(&c.to_be_bytes());
        }
        if out[..n] != want[..] {
            failures.push(format!(
                "type {t} code {c} rest {rest:02x?}: emitted rest {:02x?}",
                &out[4..8]
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// RFC 768: a computed UDP checksum of zero is sent as all ones, because zero means "none".
/// The payload here is chosen so that the sum comes out at exactly 0xffff.
#[test]
fn udp_checksum_that_computes_to_zero_is_sent_as_ffff_like_the_oracles() {
    let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 2));
    let (sp, dp) = (40000u16, 33434u16);
    // The sum of everything but the two payload bytes, which are then set to its complement.
    let mut acc = checksum::pseudo_header(src, dst, 17, 10);
    acc.add(&[
        (sp >> 8) as u8,
        sp as u8,
        (dp >> 8) as u8,
        dp as u8,
        0,
        10,
        0,
        0,
    ]);
    let payload = (!acc.sum()).to_be_bytes();
    let mut bytes = vec![0u8; 30];
    let n = Ipv4Builder::new(src, dst)
        .udp(sp, dp, &payload)
        .emit(&mut bytes)
        .expect("emit");
    let udp = UdpPacket::new_checked(&bytes[20..n]).expect("udp");
    assert_eq!(udp.checksum(), 0xffff);
    assert!(udp.verify_checksum(src, dst));
    let e = UdpHeaderSlice::from_slice(&bytes[20..n]).expect("etherparse");
    assert_eq!(
        e.to_header()
            .calc_checksum_ipv4_raw(src.octets(), dst.octets(), &payload)
            .expect("etherparse checksum"),
        0xffff
    );
    let p = pnet_packet::udp::UdpPacket::new(&bytes[20..n]).expect("pnet");
    assert_eq!(pnet_packet::udp::ipv4_checksum(&p, &src, &dst), 0);
}
