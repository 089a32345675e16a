"""The BPMN runtime in long loops, without a database.

Covers the four silent-correctness traps of SpiffWorkflow 3.2 in long loops (see
shared/notes/spiffworkflow-3.2-loops.md) and the incremental persistence invariant: the rows
written step by step always equal a full serialization of the live workflow.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from engine.bpmn.loader import SERIALIZER_CONFIG, load_path
from engine.bpmn.runtime import Runtime
from engine.bpmn.state import TaskRow, WorkflowState

MODELS = Path(__file__).parent / "models"


@pytest.fixture(scope="module")
def runtime():
    return Runtime(SERIALIZER_CONFIG)


def process(file: str, key: str):
    package = load_path(MODELS / file)
    return next(p for p in package.processes if p.key == key)


class Driver:
    """Completes ready tasks and keeps the rows a database would hold."""

    def __init__(self, runtime, proc, data, seed=0):
        self.runtime, self.proc = runtime, proc
        self.random = random.Random(seed)
        self.live, outcome = runtime.start(proc, data)
        self.rows: dict[str, TaskRow] = {}
        self.header = ""
        self.apply(outcome)
        self.completions = 0

    def apply(self, outcome):
        assert outcome.failure is None, outcome.failure
        for row in outcome.changes.upserts:
            self.rows[row.task_id] = row
        for key in outcome.changes.deletes:
            del self.rows[key]
        if outcome.changes.header:
            self.header = outcome.changes.header
        self.last = outcome

    def step(self, data=None):
        task_id = self.random.choice(sorted(self.live.ready_ids))
        self.apply(self.runtime.complete(self.live, task_id, data or {}))
        self.completions += 1

    def full_rows(self) -> dict[str, str]:
        fresh = WorkflowState(self.live.workflow, self.runtime.codec).capture(full=True)
        return {r.task_id: r.body for r in fresh.upserts}

    def reload(self, shuffle: bool = False):
        rows = list(self.rows.values())
        if shuffle:
            self.random.shuffle(rows)
        self.live = self.runtime.restore(self.proc, self.header, rows)


def test_sequential_loop_stays_bounded_and_correct_past_depth_1000(runtime):
    # Trap 1: unbounded, SpiffWorkflow reports "completed" past tree depth 1000 (~iteration 333).
    driver = Driver(runtime, process("loops.bpmn", "seq_loop"), {"i": 0, "n": 400})
    while driver.live.ready_ids:
        assert not driver.last.completed
        driver.step({"note": driver.completions})
        assert len(driver.live.workflow.tasks) < 20
    assert driver.last.completed
    assert driver.completions == 1200
    assert driver.last.data["i"] == 400


def test_parallel_loop_runs_1000_iterations_without_recursion_error(runtime):
    # Trap 2: unbounded, the join recurses out of stack near iteration 140.
    driver = Driver(runtime, process("loops.bpmn", "par_loop"), {"i": 0, "n": 1000}, seed=7)
    while driver.live.ready_ids:
        driver.step()
    assert driver.last.completed
    assert driver.completions == 4000
    assert driver.last.data["i"] == 1000
    assert len(driver.live.workflow.tasks) < 25


@pytest.mark.parametrize("seed", range(4))
def test_deleted_data_does_not_come_back_after_a_parallel_join(runtime, seed):
    # Trap 3: the unstructured join merges data from earlier iterations' branches. The script
    # deletes `marker` in iteration 3; it must stay deleted. Random completion order also hits
    # SpiffWorkflow's own crash in such loops ('NoneType' has no attribute 'data').
    driver = Driver(runtime, process("loop_data.bpmn", "par_loop_delete"), {"i": 0, "n": 8, "seen": []}, seed)
    driver.step({"marker": 1})
    while driver.live.ready_ids:
        driver.step()
    assert driver.last.completed
    assert driver.last.data["seen"] == [True, True, False, False, False, False, False, False]


def test_incremental_rows_always_equal_a_full_serialization(runtime):
    driver = Driver(runtime, process("loops.bpmn", "par_loop"), {"i": 0, "n": 30}, seed=3)
    while driver.live.ready_ids:
        driver.step({"value": driver.completions})
        assert {k: r.body for k, r in driver.rows.items()} == driver.full_rows()


def test_reload_from_rows_in_any_order_keeps_task_data(runtime):
    # Trap 4: restoring a child before its parent silently restores its data as {}.
    driver = Driver(runtime, process("loops.bpmn", "seq_loop"), {"i": 0, "n": 20, "project": "CRM"}, seed=1)
    for _ in range(10):
        driver.step({"note": "kept"})
        before = driver.last.data
        driver.reload(shuffle=True)
        ready = [driver.live.workflow.get_task_from_id(t) for t in driver.live.workflow.tasks
                 if str(t) in driver.live.ready_ids]
        assert ready and all(task.data["project"] == "CRM" for task in ready)
        assert ready[0].data["i"] == before["i"]
    while driver.live.ready_ids:
        driver.step()
    assert driver.last.completed and driver.last.data["i"] == 20


def test_failing_script_is_reported_with_its_element(runtime):
    driver = Driver(runtime, process("loops.bpmn", "seq_loop"), {"n": 2})  # no "i": the script fails
    for _ in range(2):
        driver.step()
    outcome = runtime.complete(driver.live, next(iter(driver.live.ready_ids)), {})
    assert outcome.failure is not None
    assert outcome.failure.element_id == "count"
    assert "i" in outcome.failure.message
