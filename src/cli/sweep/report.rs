//! What a many-target `rawkit ping` prints: fping's lines, JSON Lines, and the progress line.
//!
//! Results go to stdout through [`Report`], which buffers them and writes a batch at a time
//! (a sweep of a /16 prints 65,534 lines; one `write` per line would cost more than the
//! probes). A closed stdout is remembered, and the driver stops quietly. The progress line goes
//! to stderr, only when stderr is a terminal, and is cleared before results are written and at
//! the end.

use crate::cli::output::JSON_VERSION;
use crate::probe::sweep::{CountStats, SweepTotals};
use serde_json::{Map, Value};
use std::io::{self, Write};
use std::time::Duration;

/// Results are written when this much is buffered (and at every wait).
const FLUSH_AT: usize = 64 * 1024;

/// A time in milliseconds as fping prints it (`sprint_tm`): three decimals below 1 ms, two
/// below 10, one below 100, none above, rounded.
pub fn fping_ms(us: u64) -> String {
    let t = us as f64 / 1000.0;
    if t < 1.0 {
        format!("{t:.3}")
    } else if t < 10.0 {
        format!("{t:.2}")
    } else if t < 100.0 {
        format!("{t:.1}")
    } else if t < 1_000_000.0 {
        format!("{t:.0}")
    } else {
        format!("{t:.3e}")
    }
}

/// Milliseconds as a JSON number, microsecond precision.
pub fn json_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// fping's per-reply line (`-c`): `HOST : [k], 64 bytes, 0.031 ms (0.031 avg, 0% loss)`.
pub fn reply_line(
    name: &str,
    width: usize,
    probe: u16,
    bytes: usize,
    rtt_us: u64,
    s: &CountStats,
) -> String {
    format!(
        "{name:<width$} : [{probe}], {bytes} bytes, {} ms ({} avg, {}% loss)",
        fping_ms(rtt_us),
        s.avg_us().map_or_else(|| "NaN".into(), fping_ms),
        s.loss_pct()
    )
}

/// fping's line for a probe that timed out (`-c`): `HOST : [k], timed out (NaN avg, 100% loss)`.
pub fn timeout_line(name: &str, width: usize, probe: u16, s: &CountStats) -> String {
    format!(
        "{name:<width$} : [{probe}], timed out ({} avg, {}% loss)",
        s.avg_us().map_or_else(|| "NaN".into(), fping_ms),
        s.loss_pct()
    )
}

/// fping's per-target summary: `HOST : xmt/rcv/%loss = 3/3/0%, min/avg/max = 0.031/0.040/0.052`
/// (without the RTTs when nothing came back).
pub fn summary_line(name: &str, width: usize, s: &CountStats) -> String {
    let mut line = format!(
        "{name:<width$} : xmt/rcv/%loss = {}/{}/{}%",
        s.resolved(),
        s.received,
        s.loss_pct()
    );
    if let Some(avg) = s.avg_us() {
        line.push_str(&format!(
            ", min/avg/max = {}/{}/{}",
            fping_ms(u64::from(s.min_us)),
            fping_ms(avg),
            fping_ms(u64::from(s.max_us))
        ));
    }
    line
}

/// The last line: `Total: 4094 targets, 4094 alive, 0 unreachable, xmt/rcv/%loss = 4094/4094/0%,
/// min/avg/max = 0.004/0.010/0.120, elapsed 0.052 s`; targets never decided (an interrupted
/// sweep) and hosts that did not resolve are added when there are any, duplicates too.
pub fn total_line(t: &SweepTotals, unknown_hosts: usize, elapsed: Duration) -> String {
    let mut line = format!(
        "Total: {} targets, {} alive, {} unreachable",
        t.targets, t.alive, t.unreachable
    );
    if t.pending > 0 {
        line.push_str(&format!(", {} pending", t.pending));
    }
    if unknown_hosts > 0 {
        line.push_str(&format!(", {unknown_hosts} unknown hosts"));
    }
    line.push_str(&format!(
        ", xmt/rcv/%loss = {}/{}/{}%",
        t.sent,
        t.received,
        loss_pct(t.sent, t.received)
    ));
    if let (Some(min), Some(avg), Some(max)) = (t.min_us, t.avg_us, t.max_us) {
        line.push_str(&format!(
            ", min/avg/max = {}/{}/{}",
            fping_ms(min),
            fping_ms(avg),
            fping_ms(max)
        ));
    }
    if t.duplicates > 0 {
        line.push_str(&format!(", +{} duplicates", t.duplicates));
    }
    line.push_str(&format!(", elapsed {:.3} s", elapsed.as_secs_f64()));
    line
}

/// Whole-percent loss, as fping computes it.
pub fn loss_pct(sent: u64, received: u64) -> u64 {
    (sent.saturating_sub(received) * 100)
        .checked_div(sent)
        .unwrap_or(0)
}

