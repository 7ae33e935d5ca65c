//! Value parsers shared by the commands: numbers with ranges, hex, durations. Each error is the
//! part after `invalid value 'X' for '-t <TTL>': ` in clap's one-line message, so it reads
//! `rawkit: invalid value '300' for '-t <TTL>': out of range: 1 <= value <= 255`.

use std::time::Duration;

/// An integer in `min..=max`.
pub fn int_in<T>(s: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("not a whole number (expected {min} to {max})"))?;
    let lo: i128 = min.to_string().parse().unwrap_or(i128::MIN);
    let hi: i128 = max.to_string().parse().unwrap_or(i128::MAX);
    if v < lo || v > hi {
        return Err(format!("out of range: {min} <= value <= {max}"));
    }
    s.trim()
        .parse()
        .map_err(|_| format!("out of range: {min} <= value <= {max}"))
}

/// Seconds as a decimal fraction (`0.2`, `1`, `1.5`), at least 0 and at most `max_secs`.
pub fn seconds(s: &str, max_secs: f64) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds (e.g. 0.2)".to_string())?;
    if !v.is_finite() || v < 0.0 {
        return Err("must be 0 or more seconds".into());
    }
    if v > max_secs {
        return Err(format!("must be at most {max_secs} seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// A byte value written in decimal or as `0x..` hex.
pub fn byte_dec_or_hex(s: &str) -> Result<u8, String> {
    let t = s.trim();
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).map_err(|_| "not a hex number".to_string())?
    } else {
        t.parse::<u32>()
            .map_err(|_| "not a number (decimal, or hex with 0x)".to_string())?
    };
    u8::try_from(v).map_err(|_| "out of range: 0 <= value <= 255".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_garbage() {
        assert_eq!(int_in::<u8>("64", 1, 255), Ok(64));
        assert_eq!(
            int_in::<u8>("300", 1, 255),
            Err("out of range: 1 <= value <= 255".into())
        );
        assert_eq!(
            int_in::<u8>("0", 1, 255),
            Err("out of range: 1 <= value <= 255".into())
        );
        assert!(int_in::<u64>("-1", 1, u64::MAX).is_err());
        assert!(
            int_in::<u64>("abc", 1, 10)
                .unwrap_err()
                .contains("whole number")
        );
        assert_eq!(seconds("0.2", 10.0), Ok(Duration::from_millis(200)));
        assert!(seconds("-1", 10.0).is_err());
        assert!(seconds("nan", 10.0).is_err());
        assert_eq!(byte_dec_or_hex("0xb8"), Ok(0xb8));
        assert_eq!(byte_dec_or_hex("184"), Ok(184));
        assert!(byte_dec_or_hex("256").is_err());
    }
}
