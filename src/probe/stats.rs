//! Round-trip statistics in iputils ping's arithmetic.
//!
//! Times are whole microseconds, as iputils keeps them, so that `rtt min/avg/max/mdev` comes out
//! digit for digit the same: the sums are kept as `f64`, the average and the variance are
//! truncated to integers, and mdev is the integer square root of the variance (iputils
//! `llsqrt`). The EWMA is iputils' fixed point `rtt*8` with a gain of 1/8.

/// Running RTT statistics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RttStats {
    hist: Histogram,
    count: u64,
    sum_us: f64,
    sum2_us: f64,
    min_us: u64,
    max_us: u64,
    ewma8_us: u64,
}

/// The four figures of the `rtt min/avg/max/mdev` line, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttSummary {
    /// Smallest RTT.
    pub min_us: u64,
    /// Mean RTT (truncated).
    pub avg_us: u64,
    /// Largest RTT.
    pub max_us: u64,
    /// Standard deviation (iputils' integer square root of the truncated variance).
    pub mdev_us: u64,
    /// Exponentially weighted moving average (gain 1/8).
    pub ewma_us: u64,
}

impl RttStats {
    /// No samples yet.
    pub fn new() -> Self {
        RttStats {
            hist: Histogram::new(),
            count: 0,
            sum_us: 0.0,
            sum2_us: 0.0,
            min_us: u64::MAX,
            max_us: 0,
            ewma8_us: 0,
        }
    }

    /// Adds one sample.
    pub fn add(&mut self, rtt_us: u64) {
        self.hist.add(rtt_us);
        self.count += 1;
        self.sum_us += rtt_us as f64;
        self.sum2_us += (rtt_us as f64) * (rtt_us as f64);
        self.min_us = self.min_us.min(rtt_us);
        self.max_us = self.max_us.max(rtt_us);
        // iputils: if (!rtt) rtt = triptime*8; else rtt += triptime - rtt/8;
        if self.ewma8_us == 0 {
            self.ewma8_us = rtt_us.saturating_mul(8);
        } else {
            self.ewma8_us = (self.ewma8_us + rtt_us).saturating_sub(self.ewma8_us / 8);
        }
    }

    /// The RTT below which `q` (0 to 1) of the samples lie, in microseconds (to within 1.6%
    /// above 1 ms, exact below).
    pub fn percentile(&self, q: f64) -> Option<u64> {
        self.hist.quantile(q)
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest sample so far (0 without samples).
    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The EWMA in microseconds (0 without samples).
    pub fn ewma_us(&self) -> u64 {
        self.ewma8_us / 8
    }

    /// The summary over `divisor` replies. iputils divides by received + duplicates, which is
    /// the number of samples unless some replies carried no timestamp.
    pub fn summary(&self) -> Option<RttSummary> {
        if self.count == 0 {
            return None;
        }
        let total = self.count as f64;
        let avg = (self.sum_us / total) as u64;
        // iputils: tmvar = (tsum2 - tsum*tsum/total) / total while tsum < INT_MAX, else
        // tsum2/total - tmavg*tmavg; then llsqrt.
        let var = if self.sum_us < i32::MAX as f64 {
            ((self.sum2_us - (self.sum_us * self.sum_us) / total) / total) as i64
        } else {
            (self.sum2_us / total) as i64 - (avg as i64) * (avg as i64)
        };
        Some(RttSummary {
            min_us: self.min_us,
            avg_us: avg,
            max_us: self.max_us,
            mdev_us: isqrt(var.max(0) as u64),
            ewma_us: self.ewma_us(),
        })
    }
}

/// A fixed-size histogram of microsecond values: exact below 1024 µs, then 64 buckets per
/// power of two (at most 1/64 relative error). About 28 KiB whatever the number of samples, so a
/// flood of millions of probes keeps its percentiles in constant memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    buckets: Vec<u64>,
    total: u64,
}

const EXACT: u64 = 1024;
const SUB: u64 = 64;

impl Histogram {
    /// An empty histogram (allocates on the first sample).
    pub const fn new() -> Self {
        Histogram {
            buckets: Vec::new(),
            total: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < EXACT {
            return v as usize;
        }
        let log = 63 - v.leading_zeros() as u64; // >= 10
        let sub = (v >> (log - 6)) & (SUB - 1);
        (EXACT + (log - 10) * SUB + sub) as usize
    }

    fn lower_bound(i: usize) -> u64 {
        let i = i as u64;
        if i < EXACT {
            return i;
        }
        let log = (i - EXACT) / SUB + 10;
        let sub = (i - EXACT) % SUB;
        (1 << log) | (sub << (log - 6))
    }

    /// Adds a sample.
    pub fn add(&mut self, v: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; Self::index(u64::MAX) + 1];
        }
        self.buckets[Self::index(v)] += 1;
        self.total += 1;
    }

    /// The smallest bucket value at or below which a share `q` of the samples lie.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::lower_bound(i));
            }
        }
        None
    }
}

