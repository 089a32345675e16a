"""Scenario files: drive a real, persisted instance through the engine from a YAML script.

A scenario says what each task submits, in order (rounds of a loop are simply repeated
steps, or a `repeat` block). Each step goes through the same service calls as a person using
the CLI or the inbox — role checks, form validation, events — so a scenario is an executable
specification of a process and a regression test at the same time.

```yaml
process: crm_implementation        # optional; the CLI argument wins
business_key: CRM-HAPPY
start: {user: project-manager, data: {iterations: 3}}
steps:
  - task: kickoff_define_goals     # element id of a task that must be ready now (or a gate: its
                                   # approvers decide; `outcome:` or data.decision, or `decisions:`
                                   # [{user, outcome, comment, conditions}] one by one)
    user: project-manager          # optional: default is a user holding the task's role
    data: {goals: [...]}
  - repeat: 3                      # the nested steps, three times; "{round}" in strings -> 1, 2, 3
    steps:
      - task: build_iteration
        data: {summary: "iteration {round}"}
  - message: raise_risk            # deliver a message to the instance
    data: {risk: "key user unavailable"}
  - advance: P15D                  # move the engine clock on and fire due timers
  - close_action: DPIA             # close the open action item (of a Conditional Go) whose text
    note: added to the plan        # contains this, as its owner (or `user:`), with an optional note
expect: {state: completed}         # optional checks at the end
```
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import InvalidInput, PhasegateError
from engine.domain.routing import parse_duration
from engine.services import gates, instances, tasks
from engine.services.demo import user_name_for

_STEP = {
    "type": "object",
    "oneOf": [
        {"required": ["task"]},
        {"required": ["message"]},
        {"required": ["advance"]},
        {"required": ["close_action"]},
        {"required": ["repeat", "steps"]},
    ],
    "properties": {
        "task": {"type": "string", "minLength": 1},
        "message": {"type": "string", "minLength": 1},
        "advance": {"type": "string", "minLength": 2},
        "close_action": {"type": "string", "minLength": 1},
        "user": {"type": "string", "minLength": 1},
        "data": {"type": "object"},
        "repeat": {"type": "integer", "minimum": 1, "maximum": 1000},
        "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
        "note": {"type": "string"},  # a remark for the reader; with close_action, the closing note
        "outcome": {"type": "string"},
        "comment": {"type": "string"},
        "conditions": {"type": "array"},
        "decisions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"user": {"type": "string"}, "outcome": {"type": "string"}, "comment": {"type": "string"},
                           "conditions": {"type": "array"}, "on_behalf_of": {"type": "string"},
                           "password": {"type": "string"}}}},
    },
    "additionalProperties": False,
}

SCENARIO_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Phasegate scenario",
    "type": "object",
    "required": ["steps"],
    "properties": {
        "process": {"type": "string"},
        "description": {"type": "string"},
        "business_key": {"type": "string"},
        "start": {
            "type": "object",
            "properties": {"user": {"type": "string"}, "data": {"type": "object"}},
            "additionalProperties": False,
        },
        "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
        "expect": {
            "type": "object",
            "properties": {"state": {"enum": ["running", "completed", "cancelled", "error"]},
                           "phase": {"type": ["string", "null"]}, "data": {"type": "object"}},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
    "$defs": {"step": _STEP},
}


class ScenarioFailed(PhasegateError):
    code = "scenario_failed"
    http_status = 422


@dataclass
class ScenarioRun:
    instance_id: int
    path: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def load_scenario(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such scenario file '{path}'", fields={"scenario": ["file not found"]})
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InvalidInput(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                           fields={"scenario": [str(exc)]})
    errors = sorted(Draft202012Validator(SCENARIO_SCHEMA).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        fields = {"/".join(str(p) for p in e.absolute_path) or "(scenario)": [e.message] for e in errors}
        raise InvalidInput(f"{path}: not a valid scenario: " + "; ".join(f"{k}: {v[0]}" for k, v in fields.items()),
                           fields=fields)
    return document


def _substitute(value: Any, round_no: int | None) -> Any:
    if round_no is None:
        return value
    if isinstance(value, str):
        return value.replace("{round}", str(round_no))
    if isinstance(value, list):
        return [_substitute(v, round_no) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, round_no) for k, v in value.items()}
    return value


def _flatten(steps: list[dict], round_no: int | None = None, prefix: str = ""):
    """(label, step) pairs with `repeat` blocks unrolled."""
    for index, step in enumerate(steps, 1):
        label = f"{prefix}{index}"
        if "repeat" in step:
            for r in range(1, step["repeat"] + 1):
                yield from _flatten(step["steps"], r, f"{label}.round{r}.")
        else:
            yield label, _substitute(step, round_no)


def _default_user(app: Phasegate, roles: list[str]) -> str:
    """A user holding one of the task's roles: the demo user named after it, else any member."""
    with app.uow() as uow:
        for role in roles:
            demo_name = user_name_for(role)
            if demo_name in uow.users.members_of(role):
                return demo_name
        for role in roles:
            members = uow.users.members_of(role)
            if members:
                return sorted(members)[0]
        admins = uow.users.members_of("admin")
    if admins:
        return sorted(admins)[0]
    raise ScenarioFailed(f"nobody holds role(s) {', '.join(roles) or '(none)'}; add users first "
                         "(`phasegate demo-users`)")


