//! The many-target ping session (fping's job), without I/O.
//!
//! A sweep holds a [`TargetSet`] (compact address ranges, expanded one address at a time as
//! probes go out), a few bytes of state per target, and the probes in flight in time-ordered
//! queues. The driver asks [`SweepSession::next`] what to do at `now` (a monotonic time since
//! the sweep started): send a probe to a target, wait until some time, or finish; it reports
//! each send with [`SweepSession::sent`] and each echo reply with [`SweepSession::on_reply`],
//! and drains what happened meanwhile (timeouts, targets found unreachable) with
//! [`SweepSession::pop_event`].
//!
//! Two modes, as fping:
//!
//! * **Alive check** (no `count`): one probe per target; a target that does not answer within
//!   `timeout` is probed again, up to `retries` more times, each wait `backoff` times longer
//!   than the one before (fping `-r`, `-B`, `-t`). A target is alive at its first reply and
//!   unreachable when its last wait ends without one. At most one probe per target is in
//!   flight, so the state of a target is two bytes and the probes in flight wait in one FIFO
//!   per attempt (each attempt's wait is constant, so each FIFO is in time order).
//! * **Count** (`count = N`): N probes per target, `interval` apart (fping `-p`, rawkit `-i`),
//!   each answered within `timeout` or lost; a reply later than `timeout` is not counted, as
//!   fping discards it. The probes in flight wait in one FIFO (constant timeout), indexed by a
//!   global sequence number that the payload carries, so a reply finds its probe at once and a
//!   second reply to it is a duplicate.
//!
//! Probes go out round-robin: the probes that are due (retries, the next probe of a target in
//! count mode) first, then the next target not probed yet. All sends share one global pace,
//! `rate` probes per second, kept by a token bucket on the `start + n / rate` grid (a late
//! wake-up is caught up, never carried over as drift) whose depth is one period or 2 ms,
//! whichever is longer; without a rate the sweep sends as fast as the driver can.
//!
//! This module never does I/O and never reads a clock.

use core::time::Duration;
use std::collections::VecDeque;
use std::net::Ipv4Addr;

/// The most targets one sweep can hold: a /8 and a little more.
pub const MAX_TARGETS: u64 = 1 << 24;

/// The deepest a burst can be, in time: after a stall, at most this much credit is spent at
/// once (or one period, for rates below 500 per second). Deeper than the driver's wait
/// granularity (`poll` sleeps whole milliseconds, plus the scheduler's latency), so that late
/// wake-ups are caught up rather than lost.
const BURST: Duration = Duration::from_millis(2);

/// A run of consecutive addresses, or one named host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    /// Index of the span's first target in the whole set.
    base: u32,
    /// Its first address.
    first: u32,
    /// How many addresses.
    count: u32,
    /// The name to print instead of the address (a host given by name, or a numeric form
    /// other than the dotted quad).
    label: Option<Box<str>>,
}

/// The targets of a sweep, in order: ranges of addresses kept as (first, count), so that a /12
/// is a dozen bytes until its addresses are probed one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSet {
    spans: Vec<Span>,
    len: u64,
}

/// Adding targets would pass [`MAX_TARGETS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyTargets {
    /// How many targets the set would hold.
    pub would_be: u64,
}

impl TargetSet {
    /// No targets.
    pub fn new() -> TargetSet {
        TargetSet::default()
    }

    /// Appends every address from `first` to `last`, both included. `last` before `first`
    /// adds nothing.
    pub fn push_range(&mut self, first: Ipv4Addr, last: Ipv4Addr) -> Result<(), TooManyTargets> {
        let (a, b) = (u32::from(first), u32::from(last));
        if b < a {
            return Ok(());
        }
        self.push_span(a, u64::from(b - a) + 1, None)
    }

    /// Appends one host, printed as `label` when given (else as its address).
    pub fn push_host(&mut self, addr: Ipv4Addr, label: Option<&str>) -> Result<(), TooManyTargets> {
        self.push_span(u32::from(addr), 1, label.map(Box::from))
    }

    fn push_span(
        &mut self,
        first: u32,
        count: u64,
        label: Option<Box<str>>,
    ) -> Result<(), TooManyTargets> {
        let would_be = self.len + count;
        if would_be > MAX_TARGETS {
            return Err(TooManyTargets { would_be });
        }
        // A range that continues the previous one (a /16 given as two /17s) joins it.
        if label.is_none()
            && let Some(last) = self.spans.last_mut()
            && last.label.is_none()
            && u64::from(last.first) + u64::from(last.count) == u64::from(first)
        {
            last.count += count as u32;
            self.len = would_be;
            return Ok(());
        }
        self.spans.push(Span {
            base: self.len as u32,
            first,
            count: count as u32,
            label,
        });
        self.len = would_be;
        Ok(())
    }

    /// Number of targets.
    pub fn len(&self) -> u32 {
        self.len as u32
    }

    /// True without targets.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn span(&self, index: u32) -> Option<&Span> {
        if u64::from(index) >= self.len {
            return None;
        }
        let i = self.spans.partition_point(|s| s.base <= index) - 1;
        self.spans.get(i)
    }

    /// The address of target `index`.
    pub fn addr(&self, index: u32) -> Option<Ipv4Addr> {
        self.span(index)
            .map(|s| Ipv4Addr::from(s.first + (index - s.base)))
    }

    /// The name target `index` is printed as, when it is not its address.
    pub fn label(&self, index: u32) -> Option<&str> {
        self.span(index).and_then(|s| s.label.as_deref())
    }

    /// The longest printed name (label or dotted quad) of any target, for column alignment.
    pub fn max_name_len(&self) -> usize {
        self.spans
            .iter()
            .map(|s| match &s.label {
                Some(l) => l.len(),
                None => max_dotted_len(s.first, s.first + (s.count - 1)),
            })
            .max()
            .unwrap_or(0)
    }

    /// An index from addresses back to targets (for ICMP errors, which quote the address of
    /// the probe but not always its payload).
    pub fn locator(&self) -> Locator {
        let mut spans: Vec<(u32, u32, u32)> = self
            .spans
            .iter()
            .map(|s| (s.first, s.first + (s.count - 1), s.base))
            .collect();
        spans.sort_unstable();
        let mut reach = Vec::with_capacity(spans.len());
        let mut far = 0u32;
        for &(_, last, _) in &spans {
            far = far.max(last);
            reach.push(far);
        }
        Locator { spans, reach }
    }

    /// Bytes this set keeps (its ranges and labels).
    pub fn heap_bytes(&self) -> usize {
        self.spans.capacity() * size_of::<Span>()
            + self
                .spans
                .iter()
                .map(|s| s.label.as_ref().map_or(0, |l| l.len()))
                .sum::<usize>()
    }
}

