//! The three IPv4 sockets rawkit sends and receives ICMP with, and their options.
//!
//! * [`RawIcmpSocket`] — `socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`: sends an ICMP message (the
//!   kernel adds the IPv4 header) and receives *every* ICMP packet of the host, IPv4 header
//!   included. Needs `CAP_NET_RAW`. Attach [`BpfProgram::icmp_echo_reply_ident`] to keep only
//!   yours.
//! * [`HdrInclSender`] — `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)`, `IP_HDRINCL` implied: sends a
//!   whole IPv4 datagram as given (any protocol, any field, fragments). It receives nothing.
//!   Needs `CAP_NET_RAW`.
//! * [`DgramIcmpSocket`] — `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`, the unprivileged "ping
//!   socket": echo requests only; the kernel fills the checksum, rewrites the identifier to the
//!   socket's [`local_ident`](DgramIcmpSocket::local_ident) and delivers only the replies and
//!   errors that belong to it. Allowed when `net.ipv4.ping_group_range` includes the caller's
//!   group.
//!
//! Every socket is close-on-exec and closed on drop. Options use `socket2` where it has them and
//! `setsockopt(2)` otherwise. Nothing here looks inside the bytes it moves: building and parsing
//! packets is the caller's job.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, SystemTime};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::NetError;
use super::error::Privilege;
use super::filter::BpfProgram;
use super::time::{self, RecvMsg};

/// `ICMP_FILTER` (`linux/icmp.h`), at level `SOL_RAW`.
const ICMP_FILTER: libc::c_int = 1;

/// At most this many packets are discarded by one `drain`, so that a flood cannot keep it busy
/// for ever.
const DRAIN_LIMIT: usize = 1 << 16;

/// `setsockopt(2)` with a plain-data value.
///
/// `T` must be a plain C struct or integer the option expects (`c_int`, `u32`,
/// `packet_mreq`, ...).
pub(crate) fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of `size_of::<T>()` bytes, which the kernel only
    // reads during the call; `fd` is a borrowed, open descriptor.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setsockopt(2)` with an `int` value.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    setsockopt(fd, level, name, &value)
}

/// `getsockopt(2)` into a byte buffer; returns how many bytes the kernel wrote.
pub(crate) fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: `buf` is writable for `len` bytes and `len` is a live socklen_t; the kernel writes
    // at most `len` bytes and stores the length it used in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok((len as usize).min(buf.len()))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getsockname(2)` into a byte buffer; returns how many bytes the kernel wrote.
pub(crate) fn getsockname_bytes(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: `buf` is writable for `len` bytes; the kernel writes at most `len` bytes of the
    // address (truncating it) and stores the full length in `len`.
    let rc = unsafe { libc::getsockname(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len) };
    if rc == 0 {
        Ok((len as usize).min(buf.len()))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What the `IP_MTU_DISCOVER` option does with the Don't Fragment bit and path MTU discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PmtuMode {
    /// `IP_PMTUDISC_DONT`: never set DF; the kernel fragments datagrams over the MTU.
    Dont,
    /// `IP_PMTUDISC_WANT`: set DF and use the path MTU, but fragment if it shrinks.
    Want,
    /// `IP_PMTUDISC_DO`: always set DF; datagrams over the path MTU fail with `EMSGSIZE`.
    Do,
    /// `IP_PMTUDISC_PROBE`: set DF but ignore the learnt path MTU (send even larger datagrams,
    /// as a path MTU probe does).
    Probe,
}

impl PmtuMode {
    fn to_raw(self) -> libc::c_int {
        match self {
            PmtuMode::Dont => libc::IP_PMTUDISC_DONT,
            PmtuMode::Want => libc::IP_PMTUDISC_WANT,
            PmtuMode::Do => libc::IP_PMTUDISC_DO,
            PmtuMode::Probe => libc::IP_PMTUDISC_PROBE,
        }
    }
}

/// A datagram read from a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// How many bytes were written to the buffer.
    pub len: usize,
    /// True when the datagram was longer than the buffer and its end was lost.
    pub truncated: bool,
    /// The source address of the datagram.
    pub from: Ipv4Addr,
    /// When the kernel received it (`SO_TIMESTAMPNS`), if the kernel said.
    pub kernel_time: Option<SystemTime>,
    /// The TTL of its IPv4 header, when the socket delivers it separately (`IP_RECVTTL` on a
    /// [`DgramIcmpSocket`]); `None` on a raw socket, whose buffer holds the header itself.
    pub ttl: Option<u8>,
}

