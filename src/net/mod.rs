//! Every system call of rawkit: raw and datagram ICMP sockets, the `IP_HDRINCL` sender,
//! `AF_PACKET` capture, classic BPF filters, kernel timestamps and capabilities.
//!
//! This layer moves bytes between the program and the kernel. It deals in `&[u8]` and
//! [`std::net::Ipv4Addr`] only and must never build, parse or judge a packet (that is
//! `crate::packet`'s job), never import `crate::packet` or `crate::cli`, and never print.
//! Every failure is a [`NetError`] whose message names the cause and, when there is one, the
//! fix. It is the only module allowed `unsafe`: one block per system call wrapper, each with a
//! `// SAFETY:` comment.
//!
//! * [`socket`] — [`RawIcmpSocket`], [`HdrInclSender`], [`DgramIcmpSocket`] and their options.
//! * [`capture`] — [`Capture`] on one interface.
//! * [`filter`] — [`BpfProgram`]s to attach to either.
//! * [`time`] — kernel receive timestamps, and the one `recvmsg` wrapper they all use.
//! * [`privilege`] — capability checks, and dropping them all once the sockets are open.
//! * [`route`] — the source address and path MTU towards a destination, local addresses, an
//!   interface's IPv4 address and MTU (asked of the kernel without sending).
//! * [`resolve`] — host names to IPv4 addresses and back, with iputils' messages.
//! * [`poll`] — [`poll_readable`]: wait for any of a few sockets, interruptible by signals.
//!
//! A typical probe loop: open a [`RawIcmpSocket`], attach
//! [`BpfProgram::icmp_echo_reply_ident`], [`drain`](RawIcmpSocket::drain) what was queued
//! before the filter, drop capabilities, then send and receive with a read timeout.
#![allow(unsafe_code)]

pub mod capture;
pub mod error;
pub mod filter;
pub mod poll;
pub mod privilege;
pub mod resolve;
pub mod route;
pub mod socket;
pub mod time;

pub use capture::{Capture, CaptureOptions, CaptureStats, Frame, LinkType, PacketType};
pub use error::{NetError, Privilege};
pub use filter::{BpfInsn, BpfProgram};
pub use poll::{PollOutcome, poll_readable};
pub use resolve::{ResolveError, ResolveErrorKind, Resolved, ReverseCache, resolve_ipv4};
pub use socket::{
    DgramIcmpSocket, ErrorOrigin, HdrInclSender, Incoming, PmtuMode, QueuedError, RawIcmpSocket,
    Received,
};
