//! Kernel receive timestamps, and the one `recvmsg(2)` wrapper every socket type uses.
//!
//! A kernel timestamp (`SO_TIMESTAMPNS`) is taken when the packet enters the stack, before the
//! scheduler gets to run the receiver, so round-trip times computed from it do not include the
//! wake-up latency of the receiving process. It arrives as a `SCM_TIMESTAMPNS` control message
//! of `recvmsg(2)`; this module enables it, reads it, and parses the other control messages the
//! sockets of [`crate::net`] ask for (`IP_TTL`, `IP_RECVERR`).
//!
//! The control-message parser works on plain bytes and never dereferences a pointer the kernel
//! filled in: a short or inconsistent control buffer yields fewer messages, never a panic.
//! This module must never interpret packet contents: it hands back bytes and lengths.

use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, SystemTime};

/// Room for the source address of any socket family (`sizeof(struct sockaddr_storage)`).
pub(crate) const NAME_LEN: usize = mem::size_of::<libc::sockaddr_storage>();

/// Room for the control messages the sockets enable: a timestamp, a TTL, an extended error with
/// its offender address, with headroom for options a caller may turn on.
const CONTROL_LEN: usize = 512;

/// Turns on `SO_TIMESTAMPNS`: every datagram read through [`recv_msg`] then carries the
/// kernel's receive time.
pub(crate) fn enable_timestamps(fd: BorrowedFd<'_>) -> io::Result<()> {
    crate::net::socket::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Converts a `struct timespec` (seconds and nanoseconds since the Unix epoch) to a
/// [`SystemTime`]. Returns `None` for values no timestamp can have (negative, or nanoseconds
/// of a second or more).
pub fn timespec_to_system_time(secs: i64, nanos: i64) -> Option<SystemTime> {
    let secs = u64::try_from(secs).ok()?;
    let nanos = u32::try_from(nanos).ok().filter(|&n| n < 1_000_000_000)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Parses the payload of an `SCM_TIMESTAMPNS` control message: a `struct timespec` of two
/// native-endian words, 64-bit (16 bytes, also `SO_TIMESTAMPNS_NEW`) or 32-bit (8 bytes).
pub fn parse_timespec(data: &[u8]) -> Option<SystemTime> {
    match data.len() {
        16 => {
            let secs = i64::from_ne_bytes(data[0..8].try_into().ok()?);
            let nanos = i64::from_ne_bytes(data[8..16].try_into().ok()?);
            timespec_to_system_time(secs, nanos)
        }
        8 => {
            let secs = i32::from_ne_bytes(data[0..4].try_into().ok()?);
            let nanos = i32::from_ne_bytes(data[4..8].try_into().ok()?);
            timespec_to_system_time(secs.into(), nanos.into())
        }
        _ => None,
    }
}

/// One control message: its level, type and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cmsg<'a> {
    pub level: i32,
    pub kind: i32,
    pub data: &'a [u8],
}

/// Byte layout of `struct cmsghdr`, taken from libc so it is right on every target.
const CMSG_LEVEL_AT: usize = mem::offset_of!(libc::cmsghdr, cmsg_level);
const CMSG_TYPE_AT: usize = mem::offset_of!(libc::cmsghdr, cmsg_type);
const CMSG_HDR_LEN: usize = mem::size_of::<libc::cmsghdr>();

/// `CMSG_ALIGN`: control messages are aligned to `size_t`.
const fn cmsg_align(len: usize) -> usize {
    let a = mem::size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

fn read_ne_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn read_ne_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// Iterates over the control messages in the first `len` bytes of a control buffer, the way
/// `CMSG_FIRSTHDR`/`CMSG_NXTHDR` do, but on bytes: it stops at the first header that does not
/// fit instead of reading past the end.
pub(crate) fn cmsgs(control: &[u8]) -> impl Iterator<Item = Cmsg<'_>> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        let hdr = control.get(off..off.checked_add(CMSG_HDR_LEN)?)?;
        // `cmsg_len` is a size_t (or, on musl, a socklen_t plus padding that the kernel zeroes).
        let cmsg_len = match CMSG_LEVEL_AT {
            8 => usize::try_from(u64::from_ne_bytes(hdr[0..8].try_into().ok()?)).ok()?,
            _ => usize::try_from(u32::from_ne_bytes(hdr[0..4].try_into().ok()?)).ok()?,
        };
        let level = i32::from_ne_bytes(hdr[CMSG_LEVEL_AT..CMSG_LEVEL_AT + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(hdr[CMSG_TYPE_AT..CMSG_TYPE_AT + 4].try_into().ok()?);
        if cmsg_len < CMSG_HDR_LEN {
            return None;
        }
        let end = off.checked_add(cmsg_len)?;
        let data = control.get(off + cmsg_align(CMSG_HDR_LEN)..end)?;
        off = off.checked_add(cmsg_align(cmsg_len))?;
        Some(Cmsg { level, kind, data })
    })
}

/// The fields of a `struct sock_extended_err` read from the error queue (`IP_RECVERR`), with
/// the offender address that follows it (`SO_EE_OFFENDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtendedErr {
    pub errno: u32,
    pub origin: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub info: u32,
    pub data: u32,
    pub offender: Option<Ipv4Addr>,
}

