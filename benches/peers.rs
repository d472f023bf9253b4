//! Seawall against its Rust peers, one scenario per criterion group (ids from benches/README.md):
//! `breaker_closed`, `breaker_open`, `breaker_10pct`, `pool_single`, `pool_contended`, `deadline`.
//! Every group also benches the plain call (no wrapper) as the baseline.
//!
//! Before the timed runs, and again after them, a verification pass checks that each library
//! really did what the scenario says (every call passed, every call rejected while open, the
//! breaker stayed closed at 10 % failures, the pool limit held); a violation panics. The checks
//! are written to `target/bench-results/rust-checks.json` for `benches/report.rs`.
//!
//! Run with `cargo bench --bench peers` (see benches/report.rs for the whole sequence).
//!
//! Configuration: every library is used with its defaults except what the scenario fixes (pool
//! size 8, a long open duration so an open breaker stays open for the whole run, and a 10 s time
//! window for the time-window breakers). bb8 keeps its default `test_on_check_out = true` and
//! deadpool calls `recycle` on each checkout, as their users get them; Seawall validates only
//! connections idle longer than its default `validate_after` (500 ms).

use std::convert::Infallible;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use parking_lot::Mutex;
use seawall::pool::PoolConfig;
use seawall::{BreakerConfig, Budget, CallError, CircuitBreaker};
use serde_json::{Value, json};

// ---------------------------------------------------------------- checks

static CHECKS: Mutex<Vec<Value>> = Mutex::new(Vec::new());

/// Records a check; panics (failing the bench run loudly) when it does not hold.
fn check(scenario: &str, what: &str, ok: bool, detail: String) {
    assert!(ok, "CHECK FAILED [{scenario}] {what}: {detail}");
    let mut checks = CHECKS.lock();
    // Verification runs before and after the timed loop: keep one entry per (scenario, what).
    if !checks
        .iter()
        .any(|c| c["scenario"] == scenario && c["what"] == what)
    {
        checks.push(json!({ "scenario": scenario, "what": what, "ok": ok, "detail": detail }));
    }
}

fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-results")
}

// ---------------------------------------------------------------- the operation

/// The wrapped operation: succeeds at once.
#[inline(never)]
fn op_ok() -> Result<u64, u64> {
    Ok(black_box(1))
}

/// Fails on every tenth call.
#[inline(never)]
fn op_10pct(i: u64) -> Result<u64, u64> {
    if black_box(i).is_multiple_of(10) {
        Err(i)
    } else {
        Ok(i)
    }
}

const LONG: Duration = Duration::from_secs(3_600);

// ---------------------------------------------------------------- breakers

fn seawall_count() -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig::builder().build().expect("defaults"))
}

fn seawall_time() -> CircuitBreaker {
    CircuitBreaker::new(
        BreakerConfig::builder()
            .time_window(Duration::from_secs(10), 10)
            .build()
            .expect("valid"),
    )
}

fn recloser_default() -> recloser::Recloser {
    recloser::Recloser::custom().build()
}

fn failsafe_default() -> impl failsafe::CircuitBreaker {
    failsafe::Config::new().build()
}

fn failsafe_success_rate() -> impl failsafe::CircuitBreaker {
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::success_rate_over_time_window(
            0.5,
            20,
            Duration::from_secs(10),
            failsafe::backoff::constant(Duration::from_secs(30)),
        ))
        .build()
}

/// One call through each breaker, returning whether the op ran and passed.
fn sw_call(b: &CircuitBreaker, f: impl FnOnce() -> Result<u64, u64>) -> Result<u64, Option<u64>> {
    b.call_sync(f).map_err(|e| match e {
        CallError::Rejected(_) => None,
        CallError::Inner(e) => Some(e),
    })
}
fn rc_call(
    b: &recloser::Recloser,
    f: impl FnOnce() -> Result<u64, u64>,
) -> Result<u64, Option<u64>> {
    b.call(f).map_err(|e| match e {
        recloser::Error::Rejected => None,
        recloser::Error::Inner(e) => Some(e),
    })
}
fn fs_call(
    b: &impl failsafe::CircuitBreaker,
    f: impl FnOnce() -> Result<u64, u64>,
) -> Result<u64, Option<u64>> {
    b.call(f).map_err(|e| match e {
        failsafe::Error::Rejected => None,
        failsafe::Error::Inner(e) => Some(e),
    })
}

const VERIFY_CALLS: u64 = 10_000;