/// Finds the target of an address: the spans sorted by first address, with the furthest last
/// address reached so far, so that overlapping spans are found too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locator {
    /// (first address, last address, index of the first target), by first address.
    spans: Vec<(u32, u32, u32)>,
    /// The largest last address among `spans[..=i]`.
    reach: Vec<u32>,
}

impl Locator {
    /// A target whose address is `addr` (the first in the set's order when several are).
    pub fn find(&self, addr: Ipv4Addr) -> Option<u32> {
        let a = u32::from(addr);
        let end = self.spans.partition_point(|s| s.0 <= a);
        let mut best: Option<u32> = None;
        for i in (0..end).rev() {
            if self.reach[i] < a {
                break;
            }
            let (first, last, base) = self.spans[i];
            if a <= last {
                let index = base + (a - first);
                best = Some(best.map_or(index, |b| b.min(index)));
            }
        }
        best
    }
}

/// Length of the longest dotted quad from `first` to `last` (both included): the last octet's
/// digits are greatest at the top of each /24 piece, so one look per /24 suffices.
fn max_dotted_len(first: u32, last: u32) -> usize {
    let digits = |o: u32| {
        if o >= 100 {
            3
        } else if o >= 10 {
            2
        } else {
            1
        }
    };
    let len = |a: u32| {
        3 + digits(a >> 24) + digits((a >> 16) & 0xff) + digits((a >> 8) & 0xff) + digits(a & 0xff)
    };
    let mut best = 0;
    let mut at = u64::from(first);
    while at <= u64::from(last) {
        let top = (at | 0xff).min(u64::from(last));
        best = best.max(len(top as u32));
        at = top + 1;
    }
    best
}

/// What a sweep is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepConfig {
    /// Probes per target (`-c`); `None` for the alive check.
    pub count: Option<u16>,
    /// Alive check: probes after the first to a target that did not answer (fping `-r`).
    pub retries: u8,
    /// Alive check: each retry waits this many times longer than the probe before (fping
    /// `-B`); at least 1.
    pub backoff: f64,
    /// How long a probe waits for its reply (the first one, in the alive check).
    pub timeout: Duration,
    /// Count mode: time between two probes to the same target.
    pub interval: Duration,
    /// Probes per second over all targets; `None` sends as fast as the driver can.
    pub rate: Option<u32>,
    /// Stop at this time, answered or not.
    pub deadline: Option<Duration>,
}

impl Default for SweepConfig {
    /// fping's defaults: 3 retries, backoff 1.5, 500 ms timeout; 1 s per-target interval;
    /// 1000 probes per second.
    fn default() -> Self {
        SweepConfig {
            count: None,
            retries: 3,
            backoff: 1.5,
            timeout: Duration::from_millis(500),
            interval: Duration::from_secs(1),
            rate: Some(1000),
            deadline: None,
        }
    }
}

/// A probe to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The target's index (in the payload).
    pub target: u32,
    /// Its address.
    pub addr: Ipv4Addr,
    /// The probe number for this target, from 0 (the echo sequence number; fping's `[k]`).
    pub probe: u16,
    /// The sweep-wide sequence number of this probe (in the payload).
    pub seq: u32,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send this probe now, then call [`SweepSession::sent`].
    Send(Probe),
    /// Nothing to send before this time; wait for replies until then.
    WaitUntil(Duration),
    /// The sweep is over.
    Finish,
}

/// What happened, besides replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepEvent {
    /// Count mode: this probe got no reply within the timeout.
    Timeout {
        /// The target.
        target: u32,
        /// The probe number.
        probe: u16,
    },
    /// Alive check: the target's last probe went unanswered.
    Unreachable {
        /// The target.
        target: u32,
    },
}

/// How a reply was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The answer to a probe in flight. `first` is true for the target's first reply (it is
    /// alive from now on).
    Fresh {
        /// The target's first reply.
        first: bool,
    },
    /// Another reply to a probe already answered (or, in the alive check, a reply from a
    /// target already alive).
    Duplicate,
    /// A reply that came after its probe's timeout (or after the target was declared
    /// unreachable): not counted, as fping.
    Late,
    /// Not a reply to any probe of this sweep: an unknown target or probe, or a source that is
    /// not the target's address.
    Unknown,
}

/// Where a target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TargetStatus {
    /// Not probed yet.
    Waiting,
    /// Probed, no reply yet, not given up.
    Probing,
    /// Answered at least once.
    Alive,
    /// Every probe went unanswered.
    Unreachable,
}

/// The state of a target in the alive check: two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TargetState {
    status: TargetStatus,
    /// Probes sent so far.
    attempts: u8,
}

/// Count mode figures of one target: 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountStats {
    /// Probes sent.
    pub sent: u16,
    /// Probes answered in time.
    pub received: u16,
    /// Probes that timed out.
    pub lost: u16,
    /// Extra replies to probes already answered.
    pub duplicates: u16,
    /// Smallest RTT in microseconds (`u32::MAX` before the first reply).
    pub min_us: u32,
    /// Largest RTT in microseconds.
    pub max_us: u32,
    /// Sum of the RTTs in microseconds.
    pub sum_us: u64,
}

impl CountStats {
    const EMPTY: CountStats = CountStats {
        sent: 0,
        received: 0,
        lost: 0,
        duplicates: 0,
        min_us: u32::MAX,
        max_us: 0,
        sum_us: 0,
    };

    /// Probes answered or timed out: fping's `xmt` (a probe still in flight is not counted,
    /// so that the loss is not overstated).
    pub fn resolved(&self) -> u32 {
        u32::from(self.received) + u32::from(self.lost)
    }

    /// Loss in whole percent of the resolved probes, as fping prints it.
    pub fn loss_pct(&self) -> u32 {
        let x = self.resolved();
        ((x - u32::from(self.received)) * 100)
            .checked_div(x)
            .unwrap_or(0)
    }

    /// Mean RTT in microseconds (truncated), when any reply came.
    pub fn avg_us(&self) -> Option<u64> {
        (self.received > 0).then(|| self.sum_us / u64::from(self.received))
    }

    fn add(&mut self, rtt_us: u64) {
        let r = rtt_us.min(u64::from(u32::MAX)) as u32;
        self.received += 1;
        self.min_us = self.min_us.min(r);
        self.max_us = self.max_us.max(r);
        self.sum_us += u64::from(r);
    }
}

/// A probe waiting for its reply: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outstanding {
    sent_ns: u64,
    target: u32,
    probe: u16,
    answered: bool,
}

/// A probe due at a time (count mode: a target's next probe): 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    at_ns: u64,
    target: u32,
    probe: u16,
}

/// The global pace: a token bucket on the grid `origin + n * 1e9 / rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pacer {
    rate: Option<u32>,
    origin_ns: u64,
    slot: u64,
    burst_ns: u64,
}