const EE_ERRNO_AT: usize = mem::offset_of!(libc::sock_extended_err, ee_errno);
const EE_ORIGIN_AT: usize = mem::offset_of!(libc::sock_extended_err, ee_origin);
const EE_TYPE_AT: usize = mem::offset_of!(libc::sock_extended_err, ee_type);
const EE_CODE_AT: usize = mem::offset_of!(libc::sock_extended_err, ee_code);
const EE_INFO_AT: usize = mem::offset_of!(libc::sock_extended_err, ee_info);
const EE_DATA_AT: usize = mem::offset_of!(libc::sock_extended_err, ee_data);
const EE_LEN: usize = mem::size_of::<libc::sock_extended_err>();

fn parse_extended_err(data: &[u8]) -> Option<ExtendedErr> {
    let ee = data.get(..EE_LEN)?;
    Some(ExtendedErr {
        errno: read_ne_u32(ee, EE_ERRNO_AT)?,
        origin: ee[EE_ORIGIN_AT],
        icmp_type: ee[EE_TYPE_AT],
        icmp_code: ee[EE_CODE_AT],
        info: read_ne_u32(ee, EE_INFO_AT)?,
        data: read_ne_u32(ee, EE_DATA_AT)?,
        // SO_EE_OFFENDER: a sockaddr right after the struct; AF_UNSPEC when there is none.
        offender: data.get(EE_LEN..).and_then(parse_sockaddr_in),
    })
}

/// Parses a `struct sockaddr_in` given as bytes; `None` unless its family is `AF_INET`.
pub(crate) fn parse_sockaddr_in(bytes: &[u8]) -> Option<Ipv4Addr> {
    let family = read_ne_u16(bytes, mem::offset_of!(libc::sockaddr_in, sin_family))?;
    if i32::from(family) != libc::AF_INET {
        return None;
    }
    let at = mem::offset_of!(libc::sockaddr_in, sin_addr);
    let octets: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(octets))
}

/// What the control messages of one `recvmsg` said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Control {
    /// `SCM_TIMESTAMPNS`: when the kernel received the packet.
    pub timestamp: Option<SystemTime>,
    /// `IP_TTL` (with `IP_RECVTTL`): the TTL of the received IPv4 header.
    pub ttl: Option<u8>,
    /// `IP_RECVERR` on the error queue.
    pub extended_err: Option<ExtendedErr>,
}

impl Control {
    pub(crate) fn parse(control: &[u8]) -> Control {
        let mut out = Control::default();
        for cmsg in cmsgs(control) {
            match (cmsg.level, cmsg.kind) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)
                | (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS_NEW) => {
                    out.timestamp = parse_timespec(cmsg.data);
                }
                (libc::IPPROTO_IP, libc::IP_TTL) => {
                    out.ttl = read_ne_u32(cmsg.data, 0).and_then(|t| u8::try_from(t).ok());
                }
                (libc::IPPROTO_IP, libc::IP_RECVERR) => {
                    out.extended_err = parse_extended_err(cmsg.data);
                }
                _ => {}
            }
        }
        out
    }
}