fn verify_all_pass(scenario: &str, name: &str, mut call: impl FnMut() -> Result<u64, Option<u64>>) {
    let passed = (0..VERIFY_CALLS).filter(|_| call() == Ok(1)).count() as u64;
    check(
        scenario,
        &format!("{name}: every call passed"),
        passed == VERIFY_CALLS,
        format!("{passed}/{VERIFY_CALLS} passed"),
    );
}

/// Each group runs all its benches (the plain call, Seawall, the peers) once per round, round
/// after round, so the libraries are interleaved in time; `benches/report.rs` takes the median
/// of the rounds' medians. Keep in step with `ROUNDS` there.
const ROUNDS: usize = 5;

/// The id of `name` in `round`: criterion stores it as `<group>/<name>/r<round>`.
fn id(name: &str, round: usize) -> BenchmarkId {
    BenchmarkId::new(name, format!("r{round}"))
}

fn criterion_config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(250))
        .measurement_time(Duration::from_millis(700))
        .sample_size(20)
        .without_plots()
        .configure_from_args()
}

fn breaker_closed(c: &mut Criterion) {
    const S: &str = "breaker_closed";
    let count = seawall_count();
    let time = seawall_time();
    let rc = recloser_default();
    let fs = failsafe_default();
    let fs_rate = failsafe_success_rate();
    let verify = || {
        verify_all_pass(S, "seawall count window", || sw_call(&count, op_ok));
        verify_all_pass(S, "seawall time window", || sw_call(&time, op_ok));
        verify_all_pass(S, "recloser", || rc_call(&rc, op_ok));
        verify_all_pass(S, "failsafe default", || fs_call(&fs, op_ok));
        verify_all_pass(S, "failsafe success rate over time window", || {
            fs_call(&fs_rate, op_ok)
        });
    };
    verify();
    for round in 0..ROUNDS {
        let mut g = c.benchmark_group(S);
        g.bench_function(id("plain", round), |b| b.iter(|| black_box(op_ok())));
        g.bench_function(id("seawall_count", round), |b| {
            b.iter(|| black_box(sw_call(&count, op_ok)))
        });
        g.bench_function(id("seawall_time", round), |b| {
            b.iter(|| black_box(sw_call(&time, op_ok)))
        });
        g.bench_function(id("recloser", round), |b| {
            b.iter(|| black_box(rc_call(&rc, op_ok)))
        });
        g.bench_function(id("failsafe", round), |b| {
            b.iter(|| black_box(fs_call(&fs, op_ok)))
        });
        g.bench_function(id("failsafe_success_rate", round), |b| {
            b.iter(|| black_box(fs_call(&fs_rate, op_ok)))
        });
        g.finish();
    }
    verify();
}

fn breaker_open(c: &mut Criterion) {
    const S: &str = "breaker_open";
    // Tripped by real failures, each with an open duration far longer than the run.
    let sw = CircuitBreaker::new(
        BreakerConfig::builder()
            .open_duration(LONG)
            .build()
            .expect("valid"),
    );
    let rc = recloser::Recloser::custom().open_wait(LONG).build();
    let fs = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            5,
            failsafe::backoff::constant(LONG),
        ))
        .build();
    for _ in 0..200 {
        let _ = sw_call(&sw, || Err(0));
        let _ = rc_call(&rc, || Err(0));
        let _ = fs_call(&fs, || Err(0));
    }
    let ran = AtomicU64::new(0);
    let counted = || {
        ran.fetch_add(1, Ordering::Relaxed);
        Ok(1)
    };
    let verify = |name: &str, mut call: Box<dyn FnMut() -> Result<u64, Option<u64>> + '_>| {
        ran.store(0, Ordering::Relaxed);
        let rejected = (0..VERIFY_CALLS).filter(|_| call() == Err(None)).count() as u64;
        let ran = ran.load(Ordering::Relaxed);
        check(
            S,
            &format!("{name}: every call rejected, the op never ran"),
            rejected == VERIFY_CALLS && ran == 0,
            format!("{rejected}/{VERIFY_CALLS} rejected, op ran {ran} times"),
        );
    };
    let verify_all = || {
        verify("seawall", Box::new(|| sw_call(&sw, counted)));
        verify("recloser", Box::new(|| rc_call(&rc, counted)));
        verify("failsafe", Box::new(|| fs_call(&fs, counted)));
    };
    verify_all();
    for round in 0..ROUNDS {
        let mut g = c.benchmark_group(S);
        g.bench_function(id("plain", round), |b| b.iter(|| black_box(op_ok())));
        g.bench_function(id("seawall", round), |b| {
            b.iter(|| black_box(sw_call(&sw, op_ok)))
        });
        g.bench_function(id("recloser", round), |b| {
            b.iter(|| black_box(rc_call(&rc, op_ok)))
        });
        g.bench_function(id("failsafe", round), |b| {
            b.iter(|| black_box(fs_call(&fs, op_ok)))
        });
        g.finish();
    }
    verify_all();
}

