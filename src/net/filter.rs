//! Classic BPF socket filters (`SO_ATTACH_FILTER`).
//!
//! A raw `IPPROTO_ICMP` socket receives *every* ICMP packet of the host: other programs' pings,
//! our own echo requests on `lo`, everyone's errors. [`BpfProgram::icmp_echo_reply_ident`] drops
//! in the kernel everything that is not a reply to us, before it is queued and before it wakes
//! the process. The order that loses nothing and admits nothing stale is: attach the filter,
//! drain what was queued before it, then send.
//!
//! [`CaptureFilter`] is the filter of `rawkit capture` (`--proto`, `--host`, `--port`,
//! `--direction`), compiled to a classic BPF program for a frame layout ([`FrameLayout`]): the
//! kernel runs it on every frame before it is queued. The same program, run by
//! [`BpfProgram::run`] (an interpreter with the kernel's semantics), filters the records of a
//! pcap file, so the filter has one definition, whether the packets come live or from a file.
//!
//! This module only builds, runs and attaches programs; it must never parse packets itself:
//! every decision about a packet's bytes is an instruction of a program.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use socket2::{SockFilter, SockRef};

use super::NetError;

/// One classic BPF instruction, laid out like `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BpfInsn {
    /// Operation: class | size | mode (loads), class | op | source (ALU, jumps).
    pub code: u16,
    /// Jump offset when the condition holds, counted from the next instruction.
    pub jt: u8,
    /// Jump offset when the condition fails, counted from the next instruction.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

impl BpfInsn {
    /// A statement: an instruction that does not branch.
    pub const fn stmt(code: u16, k: u32) -> BpfInsn {
        BpfInsn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A conditional jump.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> BpfInsn {
        BpfInsn { code, jt, jf, k }
    }
}

/// Opcode parts of classic BPF (`linux/filter.h`), typed as the `code` field is.
#[allow(missing_docs)]
pub mod op {
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;

    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;

    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;

    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const MOD: u16 = 0x90;
    pub const XOR: u16 = 0xa0;

    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;

    /// Operand source: the constant `k`.
    pub const K: u16 = 0x00;
    /// Operand source: the index register `X`.
    pub const X: u16 = 0x08;
    /// `RET` of the accumulator.
    pub const A: u16 = 0x10;

    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;
}

/// The most instructions the kernel accepts in one classic program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// The return value that keeps the whole packet.
const ACCEPT: u32 = u32::MAX;
/// The return value that drops the packet.
const DROP: u32 = 0;

/// ICMP types whose body quotes the offending datagram (RFC 792): destination unreachable,
/// source quench, redirect, time exceeded, parameter problem.
const ICMP_ERROR_TYPES: [u32; 5] = [3, 4, 5, 11, 12];

/// A classic BPF program to attach to a socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BpfProgram(Vec<BpfInsn>);

impl BpfProgram {
    /// Wraps instructions as they are. The kernel checks them when they are attached.
    pub fn new(insns: Vec<BpfInsn>) -> BpfProgram {
        BpfProgram(insns)
    }

    /// The instructions.
    pub fn instructions(&self) -> &[BpfInsn] {
        &self.0
    }

    /// Keeps every packet.
    pub fn accept_all() -> BpfProgram {
        BpfProgram(vec![BpfInsn::stmt(op::RET | op::K, ACCEPT)])
    }

    /// Drops every packet (useful to silence a socket while it is set up).
    pub fn reject_all() -> BpfProgram {
        BpfProgram(vec![BpfInsn::stmt(op::RET | op::K, DROP)])
    }

    /// For a raw `IPPROTO_ICMP` socket, whose packets start at the IPv4 header: keeps ICMP echo
    /// replies whose identifier is `ident`, and ICMP errors (types 3, 4, 5, 11, 12) that quote
    /// an ICMP echo request whose identifier is `ident`; drops everything else.
    ///
    /// ```text
    ///  0  ldb   [9]                outer IPv4 protocol
    ///  1  jeq   #1      / drop     ICMP
    ///  2  ldxb  4*([0]&0xf)        X = outer header length
    ///  3  ldb   [x+0]              ICMP type
    ///  4  jeq   #0      21 ->      echo reply
    ///  5  jeq   #3      10 ->      the error types
    ///  6  jeq   #4      10
    ///  7  jeq   #5      10
    ///  8  jeq   #11     10
    ///  9  jeq   #12     10 / drop
    /// 10  ldb   [x+17]             quoted IPv4 protocol (8 + 9)
    /// 11  jeq   #1      / drop     ICMP
    /// 12  ldb   [x+8]              quoted version and IHL
    /// 13  and   #0xf
    /// 14  lsh   #2
    /// 15  add   x
    /// 16  tax                      X = outer IHL + quoted IHL
    /// 17  ldb   [x+8]              quoted ICMP type
    /// 18  jeq   #8      / drop     echo request
    /// 19  ldh   [x+12]             quoted identifier
    /// 20  jeq   #ident  accept / drop
    /// 21  ldh   [x+4]              reply identifier
    /// 22  jeq   #ident  accept / drop
    /// 23  ret   #-1                accept
    /// 24  ret   #0                 drop
    /// ```
    ///
    /// A load beyond the end of the packet ends the program with 0, so truncated packets are
    /// dropped.
    pub fn icmp_echo_reply_ident(ident: u16) -> BpfProgram {
        use op::*;
        let ident = u32::from(ident);
        let [t0, t1, t2, t3, t4] = ICMP_ERROR_TYPES;
        BpfProgram(vec![
            /* 0 */ BpfInsn::stmt(LD | B | ABS, 9),
            /* 1 */ BpfInsn::jump(JMP | JEQ | K, 1, 0, 22),
            /* 2 */ BpfInsn::stmt(LDX | B | MSH, 0),
            /* 3 */ BpfInsn::stmt(LD | B | IND, 0),
            /* 4 */ BpfInsn::jump(JMP | JEQ | K, 0, 16, 0),
            /* 5 */ BpfInsn::jump(JMP | JEQ | K, t0, 4, 0),
            /* 6 */ BpfInsn::jump(JMP | JEQ | K, t1, 3, 0),
            /* 7 */ BpfInsn::jump(JMP | JEQ | K, t2, 2, 0),
            /* 8 */ BpfInsn::jump(JMP | JEQ | K, t3, 1, 0),
            /* 9 */ BpfInsn::jump(JMP | JEQ | K, t4, 0, 14),
            /* 10 */ BpfInsn::stmt(LD | B | IND, 8 + 9),
            /* 11 */ BpfInsn::jump(JMP | JEQ | K, 1, 0, 12),
            /* 12 */ BpfInsn::stmt(LD | B | IND, 8),
            /* 13 */ BpfInsn::stmt(ALU | AND | K, 0x0f),
            /* 14 */ BpfInsn::stmt(ALU | LSH | K, 2),
            /* 15 */ BpfInsn::stmt(ALU | ADD | X, 0),
            /* 16 */ BpfInsn::stmt(MISC | TAX, 0),
            /* 17 */ BpfInsn::stmt(LD | B | IND, 8),
            /* 18 */ BpfInsn::jump(JMP | JEQ | K, 8, 0, 5),
            /* 19 */ BpfInsn::stmt(LD | H | IND, 8 + 4),
            /* 20 */ BpfInsn::jump(JMP | JEQ | K, ident, 2, 3),
            /* 21 */ BpfInsn::stmt(LD | H | IND, 4),
            /* 22 */ BpfInsn::jump(JMP | JEQ | K, ident, 0, 1),
            /* 23 */ BpfInsn::stmt(RET | K, ACCEPT),
            /* 24 */ BpfInsn::stmt(RET | K, DROP),
        ])
    }