/// The outcome of one [`recv_msg`].
#[derive(Debug, Clone)]
pub(crate) struct RecvMsg {
    /// What `recvmsg` returned: the bytes copied, or with `MSG_TRUNC` in the flags on a packet
    /// or raw socket, the real length of the packet, which may exceed the buffer.
    pub ret: usize,
    /// `msg_flags`: `MSG_TRUNC` when the datagram did not fit, `MSG_CTRUNC`, `MSG_ERRQUEUE`.
    pub flags: i32,
    /// The source address (`msg_name`) as bytes: a `sockaddr_in` or a `sockaddr_ll`.
    pub name: [u8; NAME_LEN],
    /// How many bytes of `name` the kernel filled.
    pub name_len: usize,
    /// The parsed control messages.
    pub control: Control,
}

impl RecvMsg {
    /// The bytes of the datagram that were copied into the caller's buffer.
    pub(crate) fn copied(&self, buf_len: usize) -> usize {
        self.ret.min(buf_len)
    }

    /// True when the datagram was longer than the buffer.
    pub(crate) fn truncated(&self) -> bool {
        self.flags & libc::MSG_TRUNC != 0
    }

    pub(crate) fn name(&self) -> &[u8] {
        &self.name[..self.name_len.min(NAME_LEN)]
    }
}

/// `recvmsg(2)` into `buf`, with room for the source address and the control messages.
///
/// `flags` are passed through (`MSG_DONTWAIT`, `MSG_TRUNC`, `MSG_ERRQUEUE`).
pub(crate) fn recv_msg(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<RecvMsg> {
    let mut name = [0u8; NAME_LEN];
    let mut control = [0u8; CONTROL_LEN];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero `msghdr` is valid (null pointers and zero lengths); every pointer we
    // then store in it points into a live local or into `buf`, with the length of that storage,
    // and they outlive the call. The kernel writes at most `msg_namelen`, `iov_len` and
    // `msg_controllen` bytes to them and reports the lengths it used.
    let (ret, msg) = unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_name = name.as_mut_ptr().cast();
        msg.msg_namelen = NAME_LEN as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = CONTROL_LEN as _;
        let ret = libc::recvmsg(fd.as_raw_fd(), &mut msg, flags);
        (ret, msg)
    };
    let ret = usize::try_from(ret).map_err(|_| io::Error::last_os_error())?;
    // `msg_controllen` is a size_t on glibc but a socklen_t on musl.
    #[allow(clippy::useless_conversion)]
    let control_len = usize::try_from(msg.msg_controllen).map_or(0, |l| l.min(CONTROL_LEN));
    Ok(RecvMsg {
        ret,
        flags: msg.msg_flags,
        name,
        name_len: msg.msg_namelen as usize,
        control: Control::parse(&control[..control_len]),
    })
}