def run_scenario(app: Phasegate, process_key: str | None, scenario_path: str | Path) -> ScenarioRun:
    scenario = load_scenario(scenario_path)
    key = process_key or scenario.get("process")
    if not key:
        raise InvalidInput("which process? give PROCESS or `process:` in the scenario", fields={"process": ["required"]})
    start = scenario.get("start", {})
    starter = start.get("user", "admin")
    inst = instances.start(app, key, data=start.get("data", {}), business_key=scenario.get("business_key"),
                           user=starter)
    run = ScenarioRun(inst.id)
    run.log.append(f"started {key} v{inst.version} as instance {inst.id}")
    for label, step in _flatten(scenario["steps"]):
        current = instances.show(app, inst.id)
        if current.state != "running":
            raise ScenarioFailed(f"step {label}: the instance is {current.state} "
                                 + (f"({current.error['message']} at {current.error['element']})" if current.error else "")
                                 + f"; path so far: {' > '.join(run.path)}")
        run_step(app, run, label, step, current, default_user=starter)
    final = instances.show(app, inst.id)
    expect = scenario.get("expect", {})
    if "state" in expect and final.state != expect["state"]:
        raise ScenarioFailed(f"expected the instance to end {expect['state']}, it is {final.state}"
                             + (f" ({final.error['message']} at {final.error['element']})" if final.error else "")
                             + f"; open tasks: {[t.element_id for t in final.tasks]}")
    for name, value in expect.get("data", {}).items():
        if final.data.get(name) != value:
            raise ScenarioFailed(f"expected data {name} = {value!r}, found {final.data.get(name)!r}")
    return run


def run_step(app: Phasegate, run: ScenarioRun, label: str, step: dict, current, *, default_user: str) -> None:
    """One step of a scenario on a running instance (`current`, as `instances.show` returns it)."""
    if "task" in step:
        _complete_step(app, run, label, step, current)
    elif "message" in step:
        instances.send_message(app, run.instance_id, step["message"], step.get("data", {}),
                               user=step.get("user", default_user))
        run.log.append(f"step {label}: message {step['message']}")
    elif "close_action" in step:
        _close_action_step(app, run, label, step)
    else:
        delta = parse_duration(step["advance"])
        if delta is None:
            raise ScenarioFailed(f"step {label}: advance '{step['advance']}' is not an ISO 8601 duration")
        moved_clock = clock.current()
        if not hasattr(moved_clock, "advance"):
            raise ScenarioFailed(f"step {label}: time can only be advanced with a controllable clock")
        moved_clock.advance(delta)
        instances.fire_due_timers(app)
        run.log.append(f"step {label}: advanced the clock by {step['advance']}")


def _close_action_step(app: Phasegate, run: ScenarioRun, label: str, step: dict) -> None:
    """Close the one open action item whose text contains `close_action` (case-insensitive)."""
    wanted = step["close_action"]
    open_items = [i for i in gates.action_items(app, run.instance_id) if i["state"] == "open"]
    matches = [i for i in open_items if wanted.lower() in i["text"].lower()]
    if len(matches) != 1:
        found = "; ".join(i["text"] for i in open_items) or "none"
        raise ScenarioFailed(f"step {label}: close_action '{wanted}' matches {len(matches)} open action items "
                             f"(open: {found}); it must match exactly one")
    item = matches[0]
    gates.close_action_item(app, item["id"], step.get("user", item["owner"]), note=step.get("note"))
    run.log.append(f"step {label}: closed action item {item['id']} ({item['text']})")