impl Received {
    fn from_msg(msg: &RecvMsg, buf_len: usize) -> Received {
        Received {
            len: msg.copied(buf_len),
            truncated: msg.truncated(),
            from: time::parse_sockaddr_in(msg.name()).unwrap_or(Ipv4Addr::UNSPECIFIED),
            kernel_time: msg.control.timestamp,
            ttl: msg.control.ttl,
        }
    }
}

/// Where an error on the error queue came from (`ee_origin` of `struct sock_extended_err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorOrigin {
    /// `SO_EE_ORIGIN_NONE`.
    None,
    /// `SO_EE_ORIGIN_LOCAL`: the local stack refused the datagram (e.g. `EMSGSIZE` with its
    /// MTU in [`QueuedError::info`]).
    Local,
    /// `SO_EE_ORIGIN_ICMP`: an ICMP error message arrived.
    Icmp,
    /// `SO_EE_ORIGIN_ICMP6`: an ICMPv6 error message arrived.
    Icmp6,
    /// Any other origin (timestamping, zerocopy notifications...).
    Other(u8),
}

impl From<u8> for ErrorOrigin {
    fn from(raw: u8) -> ErrorOrigin {
        match raw {
            libc::SO_EE_ORIGIN_NONE => ErrorOrigin::None,
            libc::SO_EE_ORIGIN_LOCAL => ErrorOrigin::Local,
            libc::SO_EE_ORIGIN_ICMP => ErrorOrigin::Icmp,
            libc::SO_EE_ORIGIN_ICMP6 => ErrorOrigin::Icmp6,
            other => ErrorOrigin::Other(other),
        }
    }
}

/// An error read from a socket's error queue (`IP_RECVERR`, `recvmsg(MSG_ERRQUEUE)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedError {
    /// How many bytes of the payload were written to the buffer. For an ICMP error on a ping
    /// socket the payload is the ICMP message that caused it (the echo request as sent, with
    /// the kernel's identifier).
    pub len: usize,
    /// True when the payload was longer than the buffer.
    pub truncated: bool,
    /// The errno the error maps to (`ee_errno`), e.g. `EHOSTUNREACH`, `EMSGSIZE`.
    pub errno: i32,
    /// Where the error came from.
    pub origin: ErrorOrigin,
    /// The ICMP type of the error (`ee_type`); 0 for local errors.
    pub icmp_type: u8,
    /// The ICMP code of the error (`ee_code`).
    pub icmp_code: u8,
    /// `ee_info`: the next-hop MTU for "fragmentation needed" and local `EMSGSIZE`.
    pub info: u32,
    /// `ee_data`.
    pub data: u32,
    /// The host that sent the ICMP error (`SO_EE_OFFENDER`); `None` for local errors.
    pub offender: Option<Ipv4Addr>,
    /// The destination of the datagram that caused the error.
    pub original_dst: Option<Ipv4Addr>,
    /// When the kernel queued the error, if the kernel said.
    pub kernel_time: Option<SystemTime>,
}

/// What [`DgramIcmpSocket::recv_any`] read: a reply or a queued error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// A datagram from the normal queue (an echo reply).
    Datagram(Received),
    /// An error from the error queue (an ICMP error about one of our requests, or a local one).
    Error(QueuedError),
}

fn to_sockaddr(addr: Ipv4Addr, port: u16) -> SockAddr {
    SockAddr::from(SocketAddrV4::new(addr, port))
}

/// Reads one datagram; `Ok(None)` when nothing arrived in time.
fn recv_datagram(sock: &Socket, buf: &mut [u8], flags: i32) -> Result<Option<Received>, NetError> {
    match time::recv_msg(sock.as_fd(), buf, flags) {
        Ok(msg) => Ok(Some(Received::from_msg(&msg, buf.len()))),
        Err(e) if time::is_no_data(&e) => Ok(None),
        Err(e) => Err(NetError::from_io("recvmsg", e)),
    }
}

