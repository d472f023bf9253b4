//! Deadline budgets and the timeout policy, for the facade's `Budget` and `TimeoutPolicy`.
//!
//! A core `Budget` is plain data (a deadline and a `TimeoutPolicy`), so the facade keeps it as
//! numbers and nothing here holds state: the deadline as nanoseconds on the budget's clock, and
//! the policy as the three values the core validated (`maxTimeoutNs`, `scale`, `minToStartNs`;
//! whole nanoseconds, exact in a double up to 104 days). Each function rebuilds the core values
//! from those numbers, asks the core, and returns a number or a string; that keeps every call a
//! module function taking numbers (see `slots.rs` for why that matters).
//!
//! A budget is rebuilt as `Budget::with_remaining(deadline, 0, policy)`, which the core defines
//! as ending at exactly `deadline`.
//!
//! `check` and `timeoutFor` return a time in milliseconds (≥ 0) or, when the core refuses to
//! start a call (`BudgetExhausted`), `-(1 + remainingMs)`: a decision, not an exception, so the
//! facade can reject a hot call without a native exception or a second call.

use std::time::Duration;

use napi::Env;
use napi::bindgen_prelude::Unknown;
use napi_derive::napi;
use seawall_core::breaker::duration_from_millis;
use seawall_core::budget::timeout_from_millis;
use seawall_core::{Budget, BudgetExhausted, TimeoutPolicy, Timestamp};

use crate::error;
use crate::options::{Options, millis, timestamp};

/// A validated policy as the facade stores it.
#[napi(object)]
pub struct NativePolicy {
    /// The longest timeout allowed, in whole nanoseconds.
    pub max_timeout_ns: f64,
    /// The factor applied to every configured timeout.
    pub scale: f64,
    /// The least time left for which a call is started, in whole nanoseconds.
    pub min_to_start_ns: f64,
}

impl From<TimeoutPolicy> for NativePolicy {
    fn from(p: TimeoutPolicy) -> Self {
        NativePolicy {
            max_timeout_ns: nanos(p.max_timeout()),
            scale: p.scale(),
            min_to_start_ns: nanos(p.min_to_start()),
        }
    }
}

fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// Whole nanoseconds the facade got from this module; anything else is a facade bug.
fn from_nanos(env: &Env, what: &str, ns: f64) -> napi::Result<u64> {
    if ns.is_finite() && ns >= 0.0 {
        // Exact below 2^53; beyond, the double was already the nearest value to the integer.
        Ok(ns.round() as u64)
    } else {
        Err(error::internal_argument_error(
            env,
            &format!("{what} must be a non-negative number of nanoseconds"),
        ))
    }
}

/// The policy the facade stored, rebuilt (and re-validated) by the core.
pub fn policy(env: &Env, max_ns: f64, scale: f64, min_ns: f64) -> napi::Result<TimeoutPolicy> {
    let max = Duration::from_nanos(from_nanos(env, "maxTimeoutNs", max_ns)?);
    let min = Duration::from_nanos(from_nanos(env, "minToStartNs", min_ns)?);
    TimeoutPolicy::new(max, scale, min).map_err(|e| error::config_error(env, &e))
}

/// The budget the facade stored, ending at exactly `deadline_ns`.
pub fn budget(
    env: &Env,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
) -> napi::Result<Budget> {
    let deadline = Timestamp::from_nanos(from_nanos(env, "deadlineNs", deadline_ns)?);
    Ok(Budget::with_remaining(
        deadline,
        Duration::ZERO,
        policy(env, max_ns, scale, min_ns)?,
    ))
}