    /// For a raw `IPPROTO_ICMP` socket of `rawkit traceroute` with UDP probes: keeps the ICMP
    /// errors (types 3, 4, 5, 11, 12) that quote a UDP datagram whose source port is
    /// `src_port` (the probes' port, which a UDP socket of the tracer holds); drops everything
    /// else, other programs' pings and traceroutes included. (ICMP probes use
    /// [`BpfProgram::icmp_echo_reply_ident`]: echo replies and errors quoting an echo request
    /// with the tracer's identifier.)
    ///
    /// ```text
    ///  0  ldb   [9]                outer IPv4 protocol
    ///  1  jeq   #1      / drop     ICMP
    ///  2  ldxb  4*([0]&0xf)        X = outer header length
    ///  3  ldb   [x+0]              ICMP type
    ///  4  jeq   #3      9 ->       the error types
    ///  5  jeq   #4      9
    ///  6  jeq   #5      9
    ///  7  jeq   #11     9
    ///  8  jeq   #12     9 / drop
    ///  9  ldb   [x+17]             quoted IPv4 protocol (8 + 9)
    /// 10  jeq   #17     / drop     UDP
    /// 11  ldb   [x+8]              quoted version and IHL
    /// 12  and   #0xf
    /// 13  lsh   #2
    /// 14  add   x
    /// 15  tax                      X = outer IHL + quoted IHL
    /// 16  ldh   [x+8]              quoted UDP source port
    /// 17  jeq   #port   accept / drop
    /// 18  ret   #-1                accept
    /// 19  ret   #0                 drop
    /// ```
    ///
    /// A load beyond the end of the packet ends the program with 0: an error that quotes fewer
    /// than the two bytes of the source port is dropped.
    pub fn icmp_errors_quoting_udp(src_port: u16) -> BpfProgram {
        use op::*;
        let port = u32::from(src_port);
        let [t0, t1, t2, t3, t4] = ICMP_ERROR_TYPES;
        BpfProgram(vec![
            /* 0 */ BpfInsn::stmt(LD | B | ABS, 9),
            /* 1 */ BpfInsn::jump(JMP | JEQ | K, 1, 0, 17),
            /* 2 */ BpfInsn::stmt(LDX | B | MSH, 0),
            /* 3 */ BpfInsn::stmt(LD | B | IND, 0),
            /* 4 */ BpfInsn::jump(JMP | JEQ | K, t0, 4, 0),
            /* 5 */ BpfInsn::jump(JMP | JEQ | K, t1, 3, 0),
            /* 6 */ BpfInsn::jump(JMP | JEQ | K, t2, 2, 0),
            /* 7 */ BpfInsn::jump(JMP | JEQ | K, t3, 1, 0),
            /* 8 */ BpfInsn::jump(JMP | JEQ | K, t4, 0, 10),
            /* 9 */ BpfInsn::stmt(LD | B | IND, 8 + 9),
            /* 10 */ BpfInsn::jump(JMP | JEQ | K, 17, 0, 8),
            /* 11 */ BpfInsn::stmt(LD | B | IND, 8),
            /* 12 */ BpfInsn::stmt(ALU | AND | K, 0x0f),
            /* 13 */ BpfInsn::stmt(ALU | LSH | K, 2),
            /* 14 */ BpfInsn::stmt(ALU | ADD | X, 0),
            /* 15 */ BpfInsn::stmt(MISC | TAX, 0),
            /* 16 */ BpfInsn::stmt(LD | H | IND, 8),
            /* 17 */ BpfInsn::jump(JMP | JEQ | K, port, 0, 1),
            /* 18 */ BpfInsn::stmt(RET | K, ACCEPT),
            /* 19 */ BpfInsn::stmt(RET | K, DROP),
        ])
    }

