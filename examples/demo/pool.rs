//! A connection pool in front of a database that goes down and comes back, in simulated time,
//! with and without Seawall.
//!
//! 200 requests a second each need a connection for a 10 ms query; the database allows 8. From
//! t = 20 s to t = 35 s it is down: open connections are cut and new ones are refused at once.
//!
//! "Today's pools" is the behaviour measured in common pools (see `shared/POOL-LESSONS.md`): an
//! unbounded queue, callers waiting out a 5 s acquire timeout, and a reconnect loop that redials
//! as fast as the refusals come back. "Seawall" is the real engine (`seawall::pool::PoolCore`),
//! driven by a small simulated adapter instead of tokio.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use seawall::pool::{Acquire, Action, Lease, PoolConfig, PoolCore, SlotId};
use seawall::{BreakerConfig, Timestamp};

const RUN_MS: u64 = 60_000;
const REQUEST_EVERY_MS: u64 = 5;
const QUERY_MS: u64 = 10;
const CONNECT_MS: u64 = 30;
const OUTAGE_MS: std::ops::Range<u64> = 20_000..35_000;
const WINDOW_MS: u64 = 5_000;
const MAX_CONNECTIONS: usize = 8;

fn db_up(t: u64) -> bool {
    !OUTAGE_MS.contains(&t)
}

/// A connection works while the database is up, unless the outage cut it.
fn alive(opened_at: u64, t: u64) -> bool {
    db_up(t) && !(opened_at < OUTAGE_MS.start && t >= OUTAGE_MS.start)
}

/// Per-window outcomes, counted in the window where the caller asked.
#[derive(Default, Clone)]
struct Row {
    served: u32,
    failed: u32,
    wait_ms: u64,
    dials: u32,
}

struct Rows(Vec<Row>);

impl Rows {
    fn at(&mut self, t: u64) -> &mut Row {
        let last = self.0.len() - 1;
        &mut self.0[((t / WINDOW_MS) as usize).min(last)]
    }
    /// A caller who asked at `asked` got a connection or an error at `t`.
    fn waited(&mut self, asked: u64, t: u64) {
        self.at(asked).wait_ms += t - asked;
    }
    fn done(&mut self, asked: u64, ok: bool) {
        let r = self.at(asked);
        if ok {
            r.served += 1;
        } else {
            r.failed += 1;
        }
    }
}

/// A discrete-event queue of `(time, sequence, event)`.
struct Events<E: Ord> {
    heap: BinaryHeap<Reverse<(u64, u64, E)>>,
    seq: u64,
}

impl<E: Ord> Events<E> {
    fn new() -> Self {
        Events {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
    fn at(&mut self, t: u64, e: E) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, e)));
    }
    fn next(&mut self) -> Option<(u64, E)> {
        let Reverse((t, _, e)) = self.heap.pop()?;
        (t < RUN_MS).then_some((t, e))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Request,
    Connected(u64),
    QueryDone { slot: u64, asked: u64 },
    Validated(u64),
    Timer,
}

/// The engine with a simulated adapter: connections are `opened_at` times keyed by slot.
struct SeawallSim {
    core: PoolCore,
    events: Events<Ev>,
    opened_at: HashMap<u64, u64>,
    asked: HashMap<u64, u64>,
    leases: HashMap<u64, Lease>,
    next_timer: Option<u64>,
    rows: Rows,
}

