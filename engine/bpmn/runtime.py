"""Running BPMN on SpiffWorkflow: the only place that drives a live workflow.

A command (start, complete a task, fire timers, cancel) is one *step*: it changes the workflow,
runs engine tasks until the process waits on people, timers or messages, bounds the loop
history, and reports a `StepOutcome` — the task rows to write, the human tasks that became
ready or went away, the elements that ran, and any failure — for the service layer to persist
in a single transaction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import EventSubprocess
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task as SpiffTask
from SpiffWorkflow.util.task import TaskState

from engine.bpmn import joins, pruning
from engine.bpmn.package import ElementInfo, LoadedProcess
from engine.bpmn.state import Codec, Changes, TaskRow, WorkflowState, all_workflows, restore_workflow
from engine.domain import clock
from engine.domain.errors import Conflict, ExecutionFailure

# SpiffWorkflow logs every state change at INFO with eagerly built extras; our event log is
# the history, so keep its loggers quiet unless someone asks for them — and skip building the
# extras (a dict per state change, on the hot path) when nothing would log them.
logging.getLogger("spiff").setLevel(logging.WARNING)
_spiff_task_logger = logging.getLogger("spiff.task")
_collect_log_extras = SpiffTask.collect_log_extras


def _log_extras_if_logging(self, dct=None):
    if not _spiff_task_logger.isEnabledFor(logging.INFO):
        return {}
    return _collect_log_extras(self, dct)


SpiffTask.collect_log_extras = _log_extras_if_logging


_DEFINITE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.COMPLETED


class _EngineClockDatetime(datetime):
    """`datetime` whose now() is the engine clock, so timers obey tests' controlled time.

    While due timers are fired the clock reads a microsecond late: SpiffWorkflow fires a timer
    only once `now` is strictly past it, and a timer is due *at* its time (a sweep at exactly
    the due moment must move the instance on, not record an empty step).
    """

    slack = timedelta(0)

    @classmethod
    def now(cls, tz=None):
        current = clock.now() + cls.slack
        return current.astimezone(tz) if tz is not None else current.replace(tzinfo=None)


# SpiffWorkflow's timer definitions call datetime.now(timezone.utc) directly; route them through
# the engine clock (the module keeps every other datetime behaviour).
spiff_timer.datetime = _EngineClockDatetime
# Joins merge what each branch changed, not each branch's stale full copy (engine/bpmn/joins.py).
joins.install()

SCRIPT_GLOBALS = {
    "datetime": datetime,
    "date": date,
    "timedelta": timedelta,
    "timezone": timezone,
}


def new_script_engine() -> PythonScriptEngine:
    return PythonScriptEngine(environment=TaskDataEnvironment(dict(SCRIPT_GLOBALS)))


@dataclass
class ReadyHumanTask:
    spiff_task_id: str
    element: ElementInfo
    data: dict
    # Candidate roles: the element's own, or what its candidate-group expression gave for this task.
    roles: list[str] = field(default_factory=list)


@dataclass
class StepOutcome:
    changes: Changes
    path: list[str] = field(default_factory=list)
    ready: list[ReadyHumanTask] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    completed: bool = False
    failure: ExecutionFailure | None = None
    data: dict | None = None
    wake_at: datetime | None = None
    phase: str | None = None


class LiveWorkflow:
    """A workflow in memory plus what is needed to persist its next step incrementally."""

    def __init__(self, process: LoadedProcess, workflow: BpmnWorkflow, state: WorkflowState):
        self.process = process
        self.workflow = workflow
        self.state = state
        self.ready_ids: set[str] = {str(t.id) for t in _ready_human_tasks(workflow)}


def _ready_human_tasks(workflow: BpmnWorkflow):
    for _wf_id, wf in all_workflows(workflow):
        for task in wf.tasks.values():
            if task._state == TaskState.READY and task.task_spec.manual:
                yield task


def _is_event_subprocess(top: BpmnWorkflow, sub) -> bool:
    parent = top.get_task_from_id(sub.parent_task_id)
    return isinstance(parent.task_spec, EventSubprocess)


def start_element_ids(process: LoadedProcess) -> list[str]:
    """The BPMN start events of the process itself (not of its event subprocesses)."""
    return [ts.bpmn_id for ts in process.spec.start.outputs if getattr(ts, "bpmn_id", None)]


def _data_objects(workflow) -> dict:
    """A workflow's BPMN data objects by id, and also by name where the name is a plain identifier
    (designers write `risks` for `<dataObject id="risk_register" name="risks">`)."""
    values = dict(workflow.data.get("data_objects") or {})
    for object_id, spec in getattr(workflow.spec, "data_objects", {}).items():
        name = getattr(spec, "bpmn_name", None)
        if object_id in values and name and name.isidentifier():
            values.setdefault(name, values[object_id])
    return values


def _element_id(task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None)


def failure_from_exception(exc: Exception, current_task=None) -> ExecutionFailure:
    """Name the element that failed and say why, without a traceback."""
    task = getattr(exc, "task", None) or current_task
    spec = getattr(exc, "task_spec", None) or (task.task_spec if task is not None else None)
    element_id = getattr(spec, "bpmn_id", None) or getattr(spec, "name", None)
    element_name = getattr(spec, "bpmn_name", None)
    message = str(exc) if isinstance(exc, SpiffWorkflowException) else f"{type(exc).__name__}: {exc}"
    notes = getattr(exc, "notes", None) or getattr(exc, "__notes__", None) or []
    extra = {}
    if notes:
        extra["notes"] = [str(n) for n in notes]
    line = getattr(exc, "line_number", None)
    if line:
        extra["line"] = line
    return ExecutionFailure(element_id, element_name, message, extra)


class Runtime:
    """Drives workflows of loaded processes; stateless apart from the codec."""

    def __init__(self, serializer_config: dict):
        self.codec = Codec(serializer_config)

    # -- creating and restoring ------------------------------------------------------------

    def start(self, process: LoadedProcess, data: dict) -> tuple[LiveWorkflow, StepOutcome]:
        workflow = BpmnWorkflow(process.spec, process.subprocess_specs, script_engine=new_script_engine())
        # Initial data goes on the start task so every later task inherits it.
        workflow.task_tree.data.update(data)
        for child in workflow.task_tree.children:
            child.data.update(data)
        live = LiveWorkflow(process, workflow, WorkflowState(workflow, self.codec))
        live.state.mark()
        outcome = self._run_engine(live, path=[], last_done=workflow.task_tree)
        return live, outcome

    def restore(self, process: LoadedProcess, header: str, rows: list[TaskRow]) -> LiveWorkflow:
        workflow = restore_workflow(process.spec, process.subprocess_specs, header, rows, self.codec,
                                    new_script_engine())
        state = WorkflowState(workflow, self.codec, {r.task_id: r.body for r in rows}, header)
        return LiveWorkflow(process, workflow, state)

    # -- commands --------------------------------------------------------------------------

    def complete(self, live: LiveWorkflow, spiff_task_id: str, data: dict) -> StepOutcome:
        task = live.workflow.get_task_from_id(UUID(spiff_task_id))
        if task is None or task._state != TaskState.READY or not task.task_spec.manual:
            raise Conflict(f"task {spiff_task_id} is not ready")
        live.state.mark()
        task.data.update(data)
        path: list[str] = []
        try:
            task.run()
        except Exception as exc:  # a post-script or output mapping failed on the user's task
            return self._finish(live, path, failure_from_exception(exc, task), task)
        path.append(_element_id(task))
        return self._run_engine(live, path, task)

    def catchable_messages(self, live: LiveWorkflow) -> dict[str, object]:
        """Message names the instance can receive now -> an event definition that catches it.

        Waiting catch events (intermediate, boundary, receive tasks) and the message start
        events of event subprocesses, which SpiffWorkflow keeps as triggers of the process start.
        """
        found: dict[str, object] = {}
        workflow = live.workflow
        for task in workflow.event_manager.tasks.values():
            definition = getattr(task.task_spec, "event_definition", None)
            if isinstance(definition, MessageEventDefinition) and task._state == TaskState.WAITING:
                found.setdefault(definition.name, definition)
        for spec_name in getattr(workflow.spec.start, "trigger_specs", []):
            sp_spec = workflow.subprocess_specs.get(spec_name)
            for start_event in getattr(sp_spec, "bpmn_start_events", []):
                definition = start_event.event_definition
                if isinstance(definition, MessageEventDefinition):
                    found.setdefault(definition.name, definition)
        return found

    def message(self, live: LiveWorkflow, name: str, payload: dict) -> StepOutcome:
        """Deliver message `name` with `payload`; Conflict if nothing in the instance catches it."""
        catchable = self.catchable_messages(live)
        definition = catchable.get(name)
        if definition is None:
            waiting = ", ".join(sorted(catchable)) or "no message"
            raise Conflict(f"the instance is not waiting for message '{name}' (it can receive: {waiting})")
        live.state.mark()
        try:
            live.workflow.send_event(BpmnEvent(definition, payload))
        except Exception as exc:
            return self._finish(live, [], failure_from_exception(exc), None)
        return self._run_engine(live, path=[])

    def fire_timers(self, live: LiveWorkflow) -> StepOutcome:
        live.state.mark()
        _EngineClockDatetime.slack = timedelta(microseconds=1)
        try:
            live.workflow.refresh_timers()
            return self._run_engine(live, path=[])
        finally:
            _EngineClockDatetime.slack = timedelta(0)

    def cancel(self, live: LiveWorkflow) -> StepOutcome:
        live.state.mark()
        live.workflow.cancel()
        return self._finish(live, [], None, None)

    # -- engine ----------------------------------------------------------------------------

    def _run_engine(self, live: LiveWorkflow, path: list[str], last_done=None) -> StepOutcome:
        current: list = [None]
        last: list = [last_done]

        def will_complete(task):
            current[0] = task

        def did_complete(task):
            if task._state == TaskState.COMPLETED:
                last[0] = task
                element = _element_id(task)
                if element is not None:
                    path.append(element)
            current[0] = None

        failure = None
        try:
            workflow = live.workflow
            workflow.do_engine_steps(will_complete, did_complete)
            # do_engine_steps ends by refreshing timers; one that fired there (a zero duration, a
            # date in the past) has a READY successor that must run in this same step.
            if workflow.get_next_task(state=TaskState.READY, manual=False):
                workflow.do_engine_steps(will_complete, did_complete)
        except Exception as exc:
            failure = failure_from_exception(exc, current[0])
        return self._finish(live, path, failure, last[0])

    def _finish(self, live: LiveWorkflow, path: list[str], failure: ExecutionFailure | None,
                last_done) -> StepOutcome:
        workflow = live.workflow
        if failure is None:
            failure = self._bound_loops(live)
        elements = live.process.elements
        ready_now = {str(t.id): t for t in _ready_human_tasks(workflow)}
        ready = [self._ready_task(live.process, key, t) for key, t in ready_now.items() if key not in live.ready_ids]
        finished = [key for key in live.ready_ids if key not in ready_now]
        live.ready_ids = set(ready_now)
        completed = failure is None and workflow.is_completed()
        changes = live.state.capture()
        phase = None
        for element_id in [*path, *(r.element.element_id for r in ready)]:
            info = elements.get(element_id)
            if info is not None and info.phase:
                phase = info.phase
        return StepOutcome(
            changes=changes,
            path=[p for p in path if p in elements],
            ready=ready,
            finished=finished,
            completed=completed,
            failure=failure,
            data=self.current_data(workflow, completed, last_done, ready_now.values()),
            wake_at=self.next_timer(workflow),
            phase=phase,
        )

    def _ready_task(self, process: LoadedProcess, key: str, task) -> ReadyHumanTask:
        element_id = _element_id(task) or task.task_spec.name
        info = process.find_element(element_id, task.workflow.spec.name) or ElementInfo(
            element_id, "userTask", getattr(task.task_spec, "bpmn_name", None))
        roles = list(info.roles)
        if not roles and info.roles_expression:
            roles = self._roles_from_expression(task, info.roles_expression)
        data = task.data
        if info.gate:
            # A gate reviews the process's data: its task data and the BPMN data objects in scope.
            data = dict(task.data)
            workflow = task.workflow
            while workflow is not None:
                for name, value in _data_objects(workflow).items():
                    data.setdefault(name, value)
                workflow = workflow.parent_workflow
        return ReadyHumanTask(key, info, data, roles)

    @staticmethod
    def _roles_from_expression(task, expression: str) -> list[str]:
        """`camunda:candidateGroups="${approverGroups}"`: a role name, a comma list, or a list."""
        try:
            value = task.workflow.script_engine.evaluate(task, expression)
        except Exception:
            return []  # the task stays routed to admins, who can see the data and reassign
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple, set)):
            return [str(v).strip() for v in value if str(v).strip()]
        return []

    def _bound_loops(self, live: LiveWorkflow) -> ExecutionFailure | None:
        """Cut finished loop history at every loop re-entry reached in this step.

        Candidates are the tasks this step made definite — live ones and engine tasks that already
        ran (a loop may re-enter at a gateway) — shallowest first, so one cut at the loop entry
        covers the whole previous iteration.
        """
        mark = live.state._mark
        for _wf_id, wf in list(all_workflows(live.workflow)):
            touched = [t for t in wf.tasks.values() if t.last_state_change >= mark and t._state & _DEFINITE]
            touched.sort(key=pruning.depth)
            for task in touched:
                if task.id in wf.tasks:
                    pruning.cut_loop_history(task)
            for task in touched:
                if task.id in wf.tasks and pruning.depth(task) > pruning.UNSAFE_DEPTH:
                    return ExecutionFailure(
                        _element_id(task), task.task_spec.bpmn_name,
                        "the process history below this element is too deep to run safely "
                        f"(more than {pruning.UNSAFE_DEPTH} steps without a loop Phasegate can bound)")
        return None

    def current_data(self, workflow: BpmnWorkflow, completed: bool, last_done, ready_tasks=None) -> dict | None:
        """The instance's data after a step (None: unchanged).

        Task data travels with the tokens, so "the" data of a running instance is taken from the
        main line of work: the newest ready human task outside event subprocesses (a risk raised
        on the side carries only its own payload), else the last task that ran. BPMN data objects
        (shared by all branches) are shown too, under their own names.
        """
        clean = self.codec.registry.clean
        if completed:
            return clean(workflow.data)
        newest = None
        for task in ready_tasks if ready_tasks is not None else _ready_human_tasks(workflow):
            if task.workflow is not workflow and _is_event_subprocess(workflow, task.workflow):
                continue
            if newest is None or task.last_state_change > newest.last_state_change:
                newest = task
        source = newest if newest is not None else last_done
        if source is None:
            return None
        data = clean(source.data)
        for _wf_id, wf in all_workflows(workflow):
            for name, value in _data_objects(wf).items():
                if value is not None:
                    data.setdefault(name, value)
        return data

    def next_timer(self, workflow: BpmnWorkflow) -> datetime | None:
        """Earliest due time of a waiting timer, so a worker can find due instances by index."""
        earliest = None
        for task in workflow.event_manager.tasks.values() if hasattr(workflow.event_manager, "tasks") else []:
            if task._state != TaskState.WAITING:
                continue
            value = task.internal_data.get("event_value")
            when = None
            if isinstance(value, str):
                try:
                    when = spiff_timer.TimerEventDefinition.get_datetime(value)
                except Exception:
                    when = None
            elif isinstance(value, dict) and "next" in value:
                when = datetime.fromisoformat(value["next"])
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                earliest = when if earliest is None or when < earliest else earliest
        return earliest

    def data_for(self, live: LiveWorkflow, spiff_task_id: str) -> dict[str, Any]:
        task = live.workflow.get_task_from_id(UUID(spiff_task_id))
        return task.data if task is not None else {}