/// True for the errors that mean "nothing to read now": a read timeout (`SO_RCVTIMEO` ends
/// with `EAGAIN`), a non-blocking socket with an empty queue, or a signal (`EINTR`), so the
/// caller can check its flags.
pub(crate) fn is_no_data(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a control buffer the way the kernel lays it out.
    fn push_cmsg(buf: &mut Vec<u8>, level: i32, kind: i32, data: &[u8]) {
        let start = buf.len();
        let len = cmsg_align(CMSG_HDR_LEN) + data.len();
        let mut hdr = vec![0u8; CMSG_HDR_LEN];
        match CMSG_LEVEL_AT {
            8 => hdr[0..8].copy_from_slice(&(len as u64).to_ne_bytes()),
            _ => hdr[0..4].copy_from_slice(&(len as u32).to_ne_bytes()),
        }
        hdr[CMSG_LEVEL_AT..CMSG_LEVEL_AT + 4].copy_from_slice(&level.to_ne_bytes());
        hdr[CMSG_TYPE_AT..CMSG_TYPE_AT + 4].copy_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&hdr);
        buf.resize(start + cmsg_align(CMSG_HDR_LEN), 0);
        buf.extend_from_slice(data);
        buf.resize(start + cmsg_align(len), 0);
    }

    fn timespec_bytes(secs: i64, nanos: i64) -> Vec<u8> {
        let mut v = secs.to_ne_bytes().to_vec();
        v.extend_from_slice(&nanos.to_ne_bytes());
        v
    }

    #[test]
    fn timestamp_and_ttl_are_parsed_from_control_messages() {
        let mut buf = Vec::new();
        push_cmsg(
            &mut buf,
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(1_700_000_000, 123_456_789),
        );
        push_cmsg(
            &mut buf,
            libc::IPPROTO_IP,
            libc::IP_TTL,
            &64i32.to_ne_bytes(),
        );
        let control = Control::parse(&buf);
        assert_eq!(
            control.timestamp,
            Some(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789))
        );
        assert_eq!(control.ttl, Some(64));
        assert_eq!(control.extended_err, None);
    }

    #[test]
    fn extended_error_with_offender_is_parsed() {
        let mut ee = vec![0u8; EE_LEN];
        ee[EE_ERRNO_AT..EE_ERRNO_AT + 4].copy_from_slice(&113u32.to_ne_bytes());
        ee[EE_ORIGIN_AT] = libc::SO_EE_ORIGIN_ICMP;
        ee[EE_TYPE_AT] = 11;
        ee[EE_CODE_AT] = 0;
        ee[EE_INFO_AT..EE_INFO_AT + 4].copy_from_slice(&1500u32.to_ne_bytes());
        let mut sin = vec![0u8; mem::size_of::<libc::sockaddr_in>()];
        sin[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        sin[4..8].copy_from_slice(&[198, 18, 0, 1]);
        ee.extend_from_slice(&sin);
        let mut buf = Vec::new();
        push_cmsg(&mut buf, libc::IPPROTO_IP, libc::IP_RECVERR, &ee);
        let err = Control::parse(&buf).extended_err.expect("parsed");
        assert_eq!(err.errno, 113);
        assert_eq!(err.origin, libc::SO_EE_ORIGIN_ICMP);
        assert_eq!((err.icmp_type, err.icmp_code, err.info), (11, 0, 1500));
        assert_eq!(err.offender, Some(Ipv4Addr::new(198, 18, 0, 1)));
    }

    #[test]
    fn truncated_or_bogus_control_buffers_yield_nothing_and_do_not_panic() {
        let mut buf = Vec::new();
        push_cmsg(
            &mut buf,
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(1, 2),
        );
        for cut in 0..buf.len() {
            let control = Control::parse(&buf[..cut]);
            assert_eq!(control.timestamp, None, "cut at {cut}");
        }
        // A header claiming a huge length, and one claiming less than a header.
        let mut bogus = buf.clone();
        bogus[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(cmsgs(&bogus).count(), 0);
        let mut bogus = buf;
        bogus[..CMSG_LEVEL_AT].fill(0);
        bogus[0] = 1;
        assert_eq!(cmsgs(&bogus).count(), 0);
    }

    #[test]
    fn impossible_timespecs_are_rejected() {
        assert_eq!(timespec_to_system_time(-1, 0), None);
        assert_eq!(timespec_to_system_time(0, 1_000_000_000), None);
        assert_eq!(timespec_to_system_time(0, -1), None);
        assert_eq!(parse_timespec(&[0; 12]), None);
        let mut short = 7i32.to_ne_bytes().to_vec();
        short.extend_from_slice(&5i32.to_ne_bytes());
        assert_eq!(
            parse_timespec(&short),
            Some(SystemTime::UNIX_EPOCH + Duration::new(7, 5))
        );
    }

    #[test]
    fn sockaddr_in_bytes_are_parsed() {
        let mut sin = vec![0u8; mem::size_of::<libc::sockaddr_in>()];
        sin[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        sin[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(parse_sockaddr_in(&sin), Some(Ipv4Addr::LOCALHOST));
        sin[0..2].copy_from_slice(&(libc::AF_UNSPEC as u16).to_ne_bytes());
        assert_eq!(parse_sockaddr_in(&sin), None);
        assert_eq!(parse_sockaddr_in(&[2]), None);
    }
}