/// Reads one error from the error queue; `Ok(None)` when it is empty. Never blocks.
fn recv_queued_error(sock: &Socket, buf: &mut [u8]) -> Result<Option<QueuedError>, NetError> {
    let flags = libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT;
    let msg = match time::recv_msg(sock.as_fd(), buf, flags) {
        Ok(msg) => msg,
        Err(e) if time::is_no_data(&e) => return Ok(None),
        Err(e) => return Err(NetError::from_io("recvmsg(MSG_ERRQUEUE)", e)),
    };
    let Some(ee) = msg.control.extended_err else {
        // Something on the error queue that is not an IP_RECVERR report: skip it.
        return Ok(None);
    };
    Ok(Some(QueuedError {
        len: msg.copied(buf.len()),
        truncated: msg.truncated(),
        errno: i32::try_from(ee.errno).unwrap_or(i32::MAX),
        origin: ErrorOrigin::from(ee.origin),
        icmp_type: ee.icmp_type,
        icmp_code: ee.icmp_code,
        info: ee.info,
        data: ee.data,
        offender: ee.offender,
        original_dst: time::parse_sockaddr_in(msg.name()),
        kernel_time: msg.control.timestamp,
    }))
}

/// Reads and discards what is queued, without blocking; returns how many datagrams went.
fn drain_queue(sock: &Socket, flags: i32) -> Result<usize, NetError> {
    let mut scratch = [0u8; 64];
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match time::recv_msg(sock.as_fd(), &mut scratch, flags | libc::MSG_DONTWAIT) {
            Ok(_) => drained += 1,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if time::is_no_data(&e) => break,
            // A pending asynchronous error (sk_err) is reported, and cleared, by one read.
            Err(e) if flags & libc::MSG_ERRQUEUE == 0 && is_async_error(&e) => {}
            Err(e) => return Err(NetError::from_io("recvmsg", e)),
        }
    }
    Ok(drained)
}

/// Errnos the kernel stores in `sk_err` when an ICMP error arrives for a datagram socket, and
/// reports once from the next receive call.
fn is_async_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::ECONNREFUSED
                | libc::EPROTO
                | libc::EMSGSIZE
                | libc::ENOPROTOOPT
                | libc::EACCES
                | libc::EPERM
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EOPNOTSUPP
        )
    )
}

/// `SO_RCVTIMEO`, refusing zero (which the kernel reads as "for ever").
pub(crate) fn set_read_timeout(sock: &Socket, timeout: Option<Duration>) -> Result<(), NetError> {
    const OP: &str = "setsockopt(SO_RCVTIMEO)";
    let timeout = match timeout {
        // A zero timeval means "block for ever" to the kernel: refuse it, as std does.
        Some(d) if d.is_zero() => {
            return Err(NetError::Io {
                op: OP,
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        // The kernel counts in microseconds: round a sub-microsecond timeout up, not to zero.
        Some(d) if d < Duration::from_micros(1) => Some(Duration::from_micros(1)),
        other => other,
    };
    sock.set_read_timeout(timeout)
        .map_err(|e| NetError::from_io(OP, e))
}

fn bind_device(sock: &Socket, iface: &str) -> Result<(), NetError> {
    // The kernel silently truncates names longer than IFNAMSIZ - 1: refuse them instead.
    if iface.len() >= libc::IFNAMSIZ || iface.contains('\0') {
        return Err(NetError::NoSuchInterface {
            name: Some(iface.to_owned()),
            source: None,
        });
    }
    let name = (!iface.is_empty()).then_some(iface.as_bytes());
    sock.bind_device(name)
        .map_err(|e| NetError::from_io("setsockopt(SO_BINDTODEVICE)", e).with_interface(iface))
}

/// The options every socket here has. Expands to an `impl` block plus `AsFd`/`AsRawFd`.
macro_rules! common_options {
    ($ty:ty) => {
        impl $ty {
            /// Switches non-blocking mode: when on, reads return `Ok(None)` at once when nothing
            /// is queued and sends fail with `EAGAIN` when the buffer is full.
            pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), NetError> {
                self.sock
                    .set_nonblocking(nonblocking)
                    .map_err(|e| NetError::from_io("fcntl(O_NONBLOCK)", e))
            }

            /// Sets the send buffer size (`SO_SNDBUF`; the kernel doubles it, up to
            /// `net.core.wmem_max`).
            pub fn set_send_buffer(&self, bytes: usize) -> Result<(), NetError> {
                self.sock
                    .set_send_buffer_size(bytes)
                    .map_err(|e| NetError::from_io("setsockopt(SO_SNDBUF)", e))
            }

            /// Sets the firewall mark of outgoing packets (`SO_MARK`); needs `CAP_NET_ADMIN`
            /// (or `CAP_NET_RAW`).
            pub fn set_mark(&self, mark: u32) -> Result<(), NetError> {
                self.sock.set_mark(mark).map_err(|e| {
                    NetError::from_io("setsockopt(SO_MARK)", e).needing(Privilege::NetAdmin)
                })
            }

            /// Sends and receives only through the interface `iface` (`SO_BINDTODEVICE`); an
            /// empty name removes the binding. An unknown name gives
            /// [`NetError::NoSuchInterface`].
            pub fn bind_device(&self, iface: &str) -> Result<(), NetError> {
                bind_device(&self.sock, iface)
            }
        }

        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.sock.as_fd()
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.sock.as_raw_fd()
            }
        }
    };
}