    /// Attaches the program to `socket` with `SO_ATTACH_FILTER`, replacing any earlier one.
    pub(crate) fn attach(&self, socket: impl AsFd) -> Result<(), NetError> {
        const OP: &str = "setsockopt(SO_ATTACH_FILTER)";
        if self.0.is_empty() || self.0.len() > MAX_INSNS {
            return Err(NetError::Io {
                op: OP,
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let insns: Vec<SockFilter> = self
            .0
            .iter()
            .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
            .collect();
        SockRef::from(&socket)
            .attach_filter(&insns)
            .map_err(|e| NetError::from_io(OP, e))
    }

    /// Removes whatever filter `socket` has.
    pub(crate) fn detach(socket: impl AsFd) -> Result<(), NetError> {
        SockRef::from(&socket)
            .detach_filter()
            .map_err(|e| NetError::from_io("setsockopt(SO_DETACH_FILTER)", e))
    }
}

/// What the kernel knows of a packet beyond its bytes: the values of the BPF ancillary loads
/// (`SKF_AD_*`) that [`CaptureFilter`] programs use. Only a live capture has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PacketMeta {
    /// `skb->pkt_type` (`SKF_AD_PKTTYPE`): 0 to this host, 4 sent by it (`PACKET_OUTGOING`).
    pub pkttype: u8,
    /// `skb->protocol` (`SKF_AD_PROTOCOL`), an ethertype in host order.
    pub protocol: u16,
    /// The interface index (`SKF_AD_IFINDEX`).
    pub ifindex: u32,
}

/// `SKF_AD_OFF` as the `k` of a load: loads at or above it read [`PacketMeta`].
const ANCILLARY_BASE: u32 = libc::SKF_AD_OFF as u32;

/// Loads `size` bytes big-endian at `at`, as the kernel does; `None` when out of bounds.
fn load(packet: &[u8], at: u32, size: u16) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let width = match size {
        op::W => 4,
        op::H => 2,
        op::B => 1,
        _ => return None,
    };
    let bytes = packet.get(at..at.checked_add(width)?)?;
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// An ancillary load (`ld #pkttype`...): `None` without metadata or for an extension rawkit
/// does not model, which ends the program with 0 as an unknown extension would.
fn ancillary(k: u32, meta: Option<&PacketMeta>) -> Option<u32> {
    let meta = meta?;
    match i32::try_from(k.wrapping_sub(ANCILLARY_BASE)).ok()? {
        libc::SKF_AD_PROTOCOL => Some(u32::from(meta.protocol)),
        libc::SKF_AD_PKTTYPE => Some(u32::from(meta.pkttype)),
        libc::SKF_AD_IFINDEX => Some(meta.ifindex),
        _ => None,
    }
}

/// Runs `prog` over `packet` and returns what the kernel would: the number of bytes to keep
/// (0 drops the packet). Like the kernel, an out-of-bounds load or a division by zero ends the
/// program with 0, and so does running off its end (the kernel refuses such programs).
/// Classic BPF only jumps forward, so this always ends, after at most `prog.len()` steps.
fn execute(prog: &[BpfInsn], packet: &[u8], meta: Option<&PacketMeta>) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
    while let Some(insn) = prog.get(pc) {
        pc += 1;
        let code = insn.code;
        let k = insn.k;
        match code & 0x07 {
            op::LD | op::LDX => {
                let value = match code & 0xe0 {
                    op::IMM => Some(k),
                    op::ABS if code & 0x07 == op::LD && k >= ANCILLARY_BASE => ancillary(k, meta),
                    op::ABS => load(packet, k, code & 0x18),
                    op::IND => load(packet, x.wrapping_add(k), code & 0x18),
                    op::MEM => mem.get(k as usize).copied(),
                    op::LEN => Some(len),
                    op::MSH => load(packet, k, op::B).map(|b| (b & 0x0f) * 4),
                    _ => None,
                };
                let Some(value) = value else { return 0 };
                if code & 0x07 == op::LD {
                    a = value;
                } else {
                    x = value;
                }
            }
            op::ST => mem[(k as usize) % 16] = a,
            op::STX => mem[(k as usize) % 16] = x,
            op::ALU => {
                let operand = if code & op::X != 0 { x } else { k };
                a = match code & 0xf0 {
                    op::ADD => a.wrapping_add(operand),
                    op::SUB => a.wrapping_sub(operand),
                    op::MUL => a.wrapping_mul(operand),
                    op::DIV if operand == 0 => return 0,
                    op::DIV => a / operand,
                    op::MOD if operand == 0 => return 0,
                    op::MOD => a % operand,
                    op::OR => a | operand,
                    op::AND => a & operand,
                    op::LSH => a.checked_shl(operand).unwrap_or(0),
                    op::RSH => a.checked_shr(operand).unwrap_or(0),
                    op::NEG => a.wrapping_neg(),
                    op::XOR => a ^ operand,
                    _ => return 0,
                };
            }
            op::JMP => {
                let operand = if code & op::X != 0 { x } else { k };
                let taken = match code & 0xf0 {
                    op::JA => {
                        pc = pc.saturating_add(k as usize);
                        continue;
                    }
                    op::JEQ => a == operand,
                    op::JGT => a > operand,
                    op::JGE => a >= operand,
                    op::JSET => a & operand != 0,
                    _ => return 0,
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            op::RET => return if code & 0x18 == op::A { a } else { k },
            op::MISC => {
                if code & 0xf8 == op::TXA {
                    a = x;
                } else {
                    x = a;
                }
            }
            _ => return 0,
        }
    }
    0
}

impl BpfProgram {
    /// Runs the program over `packet` in user space, with the kernel's semantics, and returns
    /// how many bytes it keeps (0: dropped). Ancillary loads (`ld #pkttype`) have no packet
    /// metadata here and end the program with 0: use [`BpfProgram::run_with_meta`].
    pub fn run(&self, packet: &[u8]) -> u32 {
        execute(&self.0, packet, None)
    }

    /// [`BpfProgram::run`], with the metadata ancillary loads read.
    pub fn run_with_meta(&self, packet: &[u8], meta: &PacketMeta) -> u32 {
        execute(&self.0, packet, Some(meta))
    }

    /// True when [`BpfProgram::run`] keeps the packet.
    pub fn matches(&self, packet: &[u8]) -> bool {
        self.run(packet) != 0
    }
}

/// How the frames a capture filter runs on begin: where the ethertype is, if anywhere, and
/// where the IPv4 header starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameLayout {
    /// A 14-byte Ethernet II header, ethertype at 12 (Ethernet and Linux loopback interfaces;
    /// `LINKTYPE_ETHERNET` files). Like tcpdump's `ip`, a VLAN-tagged frame is not IPv4.
    Ethernet,
    /// The 16-byte Linux cooked header, ethertype at 14 (`LINKTYPE_LINUX_SLL`).
    LinuxSll,
    /// The 20-byte Linux cooked header v2, ethertype at 0 (`LINKTYPE_LINUX_SLL2`).
    LinuxSll2,
    /// No link header: the IP header first, IPv4 when its version nibble is 4 (TUN devices,
    /// `LINKTYPE_RAW` and `LINKTYPE_IPV4` files).
    RawIp,
}

impl FrameLayout {
    /// Where the ethertype lies, when the layout has one.
    pub fn ethertype_offset(self) -> Option<u32> {
        match self {
            FrameLayout::Ethernet => Some(12),
            FrameLayout::LinuxSll => Some(14),
            FrameLayout::LinuxSll2 => Some(0),
            FrameLayout::RawIp => None,
        }
    }

    /// Where the IPv4 header starts.
    pub fn network_offset(self) -> u32 {
        match self {
            FrameLayout::Ethernet => 14,
            FrameLayout::LinuxSll => 16,
            FrameLayout::LinuxSll2 => 20,
            FrameLayout::RawIp => 0,
        }
    }
}

/// Which copies of a frame a capture keeps, by the direction the kernel saw it go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Frames this host received (every packet type but `PACKET_OUTGOING`).
    In,
    /// Frames this host sent (`PACKET_OUTGOING`).
    Out,
    /// Both. Also the only value for a pcap file, which does not record direction.
    #[default]
    Both,
}

/// The IP protocols that have ports at bytes 0-3 of their header: TCP, UDP, SCTP.
pub const PORT_PROTOCOLS: [u8; 3] = [6, 17, 132];

/// The filter of a capture: every criterion that is set must hold (an AND). With none set (and
/// [`Direction::Both`]) every frame is kept, IPv4 or not; with any of `protocol`, `host` or
/// `port` set only IPv4 datagrams can match.
///
/// The semantics are tcpdump's primitives of the same names:
/// * `protocol P`: the IPv4 protocol field is P (`ip proto P`); every fragment matches.
/// * `host A`: the IPv4 source or destination is A (`ip host A`). An ICMP error that merely
///   quotes A does not match.
/// * `port N`: a TCP, UDP or SCTP datagram whose source or destination port is N, in a first
///   fragment (offset 0), which is the only one that carries the ports (`port N`).
/// * `direction`: see [`Direction`]; it needs the kernel's packet type, so it only applies to
///   live captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CaptureFilter {
    /// The IPv4 protocol number to keep.
    pub protocol: Option<u8>,
    /// The address that must be the source or the destination.
    pub host: Option<Ipv4Addr>,
    /// The TCP/UDP/SCTP port that must be the source or destination port.
    pub port: Option<u16>,
    /// Which way the frames went.
    pub direction: Direction,
}

/// A jump target while a program is assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The next instruction.
    Next,
    /// The final `ret #-1`.
    Accept,
    /// The final `ret #0`.
    Drop,
    /// A label placed with [`Asm::label`].
    Label(usize),
}

