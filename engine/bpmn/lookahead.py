"""What completing a person's task leads to: the phase gates that may open next.

A gate's checklist is confirmed by whoever submits the work before it (docs/gates.md §5), so
the task page needs to know which gates lie ahead of a task. The walk follows the sequence
flows out of the task through everything that runs without a person — gateways, script and
service tasks, events, (sub-)process starts and ends — and stops at the next user or manual
task, collecting the gate ids of those that carry one. Every branch of a gateway is followed:
a gate that only one branch reaches is still listed (its checklist is asked for early rather
than too late).
"""
from __future__ import annotations

from typing import Any

from .package import LoadedProcess


def gates_ahead(process: LoadedProcess, element_id: str) -> list[str]:
    """Gate ids of the gate tasks completing `element_id` may reach before any other person's task."""
    specs = [process.spec, *process.subprocess_specs.values()]
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        task_spec = spec.task_specs.get(element_id)
        if task_spec is not None:
            _walk_on(process, specs, spec, list(task_spec.outputs), found, seen)
    return found


def _walk_on(process: LoadedProcess, specs: list, spec: Any, queue: list, found: list[str],
             seen: set[tuple[str, str]]) -> None:
    """Walk from `queue` (task specs of `spec`); at the spec's end, go on after every caller of it."""
    if _walk(process, spec, queue, found, seen):
        for parent in specs:
            for caller in parent.task_specs.values():
                if getattr(caller, "spec", None) == spec.name and parent is not spec:
                    _walk_on(process, specs, parent, list(caller.outputs), found, seen)


def _walk(process: LoadedProcess, spec: Any, queue: list, found: list[str], seen: set[tuple[str, str]]) -> bool:
    """Collect gates reachable in `spec` from `queue`; True if the walk reached the spec's end."""
    reaches_end = False
    while queue:
        task_spec = queue.pop(0)
        key = (spec.name, task_spec.name)
        if key in seen:
            continue
        seen.add(key)
        info = process.find_element(task_spec.name, spec.name)
        if info is not None and info.is_human:
            if info.gate and info.gate not in found:
                found.append(info.gate)
            continue
        sub = process.subprocess_specs.get(getattr(task_spec, "spec", None) or "")
        if sub is not None and not _walk(process, sub, [sub.start], found, seen):
            continue  # a person works inside the sub-process before it can end
        if not task_spec.outputs:
            reaches_end = True
        queue.extend(task_spec.outputs)
    return reaches_end
