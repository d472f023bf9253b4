//! Property tests: whatever the policy, timeouts, caps, nesting and headers, no timeout derived
//! from a budget exceeds the policy maximum, and a child never outlives its parent.

use std::time::Duration;

use proptest::prelude::*;
use seawall_core::budget::encode_grpc_timeout;
use seawall_core::{Budget, TimeoutPolicy, Timestamp};

fn policy() -> impl Strategy<Value = TimeoutPolicy> {
    (1u64..60_000, 1u32..=100, 0u64..1_000).prop_map(|(max_ms, scale_pct, min_ms)| {
        TimeoutPolicy::new(
            Duration::from_millis(max_ms),
            f64::from(scale_pct) / 100.0,
            Duration::from_millis(min_ms.min(max_ms)),
        )
        .expect("generated policies are valid")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn no_timeout_exceeds_the_policy_maximum(
        p in policy(),
        start in 0u64..1_000_000,
        timeout_ms in 0u64..86_400_000,
        caps in prop::collection::vec((0u64..86_400_000, 0u64..5_000), 1..6),
        header_ms in 0u64..86_400_000,
    ) {
        let max = p.max_timeout();
        let mut now = Timestamp::from_millis(start);
        let root = Budget::new(now, Duration::from_millis(timeout_ms), p);
        prop_assert!(root.remaining(now) <= max);
        let mut b = root;
        for (cap, step) in caps {
            now = Timestamp::from_millis(now.as_nanos() / 1_000_000 + step);
            let child = b.child(now, Duration::from_millis(cap));
            prop_assert!(child.deadline() <= b.deadline(), "a child outlives its parent");
            prop_assert!(child.remaining(now) <= max);
            if let Ok(t) = child.timeout_for(now, Some(Duration::from_millis(cap))) {
                prop_assert!(t <= max && t <= child.remaining(now));
                // A call is only started with at least the policy's minimum left.
                prop_assert!(child.remaining(now) >= p.min_to_start());
            }
            if let Ok(t) = child.timeout_for(now, None) {
                prop_assert!(t <= max);
            }
            b = child;
        }
        // A deadline received from upstream is capped too, whatever it says.
        let header = encode_grpc_timeout(Duration::from_millis(header_ms));
        let received = Budget::from_grpc_timeout(&header, now, p).expect("our own encoding decodes");
        prop_assert!(received.remaining(now) <= max);
        let received = Budget::from_timeout_ms(&header_ms.to_string(), now, p).expect("decodes");
        prop_assert!(received.remaining(now) <= max);
    }
}