/// A tiny assembler: instructions with symbolic jump targets, resolved at the end.
#[derive(Debug, Default)]
struct Asm {
    insns: Vec<(BpfInsn, Target, Target)>,
    labels: Vec<usize>,
}

impl Asm {
    fn stmt(&mut self, code: u16, k: u32) {
        self.insns
            .push((BpfInsn::stmt(code, k), Target::Next, Target::Next));
    }

    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.insns.push((BpfInsn::jump(code, k, 0, 0), jt, jf));
    }

    /// A new label, placed later with [`Asm::place`].
    fn label(&mut self) -> usize {
        self.labels.push(usize::MAX);
        self.labels.len() - 1
    }

    /// Places `label` at the next instruction.
    fn place(&mut self, label: usize) {
        self.labels[label] = self.insns.len();
    }

    /// Appends `ret #-1` and `ret #0` and resolves the jumps.
    fn finish(mut self) -> BpfProgram {
        let accept = self.insns.len();
        let drop = accept + 1;
        self.stmt(op::RET | op::K, ACCEPT);
        self.stmt(op::RET | op::K, DROP);
        let labels = self.labels;
        let insns = self
            .insns
            .iter()
            .enumerate()
            .map(|(at, &(mut insn, jt, jf))| {
                let offset = |t: Target| -> u8 {
                    let to = match t {
                        Target::Next => at + 1,
                        Target::Accept => accept,
                        Target::Drop => drop,
                        Target::Label(l) => labels[l],
                    };
                    // Capture filters are a few dozen instructions: every jump fits in a byte
                    // (a unit test compiles the longest one).
                    u8::try_from(to - (at + 1)).expect("capture filter jump within 255")
                };
                if insn.code & 0x07 == op::JMP {
                    insn.jt = offset(jt);
                    insn.jf = offset(jf);
                }
                insn
            })
            .collect();
        BpfProgram(insns)
    }
}

impl CaptureFilter {
    /// True when no criterion is set: every frame passes (in the chosen direction).
    pub fn is_empty(&self) -> bool {
        self.protocol.is_none() && self.host.is_none() && self.port.is_none()
    }

    /// Compiles the filter for frames laid out as `layout`. The program keeps a frame whole
    /// (`ret #-1`) or drops it (`ret #0`); a frame too short for a field it needs is dropped.
    ///
    /// For `--proto 17 --host 127.0.0.1 --port 53 --direction in` on lo (Ethernet layout):
    ///
    /// ```text
    ///  0  ldh  [12]                ethertype
    ///  1  jeq  #0x800    / drop    IPv4
    ///  2  ld   #pkttype            (ancillary load)
    ///  3  jeq  #4        drop /    PACKET_OUTGOING
    ///  4  ldb  [23]                protocol
    ///  5  jeq  #17       / drop
    ///  6  ld   [26]                source
    ///  7  jeq  #0x7f000001  9 /
    ///  8  ld   [30]        ...     destination
    ///  9  jeq  #0x7f000001  / drop
    /// 10  ldh  [20]                flags and fragment offset
    /// 11  jset #0x1fff   drop /    not a first fragment
    /// 12  ldxb 4*([14]&0xf)        X = header length
    /// 13  ldh  [x+14]              source port
    /// 14  jeq  #53       accept /
    /// 15  ldh  [x+16]              destination port
    /// 16  jeq  #53       accept / drop
    /// 17  ret  #-1
    /// 18  ret  #0
    /// ```
    pub fn compile(&self, layout: FrameLayout) -> BpfProgram {
        use Target::{Accept, Drop, Label, Next};
        use op::*;
        if self.port.is_some() && self.protocol.is_some_and(|p| !PORT_PROTOCOLS.contains(&p)) {
            // A port on a protocol without ports: nothing can match.
            return BpfProgram::reject_all();
        }
        if self.is_empty() && self.direction == Direction::Both {
            return BpfProgram::accept_all();
        }
        let mut asm = Asm::default();
        let net = layout.network_offset();
        if !self.is_empty() {
            match layout.ethertype_offset() {
                Some(at) => {
                    asm.stmt(LD | H | ABS, at);
                    asm.jump(JMP | JEQ | K, 0x0800, Next, Drop);
                }
                None => {
                    asm.stmt(LD | B | ABS, net);
                    asm.stmt(ALU | AND | K, 0xf0);
                    asm.jump(JMP | JEQ | K, 0x40, Next, Drop);
                }
            }
        }
        let pkttype = ANCILLARY_BASE.wrapping_add(libc::SKF_AD_PKTTYPE as u32);
        let outgoing = u32::from(libc::PACKET_OUTGOING);
        match self.direction {
            Direction::Both => {}
            Direction::In => {
                asm.stmt(LD | W | ABS, pkttype);
                asm.jump(JMP | JEQ | K, outgoing, Drop, Next);
            }
            Direction::Out => {
                asm.stmt(LD | W | ABS, pkttype);
                asm.jump(JMP | JEQ | K, outgoing, Next, Drop);
            }
        }
        if let Some(p) = self.protocol {
            asm.stmt(LD | B | ABS, net + 9);
            asm.jump(JMP | JEQ | K, u32::from(p), Next, Drop);
        }
        if let Some(host) = self.host {
            let host = u32::from(host);
            let ok = asm.label();
            asm.stmt(LD | W | ABS, net + 12);
            asm.jump(JMP | JEQ | K, host, Label(ok), Next);
            asm.stmt(LD | W | ABS, net + 16);
            asm.jump(JMP | JEQ | K, host, Next, Drop);
            asm.place(ok);
        }
        if let Some(port) = self.port {
            let port = u32::from(port);
            if self.protocol.is_none() {
                let has_ports = asm.label();
                asm.stmt(LD | B | ABS, net + 9);
                let [last, others @ ..] = PORT_PROTOCOLS.map(u32::from);
                for p in others {
                    asm.jump(JMP | JEQ | K, p, Label(has_ports), Next);
                }
                asm.jump(JMP | JEQ | K, last, Next, Drop);
                asm.place(has_ports);
            }
            asm.stmt(LD | H | ABS, net + 6);
            asm.jump(JMP | JSET | K, 0x1fff, Drop, Next);
            asm.stmt(LDX | B | MSH, net);
            asm.stmt(LD | H | IND, net);
            asm.jump(JMP | JEQ | K, port, Accept, Next);
            asm.stmt(LD | H | IND, net + 2);
            asm.jump(JMP | JEQ | K, port, Accept, Drop);
        }
        asm.finish()
    }
}

