"""Persisting a live SpiffWorkflow as one row per task, writing only what a step changed.

SpiffWorkflow's own serializer writes the whole workflow (spec included) as one document;
that grows with every loop iteration and costs milliseconds per save. Here the spec is never
stored (it is rebuilt from the deployed BPMN), the workflow-level header is a small JSON
document, and each task is a row whose body is SpiffWorkflow's own task dict (`TaskConverter`,
which stores a task's data as a delta to its parent's).

`WorkflowState.capture()` returns the rows to upsert and delete since the last capture. A
task's row must be rewritten when its state, data or internal data changed, when its children
changed, or when its parent's data changed (its delta is relative to the parent): the candidate
set covers all of these, and comparing the new body with the last one written drops the rest.
"""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

TOP = ""  # workflow_id of the top-level workflow's tasks

# Tasks whose internal data can change without a state change (timer cycles, event payloads).
_ALWAYS_RECHECK = TaskState.WAITING | TaskState.STARTED


@dataclass
class TaskRow:
    task_id: str
    workflow_id: str
    body: str


@dataclass
class Changes:
    upserts: list[TaskRow] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    header: str = ""


class Codec:
    """JSON encoding of SpiffWorkflow objects with the serializer registry for our spec classes."""

    def __init__(self, serializer_config: dict):
        self.registry = BpmnWorkflowSerializer.configure(serializer_config)
        self._encoder = create_encoder(self.registry)(separators=(",", ":"))

    def dumps(self, obj) -> str:
        return self._encoder.encode(obj)

    def task_body(self, task) -> str:
        return self.dumps(self.registry.convert(task))

    def workflow_header(self, wf) -> dict:
        registry = self.registry
        return {
            "data": registry.convert(registry.clean(wf.data)),
            "correlations": wf.correlations,
            "last_task": str(wf.last_task.id) if wf.last_task is not None else None,
            "success": wf.success,
            "completed": wf.completed,
            "root": str(wf.task_tree.id),
        }


def all_workflows(top: BpmnWorkflow):
    """The top workflow and every live subprocess, with the workflow_id their rows carry."""
    yield TOP, top
    for sp_id, sp in top.subprocesses.items():
        yield str(sp_id), sp


class WorkflowState:
    """Tracks what was last persisted for one live workflow and computes the next delta."""

    def __init__(self, workflow: BpmnWorkflow, codec: Codec, persisted: dict[str, str] | None = None,
                 header: str | None = None):
        self.workflow = workflow
        self.codec = codec
        self._persisted: dict[str, str] = dict(persisted or {})
        self._header = header
        self._mark = time.time()

    def mark(self) -> None:
        """Start of a step: tasks changed after this moment are candidates for writing."""
        self._mark = time.time()

    def header(self) -> str:
        top = self.workflow
        dct = self.codec.workflow_header(top)
        dct["bpmn_events"] = self.codec.registry.convert(top.bpmn_events)
        dct["subprocesses"] = {
            sp_id: {**self.codec.workflow_header(sp), "parent_task_id": str(sp.parent_task_id), "spec": sp.spec.name}
            for sp_id, sp in all_workflows(top) if sp_id != TOP
        }
        return self.codec.dumps(dct)

    def capture(self, full: bool = False) -> Changes:
        """Rows to write since the last capture (all rows when `full`)."""
        mark = self._mark
        current: dict[str, tuple[str, object]] = {}
        candidates: dict[str, object] = {}
        persisted = self._persisted
        for wf_id, wf in all_workflows(self.workflow):
            for task in wf.tasks.values():
                key = str(task.id)
                current[key] = (wf_id, task)
                if full or key not in persisted or task.last_state_change >= mark or task._state & _ALWAYS_RECHECK:
                    candidates[key] = task
        if not full:
            # Parents (children list changed) and children (delta relative to parent) of changed tasks.
            for task in list(candidates.values()):
                parent = task.parent
                if parent is not None:
                    candidates.setdefault(str(parent.id), parent)
                for child_id in task._children:
                    child = task.workflow.tasks.get(child_id)
                    if child is not None:
                        candidates.setdefault(str(child_id), child)
        changes = Changes()
        for key, task in candidates.items():
            body = self.codec.task_body(task)
            if persisted.get(key) != body:
                persisted[key] = body
                changes.upserts.append(TaskRow(key, current[key][0], body))
        for key in [k for k in persisted if k not in current]:
            del persisted[key]
            changes.deletes.append(key)
        header = self.header()
        changes.header = header if header != self._header else ""
        self._header = header
        self._mark = time.time()
        return changes

    def snapshot(self) -> dict[str, str]:
        """Every task's body as the last capture left it (tests compare it with a full capture)."""
        return dict(self._persisted)


def restore_workflow(spec, subprocess_specs: dict, header_json: str, rows: list[TaskRow], codec: Codec,
                     script_engine) -> BpmnWorkflow:
    """Rebuild a live workflow from its header and task rows.

    Rows are restored parents first (breadth-first from each workflow's root): a task's data is
    a delta to its parent's, so a child restored before its parent would silently get `{}`.
    """
    registry = codec.registry
    header = json.loads(header_json)
    by_workflow: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_workflow.setdefault(row.workflow_id, {})[row.task_id] = json.loads(row.body)

    def restore_tasks(wf, wf_header: dict, bodies: dict[str, dict]) -> None:
        wf.tasks = {}
        root_id = wf_header["root"]
        queue = deque([root_id])
        while queue:
            key = queue.popleft()
            body = bodies.get(key)
            if body is None:
                raise ValueError(f"workflow state is missing task {key}")
            registry.restore(body, workflow=wf)
            queue.extend(body["children"])
        wf.task_tree = wf.tasks[UUID(root_id)]
        wf.success = wf_header["success"]
        wf.completed = wf_header.get("completed", False)
        wf.correlations = wf_header.get("correlations", {})
        last = wf_header.get("last_task")
        wf.last_task = wf.tasks.get(UUID(last)) if last else None
        wf.data = registry.restore(wf_header.get("data", {}))

    top = BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
    restore_tasks(top, header, by_workflow.get(TOP, {}))
    top.bpmn_events = registry.restore(header.get("bpmn_events", []))

    # Subprocesses are created parents first: a subprocess' parent task lives in its parent workflow.
    pending = dict(header.get("subprocesses", {}))

    def attach_children(wf) -> None:
        for task in list(wf.tasks.values()):
            key = str(task.id)
            if isinstance(task.task_spec, SubWorkflowTask) and key in pending:
                sp_header = pending.pop(key)
                sp_spec = top.subprocess_specs.get(task.task_spec.spec)
                sp = BpmnSubWorkflow(sp_spec, task.id, top, deserializing=True)
                restore_tasks(sp, sp_header, by_workflow.get(key, {}))
                top.subprocesses[task.id] = sp
                sp.completed_event.connect(task.task_spec._on_subworkflow_completed, task)
                attach_children(sp)

    attach_children(top)
    if pending:
        raise ValueError(f"workflow state has subprocesses without a parent task: {sorted(pending)}")
    return top
