//! The ping session: sequence numbers, pacing, duplicates, statistics and the stop rules of
//! iputils ping, without I/O.
//!
//! The driver asks [`PingSession::next`] what to do at `now` (a monotonic time since the session
//! started); the answer is to send a probe, to wait until some time, or to finish. It reports
//! each send with [`PingSession::sent`], each echo reply with [`PingSession::on_reply`] and each
//! ICMP error quoting a probe with [`PingSession::on_error`]. Pacing is iputils' token bucket
//! (`pinger()`): `preload` probes at once, then one per interval, and with an interval of zero
//! (flood) a new probe as soon as a reply came back or after 10 ms. The session ends when
//! `count` answers (replies or errors) arrived, at the deadline, on an error with a deadline, on
//! interrupt, or after the wait that follows the last probe: twice the largest RTT (at least
//! one interval) when replies came, the linger time (`-W`) when none did.

use super::stats::{RttStats, RttSummary};
use core::time::Duration;

/// iputils `MIN_INTERVAL_MS`: the flood mode's longest wait without a reply.
pub const FLOOD_WAIT: Duration = Duration::from_millis(10);
/// iputils `MAX_DUP_CHK`: size of the received-sequence bitmap.
const SEQ_SPACE: usize = 1 << 16;

/// What a session is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// Stop after this many answers (`-c`); `None` runs until interrupted or the deadline.
    pub count: Option<u64>,
    /// Time between probes (`-i`); zero for flood.
    pub interval: Duration,
    /// Probes sent at once before pacing starts (`-l`), at least 1.
    pub preload: u32,
    /// Whole-run deadline (`-w`).
    pub deadline: Option<Duration>,
    /// How long to wait after the last probe when no reply came at all (`-W`); zero waits
    /// for ever, as iputils.
    pub linger: Duration,
    /// Flood mode (`-f`): changes only the end-of-run summary (`ipg/ewma`).
    pub flood: bool,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            count: None,
            interval: Duration::from_secs(1),
            preload: 1,
            deadline: None,
            linger: Duration::from_secs(10),
            flood: false,
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the probe with this sequence number now, then call [`PingSession::sent`].
    /// `no_answer_yet` is the previous probe's sequence when it got no answer (`-O`).
    Send {
        /// Sequence number of the probe to send.
        seq: u16,
        /// The previous probe, if still unanswered.
        no_answer_yet: Option<u16>,
    },
    /// Nothing to send before this time (measured like `now`); wait for replies until then.
    WaitUntil(Duration),
    /// The session is over.
    Finish,
}

/// How a reply was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// The first reply for its sequence number.
    Fresh,
    /// Another reply for a sequence number already answered.
    Duplicate,
    /// A reply whose checksum did not verify (counted as corrupted, not received).
    Corrupted,
}

/// The counters of a finished (or running) session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingSummary {
    /// Probes sent.
    pub transmitted: u64,
    /// Fresh replies.
    pub received: u64,
    /// Duplicate replies.
    pub duplicates: u64,
    /// Replies with a bad checksum.
    pub corrupted: u64,
    /// ICMP errors quoting a probe, and local send errors.
    pub errors: u64,
    /// Time from the start to the last probe sent.
    pub elapsed: Duration,
    /// RTT figures, when any reply carried a timestamp.
    pub rtt: Option<RttSummary>,
    /// Most probes outstanding at once, when more than one (iputils `pipe`).
    pub pipe: Option<u32>,
    /// Mean gap between probes in microseconds, printed in flood mode (iputils `ipg`).
    pub ipg_us: Option<u64>,
}

/// A ping session.
#[derive(Debug, Clone)]
pub struct PingSession {
    cfg: PingConfig,
    transmitted: u64,
    received: u64,
    duplicates: u64,
    corrupted: u64,
    errors: u64,
    acked: u16,
    pipesize: u32,
    received_seqs: Box<[u64; SEQ_SPACE / 64]>,
    stats: RttStats,
    last_send: Option<Duration>,
    tokens: Duration,
    exit_at: Option<Duration>,
    exit_scheduled: bool,
    interrupted: bool,
}