def _complete_step(app: Phasegate, run: ScenarioRun, label: str, step: dict, current) -> None:
    wanted = step["task"]
    ready = [t for t in current.tasks if t.element_id == wanted]
    if not ready:
        raise ScenarioFailed(
            f"step {label}: task '{wanted}' is not ready; ready now: "
            f"{', '.join(t.element_id for t in current.tasks) or 'nothing'}; path so far: {' > '.join(run.path)}")
    task = ready[0]
    if task.kind == "approval":
        _decide_step(app, run, label, step, current, wanted)
        return
    user = step.get("user") or _default_user(app, task.candidate_roles or ([task.role] if task.role else []))
    try:
        tasks.complete(app, task.id, user, step.get("data", {}))
    except InvalidInput as exc:
        raise ScenarioFailed(f"step {label}: task '{wanted}' rejected the data: {exc.message}") from exc
    except PhasegateError as exc:
        raise ScenarioFailed(f"step {label}: task '{wanted}': {exc.message}") from exc
    run.path.append(wanted)
    run.log.append(f"step {label}: {wanted} by {user}")


def _outcome_of(step: dict) -> str:
    """A gate step's outcome: `outcome:`, else the form's decision (approve -> go, reject -> recycle)."""
    if step.get("outcome"):
        return step["outcome"]
    decision = (step.get("data") or {}).get("decision", "approve")
    return {"approve": "go", "reject": "recycle"}.get(decision, decision)


def _decide_step(app: Phasegate, run: ScenarioRun, label: str, step: dict, current, wanted: str) -> None:
    """A gate: the listed `decisions:` in turn, or else eligible approvers deciding the step's
    outcome one after another until the gate's rule is decided."""

    planned = list(step.get("decisions") or [])
    data = step.get("data") or {}
    default = {"outcome": _outcome_of(step), "comment": step.get("comment") or data.get("comment"),
               "conditions": step.get("conditions"), "user": step.get("user")}
    for _ in range(50):
        view = next((g for g in gates.gates_view(app, current.id)
                     if g.get("element_id") == wanted and g["state"] == "open"), None)
        if view is None:
            raise ScenarioFailed(f"step {label}: gate '{wanted}' is not open")
        if step.get("decisions"):
            if not planned:
                raise ScenarioFailed(f"step {label}: gate '{wanted}' is still open after the listed decisions "
                                     f"(may still decide: {', '.join(view['eligible']) or 'nobody'})")
            decision = {**default, "user": None, **planned.pop(0)}
        else:
            decision = default
            default = {**default, "user": None}  # a named user decides first; others follow
        user = decision.get("user") or _eligible_user(view, wanted)
        task = _approval_for(app, current.id, wanted, user)
        if task is None:
            raise ScenarioFailed(f"step {label}: gate '{wanted}': no approval task of {user}'s roles is open")
        try:
            result = gates.decide(app, task.id, user, decision["outcome"], comment=decision.get("comment"),
                                  conditions=decision.get("conditions"), on_behalf_of=decision.get("on_behalf_of"),
                                  password=decision.get("password"))
        except PhasegateError as exc:
            raise ScenarioFailed(f"step {label}: gate '{wanted}': {user}: {exc.message}") from exc
        run.log.append(f"step {label}: {wanted}: {user} decided {decision['outcome']}")
        if result["decided"]:
            run.path.append(wanted)
            return
    raise ScenarioFailed(f"step {label}: gate '{wanted}' was not decided")


def _eligible_user(view: dict, element_id: str) -> str:
    """Someone who may still decide the gate: preferably the demo user named after a waited-on role."""
    for role, people in (view.get("waiting_on") or {}).items():
        if user_name_for(role) in people:
            return user_name_for(role)
    if view["eligible"]:
        return view["eligible"][0]
    excluded = "; ".join(f"{e['user']}: {e['reason']}" for e in view.get("excluded", []))
    raise ScenarioFailed(f"gate '{element_id}': nobody may decide" + (f" ({excluded})" if excluded else ""))


def _approval_for(app: Phasegate, instance_id: int, element_id: str, user: str):
    """The approval task `user` would decide on: one routed to a role they hold."""
    mine = [t for t in tasks.list_tasks(app, user=user, instance_id=instance_id)
            if t.element_id == element_id and t.kind == "approval"]
    if mine:
        return mine[0]
    approvals = [t for t in instances.show(app, instance_id).tasks if t.element_id == element_id]
    return approvals[0] if approvals else None  # a delegate acts on their delegator's task