fn breaker_10pct(c: &mut Criterion) {
    const S: &str = "breaker_10pct";
    let count = seawall_count();
    let rc = recloser_default();
    let fs = failsafe_default();
    let verify = |name: &str, mut call: Box<dyn FnMut(u64) -> Result<u64, Option<u64>> + '_>| {
        let mut rejected = 0u64;
        let mut wrong = 0u64;
        for i in 0..VERIFY_CALLS * 10 {
            match call(i) {
                Err(None) => rejected += 1,
                Ok(v) if v == i && !i.is_multiple_of(10) => {}
                Err(Some(e)) if e == i && i.is_multiple_of(10) => {}
                _ => wrong += 1,
            }
        }
        check(
            S,
            &format!("{name}: stayed closed (no call rejected) at 10 % failures"),
            rejected == 0 && wrong == 0,
            format!(
                "{rejected} rejected, {wrong} wrong results in {} calls",
                VERIFY_CALLS * 10
            ),
        );
    };
    let verify_all = || {
        verify("seawall", Box::new(|i| sw_call(&count, || op_10pct(i))));
        verify("recloser", Box::new(|i| rc_call(&rc, || op_10pct(i))));
        verify("failsafe", Box::new(|i| fs_call(&fs, || op_10pct(i))));
    };
    verify_all();
    for round in 0..ROUNDS {
        let mut g = c.benchmark_group(S);
        let mut i = 0u64;
        g.bench_function(id("plain", round), |b| {
            b.iter(|| {
                i += 1;
                black_box(op_10pct(i))
            })
        });
        g.bench_function(id("seawall", round), |b| {
            b.iter(|| {
                i += 1;
                black_box(sw_call(&count, || op_10pct(i)))
            })
        });
        g.bench_function(id("recloser", round), |b| {
            b.iter(|| {
                i += 1;
                black_box(rc_call(&rc, || op_10pct(i)))
            })
        });
        g.bench_function(id("failsafe", round), |b| {
            b.iter(|| {
                i += 1;
                black_box(fs_call(&fs, || op_10pct(i)))
            })
        });
        g.finish();
    }
    verify_all();
}

// ---------------------------------------------------------------- pools

/// The trivial in-memory connection every pool hands out.
#[derive(Debug)]
struct Conn {
    uses: u64,
}

#[derive(Default, Clone)]
struct Created(Arc<AtomicUsize>);

