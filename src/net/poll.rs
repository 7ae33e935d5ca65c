//! Waiting for any of a few sockets to become readable: `poll(2)` for the probe loops.
//!
//! [`poll_readable`] waits until at least one descriptor can be read without blocking (a
//! datagram is queued, an error is pending or queued, or the peer hung up), the timeout
//! passes, or a signal arrives. A signal ends the wait at once with
//! [`PollOutcome::Interrupted`], never a silent retry, so that a loop whose SIGINT/SIGQUIT
//! handler set a flag can print statistics or stop without waiting out the timeout.
//!
//! This module must never read, write or close the descriptors it is given, and never retry
//! a wait that a signal interrupted.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::NetError;

/// Up to this many descriptors are polled without allocating.
const STACK_FDS: usize = 8;

/// The events that make a descriptor "ready": data to read, or a condition that the next read
/// (or `recvmsg(MSG_ERRQUEUE)`) reports at once. `POLLNVAL` cannot happen with a borrowed
/// descriptor, but if it did, reporting it beats waiting for ever.
const READY: libc::c_short = libc::POLLIN | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;

/// How a [`poll_readable`] wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub enum PollOutcome {
    /// This many descriptors (at least one) are ready; their entries in `ready` are true.
    Ready(usize),
    /// The timeout passed and nothing became ready.
    TimedOut,
    /// A signal handler ran during the wait (`EINTR`). Nothing is known about the
    /// descriptors: check the flags the handler sets, then wait again with the time that is
    /// left (measured on a monotonic clock; the timeout is not adjusted here).
    Interrupted,
}

impl PollOutcome {
    /// How many descriptors are ready (0 unless [`PollOutcome::Ready`]).
    pub fn ready_count(self) -> usize {
        match self {
            PollOutcome::Ready(n) => n,
            PollOutcome::TimedOut | PollOutcome::Interrupted => 0,
        }
    }
}

/// Converts a timeout to `poll(2)` milliseconds: `None` waits for ever (-1); anything else is
/// rounded *up* to a whole millisecond, so that a 0.3 ms wait sleeps 1 ms instead of returning
/// at once (and spinning the caller); only an exact zero polls without waiting. Capped at
/// `i32::MAX` ms (about 24.8 days).
pub fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        }
    }
}