impl Pacer {
    fn new(rate: Option<u32>) -> Pacer {
        let rate = rate.filter(|r| *r > 0);
        let period = rate.map_or(0, |r| 1_000_000_000 / u64::from(r));
        Pacer {
            rate,
            origin_ns: 0,
            slot: 0,
            burst_ns: period.max(BURST.as_nanos() as u64),
        }
    }

    /// When the next token is there.
    fn slot_ns(&self) -> u64 {
        match self.rate {
            None => 0,
            Some(r) => {
                self.origin_ns + (u128::from(self.slot) * 1_000_000_000 / u128::from(r)) as u64
            }
        }
    }

    fn ready(&self, now_ns: u64) -> bool {
        self.slot_ns() <= now_ns
    }

    fn consume(&mut self, now_ns: u64) {
        if self.rate.is_none() {
            return;
        }
        // Credit beyond the bucket's depth is lost: re-anchor the grid.
        if now_ns.saturating_sub(self.slot_ns()) > self.burst_ns {
            self.origin_ns = now_ns - self.burst_ns;
            self.slot = 0;
        }
        self.slot += 1;
    }
}

/// The counters of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepTotals {
    /// Targets.
    pub targets: u32,
    /// Targets that answered.
    pub alive: u32,
    /// Targets whose every probe went unanswered.
    pub unreachable: u32,
    /// Targets neither (the sweep was interrupted first).
    pub pending: u32,
    /// Probes sent.
    pub sent: u64,
    /// Replies counted (first replies to probes in flight).
    pub received: u64,
    /// Duplicate replies.
    pub duplicates: u64,
    /// Replies after their timeout.
    pub late: u64,
    /// Replies that belonged to no probe of the sweep.
    pub unknown: u64,
    /// Smallest RTT counted, microseconds.
    pub min_us: Option<u64>,
    /// Mean RTT counted, microseconds (truncated).
    pub avg_us: Option<u64>,
    /// Largest RTT counted, microseconds.
    pub max_us: Option<u64>,
}

/// Which probe [`SweepSession::next`] chose, for [`SweepSession::sent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Fresh,
    Retry,
    Due,
}