/// The options of the sockets that let the kernel build the IPv4 header, and receive.
macro_rules! ip_options {
    ($ty:ty) => {
        impl $ty {
            /// Sets the TTL of outgoing datagrams (`IP_TTL`).
            pub fn set_ttl(&self, ttl: u8) -> Result<(), NetError> {
                self.sock
                    .set_ttl_v4(u32::from(ttl))
                    .map_err(|e| NetError::from_io("setsockopt(IP_TTL)", e))
            }

            /// Sets the TOS byte (DSCP and ECN) of outgoing datagrams (`IP_TOS`).
            pub fn set_tos(&self, tos: u8) -> Result<(), NetError> {
                self.sock
                    .set_tos_v4(u32::from(tos))
                    .map_err(|e| NetError::from_io("setsockopt(IP_TOS)", e))
            }

            /// Chooses Don't Fragment and path MTU discovery behaviour (`IP_MTU_DISCOVER`).
            pub fn set_mtu_discover(&self, mode: PmtuMode) -> Result<(), NetError> {
                setsockopt_int(
                    self.sock.as_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MTU_DISCOVER,
                    mode.to_raw(),
                )
                .map_err(|e| NetError::from_io("setsockopt(IP_MTU_DISCOVER)", e))
            }

            /// Makes reads wait at most `timeout` (`SO_RCVTIMEO`) and then return `Ok(None)`;
            /// `None` waits for ever. A zero duration is refused (the kernel would read it as
            /// "for ever").
            pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), NetError> {
                set_read_timeout(&self.sock, timeout)
            }

            /// Sets the receive buffer size (`SO_RCVBUF`; the kernel doubles it, up to
            /// `net.core.rmem_max`).
            pub fn set_recv_buffer(&self, bytes: usize) -> Result<(), NetError> {
                self.sock
                    .set_recv_buffer_size(bytes)
                    .map_err(|e| NetError::from_io("setsockopt(SO_RCVBUF)", e))
            }

            /// Attaches a classic BPF filter (`SO_ATTACH_FILTER`), replacing any earlier one.
            /// Packets queued before the call are not filtered: [`drain`](Self::drain) them.
            pub fn attach_filter(&self, program: &BpfProgram) -> Result<(), NetError> {
                program.attach(&self.sock)
            }

            /// Removes the BPF filter (`SO_DETACH_FILTER`).
            pub fn detach_filter(&self) -> Result<(), NetError> {
                BpfProgram::detach(&self.sock)
            }
        }
    };
}

/// A raw ICMP socket: `socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`.
///
/// Sends ICMP messages to which the kernel adds the IPv4 header (the caller computes the ICMP
/// checksum: the kernel never does for a raw socket), and receives every ICMP packet of the
/// host, starting at the IPv4 header, with a kernel timestamp.
#[derive(Debug)]
pub struct RawIcmpSocket {
    sock: Socket,
}

impl RawIcmpSocket {
    /// Opens the socket and turns on kernel receive timestamps.
    ///
    /// Fails with [`NetError::MissingPrivilege`] without `CAP_NET_RAW`.
    pub fn open() -> Result<RawIcmpSocket, NetError> {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
            .map_err(|e| NetError::from_io("open raw ICMP socket", e))?;
        time::enable_timestamps(sock.as_fd())
            .map_err(|e| NetError::from_io("setsockopt(SO_TIMESTAMPNS)", e))?;
        Ok(RawIcmpSocket { sock })
    }

    /// Sends the ICMP message `icmp` (header and body, checksum included) to `dst`; the kernel
    /// adds the IPv4 header. Returns the bytes sent.
    pub fn send_to(&self, icmp: &[u8], dst: Ipv4Addr) -> Result<usize, NetError> {
        self.sock
            .send_to(icmp, &to_sockaddr(dst, 0))
            .map_err(|e| NetError::from_send("sendto", icmp.len(), e))
    }