/// fping's words for an ICMP error (`icmp_unreach_str`, `icmp_type_str`).
pub fn icmp_error_words(icmp_type: u8, code: u8) -> String {
    const UNREACH: [&str; 16] = [
        "ICMP Network Unreachable",
        "ICMP Host Unreachable",
        "ICMP Protocol Unreachable",
        "ICMP Port Unreachable",
        "ICMP Unreachable (Fragmentation Needed)",
        "ICMP Unreachable (Source Route Failed)",
        "ICMP Unreachable (Destination Network Unknown)",
        "ICMP Unreachable (Destination Host Unknown)",
        "ICMP Unreachable (Source Host Isolated)",
        "ICMP Unreachable (Communication with Network Prohibited)",
        "ICMP Unreachable (Communication with Host Prohibited)",
        "ICMP Unreachable (Network Unreachable For Type Of Service)",
        "ICMP Unreachable (Host Unreachable For Type Of Service)",
        "ICMP Unreachable (Communication Administratively Prohibited)",
        "ICMP Unreachable (Host Precedence Violation)",
        "ICMP Unreachable (Precedence cutoff in effect)",
    ];
    match icmp_type {
        3 => UNREACH
            .get(usize::from(code))
            .map_or_else(|| "ICMP Unreachable (Invalid Code)".into(), |s| (*s).into()),
        4 => "ICMP Source Quench".into(),
        5 => "ICMP Redirect".into(),
        11 => "ICMP Time Exceeded".into(),
        12 => "ICMP Parameter Problem".into(),
        t => format!("ICMP {t}"),
    }
}

/// The result stream: text lines or JSON Lines, buffered.
#[derive(Debug)]
pub struct Report {
    json: bool,
    quiet: bool,
    buf: Vec<u8>,
    broken: bool,
}

impl Report {
    /// Text, or JSON Lines when `json`; with `quiet` the per-packet JSON events are left out.
    pub fn new(json: bool, quiet: bool) -> Report {
        Report {
            json,
            quiet,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            broken: false,
        }
    }

    /// True when [`Report::event`] would write an event of this kind.
    pub fn wants(&self, per_packet: bool) -> bool {
        self.json && !(per_packet && self.quiet)
    }

    /// True when per-packet text lines are printed (neither `--json` nor `-q`).
    pub fn wants_lines(&self) -> bool {
        !self.json && !self.quiet
    }

    /// True once the reader closed stdout.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// True when something waits to be written.
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Appends a text line (ignored with `--json`).
    pub fn line(&mut self, prefix: &str, s: &str) {
        if self.json {
            return;
        }
        self.buf.extend_from_slice(prefix.as_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(b'\n');
        self.flush_if_full();
    }

    /// Appends one JSON event, `{"v":1,"cmd":"ping","event":..,<fields>}` (ignored without
    /// `--json`; per-packet events are ignored with `-q`).
    pub fn event(&mut self, event: &str, per_packet: bool, fields: Value) {
        if !self.wants(per_packet) {
            return;
        }
        let mut m = Map::new();
        m.insert("v".into(), Value::from(JSON_VERSION));
        m.insert("cmd".into(), Value::from("ping"));
        m.insert("event".into(), Value::from(event));
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.buf, &Value::Object(m));
        self.buf.push(b'\n');
        self.flush_if_full();
    }

    fn flush_if_full(&mut self) {
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if !self.broken {
            let mut out = io::stdout().lock();
            if out.write_all(&self.buf).and_then(|_| out.flush()).is_err() {
                self.broken = true;
            }
        }
        self.buf.clear();
    }
}

/// The progress line on stderr: shown when stderr is a terminal and the sweep has run for a
/// second, redrawn five times a second, cleared before results are written and at the end.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    shown: bool,
    next_draw: Duration,
}

/// When the progress line first appears.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// How often it is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

impl Progress {
    /// A progress line that is drawn only when `enabled` (stderr is a terminal).
    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            shown: false,
            next_draw: PROGRESS_AFTER,
        }
    }

    /// True when the line would be drawn at `now` (the caller then computes the figures).
    pub fn due(&self, now: Duration) -> bool {
        self.enabled && now >= self.next_draw
    }

    /// Draws `done/total` with the rate and the time left.
    pub fn draw(&mut self, now: Duration, done: u32, total: u32, sent: u64) {
        self.next_draw = now + PROGRESS_EVERY;
        let _ = write!(
            io::stderr().lock(),
            "\r\x1b[K{}",
            progress_text(now, done, total, sent)
        );
        self.shown = true;
    }

    /// Removes the line (before results are written, and at the end).
    pub fn clear(&mut self) {
        if self.shown {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
            self.shown = false;
        }
    }
}

