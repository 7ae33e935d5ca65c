//! Round-trip statistics in iputils ping's arithmetic.
//!
//! Times are whole microseconds, as iputils keeps them, so that `rtt min/avg/max/mdev` comes out
//! digit for digit the same: the sums are kept as `f64`, the average and the variance are
//! truncated to integers, and mdev is the integer square root of the variance (iputils
//! `llsqrt`). The EWMA is iputils' fixed point `rtt*8` with a gain of 1/8.

/// Running RTT statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RttStats {
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
    pub const fn new() -> Self {
        RttStats {
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
    fn isqrt_is_the_floor() {
        for a in [0u64, 1, 2, 3, 4, 15, 16, 17, 1 << 40, u64::MAX] {
            let r = isqrt(a);
            assert!(r.checked_mul(r).is_some_and(|sq| sq <= a), "{a}");
            assert!((r + 1).checked_mul(r + 1).is_none_or(|sq| sq > a), "{a}");
        }
    }
}
