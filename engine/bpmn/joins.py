"""How data comes back together at a parallel or inclusive join.

SpiffWorkflow 3.2 merges every arriving branch's *full* copy of the data, in arrival order
(`UnstructuredJoin._run_hook`). A branch carries everything it copied at the split, so on a
second pass through a parallel section — a loop, a rework round — a branch that did not touch
a value still holds its old copy and overwrites the new value a sibling branch just wrote:
a reviewer would decide on last iteration's test results.

Phasegate merges what each branch *changed*: the data at the split (the branches' common
ancestor), then each branch's changes relative to it — nested objects key by key, deletions
included — in the order the branches arrived. A value no branch touched keeps the split's value;
a value two branches both changed takes the later one, as before.
"""
from __future__ import annotations

import copy

from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.util.task import TaskState

_DELETED = object()


class _Nested(dict):
    """Changes inside a nested object (as opposed to a whole new object value)."""


def _changes(base: dict, new: dict) -> dict:
    """What turns `base` into `new`: changed values, nested objects key by key, deletions marked."""
    delta: dict = {}
    for key, value in new.items():
        if key not in base:
            delta[key] = value
        elif isinstance(value, dict) and isinstance(base[key], dict):
            inner = _changes(base[key], value)
            if inner:
                delta[key] = _Nested(inner)
        elif base[key] != value:
            delta[key] = value
    for key in base:
        if key not in new:
            delta[key] = _DELETED
    return delta


def _apply(target: dict, delta: dict) -> None:
    for key, value in delta.items():
        if value is _DELETED:
            target.pop(key, None)
        elif isinstance(value, _Nested) and isinstance(target.get(key), dict):
            _apply(target[key], value)
        elif isinstance(value, _Nested):
            target[key] = _materialise(value)
        else:
            target[key] = copy.deepcopy(value)


def _materialise(delta: dict) -> dict:
    return {k: _materialise(v) if isinstance(v, _Nested) else copy.deepcopy(v)
            for k, v in delta.items() if v is not _DELETED}


def _split_point(task, other):
    """The nearest common ancestor of two join arrivals: where their branches parted."""
    ancestors = set()
    node = task.parent
    while node is not None:
        ancestors.add(node.id)
        node = node.parent
    node = other.parent
    while node is not None and node.id not in ancestors:
        node = node.parent
    return node


def _run_hook(self, my_task):
    arrivals = [t for t in my_task.workflow.tasks.values()
                if t.task_spec == self and t is not my_task and t.has_state(TaskState.FINISHED_MASK)
                and not my_task.is_descendant_of(t)]
    arrivals.sort(key=lambda t: t.last_state_change)
    splits = [_split_point(my_task, t) for t in arrivals]
    split = next((s for s in splits if s is not None), None)
    if split is None:
        # No sibling branch (a single incoming flow): the stock behaviour is right.
        my_task._inherit_data()
        return True
    merged = copy.deepcopy(split.data)
    for arrival in [*arrivals, my_task]:
        branch_end = arrival.parent
        if branch_end is not None:
            _apply(merged, _changes(split.data, branch_end.data))
        if arrival is not my_task and arrival.has_state(TaskState.COMPLETED):
            # As SpiffWorkflow does: a branch reset after it completed must not keep a second future.
            arrival._drop_children(force=True)
    my_task.data = merged
    return True


def install() -> None:
    """Route every unstructured join (parallel and inclusive gateways) through `_run_hook` above."""
    UnstructuredJoin._run_hook = _run_hook
