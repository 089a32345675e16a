"""The engine's notion of "now", replaceable so tests and simulations control time.

Everything that asks for the current time — timers, due dates, escalations, event
timestamps — goes through `clock.now()`. Tests use `FrozenClock` and `advance()`.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs) -> datetime:
        self._now += delta or timedelta(**kwargs)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


_current: SystemClock | FrozenClock = SystemClock()


def now() -> datetime:
    return _current.now()


def use(clock: SystemClock | FrozenClock) -> SystemClock | FrozenClock:
    """Install `clock` as the engine clock; returns the previous one (for restoring)."""
    global _current
    previous, _current = _current, clock
    return previous


def current() -> SystemClock | FrozenClock:
    return _current
