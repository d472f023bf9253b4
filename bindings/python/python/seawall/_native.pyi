"""Seawall's native core (private: import ``seawall`` instead).

Synchronous decisions only; times are seconds read from the facade's clock.
"""

from typing import Any, Callable, Generator, Generic, Literal, TypeVar, final

from typing_extensions import disjoint_base

_T = TypeVar("_T")

__all__ = [
    "Breaker",
    "BreakerBase",
    "Budget",
    "BudgetBase",
    "Guarded",
    "Ready",
    "PoolCore",
    "RetryBudget",
    "RetryConfig",
    "RetryLoop",
    "TimeoutPolicy",
    "budget_defaults",
    "check_timeout",
    "defaults",
    "pool_defaults",
    "retry_defaults",
    "WatchdogCore",
    "check_limit_bytes",
    "read_memory",
    "watchdog_defaults",
]

@final
class Breaker:
    """A circuit breaker's state machine, behind a lock."""

    def __new__(
        cls,
        *,
        failure_rate_threshold: object,
        slow_call_rate_threshold: object,
        slow_call_duration: object,
        window: object,
        window_size: object,
        window_duration: object,
        window_buckets: object,
        minimum_calls: object,
        consecutive_failures: object,
        open_duration: object,
        backoff: object,
        backoff_multiplier: object,
        max_open_duration: object,
        backoff_jitter: object,
        half_open_calls: object,
        max_half_open_duration: object,
        seed: object,
    ) -> Breaker:
        """Validates the configuration and builds a closed breaker."""
    def acquire(self, now: float) -> int | tuple[str, float | None, bool]:
        """Admitted: ``token << 1 | pending``. Rejected: ``(reason, retry_after, pending)``."""
    def record(self, token: int, started: float, outcome: int, now: float) -> bool:
        """Records an outcome (0 success, 1 failure, 2 ignored); returns whether transitions
        are waiting."""
    def has_transitions(self) -> bool:
        """Whether state changes are waiting."""
    def take_transitions(self) -> list[tuple[str, str, str]]:
        """The waiting state changes as ``(from, to, reason)``, oldest first."""
    def state(self, now: float) -> str:
        """The state at ``now``."""
    def metrics(self, now: float) -> dict[str, Any]:
        """The metrics at ``now``."""
    def force_open(self, now: float) -> None:
        """Rejects every call until another manual change."""
    def disable(self, now: float) -> None:
        """Permits every call and records nothing until another manual change."""
    def metrics_only(self, now: float) -> None:
        """Records outcomes but never rejects until another manual change."""
    def reset(self, now: float) -> None:
        """Closed, with an empty window and the base open duration."""
    def snapshot(self, now: float) -> str:
        """The state as a JSON snapshot."""
    def restore(self, snapshot: str, now: float) -> None:
        """Resumes from a JSON snapshot."""