impl SeawallSim {
    fn run(mut self) -> Rows {
        self.events.at(0, Ev::Request);
        while let Some((t, ev)) = self.events.next() {
            let now = Timestamp::from_millis(t);
            match ev {
                Ev::Request => {
                    self.events.at(t + REQUEST_EVERY_MS, Ev::Request);
                    match self.core.acquire(now, None) {
                        Ok(Acquire::Ready(lease)) => self.query(t, t, lease),
                        Ok(Acquire::Wait(w)) => {
                            self.asked.insert(w.as_u64(), t);
                        }
                        Err(_) => self.rows.done(t, false),
                    }
                }
                Ev::Connected(slot) => {
                    self.opened_at.insert(slot, t);
                    self.core.handle_created(SlotId::from_u64(slot), now);
                }
                Ev::QueryDone { slot, asked } => {
                    if let Some(lease) = self.leases.remove(&slot) {
                        let ok = self.opened_at.get(&slot).is_some_and(|&o| alive(o, t));
                        self.core.release(lease, !ok, now);
                        self.rows.done(asked, ok);
                    }
                }
                Ev::Validated(slot) => {
                    let ok = self.opened_at.get(&slot).is_some_and(|&o| alive(o, t));
                    self.core.handle_validated(SlotId::from_u64(slot), ok, now);
                }
                Ev::Timer => {
                    self.next_timer = None;
                    self.core.handle_timeout(now);
                }
            }
            self.perform_actions(t);
            // One timer for the whole pool, as a real adapter keeps.
            if let Some(at) = self.core.poll_timeout() {
                let at = at.as_nanos().div_ceil(1_000_000).max(t);
                if self.next_timer.is_none_or(|n| at < n) {
                    self.next_timer = Some(at);
                    self.events.at(at, Ev::Timer);
                }
            }
        }
        self.rows
    }

    fn perform_actions(&mut self, t: u64) {
        let now = Timestamp::from_millis(t);
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Create { slot, .. } => {
                    self.rows.at(t).dials += 1;
                    if db_up(t) {
                        self.events.at(t + CONNECT_MS, Ev::Connected(slot.as_u64()));
                    } else {
                        self.core
                            .handle_create_failed(slot, "connection refused", now);
                    }
                }
                Action::Validate { slot } => self.events.at(t + 1, Ev::Validated(slot.as_u64())),
                Action::Destroy { slot, .. } => {
                    self.opened_at.remove(&slot.as_u64());
                }
                Action::Hand { waiter, lease } => {
                    let asked = self.asked.remove(&waiter.as_u64()).unwrap_or(t);
                    self.query(t, asked, lease);
                }
                Action::Fail { waiter, .. } => {
                    let asked = self.asked.remove(&waiter.as_u64()).unwrap_or(t);
                    self.rows.waited(asked, t);
                    self.rows.done(asked, false);
                }
            }
        }
    }

    /// The caller who asked at `asked` got `lease` at `t` and runs its query.
    fn query(&mut self, t: u64, asked: u64, lease: Lease) {
        self.rows.waited(asked, t);
        let slot = lease.slot().as_u64();
        if self.opened_at.get(&slot).is_some_and(|&o| alive(o, t)) {
            self.leases.insert(slot, lease);
            self.events.at(t + QUERY_MS, Ev::QueryDone { slot, asked });
        } else {
            // A cut connection fails the query at once; the pool closes it.
            self.core.release(lease, true, Timestamp::from_millis(t));
            self.rows.done(asked, false);
        }
    }
}

fn with_seawall(windows: usize) -> Result<Rows, seawall::ConfigError> {
    let config = PoolConfig::builder()
        .max_size(MAX_CONNECTIONS as u32)
        .max_waiters(200)
        .acquire_timeout(Duration::from_secs(1))
        .create_timeout(Duration::from_secs(1))
        .breaker(
            BreakerConfig::builder()
                .consecutive_failures(Some(3))
                .open_duration(Duration::from_secs(2))
                .half_open_calls(1)
                .build()?,
        )
        .seed(Some(7))
        .build()?;
    let sim = SeawallSim {
        core: PoolCore::new(config),
        events: Events::new(),
        opened_at: HashMap::new(),
        asked: HashMap::new(),
        leases: HashMap::new(),
        next_timer: None,
        rows: Rows(vec![Row::default(); windows]),
    };
    Ok(sim.run())
}

