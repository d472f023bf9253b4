//! Pool configuration: defaults chosen from the database-overload incident, and validation.

use std::time::Duration;

use crate::breaker::{BreakerConfig, MAX_DURATION, format_duration};
use crate::error::{ConfigError, FieldKind};

/// Most connections a pool may hold.
pub const MAX_POOL_SIZE: u32 = 10_000;
/// Most callers that may wait for a connection.
pub const MAX_WAITERS: u32 = 1_000_000;

/// Which idle connection a checkout gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleOrder {
    /// The most recently returned: keeps a warm working set and lets the rest time out.
    Lifo,
    /// The least recently returned: spreads use evenly over every connection.
    Fifo,
}

/// A validated pool configuration. Build one with [`PoolConfig::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub(crate) max_size: u32,
    pub(crate) min_idle: u32,
    pub(crate) max_waiters: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) create_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) lifetime_jitter: f64,
    pub(crate) validate_after: Option<Duration>,
    pub(crate) idle_order: IdleOrder,
    pub(crate) leak_threshold: Option<Duration>,
    pub(crate) create_backoff_base: Duration,
    pub(crate) create_backoff_cap: Duration,
    pub(crate) breaker: BreakerConfig,
    pub(crate) seed: Option<u64>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 10,
            min_idle: 0,
            max_waiters: 1_000,
            acquire_timeout: Duration::from_secs(5),
            create_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1_800)),
            lifetime_jitter: 0.1,
            validate_after: Some(Duration::from_millis(500)),
            idle_order: IdleOrder::Lifo,
            leak_threshold: None,
            create_backoff_base: Duration::from_millis(50),
            create_backoff_cap: Duration::from_secs(5),
            breaker: default_pool_breaker(),
            seed: None,
        }
    }
}

/// The breaker guarding connection attempts: five failed connects in a row open it for 5 s.
/// Connection attempts are few, so a failure-rate window would take too long to decide.
fn default_pool_breaker() -> BreakerConfig {
    BreakerConfig::builder()
        .count_window(10)
        .minimum_calls(5)
        .consecutive_failures(Some(5))
        .open_duration(Duration::from_secs(5))
        .half_open_calls(1)
        .max_half_open_duration(Some(Duration::from_secs(30)))
        .build()
        .unwrap_or_default()
}

impl PoolConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> PoolConfigBuilder {
        PoolConfigBuilder {
            config: PoolConfig::default(),
        }
    }

    /// Most connections, those being created included.
    pub fn max_size(&self) -> u32 {
        self.max_size
    }
    /// Idle connections kept warm.
    pub fn min_idle(&self) -> u32 {
        self.min_idle
    }
    /// Most callers waiting at once.
    pub fn max_waiters(&self) -> u32 {
        self.max_waiters
    }
    /// Longest an acquire waits.
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }
    /// Longest a connection attempt may take, handshake included.
    pub fn create_timeout(&self) -> Duration {
        self.create_timeout
    }
    /// Idle connections older than this are closed (down to `min_idle`).
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }
    /// Connections are replaced after about this long.
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }
    /// Fraction by which each connection's lifetime is shortened at random.
    pub fn lifetime_jitter(&self) -> f64 {
        self.lifetime_jitter
    }
    /// A connection idle for longer than this is validated before checkout.
    pub fn validate_after(&self) -> Option<Duration> {
        self.validate_after
    }
    /// Which idle connection a checkout gets.
    pub fn idle_order(&self) -> IdleOrder {
        self.idle_order
    }
    /// Checkouts held longer are reported as suspected leaks.
    pub fn leak_threshold(&self) -> Option<Duration> {
        self.leak_threshold
    }
    /// The breaker guarding connection attempts.
    pub fn breaker(&self) -> &BreakerConfig {
        &self.breaker
    }
    /// First wait after a failed connection attempt.
    pub fn create_backoff_base(&self) -> Duration {
        self.create_backoff_base
    }
    /// Longest wait between failed connection attempts.
    pub fn create_backoff_cap(&self) -> Duration {
        self.create_backoff_cap
    }
    /// Seed of the jitter generator, if fixed.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }
}

/// Builds a [`PoolConfig`]; [`build`](Self::build) validates every field.
#[derive(Debug, Clone)]
pub struct PoolConfigBuilder {
    config: PoolConfig,
}