/// Floor of the square root (iputils `llsqrt`, by Newton's method).
pub fn isqrt(a: u64) -> u64 {
    if a < 2 {
        return a;
    }
    let a = a as u128;
    let mut x = a;
    let mut prev = u128::MAX;
    while x < prev {
        prev = x;
        x = (x + a / x) / 2;
    }
    prev as u64
}

/// Microseconds as iputils prints them in the statistics: `%ld.%03ld` (truncated ms).
pub fn ms3(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// An RTT as iputils prints it on a reply line: 3 decimals below 1 ms, 2 below 10 ms, 1 below
/// 100 ms, none above, each rounded at the boundary the way iputils rounds.
pub fn reply_time(us: u64) -> String {
    if us >= 100_000 - 50 {
        format!("{}", (us + 500) / 1000)
    } else if us >= 10_000 - 5 {
        format!("{}.{}", (us + 50) / 1000, ((us + 50) % 1000) / 100)
    } else if us >= 1000 {
        format!("{}.{:02}", (us + 5) / 1000, ((us + 5) % 1000) / 10)
    } else {
        format!("{}.{:03}", us / 1000, us % 1000)
    }
}

/// The loss percentage as iputils prints it: a float with `%g` (six significant digits).
pub fn loss_percent(transmitted: u64, received: u64) -> String {
    if transmitted == 0 {
        return "0".into();
    }
    let loss = ((transmitted as i64 - received as i64) as f64 * 100.0 / transmitted as f64) as f32;
    format_g(loss as f64)
}

/// C's `%g` for the values a percentage takes: six significant digits, trailing zeros removed.
pub fn format_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-5..6).contains(&exp) {
        // Not reachable for percentages between -100 and 100 with six digits, but correct.
        let s = format!("{:.5e}", v);
        return s;
    }
    let decimals = (5 - exp).max(0) as usize;
    let s = format!("{:.*}", decimals, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_time_boundaries_match_iputils() {
        let cases = [
            (0, "0.000"),
            (32, "0.032"),
            (999, "0.999"),
            (1000, "1.00"),
            (9994, "9.99"),
            (9995, "10.0"),
            (99_949, "99.9"),
            (99_950, "100"),
            (1_234_567, "1235"),
        ];
        for (us, s) in cases {
            assert_eq!(reply_time(us), s, "{us}");
        }
    }

    #[test]
    fn loss_prints_like_percent_g_of_a_float() {
        assert_eq!(loss_percent(2, 2), "0");
        assert_eq!(loss_percent(2, 0), "100");
        assert_eq!(loss_percent(2, 1), "50");
        assert_eq!(loss_percent(3, 2), "33.3333");
        assert_eq!(loss_percent(3, 1), "66.6667");
        assert_eq!(loss_percent(7, 6), "14.2857");
        assert_eq!(loss_percent(0, 0), "0");
        assert_eq!(loss_percent(100_000, 99_999), "0.001");
    }

    #[test]
    fn summary_uses_integer_microseconds_like_iputils() {
        // From an iputils run: 0.088 and 0.178 ms give avg 0.133, mdev 0.045.
        let mut s = RttStats::new();
        s.add(88);
        s.add(178);
        let r = s.summary().unwrap();
        assert_eq!(
            (r.min_us, r.avg_us, r.max_us, r.mdev_us),
            (88, 133, 178, 45)
        );
        assert_eq!(ms3(r.avg_us), "0.133");
        assert_eq!(RttStats::new().summary(), None);
    }

    #[test]
    fn ewma_is_fixed_point_with_gain_one_eighth() {
        let mut s = RttStats::new();
        s.add(80);
        assert_eq!(s.ewma_us(), 80);
        s.add(160);
        // rtt8 = 640 + 160 - 80 = 720 -> 90 us
        assert_eq!(s.ewma_us(), 90);
    }

    #[test]
    fn histogram_percentiles_are_exact_below_1ms_and_close_above() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100u64 {
            h.add(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        let mut h = Histogram::new();
        for v in [1500u64, 20_000, 3_000_000, u64::MAX] {
            h.add(v);
        }
        let p = h.quantile(0.25).unwrap();
        assert!(p <= 1500 && p * 64 / 63 >= 1500, "{p}");
        let p = h.quantile(0.75).unwrap();
        assert!(
            p <= 3_000_000 && p as f64 >= 3_000_000.0 * (1.0 - 1.0 / 64.0),
            "{p}"
        );
        for i in 0..Histogram::index(u64::MAX) {
            assert!(Histogram::lower_bound(i) < Histogram::lower_bound(i + 1));
            assert_eq!(Histogram::index(Histogram::lower_bound(i)), i);
        }
    }

    #[test]
    fn isqrt_is_the_floor() {
        for a in [0u64, 1, 2, 3, 4, 15, 16, 17, 1 << 40, u64::MAX] {
            let r = isqrt(a);
            assert!(r.checked_mul(r).is_some_and(|sq| sq <= a), "{a}");
            assert!((r + 1).checked_mul(r + 1).is_none_or(|sq| sq > a), "{a}");
        }
    }
}
