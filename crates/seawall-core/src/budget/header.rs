//! Carrying a deadline across services: `grpc-timeout` and plain-milliseconds header values.
//!
//! gRPC's wire format is 1 to 8 ASCII digits and a unit: `H` hours, `M` minutes, `S` seconds,
//! `m` milliseconds, `u` microseconds, `n` nanoseconds. Decoding is strict (a garbled deadline
//! must not silently become "no deadline"); clamping to the policy maximum happens in
//! [`Budget::with_remaining`](super::Budget::with_remaining).

use std::time::Duration;

/// A header value that is not a timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {header} header value {value:?}: {reason}")]
pub struct HeaderError {
    /// Which format was expected (`grpc-timeout` or `timeout-ms`).
    pub header: &'static str,
    /// The value received (truncated to 64 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn header_error(header: &'static str, value: &str, reason: &'static str) -> HeaderError {
    HeaderError {
        header,
        value: value.chars().take(64).collect(),
        reason,
    }
}

/// Nanoseconds per gRPC unit, finest first.
const GRPC_UNITS: [(char, u64); 6] = [
    ('n', 1),
    ('u', 1_000),
    ('m', 1_000_000),
    ('S', 1_000_000_000),
    ('M', 60_000_000_000),
    ('H', 3_600_000_000_000),
];

/// The largest value gRPC allows: eight digits.
const GRPC_MAX_VALUE: u64 = 99_999_999;

/// Encodes `d` in the finest unit whose value fits in eight digits, rounding down.
pub fn encode_grpc_timeout(d: Duration) -> String {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    for (unit, per) in GRPC_UNITS {
        let value = nanos / per;
        if value <= GRPC_MAX_VALUE {
            return format!("{value}{unit}");
        }
    }
    format!("{GRPC_MAX_VALUE}H")
}

/// Decodes a `grpc-timeout` value (surrounding spaces allowed, as HTTP header values may carry).
pub fn decode_grpc_timeout(value: &str) -> Result<Duration, HeaderError> {
    const H: &str = "grpc-timeout";
    let v = value.trim_matches([' ', '\t']);
    let Some(unit) = v.chars().last() else {
        return Err(header_error(H, value, "it is empty"));
    };
    let Some(&(_, per)) = GRPC_UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(header_error(
            H,
            value,
            "it must end with a unit: H, M, S, m, u or n",
        ));
    };
    let digits = &v[..v.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(header_error(
            H,
            value,
            "it must be 1 to 8 digits and a unit",
        ));
    }
    if digits.len() > 8 {
        return Err(header_error(H, value, "it has more than 8 digits"));
    }
    // Eight digits times the largest unit fit easily in u64 nanoseconds? 99999999 H is about
    // 3.6e20 ns, which does not; saturate, the policy caps it anyway.
    let n: u64 = digits
        .parse()
        .map_err(|_| header_error(H, value, "it must be 1 to 8 digits and a unit"))?;
    Ok(Duration::from_nanos(n.saturating_mul(per)))
}

/// Decodes a milliseconds header value: a non-negative integer, at most 15 digits.
pub fn decode_timeout_ms(value: &str) -> Result<Duration, HeaderError> {
    const H: &str = "timeout-ms";
    let v = value.trim_matches([' ', '\t']);
    if v.is_empty() {
        return Err(header_error(H, value, "it is empty"));
    }
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(header_error(
            H,
            value,
            "it must be a whole number of milliseconds",
        ));
    }
    if v.len() > 15 {
        return Err(header_error(H, value, "it has more than 15 digits"));
    }
    let ms: u64 = v
        .parse()
        .map_err(|_| header_error(H, value, "it must be a whole number of milliseconds"))?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_the_finest_unit_that_fits() {
        assert_eq!(encode_grpc_timeout(Duration::ZERO), "0n");
        assert_eq!(
            encode_grpc_timeout(Duration::from_nanos(99_999_999)),
            "99999999n"
        );
        assert_eq!(encode_grpc_timeout(Duration::from_millis(100)), "100000u");
        assert_eq!(
            encode_grpc_timeout(Duration::from_millis(1_500)),
            "1500000u"
        );
        assert_eq!(encode_grpc_timeout(Duration::from_secs(15)), "15000000u");
        assert_eq!(encode_grpc_timeout(Duration::from_secs(150)), "150000m");
        assert_eq!(encode_grpc_timeout(Duration::from_secs(200_000)), "200000S");
        // Rounds down: the callee must not think it has more time than we do.
        assert_eq!(
            encode_grpc_timeout(Duration::from_nanos(100_000_999)),
            "100000u"
        );
    }

    #[test]
    fn decodes_every_unit_and_rejects_garbage() {
        let ok = |v: &str| decode_grpc_timeout(v).unwrap();
        assert_eq!(ok("100m"), Duration::from_millis(100));
        assert_eq!(ok("2S"), Duration::from_secs(2));
        assert_eq!(ok("1M"), Duration::from_secs(60));
        assert_eq!(ok("1H"), Duration::from_secs(3600));
        assert_eq!(ok("5u"), Duration::from_micros(5));
        assert_eq!(ok(" 7n "), Duration::from_nanos(7));
        for bad in [
            "",
            "m",
            "10",
            "10x",
            "-5m",
            "1.5S",
            "123456789m",
            "1 m",
            "１m",
        ] {
            let e = decode_grpc_timeout(bad).unwrap_err();
            assert!(
                e.to_string().starts_with("invalid grpc-timeout"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn round_trips() {
        for ms in [0u64, 1, 999, 1_000, 15_000, 86_400_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(decode_grpc_timeout(&encode_grpc_timeout(d)).unwrap(), d);
        }
    }

    #[test]
    fn milliseconds() {
        assert_eq!(
            decode_timeout_ms("250").unwrap(),
            Duration::from_millis(250)
        );
        for bad in ["", "-1", "1.5", "12ms", "1e3", "9999999999999999"] {
            assert!(decode_timeout_ms(bad).is_err(), "{bad}");
        }
    }
}
