//! Classic BPF socket filters (`SO_ATTACH_FILTER`).
//!
//! A raw `IPPROTO_ICMP` socket receives *every* ICMP packet of the host: other programs' pings,
//! our own echo requests on `lo`, everyone's errors. [`BpfProgram::icmp_echo_reply_ident`] drops
//! in the kernel everything that is not a reply to us, before it is queued and before it wakes
//! the process. The order that loses nothing and admits nothing stale is: attach the filter,
//! drain what was queued before it, then send.
//!
//! This module only builds programs and attaches them; it must never parse packets itself.

use std::io;
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

#[cfg(test)]
pub(crate) mod interp {
    //! A classic BPF interpreter, to run programs over hand-made packets in unit tests.
    use super::{BpfInsn, op};

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

    /// Runs `prog` over `packet` and returns what the kernel would: the number of bytes to keep
    /// (0 drops the packet). Like the kernel, an out-of-bounds load returns 0.
    pub(crate) fn run(prog: &[BpfInsn], packet: &[u8]) -> u32 {
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
                            pc += k as usize;
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
}
