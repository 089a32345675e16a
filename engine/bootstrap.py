"""Wiring: one `Phasegate` object per process holds the database engine, the BPMN runtime and
the in-memory caches the services share.

Caches, and why they are safe:
- deployed processes by definition id: a definition never changes once deployed, so its parsed
  specs can be kept for the life of the process;
- live workflows by instance id, tagged with the instance's revision: a command uses the cached
  workflow only if the revision it read (under the row lock) matches, otherwise it rebuilds from
  the task rows. A workflow is taken out of the cache while a command mutates it and put back
  only after its transaction committed, so a failed command can never leave a half-run workflow
  in memory for the next one.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from engine.adapters.database import create_engine
from engine.bpmn.package import LoadedProcess
from engine.bpmn.runtime import LiveWorkflow, Runtime
from engine.unit_of_work import UnitOfWork


@dataclass
class DeployedProcess:
    definition_id: int
    key: str
    version: int
    process: LoadedProcess
    forms: dict[str, dict]


class LiveWorkflowCache:
    def __init__(self, capacity: int = 512):
        self.capacity = capacity
        self._items: OrderedDict[int, tuple[int, LiveWorkflow]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, instance_id: int, revision: int) -> LiveWorkflow | None:
        """Remove and return the cached workflow if it is at `revision`."""
        with self._lock:
            item = self._items.pop(instance_id, None)
        if item is not None and item[0] == revision:
            return item[1]
        return None

    def put(self, instance_id: int, revision: int, live: LiveWorkflow) -> None:
        with self._lock:
            self._items[instance_id] = (revision, live)
            self._items.move_to_end(instance_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Phasegate:
    """The application: what every entry point (CLI, web, workers, benchmarks) starts from."""

    def __init__(self, database_url: str | None = None, *, engine: sa.Engine | None = None,
                 forms_dir: str | Path | None = None, live_cache_size: int = 512):
        from engine.bpmn.loader import SERIALIZER_CONFIG

        self.engine = engine or create_engine(database_url)
        self.runtime = Runtime(SERIALIZER_CONFIG)
        self.forms_dir = Path(forms_dir) if forms_dir else None
        self.live = LiveWorkflowCache(live_cache_size)
        self._processes: dict[int, DeployedProcess] = {}
        self._process_lock = threading.Lock()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    def cached_process(self, definition_id: int) -> DeployedProcess | None:
        return self._processes.get(definition_id)

    def remember_process(self, deployed: DeployedProcess) -> None:
        with self._process_lock:
            self._processes[deployed.definition_id] = deployed

    def dispose(self) -> None:
        self.engine.dispose()