@disjoint_base
class BreakerBase:
    """The native base of ``seawall.CircuitBreaker``: its sync ``call`` and the calls of sync
    decorated functions, each one native call."""

    def __new__(cls, *_args: Any, **_kwargs: Any) -> BreakerBase: ...
    def _bind(
        self,
        core: Breaker,
        clock: Callable[[], float],
        error_type: type[BaseException],
        name: str | None,
        plain_results: bool,
    ) -> None:
        """Connects the instance to its state machine and facade settings (once)."""
    def call(self, fn_: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Calls ``fn(*args, **kwargs)`` through the breaker and returns its result."""
    def _admit(self) -> tuple[int, float]:
        """Admits a call: ``(token, started)``, or raises the rejection."""
    def _settle(self, token: int, started: float, result: object) -> None:
        """Records the result of an admitted call."""

@disjoint_base
class Guarded:
    """A sync function decorated with ``@breaker``."""

    def __new__(cls, owner: BreakerBase, func: Callable[..., Any]) -> Guarded: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, instance: object, owner: object = None, /) -> Any: ...

def defaults() -> dict[str, Any]:
    """The core's configuration defaults, in seconds, keyed by keyword argument."""

@final
class Ready(Generic[_T]):
    """An awaitable that is already done, with ``value``."""

    def __new__(cls, value: _T) -> Ready[_T]: ...
    def __await__(self) -> Generator[Any, None, _T]: ...
    def __iter__(self) -> Ready[_T]: ...
    def __next__(self) -> Any: ...
    def send(self, _value: object) -> Any: ...

@disjoint_base
class BudgetBase:
    """The native base of ``seawall.Budget``."""

    def __new__(
        cls,
        timeout: float,
        *,
        policy: object | None = None,
        clock: Callable[[], float] | None = None,
    ) -> BudgetBase: ...
    @property
    def _clock(self) -> Callable[[], float]:
        """The budget's clock."""
    @property
    def _native(self) -> Budget:
        """The budget as the core's value."""
    def _timeout_now(self) -> float:
        """The timeout of a call given no cap, now."""

@final
class TimeoutPolicy:
    """The timeout policy (seconds)."""

    def __new__(cls, *, max_timeout: object, scale: object, min_to_start: object) -> TimeoutPolicy:
        """Validates a policy."""
    @property
    def max_timeout(self) -> float:
        """The longest timeout allowed."""
    @property
    def scale(self) -> float:
        """The factor applied to every configured timeout."""
    @property
    def min_to_start(self) -> float:
        """The least time left for which a call is started."""
    @staticmethod
    def get_global() -> TimeoutPolicy:
        """The process-wide policy (the core's)."""
    @staticmethod
    def set_global(policy: TimeoutPolicy) -> None:
        """Replaces the process-wide policy (the core's)."""
    def __eq__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

def budget_defaults() -> dict[str, Any]:
    """The core's default policy, in seconds, keyed by keyword argument."""

def check_timeout(field: str, value: object) -> float:
    """Checks a timeout in seconds for ``field`` and returns it as a float."""

@final
class Budget:
    """A request's deadline under a policy; times are seconds on the facade's clock."""

    def __new__(cls, now: float, timeout: object, policy: TimeoutPolicy) -> Budget:
        """A budget of ``timeout`` seconds from ``now``."""
    @staticmethod
    def under_global(now: float, timeout: object) -> Budget:
        """A budget of ``timeout`` seconds from ``now`` under the process-wide policy."""
    @staticmethod
    def from_header(value: object, now: float, format: object, policy: TimeoutPolicy) -> Budget:
        """A budget from a received header value."""
    @property
    def deadline(self) -> float:
        """The deadline."""
    @property
    def policy(self) -> TimeoutPolicy:
        """The policy."""
    def remaining(self, now: float) -> float:
        """Seconds left at ``now``."""
    def is_expired(self, now: float) -> bool:
        """Whether the deadline has passed at ``now``."""
    def child(self, now: float, cap: object) -> Budget:
        """A nested budget."""
    def check(self, now: float) -> float:
        """Seconds left, or ``BudgetExhausted``."""
    def timeout_for(self, now: float, cap: object) -> float:
        """The timeout of one call, or ``BudgetExhausted``."""
    def to_header(self, now: float, format: object) -> str:
        """The time left as a header value."""

@final
class RetryConfig:
    """A retry policy's numbers (seconds)."""

    def __new__(
        cls,
        *,
        max_attempts: object,
        backoff: object,
        base: object,
        cap: object,
        delay: object,
        multiplier: object,
        seed: object,
    ) -> RetryConfig:
        """Validates a retry policy."""
    @property
    def max_attempts(self) -> int:
        """Attempts in all."""
    @property
    def backoff(self) -> Literal["constant", "exponential", "decorrelated_jitter"]:
        """The backoff's kind."""
    @property
    def delay(self) -> float | None:
        """The constant wait."""
    @property
    def base(self) -> float | None:
        """The first or shortest wait."""
    @property
    def cap(self) -> float | None:
        """The longest wait."""
    @property
    def multiplier(self) -> float | None:
        """The exponential growth."""
    @property
    def seed(self) -> int | None:
        """The jitter seed."""

def retry_defaults() -> dict[str, Any]:
    """The core's default retry policy and retry budget, in seconds, keyed by keyword."""

@final
class RetryBudget:
    """A shared retry budget (the core's)."""

    def __new__(cls, *, percent: object, min_per_second: object, ttl: object) -> RetryBudget:
        """Validates the settings."""
    @staticmethod
    def get_global() -> RetryBudget:
        """The core's process-wide retry budget."""
    @property
    def percent(self) -> float:
        """Retries allowed as a percentage of requests."""
    @property
    def min_per_second(self) -> float:
        """Retries always allowed per second."""
    @property
    def ttl(self) -> float:
        """The window."""
    def metrics(self, now: float | None = None) -> tuple[int, int, int]:
        """``(requests, retries, allowed)``; ``now=None`` reads the core's clock."""

@final
class RetryLoop:
    """One call's retry loop."""

    def __new__(
        cls, config: RetryConfig, budget: Budget, retry_budget: RetryBudget | None
    ) -> RetryLoop:
        """A loop that has made no attempt yet."""
    @property
    def attempts(self) -> int:
        """Attempts started so far."""
    def start_attempt(self, now: float, retry_budget_now: float | None, cap: object) -> float:
        """The attempt's timeout, or ``BudgetExhausted``."""
    def on_failure(
        self, now: float, retry_budget_now: float | None, retry_after: object
    ) -> tuple[bool, float | None, str | None]:
        """``(retry, delay, reason)``."""

@final
class PoolCore:
    """The connection pool's engine, behind a lock. Methods that let the engine ask for
    something return ``(result, actions, events, next_timeout)``."""

    def __new__(
        cls,
        *,
        max_size: object,
        min_idle: object,
        max_waiters: object,
        acquire_timeout: object,
        create_timeout: object,
        idle_timeout: object,
        max_lifetime: object,
        lifetime_jitter: object,
        validate_after: object,
        idle_order: object,
        leak_threshold: object,
        create_backoff_base: object,
        create_backoff_cap: object,
        breaker: object,
        seed: object,
    ) -> PoolCore:
        """Validates the configuration and builds an empty pool."""
    @property
    def acquire_timeout(self) -> float:
        """The longest an acquire waits."""
    @property
    def leak_threshold(self) -> float | None:
        """The leak threshold, or ``None``."""
    def config(self) -> dict[str, Any]:
        """The configuration in force, in seconds, keyed by keyword."""
    def acquire(
        self, now: float, budget: Budget | None = None, budget_now: float | None = None
    ) -> tuple[
        int, Any, int, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None
    ]:
        """``(code, a, b, actions, events, next_timeout)``: 0 ready (slot, checkout), 1 wait
        (waiter), 2 error (an exception instance)."""
    def release(
        self, slot: int, checkout: int, broken: bool, now: float
    ) -> tuple[bool, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """Returns a checkout; ``False`` when refused."""
    def cancel(
        self, waiter: int, now: float
    ) -> tuple[bool, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """The waiter gave up; ``False`` when it was already served or failed."""
    def handle_created(
        self, slot: int, now: float
    ) -> tuple[None, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """The create for ``slot`` succeeded."""
    def handle_create_failed(
        self, slot: int, error: str, now: float
    ) -> tuple[None, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """The create for ``slot`` failed."""
    def handle_validated(
        self, slot: int, ok: bool, now: float
    ) -> tuple[None, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """The validation of ``slot`` finished."""
    def handle_broken(
        self, slot: int, now: float
    ) -> tuple[bool, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """The connection of ``slot`` is dead."""
    def handle_timeout(
        self, now: float
    ) -> tuple[None, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """The timer fired."""
    def drain(
        self, now: float, deadline: float
    ) -> tuple[None, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """Starts draining."""
    def resize(
        self, max_size: object, now: float
    ) -> tuple[None, list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None]:
        """Changes ``max_size``."""
    def poll_timeout(self) -> float | None:
        """When the engine next wants ``handle_timeout``."""
    def is_closed(self) -> bool:
        """Whether the drain has finished."""
    def metrics(
        self, now: float
    ) -> tuple[
        dict[str, Any], list[tuple[Any, ...]] | None, list[tuple[Any, ...]] | None, float | None
    ]:
        """The numbers at ``now``."""

def pool_defaults() -> dict[str, Any]:
    """The core's pool defaults, in seconds, keyed by keyword."""

# The memory watchdog (src/memory.rs; the facade is seawall/_watchdog.py).

@final
class WatchdogCore:
    """The memory watchdog's policy, behind a lock."""

    def __new__(cls, **config: object) -> WatchdogCore:
        """Validates the keywords (durations in seconds); absent ones take the defaults."""
    def observe(
        self,
        now: float,
        usage: object,
        limit: object,
        heap_used: object = None,
        heap_limit: object = None,
    ) -> dict[str, Any]:
        """The assessment of one sample, as a dict (``next_sample`` in seconds)."""
    def counts(self) -> dict[str, int]:
        """The counters since the start."""
    def config(self) -> dict[str, Any]:
        """The configuration in force, in seconds, keyed by keyword."""
    def plan_dump_rotation(
        self, existing: object, incoming_bytes: object
    ) -> tuple[list[str], bool]:
        """``(names_to_delete, fits)`` for ``(name, bytes, created)`` tuples."""

def watchdog_defaults() -> dict[str, Any]:
    """The core's watchdog defaults, in seconds, keyed by keyword, plus ``restart_exit_code``
    and ``dump_prefix``."""

def read_memory(limit_bytes: object = None, root: str | None = None) -> dict[str, Any]:
    """One reading of the Linux memory probe, as a dict."""

def check_limit_bytes(value: object) -> int | None:
    """``limit_bytes`` through the core's integer conversion."""