#[cfg(test)]
pub(crate) mod interp {
    //! The interpreter as the older unit tests call it: over bare instructions.
    use super::BpfInsn;

    /// Runs `prog` over `packet` and returns what the kernel would: the number of bytes to keep
    /// (0 drops the packet). Like the kernel, an out-of-bounds load returns 0.
    pub(crate) fn run(prog: &[BpfInsn], packet: &[u8]) -> u32 {
        super::execute(prog, packet, None)
    }
}

#[cfg(test)]
mod tests {
    use super::interp::run;
    use super::*;

    const OURS: u16 = 0x1234;

    /// A 20-byte IPv4 header (or longer with `options`), with protocol and total length set;
    /// checksums are irrelevant to the filter.
    fn ipv4(protocol: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let ihl = (20 + options.len()) / 4;
        let total = 20 + options.len() + payload.len();
        let mut p = vec![0x40 | ihl as u8, 0];
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 64, protocol, 0, 0]);
        p.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        p.extend_from_slice(options);
        p.extend_from_slice(payload);
        p
    }

    fn icmp(kind: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind, code, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(body);
        m
    }

    fn echo(kind: u8, ident: u16, seq: u16) -> Vec<u8> {
        let [i0, i1] = ident.to_be_bytes();
        let [s0, s1] = seq.to_be_bytes();
        icmp(kind, 0, [i0, i1, s0, s1], &[0xa5; 56])
    }

    /// An ICMP error of `kind` quoting `quoted` (header plus the first 8 bytes of payload).
    fn error_quoting(kind: u8, code: u8, outer_options: &[u8], quoted: &[u8]) -> Vec<u8> {
        let quote_len = ((quoted[0] & 0x0f) as usize * 4 + 8).min(quoted.len());
        ipv4(
            1,
            outer_options,
            &icmp(kind, code, [0; 4], &quoted[..quote_len]),
        )
    }

    fn accepts(prog: &BpfProgram, packet: &[u8]) -> bool {
        run(prog.instructions(), packet) != 0
    }

    #[test]
    fn echo_reply_with_our_ident_passes() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        assert!(accepts(&prog, &ipv4(1, &[], &echo(0, OURS, 1))));
        assert_eq!(
            run(prog.instructions(), &ipv4(1, &[], &echo(0, OURS, 1))),
            u32::MAX
        );
    }

    #[test]
    fn echo_reply_with_our_ident_after_ip_options_passes() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        let options = [7, 7, 4, 0, 0, 0, 0, 0]; // record route, padded
        assert!(accepts(&prog, &ipv4(1, &options, &echo(0, OURS, 9))));
        assert!(!accepts(&prog, &ipv4(1, &options, &echo(0, OURS + 1, 9))));
    }

    #[test]
    fn echo_reply_with_another_ident_is_dropped() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        assert!(!accepts(&prog, &ipv4(1, &[], &echo(0, 0x4321, 1))));
    }

    #[test]
    fn echo_requests_are_dropped_even_with_our_ident() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        assert!(!accepts(&prog, &ipv4(1, &[], &echo(8, OURS, 1))));
    }

    #[test]
    fn every_error_type_quoting_our_echo_request_passes() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        let request = ipv4(1, &[], &echo(8, OURS, 3));
        for kind in [3, 4, 5, 11, 12] {
            assert!(
                accepts(&prog, &error_quoting(kind, 0, &[], &request)),
                "type {kind}"
            );
        }
        // Other types never pass, even if their body looks like a quote.
        for kind in [0u8, 8, 9, 10, 13, 14, 40] {
            let packet = ipv4(1, &[], &icmp(kind, 0, [0; 4], &request[..28]));
            assert!(!accepts(&prog, &packet), "type {kind}");
        }
    }

    #[test]
    fn time_exceeded_quoting_a_request_with_options_passes() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        let options = [1, 1, 1, 0]; // NOP NOP NOP EOL
        let request = ipv4(1, &options, &echo(8, OURS, 3));
        let outer_options = [0x94, 4, 0, 0]; // router alert on the error itself
        assert!(accepts(
            &prog,
            &error_quoting(11, 0, &outer_options, &request)
        ));
        let other = ipv4(1, &options, &echo(8, 7, 3));
        assert!(!accepts(
            &prog,
            &error_quoting(11, 0, &outer_options, &other)
        ));
    }

    #[test]
    fn errors_quoting_another_ident_or_a_reply_are_dropped() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        let theirs = ipv4(1, &[], &echo(8, 0x4321, 3));
        assert!(!accepts(&prog, &error_quoting(11, 0, &[], &theirs)));
        let reply = ipv4(1, &[], &echo(0, OURS, 3));
        assert!(!accepts(&prog, &error_quoting(3, 3, &[], &reply)));
    }

    #[test]
    fn errors_quoting_udp_are_dropped_even_if_the_bytes_match() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        // A UDP header whose first byte is 8 and whose length field equals our ident.
        let [i0, i1] = OURS.to_be_bytes();
        let udp = [8, 0, 0x82, 0x9a, i0, i1, 0, 0];
        let quoted = ipv4(17, &[], &udp);
        assert!(!accepts(&prog, &error_quoting(3, 3, &[], &quoted)));
    }

    #[test]
    fn unrelated_udp_datagram_is_dropped() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        let [i0, i1] = OURS.to_be_bytes();
        // From port 0 (where an ICMP type would be 0), with bytes 4..6 equal to our ident: only
        // the outer protocol check tells it from an echo reply.
        let udp = [0, 0, 0x82, 0x9a, i0, i1, 0, 0, 1, 2, 3, 4];
        assert!(!accepts(&prog, &ipv4(17, &[], &udp)));
        let udp = [0x30, 0x39, 0x82, 0x9a, 0, 20, 0, 0, 1, 2, 3, 4];
        assert!(!accepts(&prog, &ipv4(17, &[], &udp)));
    }

    #[test]
    fn every_truncation_is_dropped_and_never_panics() {
        let prog = BpfProgram::icmp_echo_reply_ident(OURS);
        let reply = ipv4(1, &[], &echo(0, OURS, 1));
        // The identifier ends at byte 26: anything shorter must be dropped.
        for cut in 0..26 {
            assert!(!accepts(&prog, &reply[..cut]), "reply cut at {cut}");
        }
        assert!(accepts(&prog, &reply[..26]));
        let error = error_quoting(11, 0, &[], &ipv4(1, &[], &echo(8, OURS, 1)));
        // Quoted identifier ends at 20 + 8 + 20 + 6 = 54.
        for cut in 0..54 {
            assert!(!accepts(&prog, &error[..cut]), "error cut at {cut}");
        }
        assert!(accepts(&prog, &error[..54]));
    }

    #[test]
    fn accept_all_and_reject_all() {
        let packet = ipv4(17, &[], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(accepts(&BpfProgram::accept_all(), &packet));
        assert!(accepts(&BpfProgram::accept_all(), &[]));
        assert!(!accepts(&BpfProgram::reject_all(), &packet));
    }

    #[test]
    fn insn_layout_matches_sock_filter() {
        assert_eq!(
            std::mem::size_of::<BpfInsn>(),
            std::mem::size_of::<libc::sock_filter>()
        );
        assert_eq!(
            std::mem::offset_of!(BpfInsn, k),
            std::mem::offset_of!(libc::sock_filter, k)
        );
    }

    #[test]
    fn interpreter_follows_jumps_alu_and_scratch_memory() {
        use op::*;
        // A = len; M[0] = A; A = 3; A *= 5; X = A; A = M[0]; A = A - X; ret A
        let prog = [
            BpfInsn::stmt(LD | W | LEN, 0),
            BpfInsn::stmt(ST, 0),
            BpfInsn::stmt(LD | IMM, 3),
            BpfInsn::stmt(ALU | MUL | K, 5),
            BpfInsn::stmt(MISC | TAX, 0),
            BpfInsn::stmt(LD | MEM, 0),
            BpfInsn::stmt(ALU | SUB | X, 0),
            BpfInsn::jump(JMP | JGT | K, 100, 1, 0),
            BpfInsn::stmt(RET | A, 0),
            BpfInsn::stmt(RET | K, 7),
        ];
        assert_eq!(run(&prog, &[0; 20]), 5);
        assert_eq!(run(&prog, &[0; 200]), 7);
        assert_eq!(run(&[BpfInsn::stmt(LD | W | ABS, 0)], &[1, 2, 3]), 0);
    }

    // ---- capture filters -----------------------------------------------------------------

    const ADDR_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
    const ADDR_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const ADDR_C: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

    /// An IPv4 header of `ihl` words (options of NOPs) then a transport header whose first
    /// four bytes are the ports, then 8 bytes of payload.
    fn datagram(
        proto: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ports: (u16, u16),
        frag: u16,
        ihl: u8,
    ) -> Vec<u8> {
        let hl = usize::from(ihl) * 4;
        let mut p = vec![0u8; hl + 16];
        p[0] = 0x40 | ihl;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&src.octets());
        p[16..20].copy_from_slice(&dst.octets());
        p[20..hl].fill(1);
        p[hl..hl + 2].copy_from_slice(&ports.0.to_be_bytes());
        p[hl + 2..hl + 4].copy_from_slice(&ports.1.to_be_bytes());
        p
    }

    /// `ip` behind the link header of `layout`, with `ethertype` where the layout has one.
    fn framed(layout: FrameLayout, ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; layout.network_offset() as usize];
        if let Some(at) = layout.ethertype_offset() {
            f[at as usize..at as usize + 2].copy_from_slice(&ethertype.to_be_bytes());
        }
        f.extend_from_slice(ip);
        f
    }

    /// The filter's meaning written out by hand, field by field, independently of the compiler:
    /// what a frame must hold to be kept. A field the decision needs but the frame lacks drops
    /// it, as a BPF load beyond the end does.
    fn oracle(f: &CaptureFilter, layout: FrameLayout, frame: &[u8], pkttype: u8) -> bool {
        let outgoing = pkttype == libc::PACKET_OUTGOING;
        match f.direction {
            Direction::In if outgoing => return false,
            Direction::Out if !outgoing => return false,
            _ => {}
        }
        if f.is_empty() {
            return true;
        }
        let net = layout.network_offset() as usize;
        let byte = |at: usize| frame.get(at).copied();
        let be16 = |at: usize| Some(u16::from_be_bytes([byte(at)?, byte(at + 1)?]));
        let be32 = |at: usize| {
            Some(u32::from_be_bytes([
                byte(at)?,
                byte(at + 1)?,
                byte(at + 2)?,
                byte(at + 3)?,
            ]))
        };
        let is_ipv4 = match layout.ethertype_offset() {
            Some(at) => be16(at as usize) == Some(0x0800),
            None => byte(net).map(|b| b >> 4) == Some(4),
        };
        if !is_ipv4 {
            return false;
        }
        if let Some(p) = f.protocol {
            if byte(net + 9) != Some(p) {
                return false;
            }
        }
        if let Some(h) = f.host {
            let h = u32::from(h);
            let ok = match be32(net + 12) {
                None => false,
                Some(src) if src == h => true,
                Some(_) => be32(net + 16) == Some(h),
            };
            if !ok {
                return false;
            }
        }
        if let Some(port) = f.port {
            let proto = match f.protocol {
                Some(p) => p,
                None => match byte(net + 9) {
                    Some(p) => p,
                    None => return false,
                },
            };
            if !PORT_PROTOCOLS.contains(&proto) {
                return false;
            }
            match be16(net + 6) {
                Some(frag) if frag & 0x1fff == 0 => {}
                _ => return false,
            }
            let Some(hl) = byte(net).map(|b| usize::from(b & 0x0f) * 4) else {
                return false;
            };
            return match be16(net + hl) {
                None => false,
                Some(sport) if sport == port => true,
                Some(_) => be16(net + hl + 2) == Some(port),
            };
        }
        true
    }

    fn filters() -> Vec<CaptureFilter> {
        let mut out = Vec::new();
        for protocol in [None, Some(1), Some(6), Some(17), Some(47)] {
            for host in [None, Some(ADDR_A), Some(ADDR_B)] {
                for port in [None, Some(53)] {
                    for direction in [Direction::Both, Direction::In, Direction::Out] {
                        out.push(CaptureFilter {
                            protocol,
                            host,
                            port,
                            direction,
                        });
                    }
                }
            }
        }
        out
    }

    #[test]
    fn capture_filters_keep_exactly_what_the_oracle_keeps() {
        let layouts = [
            FrameLayout::Ethernet,
            FrameLayout::LinuxSll,
            FrameLayout::LinuxSll2,
            FrameLayout::RawIp,
        ];
        let mut frames = Vec::new();
        for layout in layouts {
            for ethertype in [0x0800u16, 0x86dd, 0x8100] {
                if layout == FrameLayout::RawIp && ethertype != 0x0800 {
                    continue;
                }
                for proto in [1u8, 6, 17, 47, 132] {
                    for (src, dst) in [(ADDR_A, ADDR_B), (ADDR_B, ADDR_A), (ADDR_C, ADDR_C)] {
                        for ports in [(53u16, 7u16), (7, 53), (7, 7)] {
                            // First fragment with MF, a later fragment, whole.
                            for frag in [0u16, 0x2000, 185] {
                                for ihl in [5u8, 7] {
                                    let ip = datagram(proto, src, dst, ports, frag, ihl);
                                    let full = framed(layout, ethertype, &ip);
                                    let net = layout.network_offset() as usize;
                                    let hl = usize::from(ihl) * 4;
                                    for cut in [
                                        full.len(),
                                        net + 10,
                                        net + 14,
                                        net + 18,
                                        net + hl + 1,
                                        net + hl + 3,
                                    ] {
                                        frames.push((layout, full[..cut.min(full.len())].to_vec()));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // An IPv6 datagram on a raw link: never IPv4.
        let mut v6 = datagram(17, ADDR_A, ADDR_B, (53, 53), 0, 5);
        v6[0] = 0x60;
        frames.push((FrameLayout::RawIp, v6));
        let mut runs = 0;
        for f in filters() {
            for layout in layouts {
                let prog = f.compile(layout);
                assert!(prog.instructions().len() <= MAX_INSNS);
                for (frame_layout, frame) in frames.iter().filter(|(l, _)| *l == layout) {
                    for pkttype in [
                        libc::PACKET_HOST,
                        libc::PACKET_OUTGOING,
                        libc::PACKET_BROADCAST,
                    ] {
                        let meta = PacketMeta {
                            pkttype,
                            protocol: 0x0800,
                            ifindex: 1,
                        };
                        let kept = prog.run_with_meta(frame, &meta);
                        let want = oracle(&f, *frame_layout, frame, pkttype);
                        assert_eq!(
                            kept != 0,
                            want,
                            "{f:?} {layout:?} pkttype {pkttype} frame {frame:02x?}"
                        );
                        if want {
                            assert_eq!(kept, u32::MAX, "a kept frame is kept whole");
                        }
                        runs += 1;
                    }
                }
            }
        }
        assert!(runs > 100_000, "{runs}");
    }

    #[test]
    fn the_documented_program_is_what_compile_emits() {
        use op::*;
        let f = CaptureFilter {
            protocol: Some(17),
            host: Some(ADDR_A),
            port: Some(53),
            direction: Direction::In,
        };
        let pkttype = ANCILLARY_BASE + 4;
        let want = vec![
            BpfInsn::stmt(LD | H | ABS, 12),
            BpfInsn::jump(JMP | JEQ | K, 0x800, 0, 16),
            BpfInsn::stmt(LD | W | ABS, pkttype),
            BpfInsn::jump(JMP | JEQ | K, 4, 14, 0),
            BpfInsn::stmt(LD | B | ABS, 23),
            BpfInsn::jump(JMP | JEQ | K, 17, 0, 12),
            BpfInsn::stmt(LD | W | ABS, 26),
            BpfInsn::jump(JMP | JEQ | K, 0x7f00_0001, 2, 0),
            BpfInsn::stmt(LD | W | ABS, 30),
            BpfInsn::jump(JMP | JEQ | K, 0x7f00_0001, 0, 8),
            BpfInsn::stmt(LD | H | ABS, 20),
            BpfInsn::jump(JMP | JSET | K, 0x1fff, 6, 0),
            BpfInsn::stmt(LDX | B | MSH, 14),
            BpfInsn::stmt(LD | H | IND, 14),
            BpfInsn::jump(JMP | JEQ | K, 53, 2, 0),
            BpfInsn::stmt(LD | H | IND, 16),
            BpfInsn::jump(JMP | JEQ | K, 53, 0, 1),
            BpfInsn::stmt(RET | K, u32::MAX),
            BpfInsn::stmt(RET | K, 0),
        ];
        assert_eq!(f.compile(FrameLayout::Ethernet).instructions(), &want[..]);
    }

    #[test]
    fn empty_filter_keeps_everything_and_port_without_ports_keeps_nothing() {
        let all = CaptureFilter::default().compile(FrameLayout::Ethernet);
        assert_eq!(all, BpfProgram::accept_all());
        assert!(all.matches(&[]));
        let none = CaptureFilter {
            protocol: Some(1),
            port: Some(53),
            ..CaptureFilter::default()
        };
        assert_eq!(none.compile(FrameLayout::RawIp), BpfProgram::reject_all());
        // Direction alone needs the packet type, which a pcap file does not have.
        let out = CaptureFilter {
            direction: Direction::Out,
            ..CaptureFilter::default()
        };
        let prog = out.compile(FrameLayout::Ethernet);
        assert!(!prog.matches(&[0; 60]), "no metadata: ancillary loads drop");
        let meta = |pkttype| PacketMeta {
            pkttype,
            ..PacketMeta::default()
        };
        assert!(prog.run_with_meta(&[0; 60], &meta(4)) != 0);
        assert_eq!(prog.run_with_meta(&[0; 60], &meta(0)), 0);
    }

    #[test]
    fn the_longest_filter_fits_and_ancillary_loads_are_read_from_the_metadata() {
        let f = CaptureFilter {
            protocol: None,
            host: Some(ADDR_B),
            port: Some(33434),
            direction: Direction::Out,
        };
        for layout in [
            FrameLayout::Ethernet,
            FrameLayout::RawIp,
            FrameLayout::LinuxSll,
            FrameLayout::LinuxSll2,
        ] {
            let prog = f.compile(layout);
            assert!(prog.instructions().len() < 40);
            let frame = framed(
                layout,
                0x0800,
                &datagram(17, ADDR_A, ADDR_B, (40000, 33434), 0, 5),
            );
            let meta = PacketMeta {
                pkttype: 4,
                protocol: 0x0800,
                ifindex: 3,
            };
            assert_eq!(prog.run_with_meta(&frame, &meta), u32::MAX, "{layout:?}");
        }
        use op::*;
        let prog = [
            BpfInsn::stmt(LD | W | ABS, ANCILLARY_BASE + libc::SKF_AD_PROTOCOL as u32),
            BpfInsn::stmt(MISC | TAX, 0),
            BpfInsn::stmt(LD | W | ABS, ANCILLARY_BASE + libc::SKF_AD_IFINDEX as u32),
            BpfInsn::stmt(ALU | ADD | X, 0),
            BpfInsn::stmt(RET | A, 0),
        ];
        let meta = PacketMeta {
            pkttype: 0,
            protocol: 0x0800,
            ifindex: 3,
        };
        assert_eq!(execute(&prog, &[], Some(&meta)), 0x0803);
        assert_eq!(execute(&prog, &[], None), 0);
        // An extension rawkit does not model ends the program, as an unknown one would.
        let rxhash = [
            BpfInsn::stmt(LD | W | ABS, ANCILLARY_BASE + libc::SKF_AD_RXHASH as u32),
            BpfInsn::stmt(RET | K, 1),
        ];
        assert_eq!(execute(&rxhash, &[0; 64], Some(&meta)), 0);
    }
}

#[cfg(test)]
mod traceroute_filter_tests {
    //! The filter of `rawkit traceroute`'s UDP probes, run over hand-made packets.
    use super::BpfProgram;

    const PORT: u16 = 0xa1b2;

    fn ipv4(protocol: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let ihl = (20 + options.len()) / 4;
        let total = 20 + options.len() + payload.len();
        let mut p = vec![0x40 | ihl as u8, 0];
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 64, protocol, 0, 0]);
        p.extend_from_slice(&[198, 18, 2, 2, 198, 18, 1, 1]);
        p.extend_from_slice(options);
        p.extend_from_slice(payload);
        p
    }

    fn udp_probe(src_port: u16, options: &[u8]) -> Vec<u8> {
        let mut u = src_port.to_be_bytes().to_vec();
        u.extend_from_slice(&33434u16.to_be_bytes());
        u.extend_from_slice(&[0, 40, 0x12, 0x34]);
        u.extend_from_slice(&[0x40; 32]);
        ipv4(17, options, &u)
    }

    /// An ICMP error quoting the IPv4 header and 8 bytes of `probe`.
    fn error(kind: u8, code: u8, outer_options: &[u8], probe: &[u8]) -> Vec<u8> {
        let quote = (probe[0] & 0x0f) as usize * 4 + 8;
        let mut m = vec![kind, code, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&probe[..quote]);
        ipv4(1, outer_options, &m)
    }

    fn accepts(prog: &BpfProgram, packet: &[u8]) -> bool {
        prog.run(packet) != 0
    }

    #[test]
    fn every_error_type_quoting_our_udp_probe_passes() {
        let prog = BpfProgram::icmp_errors_quoting_udp(PORT);
        let probe = udp_probe(PORT, &[]);
        for kind in [3, 4, 5, 11, 12] {
            assert!(accepts(&prog, &error(kind, 0, &[], &probe)), "type {kind}");
        }
        assert_eq!(prog.run(&error(11, 0, &[], &probe)), u32::MAX);
        // Other types never pass, even with a body that looks like a quote.
        for kind in [0u8, 8, 13, 14, 42] {
            assert!(!accepts(&prog, &error(kind, 0, &[], &probe)), "type {kind}");
        }
    }

    #[test]
    fn errors_quoting_another_port_or_protocol_are_dropped() {
        let prog = BpfProgram::icmp_errors_quoting_udp(PORT);
        assert!(!accepts(
            &prog,
            &error(11, 0, &[], &udp_probe(PORT + 1, &[]))
        ));
        // An echo request whose identifier bytes sit where the port would: not UDP.
        let mut echo = vec![8, 0, 0, 0];
        echo.extend_from_slice(&PORT.to_be_bytes());
        echo.extend_from_slice(&[0, 1]);
        assert!(!accepts(&prog, &error(11, 0, &[], &ipv4(1, &[], &echo))));
        // Our port in the destination field (someone probing us) is not ours either.
        let mut u = 40000u16.to_be_bytes().to_vec();
        u.extend_from_slice(&PORT.to_be_bytes());
        u.extend_from_slice(&[0, 8, 0, 0]);
        assert!(!accepts(&prog, &error(3, 3, &[], &ipv4(17, &[], &u))));
    }

    #[test]
    fn options_on_the_error_and_on_the_quoted_probe_are_skipped() {
        let prog = BpfProgram::icmp_errors_quoting_udp(PORT);
        let probe = udp_probe(PORT, &[1, 1, 1, 0]);
        assert!(accepts(&prog, &error(11, 0, &[0x94, 4, 0, 0], &probe)));
        let theirs = udp_probe(PORT ^ 0xff, &[1, 1, 1, 0]);
        assert!(!accepts(&prog, &error(11, 0, &[0x94, 4, 0, 0], &theirs)));
    }

    #[test]
    fn udp_datagrams_and_truncated_errors_are_dropped() {
        let prog = BpfProgram::icmp_errors_quoting_udp(PORT);
        assert!(!accepts(&prog, &udp_probe(PORT, &[])));
        let e = error(11, 0, &[], &udp_probe(PORT, &[]));
        // The quoted source port ends at 20 + 8 + 20 + 2 = 50.
        for cut in 0..50 {
            assert!(!accepts(&prog, &e[..cut]), "cut at {cut}");
        }
        assert!(accepts(&prog, &e[..50]));
    }
}
