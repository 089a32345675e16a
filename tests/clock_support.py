"""The engine clock frozen for a test: `yield from frozen_at(moment)` in a fixture."""
from __future__ import annotations

from datetime import datetime
from typing import Iterator

from engine.domain import clock
from engine.domain.clock import FrozenClock


def frozen_at(moment: datetime) -> Iterator[FrozenClock]:
    """Freeze the clock at `moment` for the fixture's test, then restore the previous clock."""
    frozen = FrozenClock(moment)
    previous = clock.use(frozen)
    try:
        yield frozen
    finally:
        clock.use(previous)