/// A sweep.
#[derive(Debug, Clone)]
pub struct SweepSession {
    cfg: SweepConfig,
    targets: TargetSet,
    /// Alive check: one per target.
    states: Vec<TargetState>,
    /// Count mode: one per target.
    stats: Vec<CountStats>,
    /// The next target never probed, and the span it lies in.
    cursor: u32,
    cursor_span: usize,
    /// Alive check: targets whose retry is due.
    retry: VecDeque<u32>,
    /// Count mode: the next probe of each target, in time order.
    due: VecDeque<Due>,
    /// Probes in flight: one FIFO per attempt (alive check), or one (count mode).
    levels: Vec<VecDeque<Outstanding>>,
    /// The wait of each level, nanoseconds.
    level_timeout_ns: Vec<u64>,
    /// Count mode: sweep-wide sequence number of `levels[0].front()`.
    base_seq: u64,
    /// Sweep-wide sequence number of the next probe.
    next_seq: u64,
    pacer: Pacer,
    events: VecDeque<SweepEvent>,
    /// The probe `next` chose, and when it was due.
    chosen: Option<(Source, Probe, u64)>,
    /// Count mode: probes sent and not yet answered or timed out.
    unresolved: u64,
    /// Targets alive or unreachable (count mode: every probe resolved).
    decided: u32,
    alive: u32,
    unreachable: u32,
    sent: u64,
    received: u64,
    duplicates: u64,
    late: u64,
    unknown: u64,
    min_us: u64,
    max_us: u64,
    sum_us: u64,
    interrupted: bool,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

impl SweepSession {
    /// A sweep of `targets` that starts at time zero.
    pub fn new(cfg: SweepConfig, targets: TargetSet) -> SweepSession {
        let n = targets.len() as usize;
        let count_mode = cfg.count.is_some();
        let backoff = if cfg.backoff.is_finite() {
            cfg.backoff.max(1.0)
        } else {
            1.0
        };
        let levels = if count_mode {
            1
        } else {
            usize::from(cfg.retries) + 1
        };
        let level_timeout_ns = (0..levels)
            .map(|a| (ns(cfg.timeout) as f64 * backoff.powi(a as i32)).min(u64::MAX as f64) as u64)
            .collect();
        SweepSession {
            states: if count_mode {
                Vec::new()
            } else {
                vec![
                    TargetState {
                        status: TargetStatus::Waiting,
                        attempts: 0
                    };
                    n
                ]
            },
            stats: if count_mode {
                vec![CountStats::EMPTY; n]
            } else {
                Vec::new()
            },
            cursor: 0,
            cursor_span: 0,
            retry: VecDeque::new(),
            due: VecDeque::new(),
            levels: vec![VecDeque::new(); levels],
            level_timeout_ns,
            base_seq: 0,
            next_seq: 0,
            pacer: Pacer::new(cfg.rate),
            events: VecDeque::new(),
            chosen: None,
            unresolved: 0,
            decided: 0,
            alive: 0,
            unreachable: 0,
            sent: 0,
            received: 0,
            duplicates: 0,
            late: 0,
            unknown: 0,
            min_us: u64::MAX,
            max_us: 0,
            sum_us: 0,
            interrupted: false,
            targets,
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SweepConfig {
        &self.cfg
    }

    /// The targets.
    pub fn targets(&self) -> &TargetSet {
        &self.targets
    }

    /// Bytes of state kept per target: 2 for the alive check, 24 in count mode (the probes in
    /// flight add 16 bytes each, and count mode 16 more per target for its next probe).
    pub fn bytes_per_target(&self) -> usize {
        if self.cfg.count.is_some() {
            size_of::<CountStats>()
        } else {
            size_of::<TargetState>()
        }
    }

    /// Bytes of heap this sweep holds now (targets, per-target state, queues).
    pub fn heap_bytes(&self) -> usize {
        self.targets.heap_bytes()
            + self.states.capacity() * size_of::<TargetState>()
            + self.stats.capacity() * size_of::<CountStats>()
            + self.retry.capacity() * size_of::<u32>()
            + self.due.capacity() * size_of::<Due>()
            + self
                .levels
                .iter()
                .map(|l| l.capacity() * size_of::<Outstanding>())
                .sum::<usize>()
    }

    /// Stop at the next call to [`SweepSession::next`] (SIGINT).
    pub fn interrupt(&mut self) {
        self.interrupted = true;
    }

    fn count_mode(&self) -> bool {
        self.cfg.count.is_some()
    }

    fn is_complete(&self) -> bool {
        let n = self.targets.len();
        if self.count_mode() {
            self.cursor >= n && self.due.is_empty() && self.unresolved == 0
        } else {
            self.decided >= n
        }
    }

    /// Targets finished (alive or unreachable; count mode: every probe answered or timed out)
    /// and targets in all, for a progress line.
    pub fn progress(&self) -> (u32, u32) {
        (self.decided, self.targets.len())
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Duration) -> Next {
        let now_ns = ns(now);
        self.chosen = None;
        if self.interrupted || self.cfg.deadline.is_some_and(|d| now >= d) {
            return Next::Finish;
        }
        self.expire(now_ns);
        if self.is_complete() {
            return Next::Finish;
        }
        let mut wake = u64::MAX;
        if let Some((source, probe, due_ns)) = self.candidate(now_ns, &mut wake) {
            if self.pacer.ready(now_ns) {
                self.chosen = Some((source, probe, due_ns));
                return Next::Send(probe);
            }
            wake = wake.min(self.pacer.slot_ns());
        }
        for (level, q) in self.levels.iter().enumerate() {
            if let Some(o) = q.front() {
                wake = wake.min(o.sent_ns.saturating_add(self.level_timeout_ns[level]));
            }
        }
        if let Some(d) = self.cfg.deadline {
            wake = wake.min(ns(d));
        }
        Next::WaitUntil(Duration::from_nanos(wake))
    }

    /// The probe to send next, if one is due now; else lowers `wake` to when one will be.
    fn candidate(&mut self, now_ns: u64, wake: &mut u64) -> Option<(Source, Probe, u64)> {
        let seq = self.next_seq as u32;
        if self.count_mode() {
            if let Some(d) = self.due.front() {
                if d.at_ns <= now_ns {
                    let addr = self.targets.addr(d.target)?;
                    let probe = Probe {
                        target: d.target,
                        addr,
                        probe: d.probe,
                        seq,
                    };
                    return Some((Source::Due, probe, d.at_ns));
                }
                *wake = (*wake).min(d.at_ns);
            }
        } else {
            // Targets that answered while their retry waited are dropped here, lazily.
            while let Some(&t) = self.retry.front() {
                let st = self.states[t as usize];
                if st.status != TargetStatus::Probing {
                    self.retry.pop_front();
                    continue;
                }
                let addr = self.targets.addr(t)?;
                let probe = Probe {
                    target: t,
                    addr,
                    probe: u16::from(st.attempts),
                    seq,
                };
                return Some((Source::Retry, probe, now_ns));
            }
        }
        if self.cursor < self.targets.len() {
            let spans = &self.targets.spans;
            while self.cursor >= spans[self.cursor_span].base + spans[self.cursor_span].count {
                self.cursor_span += 1;
            }
            let s = &spans[self.cursor_span];
            let probe = Probe {
                target: self.cursor,
                addr: Ipv4Addr::from(s.first + (self.cursor - s.base)),
                probe: 0,
                seq,
            };
            return Some((Source::Fresh, probe, now_ns));
        }
        None
    }

    /// Records that the probe [`Next::Send`] asked for went out at `now` (or failed for good:
    /// it still counts as sent, and times out).
    pub fn sent(&mut self, now: Duration) {
        let Some((source, p, due_ns)) = self.chosen.take() else {
            return;
        };
        let now_ns = ns(now);
        self.pacer.consume(now_ns);
        match source {
            Source::Fresh => self.cursor += 1,
            Source::Retry => {
                self.retry.pop_front();
            }
            Source::Due => {
                self.due.pop_front();
            }
        }
        let out = Outstanding {
            sent_ns: now_ns,
            target: p.target,
            probe: p.probe,
            answered: false,
        };
        if let Some(count) = self.cfg.count {
            let s = &mut self.stats[p.target as usize];
            s.sent += 1;
            if s.sent < count {
                // On the target's own grid: from when this probe was due, not when it went
                // (the first probe's grid starts when it went).
                let at_ns = if source == Source::Due {
                    due_ns
                } else {
                    now_ns
                };
                self.due.push_back(Due {
                    at_ns: at_ns + ns(self.cfg.interval),
                    target: p.target,
                    probe: p.probe + 1,
                });
            }
            if self.levels[0].is_empty() {
                self.base_seq = self.next_seq;
            }
            self.levels[0].push_back(out);
        } else {
            let st = &mut self.states[p.target as usize];
            st.status = TargetStatus::Probing;
            let level = usize::from(st.attempts);
            st.attempts += 1;
            self.levels[level].push_back(out);
        }
        self.next_seq += 1;
        self.sent += 1;
        if self.count_mode() {
            self.unresolved += 1;
        }
    }

    /// Handles the timeouts that are over at `now_ns`.
    fn expire(&mut self, now_ns: u64) {
        loop {
            // The level whose front probe times out first.
            let mut best: Option<(usize, u64)> = None;
            for (level, q) in self.levels.iter().enumerate() {
                if let Some(o) = q.front() {
                    let end = o.sent_ns.saturating_add(self.level_timeout_ns[level]);
                    if end <= now_ns && best.is_none_or(|(_, e)| end < e) {
                        best = Some((level, end));
                    }
                }
            }
            let Some((level, _)) = best else { return };
            let Some(o) = self.levels[level].pop_front() else {
                return;
            };
            if self.count_mode() {
                self.base_seq += 1;
                if !o.answered {
                    self.unresolved -= 1;
                    let s = &mut self.stats[o.target as usize];
                    s.lost += 1;
                    self.events.push_back(SweepEvent::Timeout {
                        target: o.target,
                        probe: o.probe,
                    });
                    self.resolve_count(o.target);
                }
            } else {
                let retries = self.cfg.retries;
                let st = &mut self.states[o.target as usize];
                // Only the target's latest probe decides; an answered target is done.
                if st.status != TargetStatus::Probing || u16::from(st.attempts) != o.probe + 1 {
                    continue;
                }
                if st.attempts <= retries {
                    self.retry.push_back(o.target);
                } else {
                    st.status = TargetStatus::Unreachable;
                    self.decided += 1;
                    self.unreachable += 1;
                    self.events
                        .push_back(SweepEvent::Unreachable { target: o.target });
                }
            }
        }
    }

    /// Count mode: a probe of `target` was answered or lost; is the target done?
    fn resolve_count(&mut self, target: u32) {
        let Some(count) = self.cfg.count else { return };
        let s = self.stats[target as usize];
        if s.sent == count && s.resolved() == u32::from(count) {
            self.decided += 1;
            if s.received == 0 {
                self.unreachable += 1;
            }
        }
    }

    /// Counts an echo reply from `from` whose payload named `target`, probe number `probe`
    /// and sweep-wide sequence `seq`, `rtt_us` microseconds after its probe was sent.
    pub fn on_reply(
        &mut self,
        from: Ipv4Addr,
        target: u32,
        probe: u16,
        seq: u32,
        rtt_us: u64,
    ) -> ReplyOutcome {
        // The source must be the target: anything else is someone else's reply, or a forgery.
        if self.targets.addr(target) != Some(from) {
            self.unknown += 1;
            return ReplyOutcome::Unknown;
        }
        let outcome = if self.count_mode() {
            self.count_reply(target, probe, seq, rtt_us)
        } else {
            self.alive_reply(target, probe, rtt_us)
        };
        match outcome {
            ReplyOutcome::Fresh { .. } => {
                self.received += 1;
                self.min_us = self.min_us.min(rtt_us);
                self.max_us = self.max_us.max(rtt_us);
                self.sum_us += rtt_us;
            }
            ReplyOutcome::Duplicate => self.duplicates += 1,
            ReplyOutcome::Late => self.late += 1,
            ReplyOutcome::Unknown => self.unknown += 1,
        }
        outcome
    }

    fn alive_reply(&mut self, target: u32, probe: u16, _rtt_us: u64) -> ReplyOutcome {
        let st = &mut self.states[target as usize];
        if probe >= u16::from(st.attempts) {
            return ReplyOutcome::Unknown;
        }
        match st.status {
            TargetStatus::Waiting => ReplyOutcome::Unknown,
            TargetStatus::Alive => ReplyOutcome::Duplicate,
            TargetStatus::Unreachable => ReplyOutcome::Late,
            TargetStatus::Probing => {
                // Any probe's reply makes it alive, even one whose wait is over while the
                // retry is in flight: the host is there.
                st.status = TargetStatus::Alive;
                self.decided += 1;
                self.alive += 1;
                ReplyOutcome::Fresh { first: true }
            }
        }
    }

    fn count_reply(&mut self, target: u32, probe: u16, seq: u32, rtt_us: u64) -> ReplyOutcome {
        // The payload's 32 bits, placed in the 64-bit sequence space just below `next_seq`.
        let mut full = (self.next_seq & !0xffff_ffff) | u64::from(seq);
        if full >= self.next_seq {
            let Some(f) = full.checked_sub(1 << 32) else {
                return ReplyOutcome::Unknown;
            };
            full = f;
        }
        let sent = self.stats[target as usize].sent;
        if full < self.base_seq {
            // Its probe's wait is over (or it never was ours).
            return if probe < sent {
                ReplyOutcome::Late
            } else {
                ReplyOutcome::Unknown
            };
        }
        let offset = (full - self.base_seq) as usize;
        let timeout_us = ns(self.cfg.timeout) / 1000;
        let Some(o) = self.levels[0].get_mut(offset) else {
            return ReplyOutcome::Unknown;
        };
        if o.target != target || o.probe != probe {
            return ReplyOutcome::Unknown;
        }
        if o.answered {
            self.stats[target as usize].duplicates += 1;
            return ReplyOutcome::Duplicate;
        }
        // fping discards a reply slower than the timeout (its probe counts as lost).
        if rtt_us > timeout_us {
            return ReplyOutcome::Late;
        }
        o.answered = true;
        self.unresolved -= 1;
        let s = &mut self.stats[target as usize];
        s.add(rtt_us);
        let first = s.received == 1;
        if first {
            self.alive += 1;
        }
        self.resolve_count(target);
        ReplyOutcome::Fresh { first }
    }

    /// The next thing that happened (timeouts, targets given up), oldest first.
    pub fn pop_event(&mut self) -> Option<SweepEvent> {
        self.events.pop_front()
    }

    /// Where target `index` stands.
    pub fn status(&self, index: u32) -> Option<TargetStatus> {
        if index >= self.targets.len() {
            return None;
        }
        if let Some(count) = self.cfg.count {
            let s = self.stats[index as usize];
            return Some(if s.received > 0 {
                TargetStatus::Alive
            } else if s.sent == 0 {
                TargetStatus::Waiting
            } else if s.sent == count && s.resolved() == u32::from(count) {
                TargetStatus::Unreachable
            } else {
                TargetStatus::Probing
            });
        }
        Some(self.states[index as usize].status)
    }

    /// Count mode: the figures of target `index`.
    pub fn stats(&self, index: u32) -> Option<CountStats> {
        self.stats.get(index as usize).copied()
    }

    /// The counters so far.
    pub fn totals(&self) -> SweepTotals {
        let targets = self.targets.len();
        let has = self.received > 0;
        SweepTotals {
            targets,
            alive: self.alive,
            unreachable: self.unreachable,
            pending: targets - self.alive - self.unreachable,
            sent: self.sent,
            received: self.received,
            duplicates: self.duplicates,
            late: self.late,
            unknown: self.unknown,
            min_us: has.then_some(self.min_us),
            avg_us: has.then(|| self.sum_us / self.received),
            max_us: has.then_some(self.max_us),
        }
    }

    /// 0 when every target answered, 1 otherwise (the driver's errors are 2).
    pub fn exit_code(&self) -> i32 {
        if self.alive == self.targets.len() {
            0
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn net(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    fn range(first: Ipv4Addr, last: Ipv4Addr) -> TargetSet {
        let mut t = TargetSet::new();
        t.push_range(first, last).unwrap();
        t
    }

    /// A simulated network on a virtual clock: `answer(probe, attempt)` says after how long a
    /// probe's reply arrives (`None`: never). Runs the sweep to its end (bounded) and returns
    /// the sends (time, probe), the replies' outcomes and the events.
    struct Sim {
        now: Duration,
        sends: Vec<(Duration, Probe)>,
        outcomes: Vec<(Duration, Probe, ReplyOutcome)>,
        events: Vec<(Duration, SweepEvent)>,
        /// How late the driver wakes after each wait.
        lateness: Duration,
    }

    impl Sim {
        fn new() -> Sim {
            Sim {
                now: Duration::ZERO,
                sends: Vec::new(),
                outcomes: Vec::new(),
                events: Vec::new(),
                lateness: Duration::ZERO,
            }
        }

        fn run(
            &mut self,
            s: &mut SweepSession,
            mut answer: impl FnMut(&Probe) -> Vec<Duration>,
        ) -> Duration {
            // (arrival, probe, rtt)
            let mut air: Vec<(Duration, Probe, Duration)> = Vec::new();
            for _ in 0..1_000_000 {
                match s.next(self.now) {
                    Next::Send(p) => {
                        self.sends.push((self.now, p));
                        s.sent(self.now);
                        for delay in answer(&p) {
                            air.push((self.now + delay, p, delay));
                        }
                    }
                    Next::WaitUntil(t) => {
                        let arrival = air.iter().map(|a| a.0).min();
                        match arrival {
                            Some(a) if a <= t => {
                                self.now = self.now.max(a);
                                let (due, rest): (Vec<_>, Vec<_>) =
                                    air.into_iter().partition(|x| x.0 <= self.now);
                                air = rest;
                                for (_, p, rtt) in due {
                                    let o = s.on_reply(
                                        p.addr,
                                        p.target,
                                        p.probe,
                                        p.seq,
                                        rtt.as_micros() as u64,
                                    );
                                    self.outcomes.push((self.now, p, o));
                                }
                            }
                            _ => self.now = t.max(self.now) + self.lateness,
                        }
                    }
                    Next::Finish => {
                        self.drain(s);
                        break;
                    }
                }
                self.drain(s);
            }
            self.now
        }

        fn drain(&mut self, s: &mut SweepSession) {
            while let Some(e) = s.pop_event() {
                self.events.push((self.now, e));
            }
        }
    }

    fn alive_cfg() -> SweepConfig {
        SweepConfig {
            rate: None,
            ..SweepConfig::default()
        }
    }

    #[test]
    fn alive_check_probes_each_target_once_when_all_answer() {
        let mut s = SweepSession::new(alive_cfg(), range(net(127, 0, 0, 1), net(127, 0, 0, 9)));
        let mut sim = Sim::new();
        let end = sim.run(&mut s, |_| vec![MS / 10]);
        assert_eq!(sim.sends.len(), 9);
        let addrs: Vec<Ipv4Addr> = sim.sends.iter().map(|(_, p)| p.addr).collect();
        assert_eq!(addrs[0], net(127, 0, 0, 1));
        assert_eq!(addrs[8], net(127, 0, 0, 9));
        assert!(sim.sends.iter().all(|(_, p)| p.probe == 0));
        assert!(
            sim.outcomes
                .iter()
                .all(|o| o.2 == ReplyOutcome::Fresh { first: true })
        );
        assert!(sim.events.is_empty());
        assert!(end < MS, "finished at the last reply: {end:?}");
        let t = s.totals();
        assert_eq!((t.targets, t.alive, t.unreachable, t.pending), (9, 9, 0, 0));
        assert_eq!((t.sent, t.received), (9, 9));
        assert_eq!(s.exit_code(), 0);
        assert_eq!(s.status(0), Some(TargetStatus::Alive));
    }

    #[test]
    fn pacing_keeps_the_rate_grid_when_the_driver_wakes_late() {
        let cfg = SweepConfig {
            rate: Some(1000),
            retries: 0,
            ..SweepConfig::default()
        };
        let mut s = SweepSession::new(cfg, range(net(127, 0, 0, 1), net(127, 0, 0, 200)));
        let mut sim = Sim::new();
        sim.lateness = Duration::from_micros(300);
        sim.run(&mut s, |_| vec![Duration::from_micros(50)]);
        assert_eq!(sim.sends.len(), 200);
        for (k, (t, _)) in sim.sends.iter().enumerate() {
            let grid = MS * k as u32;
            // Never early; late by at most the driver's own lateness (no drift over 200).
            assert!(*t >= grid, "probe {k} at {t:?}, before {grid:?}");
            assert!(
                *t <= grid + Duration::from_micros(300),
                "probe {k} at {t:?}: drifted from {grid:?}"
            );
        }
    }

    #[test]
    fn after_a_stall_the_catch_up_burst_is_one_bucket_deep() {
        let cfg = SweepConfig {
            rate: Some(10_000),
            ..SweepConfig::default()
        };
        let mut s = SweepSession::new(cfg, range(net(127, 0, 0, 1), net(127, 0, 3, 255)));
        let at = |s: &mut SweepSession, now: Duration| {
            let mut n = 0;
            while let Next::Send(_) = s.next(now) {
                s.sent(now);
                n += 1;
            }
            n
        };
        assert_eq!(at(&mut s, Duration::ZERO), 1);
        // 50 ms without a call: 500 tokens' worth, but the bucket holds 2 ms (20 probes).
        let burst = at(&mut s, MS * 50);
        assert!((20..=21).contains(&burst), "burst of {burst}");
        // Then the grid again: 0.1 ms per probe.
        assert_eq!(at(&mut s, MS * 50 + Duration::from_micros(100)), 1);
        assert_eq!(at(&mut s, MS * 51), 9);
    }

    #[test]
    fn unlimited_rate_sends_everything_at_once() {
        let mut s = SweepSession::new(alive_cfg(), range(net(127, 0, 0, 0), net(127, 0, 0, 255)));
        let mut n = 0;
        while let Next::Send(_) = s.next(Duration::ZERO) {
            s.sent(Duration::ZERO);
            n += 1;
        }
        assert_eq!(n, 256);
    }

    #[test]
    fn silent_target_is_retried_with_backoff_then_unreachable() {
        let cfg = SweepConfig {
            rate: None,
            retries: 3,
            backoff: 1.5,
            timeout: MS * 500,
            ..SweepConfig::default()
        };
        let mut s = SweepSession::new(cfg, range(net(198, 18, 9, 9), net(198, 18, 9, 9)));
        let mut sim = Sim::new();
        let end = sim.run(&mut s, |_| Vec::new());
        let times: Vec<Duration> = sim.sends.iter().map(|x| x.0).collect();
        // 500, 750, 1125 and 1687.5 ms waits (fping -t 500 -B 1.5 -r 3).
        assert_eq!(times, vec![Duration::ZERO, MS * 500, MS * 1250, MS * 2375]);
        let probes: Vec<u16> = sim.sends.iter().map(|x| x.1.probe).collect();
        assert_eq!(probes, vec![0, 1, 2, 3]);
        assert_eq!(
            sim.events,
            vec![(
                Duration::from_micros(4_062_500),
                SweepEvent::Unreachable { target: 0 }
            )]
        );
        assert_eq!(end, Duration::from_micros(4_062_500));
        let t = s.totals();
        assert_eq!((t.alive, t.unreachable, t.sent), (0, 1, 4));
        assert_eq!(s.exit_code(), 1);
    }

    #[test]
    fn a_reply_to_an_earlier_attempt_still_makes_the_target_alive() {
        let cfg = SweepConfig {
            rate: None,
            retries: 2,
            timeout: MS * 100,
            ..SweepConfig::default()
        };
        let mut s = SweepSession::new(cfg, range(net(127, 0, 0, 1), net(127, 0, 0, 2)));
        let mut sim = Sim::new();
        // The first probe's reply takes 150 ms: after its wait, while the retry is out.
        sim.run(&mut s, |p| {
            if p.probe == 0 {
                vec![MS * 150]
            } else {
                Vec::new()
            }
        });
        assert_eq!(sim.sends.len(), 4, "{:?}", sim.sends);
        assert!(
            sim.outcomes
                .iter()
                .all(|o| o.2 == ReplyOutcome::Fresh { first: true })
        );
        assert!(sim.events.is_empty(), "{:?}", sim.events);
        assert_eq!(s.totals().alive, 2);
    }

    #[test]
    fn replies_after_giving_up_are_late_and_extra_replies_duplicates() {
        let cfg = SweepConfig {
            rate: None,
            retries: 0,
            timeout: MS * 100,
            ..SweepConfig::default()
        };
        let mut s = SweepSession::new(cfg, range(net(127, 0, 0, 1), net(127, 0, 0, 2)));
        let mut sim = Sim::new();
        sim.run(&mut s, |p| {
            if p.target == 0 {
                vec![MS, MS * 2] // answered twice
            } else {
                vec![MS * 300] // after the only wait
            }
        });
        let kinds: Vec<ReplyOutcome> = sim.outcomes.iter().map(|o| o.2).collect();
        assert_eq!(
            kinds,
            vec![ReplyOutcome::Fresh { first: true }, ReplyOutcome::Duplicate]
        );
        assert_eq!(
            sim.events,
            vec![(MS * 100, SweepEvent::Unreachable { target: 1 })]
        );
        // The sweep ended at the give-up; a reply now is late.
        assert_eq!(
            s.on_reply(net(127, 0, 0, 2), 1, 0, 1, 300_000),
            ReplyOutcome::Late
        );
        let t = s.totals();
        assert_eq!((t.duplicates, t.late, t.alive, t.unreachable), (1, 1, 1, 1));
    }

    #[test]
    fn replies_that_are_not_ours_are_unknown() {
        let mut s = SweepSession::new(alive_cfg(), range(net(127, 0, 0, 1), net(127, 0, 0, 4)));
        let Next::Send(p) = s.next(Duration::ZERO) else {
            panic!("nothing to send")
        };
        s.sent(Duration::ZERO);
        // Wrong source, target out of range, a probe never sent, a target never probed.
        assert_eq!(
            s.on_reply(net(127, 0, 0, 9), 0, 0, p.seq, 10),
            ReplyOutcome::Unknown
        );
        assert_eq!(
            s.on_reply(net(127, 0, 0, 1), 99, 0, p.seq, 10),
            ReplyOutcome::Unknown
        );
        assert_eq!(
            s.on_reply(net(127, 0, 0, 1), 0, 5, p.seq, 10),
            ReplyOutcome::Unknown
        );
        assert_eq!(
            s.on_reply(net(127, 0, 0, 2), 1, 0, 1, 10),
            ReplyOutcome::Unknown
        );
        assert_eq!(s.totals().unknown, 4);
        assert_eq!(s.status(0), Some(TargetStatus::Probing));
        assert_eq!(s.status(1), Some(TargetStatus::Waiting));
        assert_eq!(
            s.on_reply(net(127, 0, 0, 1), 0, 0, p.seq, 10),
            ReplyOutcome::Fresh { first: true }
        );
    }

    fn count_cfg(count: u16) -> SweepConfig {
        SweepConfig {
            count: Some(count),
            rate: Some(1000),
            interval: MS * 100,
            timeout: MS * 100,
            ..SweepConfig::default()
        }
    }

    #[test]
    fn count_mode_sends_n_probes_per_target_on_its_own_grid() {
        let mut s = SweepSession::new(count_cfg(3), range(net(127, 0, 0, 1), net(127, 0, 0, 3)));
        let mut sim = Sim::new();
        let end = sim.run(&mut s, |_| vec![Duration::from_micros(40)]);
        let got: Vec<(Duration, u32, u16)> = sim
            .sends
            .iter()
            .map(|(t, p)| (*t, p.target, p.probe))
            .collect();
        // Round-robin, 1 ms apart (the rate), each target every 100 ms (the interval).
        assert_eq!(
            got,
            vec![
                (Duration::ZERO, 0, 0),
                (MS * 1, 1, 0),
                (MS * 2, 2, 0),
                (MS * 100, 0, 1),
                (MS * 101, 1, 1),
                (MS * 102, 2, 1),
                (MS * 200, 0, 2),
                (MS * 201, 1, 2),
                (MS * 202, 2, 2),
            ]
        );
        // Over at the last reply, not a timeout later.
        assert_eq!(end, MS * 202 + Duration::from_micros(40));
        let st = s.stats(1).unwrap();
        assert_eq!((st.sent, st.received, st.lost, st.loss_pct()), (3, 3, 0, 0));
        assert_eq!((st.min_us, st.avg_us(), st.max_us), (40, Some(40), 40));
        assert_eq!(s.totals().alive, 3);
        assert_eq!(s.exit_code(), 0);
    }

    #[test]
    fn count_mode_loses_late_replies_and_counts_duplicates() {
        let mut s = SweepSession::new(count_cfg(4), range(net(127, 0, 0, 1), net(127, 0, 0, 1)));
        let mut sim = Sim::new();
        sim.run(&mut s, |p| match p.probe {
            0 => vec![MS * 5, MS * 6], // answered, then a duplicate
            1 => vec![MS * 150],       // after the 100 ms timeout
            2 => Vec::new(),           // lost
            _ => vec![MS * 99],        // just in time
        });
        let kinds: Vec<(u16, ReplyOutcome)> =
            sim.outcomes.iter().map(|o| (o.1.probe, o.2)).collect();
        assert_eq!(
            kinds,
            vec![
                (0, ReplyOutcome::Fresh { first: true }),
                (0, ReplyOutcome::Duplicate),
                (1, ReplyOutcome::Late),
                (3, ReplyOutcome::Fresh { first: false }),
            ]
        );
        let timeouts: Vec<SweepEvent> = sim.events.iter().map(|e| e.1).collect();
        assert_eq!(
            timeouts,
            vec![
                SweepEvent::Timeout {
                    target: 0,
                    probe: 1
                },
                SweepEvent::Timeout {
                    target: 0,
                    probe: 2
                }
            ]
        );
        let st = s.stats(0).unwrap();
        assert_eq!(
            (st.sent, st.received, st.lost, st.duplicates, st.loss_pct()),
            (4, 2, 2, 1, 50)
        );
        assert_eq!(
            (st.min_us, st.max_us, st.avg_us()),
            (5000, 99_000, Some(52_000))
        );
        let t = s.totals();
        assert_eq!((t.received, t.duplicates, t.late), (2, 1, 1));
        assert_eq!(s.exit_code(), 0, "one reply is enough to be alive");
    }

    #[test]
    fn count_mode_target_without_replies_is_unreachable() {
        let mut s = SweepSession::new(count_cfg(2), range(net(127, 0, 0, 1), net(127, 0, 0, 2)));
        let mut sim = Sim::new();
        sim.run(
            &mut s,
            |p| if p.target == 0 { vec![MS] } else { Vec::new() },
        );
        assert_eq!(s.status(0), Some(TargetStatus::Alive));
        assert_eq!(s.status(1), Some(TargetStatus::Unreachable));
        let t = s.totals();
        assert_eq!((t.alive, t.unreachable, t.pending), (1, 1, 0));
        assert_eq!(s.exit_code(), 1);
        assert_eq!(s.stats(1).unwrap().loss_pct(), 100);
    }

    #[test]
    fn a_deadline_or_an_interrupt_ends_the_sweep_with_targets_pending() {
        let cfg = SweepConfig {
            rate: Some(100),
            deadline: Some(MS * 50),
            ..SweepConfig::default()
        };
        let mut s = SweepSession::new(cfg, range(net(127, 0, 0, 1), net(127, 0, 0, 100)));
        let mut sim = Sim::new();
        let end = sim.run(&mut s, |_| vec![MS]);
        assert_eq!(end, MS * 50);
        assert_eq!(sim.sends.len(), 5);
        let t = s.totals();
        assert_eq!((t.alive, t.unreachable, t.pending), (5, 0, 95));
        assert_eq!(s.exit_code(), 1);

        let mut s = SweepSession::new(alive_cfg(), range(net(127, 0, 0, 1), net(127, 0, 0, 2)));
        s.interrupt();
        assert_eq!(s.next(Duration::ZERO), Next::Finish);
    }

    #[test]
    fn state_per_target_is_a_few_bytes() {
        assert_eq!(size_of::<TargetState>(), 2);
        assert_eq!(size_of::<CountStats>(), 24);
        assert_eq!(size_of::<Outstanding>(), 16);
        assert_eq!(size_of::<Due>(), 16);
        // A /12 (1,048,576 addresses) before the first probe: its state is 2 MiB.
        let targets = range(net(127, 0, 0, 0), net(127, 15, 255, 255));
        assert!(targets.heap_bytes() < 1024);
        let s = SweepSession::new(alive_cfg(), targets);
        assert_eq!(s.bytes_per_target(), 2);
        assert!(s.heap_bytes() <= (2 << 20) + 4096, "{}", s.heap_bytes());
        let counted = SweepSession::new(
            count_cfg(1),
            range(net(127, 0, 0, 0), net(127, 0, 255, 255)),
        );
        assert_eq!(counted.bytes_per_target(), 24);
    }

    #[test]
    fn target_sets_keep_ranges_and_names() {
        let mut t = TargetSet::new();
        t.push_range(net(127, 0, 0, 1), net(127, 0, 0, 254))
            .unwrap();
        t.push_range(net(127, 0, 0, 255), net(127, 0, 1, 9))
            .unwrap(); // joins the first
        t.push_host(net(127, 0, 0, 1), Some("localhost")).unwrap();
        t.push_range(net(10, 0, 0, 9), net(10, 0, 0, 1)).unwrap(); // backwards: nothing
        assert_eq!(t.spans.len(), 2);
        assert_eq!(t.len(), 266);
        assert_eq!(t.addr(0), Some(net(127, 0, 0, 1)));
        assert_eq!(t.addr(255), Some(net(127, 0, 1, 0)));
        assert_eq!(t.addr(264), Some(net(127, 0, 1, 9)));
        assert_eq!(t.addr(265), Some(net(127, 0, 0, 1)));
        assert_eq!(t.label(265), Some("localhost"));
        assert_eq!(t.label(3), None);
        assert_eq!(t.addr(266), None);
        assert_eq!(t.max_name_len(), "127.0.0.255".len());
        let l = t.locator();
        assert_eq!(l.find(net(127, 0, 0, 1)), Some(0), "the first of two");
        assert_eq!(l.find(net(127, 0, 1, 9)), Some(264));
        assert_eq!(l.find(net(127, 0, 1, 10)), None);
        assert_eq!(l.find(net(10, 0, 0, 1)), None);
        let mut overlapping = TargetSet::new();
        overlapping
            .push_range(net(10, 0, 0, 0), net(10, 0, 255, 255))
            .unwrap();
        overlapping
            .push_host(net(10, 0, 0, 5), Some("five"))
            .unwrap();
        overlapping.push_host(net(10, 0, 9, 9), None).unwrap();
        let l = overlapping.locator();
        assert_eq!(l.find(net(10, 0, 200, 1)), Some(200 * 256 + 1));
        assert_eq!(l.find(net(10, 0, 9, 9)), Some(9 * 256 + 9));
        assert_eq!(
            max_dotted_len(u32::from(net(10, 0, 0, 0)), u32::from(net(10, 0, 0, 99))),
            9
        );
        assert_eq!(
            max_dotted_len(u32::from(net(1, 2, 3, 4)), u32::from(net(1, 2, 5, 6))),
            9
        );
        assert_eq!(
            max_dotted_len(
                u32::from(net(127, 0, 0, 0)),
                u32::from(net(127, 15, 255, 255))
            ),
            "127.15.255.255".len()
        );
        let mut big = TargetSet::new();
        assert_eq!(
            big.push_range(net(10, 0, 0, 0), net(11, 0, 0, 0)),
            Err(TooManyTargets {
                would_be: (1 << 24) + 1
            })
        );
        assert!(big.is_empty());
    }
    #[test]
    fn pacing_holds_the_rate_when_waits_are_whole_milliseconds_and_late() {
        // poll(2) waits whole milliseconds, rounded up, and the scheduler adds its latency:
        // the bucket must be deeper than that, or each late wake-up loses credit (drift).
        for latency_us in [80u64, 700] {
            for rate in [200u32, 1000, 10_000, 50_000] {
                let cfg = SweepConfig {
                    rate: Some(rate),
                    retries: 0,
                    ..SweepConfig::default()
                };
                let mut s = SweepSession::new(cfg, range(net(10, 0, 0, 1), net(10, 0, 39, 255)));
                let mut now = Duration::ZERO;
                let (mut sent, total) = (0u64, 10_000u64.min(u64::from(rate) * 5));
                while sent < total {
                    match s.next(now) {
                        Next::Send(_) => {
                            s.sent(now);
                            sent += 1;
                        }
                        Next::WaitUntil(t) => {
                            let ms = t.saturating_sub(now).as_nanos().div_ceil(1_000_000) as u64;
                            now += Duration::from_millis(ms) + Duration::from_micros(latency_us);
                        }
                        Next::Finish => break,
                    }
                }
                let achieved = sent as f64 / now.as_secs_f64() / f64::from(rate);
                assert!(
                    (0.99..=1.01).contains(&achieved),
                    "rate {rate} with {latency_us} us late wake-ups: {achieved:.3} of it"
                );
            }
        }
    }
}