    /// Receives one packet — IPv4 header, then the ICMP message — into `buf`.
    ///
    /// Returns `Ok(None)` when nothing arrived before the read timeout, when the socket is
    /// non-blocking and nothing is queued, or when a signal interrupted the wait.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<Received>, NetError> {
        recv_datagram(&self.sock, buf, 0)
    }

    /// Reads and discards everything queued, without blocking; returns how many packets went.
    ///
    /// The order that admits nothing stale: [`attach_filter`](Self::attach_filter), then
    /// `drain`, then send.
    pub fn drain(&self) -> Result<usize, NetError> {
        drain_queue(&self.sock, 0)
    }

    /// Keeps only the ICMP types in `allowed` (`ICMP_FILTER`, per type, in the kernel).
    ///
    /// The kernel can filter types 0 to 31 only; types 32 and above always pass.
    pub fn set_icmp_type_filter(&self, allowed: &[u8]) -> Result<(), NetError> {
        // A set bit BLOCKS the type.
        let pass = allowed
            .iter()
            .filter(|&&t| t < 32)
            .fold(0u32, |mask, &t| mask | (1 << t));
        setsockopt(self.sock.as_fd(), libc::SOL_RAW, ICMP_FILTER, &!pass)
            .map_err(|e| NetError::from_io("setsockopt(ICMP_FILTER)", e))
    }

    /// Uses `addr` as the source address of outgoing packets, and receives only packets sent
    /// to it (`bind`).
    pub fn bind_source(&self, addr: Ipv4Addr) -> Result<(), NetError> {
        self.sock
            .bind(&to_sockaddr(addr, 0))
            .map_err(|e| NetError::from_io("bind", e))
    }
}

common_options!(RawIcmpSocket);
ip_options!(RawIcmpSocket);

/// A sender of whole IPv4 datagrams: `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)`, which implies
/// `IP_HDRINCL`.
///
/// The kernel sends the datagram as given, except that it always rewrites the total length
/// and the header checksum, fills the identification when it is 0 (and DF is clear) and the
/// source when it is 0.0.0.0. It never fragments: a datagram over the MTU fails with
/// [`NetError::MessageTooLong`]. This socket receives nothing.
///
/// To timestamp a probe, read the clock right before [`send_to`](Self::send_to).
#[derive(Debug)]
pub struct HdrInclSender {
    sock: Socket,
}

impl HdrInclSender {
    /// Opens the socket. Fails with [`NetError::MissingPrivilege`] without `CAP_NET_RAW`.
    pub fn open() -> Result<HdrInclSender, NetError> {
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .map_err(|e| NetError::from_io("open raw IPv4 (IP_HDRINCL) socket", e))?;
        Ok(HdrInclSender { sock })
    }

    /// Sends `datagram`, a whole IPv4 datagram starting at its header, towards `dst` (which
    /// picks the route; the header's own destination is what goes on the wire). Returns the
    /// bytes sent.
    pub fn send_to(&self, datagram: &[u8], dst: Ipv4Addr) -> Result<usize, NetError> {
        self.sock
            .send_to(datagram, &to_sockaddr(dst, 0))
            .map_err(|e| NetError::from_send("sendto", datagram.len(), e))
    }

    /// How the kernel holds these datagrams to a path MTU it learnt (`IP_MTU_DISCOVER`). With
    /// [`PmtuMode::Probe`] a datagram with DF set leaves whenever it fits the interface, even
    /// above a smaller path MTU learnt from "fragmentation needed" (what a traceroute probing
    /// the path needs); by default such a datagram is refused with `EMSGSIZE`.
    pub fn set_mtu_discover(&self, mode: PmtuMode) -> Result<(), NetError> {
        setsockopt_int(
            self.sock.as_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            mode.to_raw(),
        )
        .map_err(|e| NetError::from_io("setsockopt(IP_MTU_DISCOVER)", e))
    }
}

common_options!(HdrInclSender);