impl PingSession {
    /// A session that starts at time zero.
    pub fn new(mut cfg: PingConfig) -> Self {
        cfg.preload = cfg.preload.max(1);
        PingSession {
            cfg,
            transmitted: 0,
            received: 0,
            duplicates: 0,
            corrupted: 0,
            errors: 0,
            acked: 0,
            pipesize: 0,
            received_seqs: Box::new([0; SEQ_SPACE / 64]),
            stats: RttStats::new(),
            last_send: None,
            tokens: Duration::ZERO,
            exit_at: None,
            exit_scheduled: false,
            interrupted: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PingConfig {
        &self.cfg
    }

    /// Stop at the next call to [`PingSession::next`] (SIGINT).
    pub fn interrupt(&mut self) {
        self.interrupted = true;
    }

    /// Probes in flight: sent and not yet answered, counted as iputils does from the highest
    /// answered sequence number.
    pub fn in_flight(&self) -> u32 {
        let d = (self.transmitted as u16).wrapping_sub(self.acked);
        if d <= 0x7fff { d as u32 } else { 0 }
    }

    fn is_done(&self, now: Duration) -> bool {
        if self.interrupted {
            return true;
        }
        if let Some(c) = self.cfg.count
            && self.received + self.errors >= c
        {
            return true;
        }
        if let Some(d) = self.cfg.deadline {
            if self.errors > 0 || now >= d {
                return true;
            }
        }
        matches!(self.exit_at, Some(t) if now >= t)
    }

    fn all_sent(&self) -> bool {
        self.cfg.deadline.is_none() && self.cfg.count.is_some_and(|c| self.transmitted >= c)
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Duration) -> Next {
        if self.is_done(now) {
            return Next::Finish;
        }
        if self.all_sent() {
            if !self.exit_scheduled {
                self.schedule_exit(now);
            }
            return match self.exit_at {
                Some(t) => Next::WaitUntil(t),
                // -W 0 with no reply: wait for ever (iputils), bounded by the deadline if any.
                None => Next::WaitUntil(self.cfg.deadline.unwrap_or(Duration::MAX)),
            };
        }
        let interval = self.cfg.interval;
        let bucket = self.bucket();
        let can_send = match self.last_send {
            None => true,
            Some(last) => {
                let since = now.saturating_sub(last);
                if interval.is_zero() && since < FLOOD_WAIT && self.in_flight() >= self.cfg.preload
                {
                    return self.wait(last + FLOOD_WAIT);
                }
                let tokens = (since + self.tokens).min(bucket);
                if tokens < interval {
                    return self.wait(now + (interval - tokens));
                }
                true
            }
        };
        debug_assert!(can_send);
        let seq = (self.transmitted + 1) as u16;
        let prev = self.transmitted as u16;
        let no_answer_yet = (self.transmitted > 0 && !self.seq_received(prev)).then_some(prev);
        Next::Send { seq, no_answer_yet }
    }

    /// The token bucket's size: iputils' `interval * preload`, plus just under one interval so
    /// that a driver that wakes late keeps the lateness as credit: probes stay on the
    /// `start + n * interval` grid instead of drifting by the wake-up delay each time, and
    /// still never go out two at a time after a stall.
    fn bucket(&self) -> Duration {
        let i = self.cfg.interval;
        i.saturating_mul(self.cfg.preload) + i.saturating_sub(Duration::from_nanos(1))
    }

    fn wait(&self, until: Duration) -> Next {
        let until = match self.cfg.deadline {
            Some(d) => until.min(d),
            None => until,
        };
        Next::WaitUntil(until)
    }

    /// Records that the probe [`Next::Send`] asked for went out at `now` (or failed for good:
    /// it still counts as transmitted, and the caller reports the failure with
    /// [`PingSession::on_send_error`]).
    pub fn sent(&mut self, now: Duration) {
        match self.last_send {
            None => {
                self.tokens = self
                    .cfg
                    .interval
                    .saturating_mul(self.cfg.preload.saturating_sub(1));
            }
            Some(last) => {
                let tokens = (now.saturating_sub(last) + self.tokens).min(self.bucket());
                self.tokens = tokens.saturating_sub(self.cfg.interval);
            }
        }
        self.last_send = Some(now);
        self.transmitted += 1;
        let seq = self.transmitted as u16;
        self.set_seq(seq, false);
    }

    /// A probe could not be sent (a local error): counted as an error.
    pub fn on_send_error(&mut self) {
        self.errors += 1;
    }

    fn schedule_exit(&mut self, now: Duration) {
        self.exit_scheduled = true;
        let wait = if self.received > 0 {
            Duration::from_micros(2 * self.stats.max_us()).max(self.cfg.interval)
        } else {
            self.cfg.linger
        };
        if self.received == 0 && wait.is_zero() {
            self.exit_at = None;
        } else {
            self.exit_at = Some(now + wait);
        }
    }

    fn seq_received(&self, seq: u16) -> bool {
        self.received_seqs[seq as usize / 64] & (1 << (seq % 64)) != 0
    }

    fn set_seq(&mut self, seq: u16, on: bool) {
        let w = &mut self.received_seqs[seq as usize / 64];
        if on {
            *w |= 1 << (seq % 64);
        } else {
            *w &= !(1 << (seq % 64));
        }
    }

    fn acknowledge(&mut self, seq: u16) {
        let diff = (self.transmitted as u16).wrapping_sub(seq);
        if diff <= 0x7fff {
            self.pipesize = self.pipesize.max(diff as u32 + 1);
            let newer = (seq.wrapping_sub(self.acked) as i16) > 0;
            let stale = (self.transmitted as u16).wrapping_sub(self.acked) > 0x7fff;
            if newer || stale {
                self.acked = seq;
            }
        }
    }

    /// True when `seq` belongs to a probe of this session that was sent (within the last
    /// 32768 probes): replies to other sequence numbers are someone else's.
    pub fn is_outstanding_or_answered(&self, seq: u16) -> bool {
        self.transmitted > 0
            && (self.transmitted as u16).wrapping_sub(seq) <= 0x7fff
            && (self.transmitted >= 0x8000 || (seq as u64) <= self.transmitted && seq != 0)
    }

    /// Counts an echo reply for `seq` with its RTT (when the payload carried a timestamp).
    pub fn on_reply(&mut self, seq: u16, rtt_us: Option<u64>, checksum_ok: bool) -> ReplyKind {
        if checksum_ok {
            self.acknowledge(seq);
            if let Some(rtt) = rtt_us {
                // iputils counts the RTT before the duplicate check: duplicates are in the
                // statistics.
                self.stats.add(rtt);
            }
        }
        if !checksum_ok {
            self.corrupted += 1;
            ReplyKind::Corrupted
        } else if self.seq_received(seq) {
            self.duplicates += 1;
            ReplyKind::Duplicate
        } else {
            self.set_seq(seq, true);
            self.received += 1;
            ReplyKind::Fresh
        }
    }

    /// Counts an ICMP error that quotes the probe `seq`.
    pub fn on_error(&mut self, seq: u16) {
        self.acknowledge(seq);
        self.errors += 1;
    }

    /// Probes sent so far.
    pub fn transmitted(&self) -> u64 {
        self.transmitted
    }

    /// Fresh replies so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The RTT statistics so far.
    pub fn rtt(&self) -> &RttStats {
        &self.stats
    }

    /// The counters and figures for the statistics block.
    pub fn summary(&self) -> PingSummary {
        let elapsed = self.last_send.unwrap_or_default();
        let ipg_us = (self.received > 0
            && (self.cfg.interval.is_zero() || self.cfg.flood)
            && self.transmitted > 1)
            .then(|| elapsed.as_micros() as u64 / (self.transmitted - 1));
        PingSummary {
            transmitted: self.transmitted,
            received: self.received,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            errors: self.errors,
            elapsed,
            rtt: self.stats.summary(),
            pipe: (self.pipesize > 1).then_some(self.pipesize),
            ipg_us,
        }
    }

    /// iputils' exit status: 0 when a reply came (and, with a deadline and a count, `count`
    /// replies came), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        let short =
            self.cfg.deadline.is_some() && self.cfg.count.is_some_and(|c| self.received < c);
        if self.received == 0 || short { 1 } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Drives a session against a simulated echo responder with a fixed RTT (None: silent),
    /// on a virtual clock; returns the send times.
    fn run(
        cfg: PingConfig,
        rtt: Option<Duration>,
        horizon: Duration,
    ) -> (PingSession, Vec<Duration>) {
        let mut s = PingSession::new(cfg);
        let mut now = Duration::ZERO;
        let mut pending: Vec<(Duration, u16)> = Vec::new();
        let mut sends = Vec::new();
        for _ in 0..100_000 {
            match s.next(now) {
                Next::Finish => return (s, sends),
                Next::Send { seq, .. } => {
                    s.sent(now);
                    sends.push(now);
                    if let Some(r) = rtt {
                        pending.push((now + r, seq));
                    }
                }
                Next::WaitUntil(t) => {
                    pending.sort();
                    let first_reply = pending.first().map(|p| p.0);
                    match first_reply {
                        Some(r) if r <= t => {
                            now = now.max(r);
                            let (_, seq) = pending.remove(0);
                            s.on_reply(seq, rtt.map(|d| d.as_micros() as u64), true);
                        }
                        _ => now = t,
                    }
                }
            }
            assert!(now <= horizon, "session did not end by {horizon:?}");
        }
        panic!("no end");
    }

    #[test]
    fn count_three_sends_three_one_interval_apart_and_ends_on_the_last_reply() {
        let cfg = PingConfig {
            count: Some(3),
            ..Default::default()
        };
        let (s, sends) = run(cfg, Some(ms(1)), Duration::from_secs(5));
        assert_eq!(sends, vec![ms(0), ms(1000), ms(2000)]);
        let sum = s.summary();
        assert_eq!((sum.transmitted, sum.received, sum.errors), (3, 3, 0));
        assert_eq!(sum.elapsed, ms(2000));
        assert_eq!(sum.rtt.unwrap().avg_us, 1000);
        assert_eq!(s.exit_code(), 0);
        assert_eq!(sum.pipe, None);
    }

    #[test]
    fn silent_target_waits_linger_time_after_the_last_probe_and_exits_1() {
        let cfg = PingConfig {
            count: Some(2),
            linger: ms(500),
            ..Default::default()
        };
        let mut s = PingSession::new(cfg);
        assert!(matches!(s.next(ms(0)), Next::Send { seq: 1, .. }));
        s.sent(ms(0));
        assert_eq!(s.next(ms(0)), Next::WaitUntil(ms(1000)));
        assert_eq!(
            s.next(ms(1000)),
            Next::Send {
                seq: 2,
                no_answer_yet: Some(1)
            }
        );
        s.sent(ms(1000));
        assert_eq!(s.next(ms(1000)), Next::WaitUntil(ms(1500)));
        assert_eq!(s.next(ms(1499)), Next::WaitUntil(ms(1500)));
        assert_eq!(s.next(ms(1500)), Next::Finish);
        assert_eq!(s.exit_code(), 1);
        assert_eq!(s.summary().received, 0);
    }

    #[test]
    fn after_the_last_probe_it_waits_twice_the_max_rtt_but_at_least_an_interval() {
        let cfg = PingConfig {
            count: Some(3),
            interval: ms(200),
            ..Default::default()
        };
        let mut s = PingSession::new(cfg);
        for (i, t) in [0u64, 200].iter().enumerate() {
            assert!(matches!(s.next(ms(*t)), Next::Send { .. }));
            s.sent(ms(*t));
            s.on_reply(i as u16 + 1, Some(150_000), true);
        }
        assert!(matches!(s.next(ms(400)), Next::Send { seq: 3, .. }));
        s.sent(ms(400));
        // Reply 3 never comes: wait max(2 * 150 ms, 200 ms) = 300 ms.
        assert_eq!(s.next(ms(400)), Next::WaitUntil(ms(700)));
        assert_eq!(s.next(ms(700)), Next::Finish);
        assert_eq!(s.exit_code(), 0);
    }

    #[test]
    fn preload_sends_a_burst_then_paces() {
        let cfg = PingConfig {
            count: Some(5),
            interval: ms(100),
            preload: 3,
            ..Default::default()
        };
        let (_, sends) = run(cfg, None, Duration::from_secs(20));
        assert_eq!(sends, vec![ms(0), ms(0), ms(0), ms(100), ms(200)]);
    }

    #[test]
    fn pacing_does_not_drift_when_the_driver_wakes_late() {
        let cfg = PingConfig {
            interval: ms(100),
            ..Default::default()
        };
        let mut s = PingSession::new(cfg);
        let mut sends = vec![];
        let mut now = ms(0);
        while sends.len() < 10 {
            match s.next(now) {
                Next::Send { .. } => {
                    s.sent(now);
                    sends.push(now);
                }
                // The driver oversleeps by 3 ms every time.
                Next::WaitUntil(t) => now = t + ms(3),
                Next::Finish => unreachable!(),
            }
        }
        // Tokens carry the lateness over: the 10th probe goes out near 900 ms, not at 927 ms.
        assert!(sends[9] <= ms(903), "{:?}", sends);
    }

    #[test]
    fn flood_sends_on_each_reply_or_every_10_ms() {
        let cfg = PingConfig {
            count: Some(100),
            interval: Duration::ZERO,
            flood: true,
            ..Default::default()
        };
        let (s, sends) = run(
            cfg.clone(),
            Some(Duration::from_micros(50)),
            Duration::from_secs(1),
        );
        // With replies after 50 us, each probe follows the previous reply.
        assert_eq!(sends.len(), 100);
        assert!(sends[99] < ms(10), "{:?}", sends[99]);
        assert!(s.summary().ipg_us.is_some());
        // Without replies: one probe per 10 ms.
        let (_, sends) = run(
            PingConfig {
                count: Some(5),
                linger: ms(1),
                ..cfg
            },
            None,
            Duration::from_secs(1),
        );
        assert_eq!(sends, vec![ms(0), ms(10), ms(20), ms(30), ms(40)]);
    }

    #[test]
    fn duplicates_and_corrupted_replies_are_counted_apart() {
        let mut s = PingSession::new(PingConfig::default());
        assert!(matches!(s.next(ms(0)), Next::Send { .. }));
        s.sent(ms(0));
        assert_eq!(s.on_reply(1, Some(10), true), ReplyKind::Fresh);
        assert_eq!(s.on_reply(1, Some(30), true), ReplyKind::Duplicate);
        assert_eq!(s.on_reply(1, Some(10), false), ReplyKind::Corrupted);
        let sum = s.summary();
        assert_eq!((sum.received, sum.duplicates, sum.corrupted), (1, 1, 1));
        // iputils includes the duplicate's RTT in the statistics.
        assert_eq!(sum.rtt.unwrap().avg_us, 20);
    }

    #[test]
    fn deadline_ends_the_run_and_with_count_needs_all_replies_for_exit_0() {
        let cfg = PingConfig {
            count: Some(5),
            deadline: Some(ms(1500)),
            ..Default::default()
        };
        let (s, sends) = run(cfg, Some(ms(1)), Duration::from_secs(3));
        assert_eq!(sends.len(), 2);
        assert_eq!(s.summary().received, 2);
        assert_eq!(s.exit_code(), 1);
    }

    #[test]
    fn with_a_deadline_any_error_ends_the_run() {
        let cfg = PingConfig {
            deadline: Some(ms(5000)),
            ..Default::default()
        };
        let mut s = PingSession::new(cfg);
        assert!(matches!(s.next(ms(0)), Next::Send { .. }));
        s.sent(ms(0));
        s.on_error(1);
        assert_eq!(s.next(ms(1)), Next::Finish);
        assert_eq!(s.summary().errors, 1);
        assert_eq!(s.exit_code(), 1);
    }

    #[test]
    fn errors_count_toward_the_count_and_build_a_pipe() {
        let cfg = PingConfig {
            count: Some(3),
            interval: ms(10),
            ..Default::default()
        };
        let mut s = PingSession::new(cfg);
        let mut now = ms(0);
        let mut sent = 0;
        while sent < 3 {
            match s.next(now) {
                Next::Send { .. } => {
                    s.sent(now);
                    sent += 1;
                }
                Next::WaitUntil(t) => now = t,
                Next::Finish => unreachable!(),
            }
        }
        for seq in 1..=3 {
            s.on_error(seq);
        }
        assert_eq!(s.next(now), Next::Finish);
        let sum = s.summary();
        assert_eq!(sum.errors, 3);
        // The first error arrived when three were out: iputils prints "pipe 3".
        assert_eq!(sum.pipe, Some(3));
        assert_eq!(s.exit_code(), 1);
    }

    #[test]
    fn interrupt_finishes_at_once() {
        let mut s = PingSession::new(PingConfig::default());
        s.interrupt();
        assert_eq!(s.next(ms(0)), Next::Finish);
    }

    #[test]
    fn sequence_numbers_wrap_at_65536_and_duplicates_still_work() {
        let cfg = PingConfig {
            interval: Duration::from_micros(1),
            ..Default::default()
        };
        let mut s = PingSession::new(cfg);
        let mut now = Duration::ZERO;
        let mut last_seq = 0;
        while s.transmitted() < 65_537 {
            match s.next(now) {
                Next::Send { seq, .. } => {
                    s.sent(now);
                    last_seq = seq;
                    assert_eq!(s.on_reply(seq, None, true), ReplyKind::Fresh);
                }
                Next::WaitUntil(t) => now = t,
                Next::Finish => unreachable!(),
            }
        }
        assert_eq!(last_seq, 1);
        assert_eq!(s.on_reply(1, None, true), ReplyKind::Duplicate);
    }
}