impl PoolConfigBuilder {
    /// Most connections, those being created included, in [1, 10000]. Default 10.
    pub fn max_size(mut self, n: u32) -> Self {
        self.config.max_size = n;
        self
    }
    /// Idle connections kept warm, at most `max_size`. Default 0.
    pub fn min_idle(mut self, n: u32) -> Self {
        self.config.min_idle = n;
        self
    }
    /// Most callers waiting at once; beyond it `acquire` fails at once. Default 1000.
    pub fn max_waiters(mut self, n: u32) -> Self {
        self.config.max_waiters = n;
        self
    }
    /// Longest an acquire waits (further bounded by the caller's budget). Default 5 s.
    pub fn acquire_timeout(mut self, d: Duration) -> Self {
        self.config.acquire_timeout = d;
        self
    }
    /// Longest a connection attempt may take, handshake included. Default 5 s.
    pub fn create_timeout(mut self, d: Duration) -> Self {
        self.config.create_timeout = d;
        self
    }
    /// Idle connections older than this are closed, down to `min_idle`. Default 10 min.
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.idle_timeout = d;
        self
    }
    /// Connections are replaced after about this long. Default 30 min.
    pub fn max_lifetime(mut self, d: Option<Duration>) -> Self {
        self.config.max_lifetime = d;
        self
    }
    /// Fraction in [0, 1) by which each lifetime is shortened at random, so a fleet of pools
    /// does not reconnect at once. Default 0.1.
    pub fn lifetime_jitter(mut self, f: f64) -> Self {
        self.config.lifetime_jitter = f;
        self
    }
    /// Validate a connection on checkout only when it was idle longer than this; `None`
    /// never validates. Default 500 ms.
    pub fn validate_after(mut self, d: Option<Duration>) -> Self {
        self.config.validate_after = d;
        self
    }
    /// Which idle connection a checkout gets. Default LIFO.
    pub fn idle_order(mut self, o: IdleOrder) -> Self {
        self.config.idle_order = o;
        self
    }
    /// Report checkouts held longer than this. Default: off.
    pub fn leak_threshold(mut self, d: Option<Duration>) -> Self {
        self.config.leak_threshold = d;
        self
    }
    /// Back-off after failed connection attempts: from `base`, doubling, at most `cap`, with
    /// jitter. Default 50 ms to 5 s.
    pub fn create_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.create_backoff_base = base;
        self.config.create_backoff_cap = cap;
        self
    }
    /// The breaker guarding connection attempts.
    pub fn breaker(mut self, b: BreakerConfig) -> Self {
        self.config.breaker = b;
        self
    }
    /// Fixes the jitter generator's seed (tests, conformance vectors).
    pub fn seed(mut self, seed: Option<u64>) -> Self {
        self.config.seed = seed;
        self
    }

    /// Validates every field. `acquire_timeout` may not exceed `max_acquire_timeout` (pass the
    /// timeout policy's maximum).
    pub fn build(self) -> Result<PoolConfig, ConfigError> {
        self.build_under(crate::budget::TimeoutPolicy::global().max_timeout())
    }

    /// [`build`](Self::build) with an explicit ceiling for `acquire_timeout`.
    pub fn build_under(self, max_acquire_timeout: Duration) -> Result<PoolConfig, ConfigError> {
        let c = self.config;
        if !(1..=MAX_POOL_SIZE).contains(&c.max_size) {
            return Err(ConfigError::new(
                "max_size",
                FieldKind::Number,
                "an integer in [1, 10000]",
                c.max_size,
            ));
        }
        if c.min_idle > c.max_size {
            return Err(ConfigError::new(
                "min_idle",
                FieldKind::Number,
                "an integer between 0 and max_size",
                c.min_idle,
            ));
        }
        if c.max_waiters > MAX_WAITERS {
            return Err(ConfigError::new(
                "max_waiters",
                FieldKind::Number,
                "an integer in [0, 1000000]",
                c.max_waiters,
            ));
        }
        if c.acquire_timeout < Duration::from_millis(1) || c.acquire_timeout > max_acquire_timeout {
            return Err(ConfigError::new(
                "acquire_timeout",
                FieldKind::Duration,
                "a duration between 1 ms and the timeout policy's maximum",
                format_duration(c.acquire_timeout),
            ));
        }
        check_duration("create_timeout", c.create_timeout)?;
        if let Some(d) = c.idle_timeout {
            check_duration("idle_timeout", d)?;
        }
        if let Some(d) = c.max_lifetime {
            check_duration("max_lifetime", d)?;
        }
        if !(0.0..1.0).contains(&c.lifetime_jitter) {
            return Err(ConfigError::new(
                "lifetime_jitter",
                FieldKind::Number,
                "a fraction in [0, 1)",
                c.lifetime_jitter,
            ));
        }
        if let Some(d) = c.validate_after
            && d > MAX_DURATION
        {
            return Err(ConfigError::new(
                "validate_after",
                FieldKind::Duration,
                "a duration between 0 and 24 h",
                format_duration(d),
            ));
        }
        if let Some(d) = c.leak_threshold {
            check_duration("leak_threshold", d)?;
        }
        check_duration("create_backoff.base", c.create_backoff_base)?;
        check_duration("create_backoff.cap", c.create_backoff_cap)?;
        if c.create_backoff_cap < c.create_backoff_base {
            return Err(ConfigError::new(
                "create_backoff.cap",
                FieldKind::Duration,
                "at least create_backoff.base",
                format_duration(c.create_backoff_cap),
            ));
        }
        Ok(c)
    }
}

fn check_duration(field: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d < Duration::from_millis(1) || d > MAX_DURATION {
        return Err(ConfigError::new(
            field,
            FieldKind::Duration,
            "a duration between 1 ms and 24 h",
            format_duration(d),
        ));
    }
    Ok(())
}