/// A raw socket for one IPv4 protocol: `socket(AF_INET, SOCK_RAW, protocol)`, used to *receive*.
///
/// Every datagram of that protocol the host receives is copied to it (after reassembly),
/// starting at the IPv4 header, with a kernel timestamp, while the datagram still goes on to
/// the protocol and its own sockets. `rawkit send udp --listen` reads the answers to its UDP
/// datagrams this way, whatever socket (or none) the answer is for. For ICMP use
/// [`RawIcmpSocket`], which adds the per-type filter; to send whole datagrams use
/// [`HdrInclSender`]. `IPPROTO_RAW` (255) receives nothing on Linux and is refused here.
/// Needs `CAP_NET_RAW`.
#[derive(Debug)]
pub struct RawIpSocket {
    sock: Socket,
    protocol: u8,
}

impl RawIpSocket {
    /// Opens the socket for IP protocol `protocol` (17 for UDP) and turns on kernel receive
    /// timestamps.
    ///
    /// Fails with [`NetError::MissingPrivilege`] without `CAP_NET_RAW`, and with
    /// [`NetError::Io`] (`EINVAL`) for protocol 255, which the kernel never delivers to.
    pub fn open(protocol: u8) -> Result<RawIpSocket, NetError> {
        const OP: &str = "open raw IP socket";
        if i32::from(protocol) == libc::IPPROTO_RAW {
            return Err(NetError::Io {
                op: OP,
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(protocol))),
        )
        .map_err(|e| NetError::from_io(OP, e))?;
        time::enable_timestamps(sock.as_fd())
            .map_err(|e| NetError::from_io("setsockopt(SO_TIMESTAMPNS)", e))?;
        Ok(RawIpSocket { sock, protocol })
    }

    /// The IP protocol this socket receives.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Receives one datagram — IPv4 header, then the payload — into `buf`.
    ///
    /// Returns `Ok(None)` when nothing arrived before the read timeout, when the socket is
    /// non-blocking and nothing is queued, or when a signal interrupted the wait.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<Received>, NetError> {
        recv_datagram(&self.sock, buf, 0)
    }

    /// Reads and discards everything queued, without blocking; returns how many datagrams went.
    pub fn drain(&self) -> Result<usize, NetError> {
        drain_queue(&self.sock, 0)
    }
}

common_options!(RawIpSocket);
ip_options!(RawIpSocket);

/// An ICMP datagram socket ("ping socket"): `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`.
///
/// Sends ICMP echo requests only. The kernel computes the checksum, replaces the identifier
/// with [`local_ident`](Self::local_ident), and delivers to this socket only the echo replies
/// with that identifier (without the IPv4 header; the TTL comes in [`Received::ttl`]). ICMP
/// errors about its requests arrive on the error queue: read them with
/// [`recv_error`](Self::recv_error) or [`recv_any`](Self::recv_any).
#[derive(Debug)]
pub struct DgramIcmpSocket {
    sock: Socket,
    ident: u16,
}

impl DgramIcmpSocket {
    /// Opens the socket bound to any address and to an identifier the kernel picks; turns on
    /// kernel timestamps, `IP_RECVTTL` and `IP_RECVERR`.
    ///
    /// Fails with [`NetError::PingGroupDenied`] when `net.ipv4.ping_group_range` does not
    /// include the caller's group.
    pub fn open() -> Result<DgramIcmpSocket, NetError> {
        DgramIcmpSocket::open_bound(Ipv4Addr::UNSPECIFIED, 0)
    }