/// Today's typical pool: unbounded queue, 5 s acquire timeout, immediate redial on failure.
fn without_seawall(windows: usize) -> Rows {
    const ACQUIRE_TIMEOUT_MS: u64 = 5_000;
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum E {
        Request,
        Dial,
        Connected,
        QueryDone { opened_at: u64, asked: u64 },
    }
    let mut rows = Rows(vec![Row::default(); windows]);
    let mut events = Events::new();
    events.at(0, E::Request);
    let mut free: Vec<u64> = Vec::new();
    let (mut busy, mut dialing) = (0usize, 0usize);
    let mut queue: VecDeque<u64> = VecDeque::new();
    while let Some((t, ev)) = events.next() {
        while queue.front().is_some_and(|&a| t >= a + ACQUIRE_TIMEOUT_MS) {
            if let Some(asked) = queue.pop_front() {
                rows.waited(asked, asked + ACQUIRE_TIMEOUT_MS);
                rows.done(asked, false);
            }
        }
        match ev {
            E::Request => {
                events.at(t + REQUEST_EVERY_MS, E::Request);
                queue.push_back(t);
            }
            E::Dial => {
                rows.at(t).dials += 1;
                if db_up(t) {
                    events.at(t + CONNECT_MS, E::Connected);
                } else {
                    dialing -= 1;
                }
            }
            E::Connected => {
                dialing -= 1;
                free.push(t);
            }
            E::QueryDone { opened_at, asked } => {
                busy -= 1;
                let ok = alive(opened_at, t);
                if ok {
                    free.push(opened_at);
                }
                rows.done(asked, ok);
            }
        }
        while let (Some(&asked), Some(opened_at)) = (queue.front(), free.last().copied()) {
            queue.pop_front();
            free.pop();
            rows.waited(asked, t);
            if alive(opened_at, t) {
                busy += 1;
                events.at(t + QUERY_MS, E::QueryDone { opened_at, asked });
            } else {
                rows.done(asked, false);
            }
        }
        // Redial for waiting callers, 1 ms after each refusal: the measured reconnect storm.
        while queue.len() > dialing && free.len() + busy + dialing < MAX_CONNECTIONS {
            dialing += 1;
            events.at(t + 1, E::Dial);
        }
    }
    rows
}

pub fn run() -> Result<(), seawall::ConfigError> {
    let windows = (RUN_MS / WINDOW_MS) as usize;
    let Rows(without) = without_seawall(windows);
    let Rows(with) = with_seawall(windows)?;
    println!("\n== 2. A connection pool in front of a database that is down from 20 s to 35 s");
    println!("(simulated time; 200 requests/s, 10 ms queries, 8 connections)\n");
    println!("            -------- today's pools --------   ----------- Seawall -----------");
    println!("  window    served  failed  mean wait  dials   served  failed  mean wait  dials");
    let mean = |r: &Row| r.wait_ms as f64 / f64::from((r.served + r.failed).max(1));
    for (i, (a, b)) in without.iter().zip(&with).enumerate() {
        let from = i as u64 * WINDOW_MS;
        println!(
            "  {:>2}-{:>2} s  {:>6}  {:>6}  {:>6.0} ms {:>6}   {:>6}  {:>6}  {:>6.0} ms {:>5}{}",
            from / 1000,
            (from + WINDOW_MS) / 1000,
            a.served,
            a.failed,
            mean(a),
            a.dials,
            b.served,
            b.failed,
            mean(b),
            b.dials,
            if OUTAGE_MS.contains(&from) {
                "  (down)"
            } else {
                ""
            }
        );
    }
    let dials = |rows: &[Row]| rows.iter().map(|r| r.dials).sum::<u32>();
    println!(
        "\n  {} connection attempts with today's pools, {} with Seawall. \"mean wait\" is how long",
        dials(&without),
        dials(&with)
    );
    println!("  a caller waited for a connection or an error.");
    Ok(())
}