/// `budget` as seen from another clock: the same time left at `to` as at `from`.
pub fn moved(b: &Budget, from: Timestamp, to: Timestamp) -> Budget {
    let left = b.remaining(from);
    let deadline = if left.is_zero() {
        // Already over: keep how far over, so that nothing changes but the clock.
        let over = from.saturating_duration_since(b.deadline());
        Timestamp::from_nanos(to.as_nanos().saturating_sub(saturating_nanos(over)))
    } else {
        to.saturating_add(left)
    };
    Budget::with_remaining(deadline, Duration::ZERO, b.policy())
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A per-call cap given as a method argument (`capMs`), through the core's converter.
pub fn cap(env: &Env, field: &'static str, cap_ms: Option<f64>) -> napi::Result<Option<Duration>> {
    cap_ms
        .map(|ms| timeout_from_millis(field, ms))
        .transpose()
        .map_err(|e| error::argument_error(env, &e))
}

/// A time left, or the encoding of the core's refusal to start a call.
pub fn time_or_exhausted(r: Result<Duration, BudgetExhausted>) -> f64 {
    match r {
        Ok(d) => millis(d),
        Err(e) => -1.0 - millis(e.remaining),
    }
}

/// Builds a policy from the options object of `new TimeoutPolicy(options)`; absent options
/// take the core's defaults (15 s, 1, 10 ms).
#[napi(catch_unwind)]
pub fn policy_new(env: Env, options: Unknown<'_>) -> napi::Result<NativePolicy> {
    let o = Options::root(&env, options, "options", "")?;
    let cfg = |e| error::config_error(&env, &e);
    let default = TimeoutPolicy::DEFAULT;
    let max = match o.number("maxTimeoutMs")? {
        Some(ms) => duration_from_millis("max_timeout", ms).map_err(cfg)?,
        None => default.max_timeout(),
    };
    let scale = o.number("scale")?.unwrap_or(default.scale());
    let min = match o.number("minToStartMs")? {
        Some(ms) => timeout_from_millis("min_to_start", ms).map_err(cfg)?,
        None => default.min_to_start(),
    };
    TimeoutPolicy::new(max, scale, min)
        .map(NativePolicy::from)
        .map_err(cfg)
}

/// The process-wide policy (the core's, shared with any Rust code in this process).
#[napi(catch_unwind)]
pub fn policy_global() -> NativePolicy {
    TimeoutPolicy::global().into()
}

/// Replaces the process-wide policy.
#[napi(catch_unwind)]
pub fn policy_set_global(env: Env, max_ns: f64, scale: f64, min_ns: f64) -> napi::Result<()> {
    TimeoutPolicy::set_global(policy(&env, max_ns, scale, min_ns)?);
    Ok(())
}

/// Checks a timeout option (`attemptTimeoutMs`, `timeoutMs`) when it is given, so that a bad one
/// fails where it was written rather than at the first call.
#[napi(catch_unwind)]
pub fn check_timeout_option(env: Env, field: String, ms: f64) -> napi::Result<()> {
    let field = match field.as_str() {
        "attemptTimeoutMs" => "attempt_timeout",
        "timeoutMs" => "timeout",
        _ => {
            return Err(error::internal_argument_error(
                &env,
                "unknown timeout option",
            ));
        }
    };
    timeout_from_millis(field, ms)
        .map(drop)
        .map_err(|e| error::config_error(&env, &e))
}

/// The deadline, in nanoseconds, of a budget of `timeoutMs` from `nowMs` under the policy.
#[napi(catch_unwind)]
pub fn budget_new(
    env: Env,
    now_ms: f64,
    timeout_ms: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
) -> napi::Result<f64> {
    let timeout =
        timeout_from_millis("timeout", timeout_ms).map_err(|e| error::config_error(&env, &e))?;
    let policy = policy(&env, max_ns, scale, min_ns)?;
    let now = timestamp(&env, now_ms)?;
    Ok(Budget::new(now, timeout, policy).deadline().as_nanos() as f64)
}

/// Milliseconds left at `nowMs`.
#[napi(catch_unwind)]
pub fn budget_remaining(
    env: Env,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
    now_ms: f64,
) -> napi::Result<f64> {
    let b = budget(&env, deadline_ns, max_ns, scale, min_ns)?;
    Ok(millis(b.remaining(timestamp(&env, now_ms)?)))
}

/// Whether the deadline has passed at `nowMs`.
#[napi(catch_unwind)]
pub fn budget_is_expired(
    env: Env,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
    now_ms: f64,
) -> napi::Result<bool> {
    let b = budget(&env, deadline_ns, max_ns, scale, min_ns)?;
    Ok(b.is_expired(timestamp(&env, now_ms)?))
}

/// The deadline, in nanoseconds, of `budget.child(capMs)` at `nowMs`.
#[napi(catch_unwind)]
pub fn budget_child(
    env: Env,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
    now_ms: f64,
    cap_ms: f64,
) -> napi::Result<f64> {
    let b = budget(&env, deadline_ns, max_ns, scale, min_ns)?;
    let cap = timeout_from_millis("cap", cap_ms).map_err(|e| error::argument_error(&env, &e))?;
    let now = timestamp(&env, now_ms)?;
    Ok(b.child(now, cap).deadline().as_nanos() as f64)
}

/// The time left at `nowMs` if a call may start, else `-(1 + remainingMs)`.
#[napi(catch_unwind)]
pub fn budget_check(
    env: Env,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
    now_ms: f64,
) -> napi::Result<f64> {
    let b = budget(&env, deadline_ns, max_ns, scale, min_ns)?;
    Ok(time_or_exhausted(b.check(timestamp(&env, now_ms)?)))
}

/// The timeout for one call at `nowMs` (`capMs` optional), else `-(1 + remainingMs)`.
#[napi(catch_unwind)]
pub fn budget_timeout_for(
    env: Env,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
    now_ms: f64,
    cap_ms: Option<f64>,
) -> napi::Result<f64> {
    let b = budget(&env, deadline_ns, max_ns, scale, min_ns)?;
    let cap = cap(&env, "cap", cap_ms)?;
    Ok(time_or_exhausted(
        b.timeout_for(timestamp(&env, now_ms)?, cap),
    ))
}

/// Header formats, as the facade numbers them.
const GRPC_TIMEOUT: u32 = 0;
const TIMEOUT_MS: u32 = 1;

/// The time left at `nowMs` as a header value: format 0 `grpc-timeout`, 1 milliseconds.
#[napi(catch_unwind)]
pub fn budget_to_header(
    env: Env,
    deadline_ns: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
    now_ms: f64,
    format: u32,
) -> napi::Result<String> {
    let b = budget(&env, deadline_ns, max_ns, scale, min_ns)?;
    let now = timestamp(&env, now_ms)?;
    match format {
        GRPC_TIMEOUT => Ok(b.to_grpc_timeout(now)),
        TIMEOUT_MS => Ok(b.to_timeout_ms(now)),
        _ => Err(error::internal_argument_error(
            &env,
            "unknown header format",
        )),
    }
}

/// The deadline, in nanoseconds, of a budget decoded at `nowMs` from a received header value
/// (format as in `budgetToHeader`), capped by the policy. Garbage throws
/// `SEAWALL_INVALID_HEADER`.
#[napi(catch_unwind)]
pub fn budget_from_header(
    env: Env,
    value: String,
    format: u32,
    now_ms: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
) -> napi::Result<f64> {
    let policy = policy(&env, max_ns, scale, min_ns)?;
    let now = timestamp(&env, now_ms)?;
    let decoded = match format {
        GRPC_TIMEOUT => Budget::from_grpc_timeout(&value, now, policy),
        TIMEOUT_MS => Budget::from_timeout_ms(&value, now, policy),
        _ => {
            return Err(error::internal_argument_error(
                &env,
                "unknown header format",
            ));
        }
    };
    decoded
        .map(|b| b.deadline().as_nanos() as f64)
        .map_err(|e| error::header_error(&env, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_encoded_below_zero_and_decodes_back() {
        let ok = time_or_exhausted(Ok(Duration::from_micros(1500)));
        assert_eq!(ok, 1.5);
        let refused = time_or_exhausted(Err(BudgetExhausted {
            remaining: Duration::from_millis(4),
            min_to_start: Duration::from_millis(10),
        }));
        assert_eq!(-refused - 1.0, 4.0);
        // Zero left is still below zero.
        let zero = time_or_exhausted(Err(BudgetExhausted {
            remaining: Duration::ZERO,
            min_to_start: Duration::ZERO,
        }));
        assert_eq!(zero, -1.0);
    }
}

/// How far after `now` the deadline of `Budget::new(now, timeoutMs, policy)` is, in whole
/// nanoseconds: the core's `policy.apply(timeout)`, which depends on nothing else. The facade
/// keeps the answer per policy and timeout, and adds it to its clock reading (rounded to the
/// nanosecond, as the core does) instead of asking again for every budget.
#[napi(catch_unwind)]
pub fn budget_offset(
    env: Env,
    timeout_ms: f64,
    max_ns: f64,
    scale: f64,
    min_ns: f64,
) -> napi::Result<f64> {
    let timeout =
        timeout_from_millis("timeout", timeout_ms).map_err(|e| error::config_error(&env, &e))?;
    let policy = policy(&env, max_ns, scale, min_ns)?;
    Ok(Budget::new(Timestamp::ZERO, timeout, policy)
        .deadline()
        .as_nanos() as f64)
}

/// The core's rule for starting a call under a budget of this policy, as one number: a call
/// is started at `now` exactly when `now <= deadline - margin`, and is then given
/// `min(deadline - now, maxTimeout)` (no per-call cap). The margin is the core's
/// `TimeoutPolicy::least_to_start`, the threshold its own `check` uses; the facade replays the
/// rule in `run()` instead of asking `timeoutFor` for every call. -1 (always ask the core) if
/// the margin does not fit a JavaScript number exactly.
#[napi(catch_unwind)]
pub fn budget_start_margin(env: Env, max_ns: f64, scale: f64, min_ns: f64) -> napi::Result<f64> {
    let policy = policy(&env, max_ns, scale, min_ns)?;
    Ok(start_margin(policy).map_or(-1.0, |m| m as f64))
}

/// See [`budget_start_margin`].
fn start_margin(policy: TimeoutPolicy) -> Option<u64> {
    u64::try_from(policy.least_to_start().as_nanos())
        .ok()
        .filter(|&m| m < MAX_SAFE_INTEGER_U64)
}

/// 2^53: below it every integer is exactly a JavaScript number.
const MAX_SAFE_INTEGER_U64: u64 = 1 << 53;

#[cfg(test)]
mod start_margin_tests {
    use super::*;

    /// The facade's replay of [`start_margin`] gives the core's answer at every instant probed.
    #[test]
    fn the_start_margin_replays_the_core() {
        let policies = [
            TimeoutPolicy::DEFAULT,
            TimeoutPolicy::new(Duration::from_millis(1), 1.0, Duration::ZERO).unwrap(),
            TimeoutPolicy::new(Duration::from_secs(30), 0.5, Duration::from_millis(30)).unwrap(),
        ];
        for policy in policies {
            let margin = start_margin(policy).expect("the margin fits a JavaScript number");
            let max = policy.max_timeout().as_nanos() as u64;
            let deadline = 5_000_000_000_u64;
            let b = Budget::with_remaining(Timestamp::from_nanos(deadline), Duration::ZERO, policy);
            let mut now = 0;
            while now < deadline + 50_000_000 {
                let replayed = (now + margin <= deadline)
                    .then(|| Duration::from_nanos((deadline - now).min(max)));
                assert_eq!(
                    b.timeout_for(Timestamp::from_nanos(now), None).ok(),
                    replayed,
                    "at {now}"
                );
                now += 999_983;
            }
        }
    }
}