    /// Like [`open`](Self::open), bound to the source address `source` and to the echo
    /// identifier `ident` (0: the kernel picks a free one).
    pub fn open_bound(source: Ipv4Addr, ident: u16) -> Result<DgramIcmpSocket, NetError> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4))
            .map_err(ping_open_error)?;
        let fd = sock.as_fd();
        time::enable_timestamps(fd)
            .map_err(|e| NetError::from_io("setsockopt(SO_TIMESTAMPNS)", e))?;
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)
            .map_err(|e| NetError::from_io("setsockopt(IP_RECVTTL)", e))?;
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1)
            .map_err(|e| NetError::from_io("setsockopt(IP_RECVERR)", e))?;
        // Binding makes the kernel choose the identifier now, so that it is known before the
        // first send.
        sock.bind(&to_sockaddr(source, ident))
            .map_err(|e| NetError::from_io("bind", e))?;
        let local = sock
            .local_addr()
            .map_err(|e| NetError::from_io("getsockname", e))?;
        let ident = local.as_socket_ipv4().map_or(0, |a| a.port());
        Ok(DgramIcmpSocket { sock, ident })
    }

    /// The echo identifier the kernel puts in this socket's requests and expects in replies.
    pub fn local_ident(&self) -> u16 {
        self.ident
    }

    /// Sends the ICMP echo request `icmp` to `dst`. The kernel fills in the checksum and the
    /// identifier; the type must be 8 and the code 0 (else `EINVAL`).
    pub fn send_to(&self, icmp: &[u8], dst: Ipv4Addr) -> Result<usize, NetError> {
        self.sock
            .send_to(icmp, &to_sockaddr(dst, 0))
            .map_err(|e| NetError::from_send("sendto", icmp.len(), e))
    }

    /// Receives one ICMP message (no IPv4 header) into `buf`.
    ///
    /// Returns `Ok(None)` on read timeout, when non-blocking and empty, or on a signal. When an
    /// ICMP error has arrived for this socket, the kernel reports its errno once from the next
    /// receive (e.g. `EHOSTUNREACH` as [`NetError::Io`]); its details are on the error queue.
    /// [`recv_any`](Self::recv_any) handles both queues.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<Received>, NetError> {
        recv_datagram(&self.sock, buf, 0)
    }

    /// Reads one error from the error queue, without blocking; `Ok(None)` when it is empty.
    /// The payload written to `buf` is the ICMP message the error is about.
    pub fn recv_error(&self, buf: &mut [u8]) -> Result<Option<QueuedError>, NetError> {
        recv_queued_error(&self.sock, buf)
    }

    /// Reads whatever comes first: a queued error, or else a datagram (waiting up to the read
    /// timeout). `Ok(None)` when nothing came.
    pub fn recv_any(&self, buf: &mut [u8]) -> Result<Option<Incoming>, NetError> {
        if let Some(err) = recv_queued_error(&self.sock, buf)? {
            return Ok(Some(Incoming::Error(err)));
        }
        match time::recv_msg(self.sock.as_fd(), buf, 0) {
            Ok(msg) => Ok(Some(Incoming::Datagram(Received::from_msg(
                &msg,
                buf.len(),
            )))),
            Err(e) if time::is_no_data(&e) => Ok(None),
            // The wait ended because an error was queued: the kernel reported its errno.
            Err(e) if is_async_error(&e) => {
                Ok(recv_queued_error(&self.sock, buf)?.map(Incoming::Error))
            }
            Err(e) => Err(NetError::from_io("recvmsg", e)),
        }
    }

    /// Reads and discards everything queued, replies and errors, without blocking; returns
    /// how many went.
    pub fn drain(&self) -> Result<usize, NetError> {
        let errors = drain_queue(&self.sock, libc::MSG_ERRQUEUE)?;
        Ok(errors + drain_queue(&self.sock, 0)?)
    }
}

common_options!(DgramIcmpSocket);
ip_options!(DgramIcmpSocket);

/// Maps the failure to open a ping socket: `EACCES` is the group range, not a capability.
fn ping_open_error(err: io::Error) -> NetError {
    if err.raw_os_error() == Some(libc::EACCES) {
        NetError::PingGroupDenied {
            range: std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
                .ok()
                .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" ")),
            gid: effective_gid(),
            source: err,
        }
    } else {
        NetError::from_io("open ICMP datagram (ping) socket", err)
    }
}

/// The calling thread's effective group id, from `/proc/thread-self/status`.
fn effective_gid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Gid:"))?;
    // Gid: real effective saved filesystem
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmtu_modes_map_to_the_kernel_values() {
        assert_eq!(PmtuMode::Dont.to_raw(), 0);
        assert_eq!(PmtuMode::Want.to_raw(), 1);
        assert_eq!(PmtuMode::Do.to_raw(), 2);
        assert_eq!(PmtuMode::Probe.to_raw(), 3);
    }

    #[test]
    fn error_origins_keep_unknown_values() {
        assert_eq!(ErrorOrigin::from(1), ErrorOrigin::Local);
        assert_eq!(ErrorOrigin::from(2), ErrorOrigin::Icmp);
        assert_eq!(ErrorOrigin::from(4), ErrorOrigin::Other(4));
    }

    #[test]
    fn effective_gid_is_readable() {
        assert!(effective_gid().is_some());
    }

    #[test]
    fn ping_eacces_becomes_the_group_range_error() {
        let err = ping_open_error(io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(err, NetError::PingGroupDenied { .. }));
        let err = ping_open_error(io::Error::from_raw_os_error(libc::EPERM));
        assert!(matches!(err, NetError::MissingPrivilege { .. }));
    }
}