/// Waits until one of `fds` is readable, `timeout` passes (`None`: for ever), or a signal
/// arrives.
///
/// A descriptor is ready when a read will not block: a datagram is queued (`POLLIN`), an error
/// is pending or on the error queue (`POLLERR`: a ping socket's ICMP errors and a connected
/// UDP socket's port unreachable raise it), or it hung up. On return `ready[i]` says whether
/// `fds[i]` is ready (all false unless [`PollOutcome::Ready`]).
///
/// `EINTR` is [`PollOutcome::Interrupted`], returned at once and never retried here. Up to 8
/// descriptors are polled without allocating. Errors: `ready` not as long as `fds` gives
/// [`NetError::Io`] with `EINVAL`, as do more descriptors than `poll(2)` accepts; other
/// `poll(2)` failures (`ENOMEM`) are [`NetError::Io`] too.
pub fn poll_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
    ready: &mut [bool],
) -> Result<PollOutcome, NetError> {
    const OP: &str = "poll";
    if ready.len() != fds.len() {
        return Err(NetError::Io {
            op: OP,
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "poll_readable: `ready` must have one entry per descriptor",
            ),
        });
    }
    ready.fill(false);
    let entry = |fd: &BorrowedFd<'_>| libc::pollfd {
        fd: fd.as_raw_fd(),
        // POLLERR (and POLLHUP) are reported whether asked or not; naming it says it counts.
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    let mut on_stack = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; STACK_FDS];
    let mut on_heap = Vec::new();
    let pollfds: &mut [libc::pollfd] = if fds.len() <= STACK_FDS {
        for (slot, fd) in on_stack.iter_mut().zip(fds) {
            *slot = entry(fd);
        }
        &mut on_stack[..fds.len()]
    } else {
        on_heap.extend(fds.iter().map(entry));
        &mut on_heap
    };
    let nfds = libc::nfds_t::try_from(pollfds.len()).map_err(|_| NetError::Io {
        op: OP,
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    // SAFETY: `pollfds` is a live, writable array of `nfds` initialised `pollfd`s; the kernel
    // reads `fd`/`events` and writes only `revents` during the call. The descriptors are
    // borrowed, so they stay open while the call runs.
    let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), nfds, timeout_ms(timeout)) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINTR) => Ok(PollOutcome::Interrupted),
            _ => Err(NetError::Io {
                op: OP,
                source: err,
            }),
        };
    }
    if rc == 0 {
        return Ok(PollOutcome::TimedOut);
    }
    let mut count = 0;
    for (flag, pfd) in ready.iter_mut().zip(pollfds.iter()) {
        *flag = pfd.revents & READY != 0;
        count += usize::from(*flag);
    }
    Ok(if count == 0 {
        // Cannot happen (rc > 0 counts entries with revents set), but never claim readiness
        // with no descriptor marked.
        PollOutcome::TimedOut
    } else {
        PollOutcome::Ready(count)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixDatagram, UnixStream};
    use std::time::Instant;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(300))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1001))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_millis(1500))), 1500);
        assert_eq!(timeout_ms(Some(Duration::MAX)), libc::c_int::MAX);
    }

    #[test]
    fn ready_must_match_fds_in_length() {
        let (a, _b) = UnixDatagram::pair().expect("socketpair");
        let mut ready = [false; 2];
        let err = poll_readable(&[a.as_fd()], Some(Duration::ZERO), &mut ready)
            .expect_err("length mismatch");
        assert!(err.to_string().starts_with("poll: "));
    }

    #[test]
    fn only_the_descriptor_with_data_is_ready() {
        let (a_tx, a_rx) = UnixDatagram::pair().expect("socketpair");
        let (_b_tx, b_rx) = UnixDatagram::pair().expect("socketpair");
        let mut ready = [true; 2];
        let outcome = poll_readable(
            &[a_rx.as_fd(), b_rx.as_fd()],
            Some(Duration::ZERO),
            &mut ready,
        )
        .expect("poll");
        assert_eq!(outcome, PollOutcome::TimedOut);
        assert_eq!(ready, [false, false]);

        a_tx.send(b"x").expect("send");
        let outcome = poll_readable(
            &[b_rx.as_fd(), a_rx.as_fd()],
            Some(Duration::from_secs(5)),
            &mut ready,
        )
        .expect("poll");
        assert_eq!(outcome, PollOutcome::Ready(1));
        assert_eq!(outcome.ready_count(), 1);
        assert_eq!(ready, [false, true]);
    }

    #[test]
    fn a_hangup_counts_as_ready() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        drop(a);
        let mut ready = [false];
        let outcome =
            poll_readable(&[b.as_fd()], Some(Duration::from_secs(5)), &mut ready).expect("poll");
        assert_eq!(outcome, PollOutcome::Ready(1));
        assert!(ready[0]);
    }

    #[test]
    fn a_sub_millisecond_wait_sleeps_a_whole_millisecond() {
        let (_a, b) = UnixDatagram::pair().expect("socketpair");
        let mut ready = [false];
        let started = Instant::now();
        let outcome = poll_readable(&[b.as_fd()], Some(Duration::from_micros(300)), &mut ready)
            .expect("poll");
        assert_eq!(outcome, PollOutcome::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(1));
    }

    #[test]
    fn many_descriptors_are_polled_too() {
        let pairs: Vec<_> = (0..STACK_FDS + 3)
            .map(|_| UnixDatagram::pair().expect("socketpair"))
            .collect();
        pairs[STACK_FDS + 1].0.send(b"x").expect("send");
        let fds: Vec<_> = pairs.iter().map(|(_, rx)| rx.as_fd()).collect();
        let mut ready = vec![false; fds.len()];
        let outcome = poll_readable(&fds, Some(Duration::from_secs(5)), &mut ready).expect("poll");
        assert_eq!(outcome, PollOutcome::Ready(1));
        assert_eq!(ready.iter().position(|&r| r), Some(STACK_FDS + 1));
    }

    #[test]
    fn no_descriptors_just_waits() {
        let outcome = poll_readable(&[], Some(Duration::ZERO), &mut []).expect("poll");
        assert_eq!(outcome, PollOutcome::TimedOut);
    }
}