impl Created {
    fn next(&self) -> Conn {
        self.0.fetch_add(1, Ordering::Relaxed);
        Conn { uses: 0 }
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

struct SwManager(Created);
impl seawall::pool::Manager for SwManager {
    type Connection = Conn;
    type Error = Infallible;
    async fn create(&self) -> Result<Conn, Infallible> {
        Ok(self.0.next())
    }
}

struct DpManager(Created);
impl deadpool::managed::Manager for DpManager {
    type Type = Conn;
    type Error = Infallible;
    async fn create(&self) -> Result<Conn, Infallible> {
        Ok(self.0.next())
    }
    async fn recycle(
        &self,
        _: &mut Conn,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

struct Bb8Manager(Created);
impl bb8::ManageConnection for Bb8Manager {
    type Connection = Conn;
    type Error = Infallible;
    async fn connect(&self) -> Result<Conn, Infallible> {
        Ok(self.0.next())
    }
    async fn is_valid(&self, _: &mut Conn) -> Result<(), Infallible> {
        Ok(())
    }
    fn has_broken(&self, _: &mut Conn) -> bool {
        false
    }
}

const POOL_SIZE: usize = 8;
const TASKS: usize = 64;

type SwPool = seawall::pool::Pool<SwManager>;
type DpPool = deadpool::managed::Pool<DpManager>;
type Bb8Pool = bb8::Pool<Bb8Manager>;

struct Pools {
    sw: SwPool,
    sw_created: Created,
    dp: DpPool,
    dp_created: Created,
    bb: Bb8Pool,
    bb_created: Created,
}

fn pools(rt: &tokio::runtime::Runtime) -> Pools {
    rt.block_on(async {
        let sw_created = Created::default();
        let dp_created = Created::default();
        let bb_created = Created::default();
        let sw = SwPool::new(
            SwManager(sw_created.clone()),
            PoolConfig::builder()
                .max_size(POOL_SIZE as u32)
                .build()
                .expect("valid"),
        );
        let dp = DpPool::builder(DpManager(dp_created.clone()))
            .max_size(POOL_SIZE)
            .build()
            .expect("valid");
        let bb = bb8::Pool::builder()
            .max_size(POOL_SIZE as u32)
            .build(Bb8Manager(bb_created.clone()))
            .await
            .expect("valid");
        Pools {
            sw,
            sw_created,
            dp,
            dp_created,
            bb,
            bb_created,
        }
    })
}

/// Which pool a closure acquires from.
#[derive(Clone, Copy, Debug)]
enum Lib {
    Plain,
    Seawall,
    Deadpool,
    Bb8,
}

impl Lib {
    const ALL: [Lib; 4] = [Lib::Plain, Lib::Seawall, Lib::Deadpool, Lib::Bb8];
    fn name(self) -> &'static str {
        match self {
            Lib::Plain => "plain",
            Lib::Seawall => "seawall",
            Lib::Deadpool => "deadpool",
            Lib::Bb8 => "bb8",
        }
    }
}

/// One acquire, use (optionally yielding once while holding), release.
async fn use_once(p: &Pools, lib: Lib, plain: &Mutex<Conn>, yield_once: bool, held: &Holders) {
    macro_rules! hold {
        ($conn:expr) => {{
            let mut conn = $conn;
            held.enter();
            conn.uses += 1;
            black_box(&mut *conn);
            if yield_once {
                tokio::task::yield_now().await;
            }
            held.leave();
        }};
    }
    match lib {
        Lib::Plain => {
            // No pool: the connection is used in place (the mutex is uncontended and never
            // held across the yield, so this is the cost of the work alone).
            held.enter();
            {
                let mut c = plain.lock();
                c.uses += 1;
                black_box(&mut *c);
            }
            if yield_once {
                tokio::task::yield_now().await;
            }
            held.leave();
        }
        Lib::Seawall => hold!(p.sw.get().await.expect("seawall get")),
        Lib::Deadpool => hold!(p.dp.get().await.expect("deadpool get")),
        Lib::Bb8 => hold!(p.bb.get().await.expect("bb8 get")),
    }
}

/// Counts connections held at once, when verifying (off in the timed loops).
#[derive(Default)]
struct Holders {
    on: AtomicBool,
    now: AtomicUsize,
    max: AtomicUsize,
    ops: AtomicU64,
}

impl Holders {
    fn enter(&self) {
        if self.on.load(Ordering::Relaxed) {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(n, Ordering::SeqCst);
            self.ops.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn leave(&self) {
        if self.on.load(Ordering::Relaxed) {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }
    fn start(&self) {
        self.now.store(0, Ordering::SeqCst);
        self.max.store(0, Ordering::SeqCst);
        self.ops.store(0, Ordering::SeqCst);
        self.on.store(true, Ordering::SeqCst);
    }
    fn stop(&self) -> (usize, u64) {
        self.on.store(false, Ordering::SeqCst);
        (
            self.max.load(Ordering::SeqCst),
            self.ops.load(Ordering::SeqCst),
        )
    }
}

fn created(p: &Pools, lib: Lib) -> usize {
    match lib {
        Lib::Plain => 0,
        Lib::Seawall => p.sw_created.get(),
        Lib::Deadpool => p.dp_created.get(),
        Lib::Bb8 => p.bb_created.get(),
    }
}

/// `total` acquire+use+release operations by `tasks` tasks; returns the elapsed time.
fn run_ops(
    rt: &tokio::runtime::Runtime,
    p: &Arc<Pools>,
    lib: Lib,
    plain: &Arc<Mutex<Conn>>,
    held: &Arc<Holders>,
    tasks: usize,
    per_task: u64,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        if tasks == 1 {
            for _ in 0..per_task {
                use_once(p, lib, plain, false, held).await;
            }
        } else {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..tasks {
                let (p, plain, held) = (Arc::clone(p), Arc::clone(plain), Arc::clone(held));
                set.spawn(async move {
                    for _ in 0..per_task {
                        use_once(&p, lib, &plain, true, &held).await;
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                r.expect("task");
            }
        }
        start.elapsed()
    })
}

fn verify_pool(
    scenario: &str,
    rt: &tokio::runtime::Runtime,
    p: &Arc<Pools>,
    plain: &Arc<Mutex<Conn>>,
    held: &Arc<Holders>,
    tasks: usize,
) {
    let per_task = 2_000u64;
    for lib in Lib::ALL {
        held.start();
        run_ops(rt, p, lib, plain, held, tasks, per_task);
        let (max, ops) = held.stop();
        let want = tasks as u64 * per_task;
        check(
            scenario,
            &format!("{}: every acquire succeeded", lib.name()),
            ops == want,
            format!("{ops}/{want} operations completed"),
        );
        if !matches!(lib, Lib::Plain) {
            let made = created(p, lib);
            let limit = if tasks == 1 { 1 } else { POOL_SIZE };
            check(
                scenario,
                &format!("{}: pool limit held", lib.name()),
                max <= limit && made <= POOL_SIZE && max >= 1,
                format!(
                    "at most {max} connections held at once (limit {limit}), {made} created (max {POOL_SIZE})"
                ),
            );
        }
    }
}

fn pool_bench(c: &mut Criterion, scenario: &str, rt: &tokio::runtime::Runtime, tasks: usize) {
    let p = Arc::new(pools(rt));
    let plain = Arc::new(Mutex::new(Conn { uses: 0 }));
    let held = Arc::new(Holders::default());
    verify_pool(scenario, rt, &p, &plain, &held, tasks);
    for round in 0..ROUNDS {
        let mut g = c.benchmark_group(scenario);
        for lib in Lib::ALL {
            g.bench_function(id(lib.name(), round), |b| {
                b.iter_custom(|iters| {
                    let per_task = iters.div_ceil(tasks as u64).max(1);
                    let elapsed = run_ops(rt, &p, lib, &plain, &held, tasks, per_task);
                    // Scale to exactly `iters` operations.
                    elapsed.mul_f64(iters as f64 / (per_task * tasks as u64) as f64)
                })
            });
        }
        g.finish();
    }
    verify_pool(scenario, rt, &p, &plain, &held, tasks);
}

fn pool_single(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    pool_bench(c, "pool_single", &rt, 1);
}

fn pool_contended(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    pool_bench(c, "pool_contended", &rt, TASKS);
}

// ---------------------------------------------------------------- deadline

/// The work under the deadline: finishes at once.
async fn work() -> u64 {
    black_box(7)
}

/// The time `iters` calls of `call`, each awaited in turn on `rt`, take.
fn time_awaits<F: Future>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    mut call: impl FnMut() -> F,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(call().await);
        }
        start.elapsed()
    })
}

fn deadline(c: &mut Criterion) {
    const S: &str = "deadline";
    const T: Duration = Duration::from_secs(10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let verify = || {
        rt.block_on(async {
            let mut ok = [0u64; 3];
            for _ in 0..VERIFY_CALLS {
                ok[0] += u64::from(work().await == 7);
                ok[1] += u64::from(Budget::start(T).run(work()).await == Ok(7));
                ok[2] += u64::from(matches!(tokio::time::timeout(T, work()).await, Ok(7)));
            }
            for (name, n) in ["plain", "seawall", "tokio::time::timeout"].iter().zip(ok) {
                check(
                    S,
                    &format!("{name}: every call finished, none timed out"),
                    n == VERIFY_CALLS,
                    format!("{n}/{VERIFY_CALLS} returned the value"),
                );
            }
        })
    };
    verify();
    for round in 0..ROUNDS {
        let mut g = c.benchmark_group(S);
        g.bench_function(id("plain", round), |b| {
            b.iter_custom(|iters| time_awaits(&rt, iters, work))
        });
        g.bench_function(id("seawall", round), |b| {
            b.iter_custom(|iters| time_awaits(&rt, iters, || Budget::start(T).run(work())))
        });
        g.bench_function(id("tokio_timeout", round), |b| {
            b.iter_custom(|iters| time_awaits(&rt, iters, || tokio::time::timeout(T, work())))
        });
        g.finish();
    }
    verify();
}

fn main() {
    // Mark the start, so the report can tell this run's estimates from stale ones, and drop the
    // last run's checks so a run that fails part-way leaves none behind.
    let dir = results_dir();
    std::fs::create_dir_all(&dir).expect("create target/bench-results");
    let _ = std::fs::remove_file(dir.join("rust-checks.json"));
    std::fs::write(dir.join("rust-peers-started"), b"").expect("write start marker");
    let mut c = criterion_config();
    breaker_closed(&mut c);
    breaker_open(&mut c);
    breaker_10pct(&mut c);
    pool_single(&mut c);
    pool_contended(&mut c);
    deadline(&mut c);
    c.final_summary();

    let checks = Value::Array(CHECKS.lock().clone());
    let path = dir.join("rust-checks.json");
    std::fs::write(&path, serde_json::to_string_pretty(&checks).expect("json"))
        .expect("write checks");
    eprintln!("checks written to {}", path.display());
}