/// `12000/65534 targets done (18%), 11873 probes/s, about 4 s left`.
pub fn progress_text(now: Duration, done: u32, total: u32, sent: u64) -> String {
    let secs = now.as_secs_f64().max(1e-9);
    let pct = if total == 0 {
        100
    } else {
        u64::from(done) * 100 / u64::from(total)
    };
    let per_target = secs / f64::from(done.max(1));
    let left = per_target * f64::from(total.saturating_sub(done));
    let eta = if done == 0 {
        "?".to_string()
    } else if left >= 90.0 {
        format!("{:.0} min", (left / 60.0).ceil())
    } else {
        format!("{:.0} s", left.ceil())
    };
    format!(
        "{done}/{total} targets done ({pct}%), {:.0} probes/s, about {eta} left",
        sent as f64 / secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_with_fpings_precision() {
        assert_eq!(fping_ms(31), "0.031");
        assert_eq!(fping_ms(999), "0.999");
        assert_eq!(fping_ms(1_234), "1.23");
        assert_eq!(fping_ms(12_345), "12.3");
        assert_eq!(fping_ms(123_456), "123");
        assert_eq!(fping_ms(0), "0.000");
    }

    fn stats(received: u16, lost: u16, rtts: &[u32]) -> CountStats {
        CountStats {
            sent: received + lost,
            received,
            lost,
            duplicates: 0,
            min_us: rtts.iter().copied().min().unwrap_or(u32::MAX),
            max_us: rtts.iter().copied().max().unwrap_or(0),
            sum_us: rtts.iter().map(|&r| u64::from(r)).sum(),
        }
    }

    #[test]
    fn lines_are_fpings() {
        let s = stats(3, 0, &[31, 40, 52]);
        assert_eq!(
            summary_line("127.0.0.1", 9, &s),
            "127.0.0.1 : xmt/rcv/%loss = 3/3/0%, min/avg/max = 0.031/0.041/0.052"
        );
        assert_eq!(
            summary_line("127.0.0.2", 11, &stats(0, 3, &[])),
            "127.0.0.2   : xmt/rcv/%loss = 3/0/100%"
        );
        assert_eq!(
            reply_line("127.0.0.1", 9, 2, 64, 22, &stats(3, 0, &[9, 13, 22])),
            "127.0.0.1 : [2], 64 bytes, 0.022 ms (0.014 avg, 0% loss)"
        );
        assert_eq!(
            timeout_line("10.0.0.1", 8, 0, &stats(0, 1, &[])),
            "10.0.0.1 : [0], timed out (NaN avg, 100% loss)"
        );
        assert_eq!(
            timeout_line("10.0.0.1", 8, 1, &stats(1, 1, &[500])),
            "10.0.0.1 : [1], timed out (0.500 avg, 50% loss)"
        );
        let t = SweepTotals {
            targets: 4094,
            alive: 4093,
            unreachable: 1,
            pending: 0,
            sent: 4097,
            received: 4093,
            duplicates: 0,
            late: 0,
            unknown: 0,
            min_us: Some(4),
            avg_us: Some(10),
            max_us: Some(120),
        };
        assert_eq!(
            total_line(&t, 0, Duration::from_millis(52)),
            "Total: 4094 targets, 4093 alive, 1 unreachable, xmt/rcv/%loss = 4097/4093/0%, \
             min/avg/max = 0.004/0.010/0.120, elapsed 0.052 s"
        );
        let none = SweepTotals {
            targets: 2,
            pending: 2,
            ..SweepTotals::default()
        };
        assert_eq!(
            total_line(&none, 1, Duration::ZERO),
            "Total: 2 targets, 0 alive, 0 unreachable, 2 pending, 1 unknown hosts, \
             xmt/rcv/%loss = 0/0/0%, elapsed 0.000 s"
        );
    }

    #[test]
    fn icmp_errors_use_fpings_words() {
        assert_eq!(icmp_error_words(3, 1), "ICMP Host Unreachable");
        assert_eq!(
            icmp_error_words(3, 13),
            "ICMP Unreachable (Communication Administratively Prohibited)"
        );
        assert_eq!(icmp_error_words(3, 99), "ICMP Unreachable (Invalid Code)");
        assert_eq!(icmp_error_words(11, 0), "ICMP Time Exceeded");
    }

    #[test]
    fn progress_says_done_rate_and_time_left() {
        assert_eq!(
            progress_text(Duration::from_secs(2), 1000, 3000, 2000),
            "1000/3000 targets done (33%), 1000 probes/s, about 4 s left"
        );
        assert_eq!(
            progress_text(Duration::from_secs(10), 0, 3000, 0),
            "0/3000 targets done (0%), 0 probes/s, about ? left"
        );
        assert!(
            progress_text(Duration::from_secs(60), 10, 1000, 10).ends_with("about 99 min left")
        );
    }
}
