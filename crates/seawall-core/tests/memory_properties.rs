//! Property tests of the watchdog policy: a steady leak is always seen at the warn level before
//! the act level and acted on before the limit, and the policy's memory stays bounded.

use std::time::Duration;

use proptest::prelude::*;
use seawall_core::Timestamp;
use seawall_core::memory::{
    Level, MAX_TREND_SAMPLES, MemorySample, WatchdogAction, WatchdogConfig, WatchdogCore,
};

fn sample(usage: f64, limit: u64) -> MemorySample {
    MemorySample {
        usage_bytes: usage as u64,
        limit_bytes: limit,
        heap_used_bytes: None,
        heap_limit_bytes: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// An adapter that sleeps exactly `next_sample_in` between samples, watching a leak of
    /// constant rate that starts before its second sample: the first sample at the act level
    /// comes after one at the warn level, and below the limit. (The rate is bounded so the leak
    /// does not cross the warn-to-act band within the 1 s floor of the interval.)
    #[test]
    fn a_steady_leak_is_warned_then_acted_on_before_the_limit(
        start_percent in 0.0f64..60.0,
        // Up to 9 % of the limit per second: 540 %/min.
        rate_per_mille_per_second in 1u64..90,
        first_gap_ms in 1_000u64..300_000,
    ) {
        let limit: u64 = 1 << 30;
        let rate = limit as f64 * rate_per_mille_per_second as f64 / 1000.0; // bytes per second
        let mut core = WatchdogCore::new(WatchdogConfig::builder().build().expect("defaults"));
        let mut t_ms = 0u64;
        let start = limit as f64 * start_percent / 100.0;
        core.observe(Timestamp::ZERO, sample(start, limit));
        // The leak runs from the first sample on; the second sample comes after `first_gap_ms`
        // (or earlier if the leak would already pass the warn level).
        let to_warn_ms = ((limit as f64 * 0.7 - start) / rate * 1000.0).max(0.0) as u64;
        t_ms += first_gap_ms.min(to_warn_ms.saturating_sub(1)).max(1);
        let mut warned = false;
        loop {
            let usage = start + rate * t_ms as f64 / 1000.0;
            let a = core.observe(Timestamp::from_millis(t_ms), sample(usage, limit));
            if a.level == Level::Act {
                prop_assert!(warned, "acted at {:.1} % without a warn-level sample first", a.percent);
                prop_assert!(a.percent < 100.0, "first act-level sample only at {:.1} %", a.percent);
                let restarts = a
                    .actions
                    .iter()
                    .any(|x| matches!(x, WatchdogAction::Restart { .. }));
                prop_assert!(restarts, "acting asks for the restart");
                break;
            }
            warned |= a.level == Level::Warn;
            let step = u64::try_from(a.next_sample_in.as_millis()).expect("small");
            prop_assert!(step > 0);
            t_ms += step;
            prop_assert!(t_ms < 86_400_000, "never reached the act level");
        }
    }

    /// However many samples arrive, the policy keeps at most `MAX_TREND_SAMPLES`.
    #[test]
    fn samples_kept_stay_bounded(n in 1usize..3_000, gap_ms in 1u64..100) {
        let config = WatchdogConfig::builder()
            .trend_window(Duration::from_secs(86_400))
            .build()
            .expect("valid");
        let mut core = WatchdogCore::new(config);
        for i in 0..n as u64 {
            core.observe(Timestamp::from_millis(i * gap_ms), sample(1.0, 1_000));
        }
        prop_assert!(core.samples_kept() <= MAX_TREND_SAMPLES as usize);
    }
}
