"""Seawall's native core (private: import ``seawall`` instead).

Synchronous decisions only; times are seconds read from the facade's clock.
"""

from typing import Any, final

__all__ = ["Breaker", "defaults"]

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

def defaults() -> dict[str, Any]:
    """The core's configuration defaults, in seconds, keyed by keyword argument."""
