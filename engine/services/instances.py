"""Use cases for process instances: start, show, list, cancel, fire due timers."""
from __future__ import annotations

from engine.bootstrap import Phasegate
from engine.adapters.repositories import to_instance
from engine.bpmn.runtime import LiveWorkflow, start_element_ids
from engine.domain.forms import validate_submission
from engine.domain import clock
from engine.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.domain.model import Event, Instance
from engine.domain.permissions import Actor, may_read_instance, may_start, start_roles
from engine.services.definitions import deployed_process, latest_definition_row, phases_in_order
from engine.services.steps import StepContext, persist_step
from engine.services.users import require_user


def _context(row) -> StepContext:
    return StepContext(row.id, row.revision, row.key, row.business_key, row.phase, row.event_seq, row.event_hash)


def load_live(app: Phasegate, uow, instance_row) -> LiveWorkflow:
    """The instance's workflow: from the cache if it is at the stored revision, else from its rows."""
    live = app.live.take(instance_row.id, instance_row.revision)
    if live is not None:
        return live
    deployed = deployed_process(app, uow, instance_row.definition_id)
    return app.runtime.restore(deployed.process, instance_row.workflow, uow.instances.workflow_rows(instance_row.id))


def start(app: Phasegate, key: str, *, data: dict | None = None, business_key: str | None = None,
          user: str = "admin", version: int | None = None, gate_overrides: dict | None = None,
          actor: Actor | None = None) -> Instance:
    """Start the latest (or a given) version of `key` and run it until it waits.

    With `actor` (the API and pages), they start it and must be allowed to: admins, or holders of
    one of the process's start roles (`permissions.start_roles`).
    """
    if actor is not None:
        user = actor.name
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise InvalidInput("data must be a JSON object", fields={"data": ["expected an object"]})
    now = clock.now()
    with app.uow() as uow:
        require_user(uow, user)
        if version is None:
            definition_row = latest_definition_row(uow, key)
        else:
            definition_row = uow.definitions.by_key_version(key, version)
            if definition_row is None:
                raise NotFound(f"unknown version {version} of process definition '{key}'")
        deployed = deployed_process(app, uow, definition_row.id)
        if actor is not None:
            _require_may_start(actor, deployed)
        data = _validate_start_form(deployed, data)
        if gate_overrides:
            _check_gate_overrides(uow, definition_row.key, gate_overrides)
        instance_id = uow.instances.add(definition=_as_definition(definition_row), business_key=business_key,
                                        started_by=user, at=now, gate_overrides=gate_overrides or None)
        live, outcome = app.runtime.start(deployed.process, data)
        ctx = StepContext(instance_id, 0, definition_row.key, business_key, None, 0, "0" * 64)
        persist_step(app, uow, ctx, live, outcome, actor=user, at=now, event_type="started",
                     payload={"data": data, "business_key": business_key,
                              "definition": {"key": definition_row.key, "version": definition_row.version,
                                             "hash": definition_row.hash}})
        uow.commit()
    return show(app, instance_id)


def _own_start_events(deployed) -> list:
    """The routing facts of the process's own start events (not those of its subprocesses)."""
    found = (deployed.process.elements.get(element_id) for element_id in start_element_ids(deployed.process))
    return [info for info in found if info is not None]


def start_roles_of(deployed) -> list[str]:
    """Who may start the process (`permissions.start_roles` of its own start events; those of
    embedded subprocesses — a phase's start event in another lane — do not count). Empty: admins."""
    return sorted({role for info in _own_start_events(deployed) for role in start_roles(info.to_dict())})


def _require_may_start(actor: Actor, deployed) -> None:
    roles = start_roles_of(deployed)
    if not may_start(actor, roles):
        who = f"a member of {', '.join(repr(r) for r in roles)}" if roles else "an admin (its start event has no role)"
        raise Forbidden(f"user '{actor.name}' may not start '{deployed.key}': it is started by {who}")


def _start_form(deployed) -> tuple[str | None, dict | None]:
    """(name, form) of the start form (Camunda's start form on the start event), or (None, None)."""
    for info in _own_start_events(deployed):
        if info.form:
            return info.form, deployed.forms.get(info.form)
    return None, None


def startable(app: Phasegate, actor: Actor) -> list[dict]:
    """The latest version of every process `actor` may start (`permissions.may_start`), by name:
    [{"definition": Definition, "roles": its start roles, "form": its start form's name or None}]."""
    from engine.domain.errors import PhasegateError

    found = []
    with app.uow() as uow:
        for definition in uow.definitions.list(latest_only=True):
            try:
                deployed = deployed_process(app, uow, definition.id)
            except PhasegateError:
                continue  # a definition that no longer loads cannot be started either
            roles = start_roles_of(deployed)
            if may_start(actor, roles):
                found.append({"definition": definition, "roles": roles, "form": _start_form(deployed)[0]})
    return sorted(found, key=lambda s: ((s["definition"].name or s["definition"].key).lower(), s["definition"].key))


def start_view(app: Phasegate, key: str, actor: Actor) -> dict:
    """What the start page shows for the latest version of `key`: the definition, who starts it
    and its start form (a JSON Schema, or None). Forbidden unless `actor` may start it."""
    with app.uow() as uow:
        row = latest_definition_row(uow, key)
        deployed = deployed_process(app, uow, row.id)
    _require_may_start(actor, deployed)
    form_name, form = _start_form(deployed)
    return {"definition": _as_definition(row), "roles": start_roles_of(deployed), "form_name": form_name,
            "form": form}


def _check_gate_overrides(uow, process_key: str, overrides: dict) -> None:
    """An instance may only change what each gate lists as `overridable`."""
    from engine.domain.gate_config import apply_overrides, from_document

    config = uow.gates.latest_config(process_key)
    if config is None:
        raise InvalidInput(f"process '{process_key}' has no gate configuration to override",
                           fields={"gate_overrides": ["no gates"]})
    from engine.adapters.gate_files import validate_gate_document

    try:
        document = apply_overrides(config.document, overrides, only_overridable=True)
        problems = validate_gate_document(document, "gate overrides")
        if problems:
            raise InvalidInput("gate overrides are not valid settings: " + "; ".join(
                f"{p.element_id}: {p.message}" for p in problems),
                fields={p.element_id or "gate_overrides": [p.message] for p in problems})
        from_document(document)
    except KeyError as exc:
        raise InvalidInput(str(exc.args[0]), fields={"gate_overrides": [str(exc.args[0])]})
    except PermissionError as exc:
        raise InvalidInput(str(exc), fields={"gate_overrides": [str(exc)]})
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"gate overrides are not valid settings: {exc}", fields={"gate_overrides": [str(exc)]})


def _validate_start_form(deployed, data: dict) -> dict:
    """A start event with a form (Camunda's start form) validates the initial data."""
    form_name, form = _start_form(deployed)
    return validate_submission(form, data, form_name) if form_name else data


def _as_definition(row):
    from engine.domain.model import Definition

    return Definition(row.id, row.key, row.version, row.hash, row.name, row.deployed_by, row.deployed_at)


def show(app: Phasegate, instance_id: int) -> Instance:
    with app.uow() as uow:
        return read_instance(uow, instance_id)


def read_instance(uow, instance_id: int) -> Instance:
    """The instance with its open tasks, as `show` gives it, read in the caller's unit of work."""
    shown = uow.instances.shown(instance_id)
    if shown is None:
        raise NotFound(f"unknown instance {instance_id}")
    return shown


def phases(app: Phasegate, instance_id: int) -> list[dict]:
    """The phases the instance went through, in order, and the one it is in now."""
    with app.uow() as uow:
        row = uow.instances.get_row(instance_id)
        if row is None:
            raise NotFound(f"unknown instance {instance_id}")
        seen: list[str] = []
        for _element, phase, _user in uow.gates.completed_work(instance_id):
            if phase and phase not in seen:
                seen.append(phase)
    current = row.phase if row.state == "running" else None
    if current and current not in seen:
        seen.append(current)
    return [{"phase": p, "state": "current" if p == current else "done"} for p in seen]


def list_instances(app: Phasegate, *, state: str | None = None, key: str | None = None,
                   business_key: str | None = None, limit: int = 200, offset: int = 0) -> list[Instance]:
    with app.uow() as uow:
        return [to_instance(r, []) for r in uow.instances.list(state=state, key=key, business_key=business_key,
                                                               limit=limit, offset=offset)]


def history(app: Phasegate, instance_id: int, actor: Actor | None = None) -> list[Event]:
    with app.uow() as uow:
        _readable_row(uow, instance_id, actor)
        return uow.events.for_instance(instance_id)


def _readable_row(uow, instance_id: int, actor: Actor | None):
    """The instance row; with `actor`, Forbidden unless they may read it (permissions.may_read_instance)."""
    row = uow.instances.get_row(instance_id)
    if row is None:
        raise NotFound(f"unknown instance {instance_id}")
    if actor is not None and not may_read_instance(
            actor, actor.reads_every_instance or uow.instances.takes_part(instance_id, actor.name)):
        raise Forbidden(f"user '{actor.name}' takes no part in instance {instance_id}")
    return row


def require_readable(app: Phasegate, instance_id: int, actor: Actor | None) -> None:
    """NotFound for an unknown instance; Forbidden if `actor` may not read it."""
    with app.uow() as uow:
        _readable_row(uow, instance_id, actor)


def detail(app: Phasegate, instance_id: int, *, actor: Actor | None = None, with_history: bool = False) -> dict:
    """The instance as `phasegate show --json` prints it: the instance with its open tasks, the
    phases it went through (`phases`), its gates (`gates`), and with `with_history` its events."""
    from engine.services import gates as gate_service

    require_readable(app, instance_id, actor)
    shown = show(app, instance_id).to_dict()
    shown["phases"] = phases(app, instance_id)
    shown["gates"] = gate_service.gates_view(app, instance_id)
    if with_history:
        shown["history"] = [e.to_dict() for e in history(app, instance_id)]
    return shown


def gates_of(app: Phasegate, instance_id: int, actor: Actor | None = None) -> list[dict]:
    """`services.gates.gates_view`, for someone who may read the instance."""
    from engine.services import gates as gate_service

    require_readable(app, instance_id, actor)
    return gate_service.gates_view(app, instance_id)


def action_items_of(app: Phasegate, instance_id: int, actor: Actor | None = None) -> list[dict]:
    """`services.gates.action_items`, for someone who may read the instance."""
    from engine.services import gates as gate_service

    require_readable(app, instance_id, actor)
    return gate_service.action_items(app, instance_id)


def _locked_instance(uow, instance_id: int, user: str):
    """The instance row, locked for this command, after checking the acting user exists."""
    require_user(uow, user)
    row = uow.instances.get_row(instance_id, for_update=True)
    if row is None:
        raise NotFound(f"unknown instance {instance_id}")
    return row


def cancel(app: Phasegate, instance_id: int, *, reason: str, user: str = "admin") -> Instance:
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required to cancel an instance", fields={"reason": ["required"]})
    now = clock.now()
    with app.uow() as uow:
        row = _locked_instance(uow, instance_id, user)
        if row.state in ("completed", "cancelled"):
            raise Conflict(f"instance {instance_id} is already {row.state}")
        live = load_live(app, uow, row)
        outcome = app.runtime.cancel(live)
        persist_step(app, uow, _context(row), live, outcome, actor=user, at=now, event_type="cancelled",
                     payload={"reason": reason}, cancelled=True, extra_values={"cancel_reason": reason})
        uow.commit()
    return show(app, instance_id)


def send_message(app: Phasegate, instance_id: int, name: str, data: dict | None = None, *,
                 user: str = "admin") -> Instance:
    """Deliver a BPMN message (e.g. `raise_risk`) with a payload to a running instance."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise InvalidInput("message data must be a JSON object", fields={"data": ["expected an object"]})
    now = clock.now()
    with app.uow() as uow:
        row = _locked_instance(uow, instance_id, user)
        if row.state != "running":
            raise Conflict(f"instance {instance_id} is {row.state}: it cannot receive messages")
        live = load_live(app, uow, row)
        try:
            outcome = app.runtime.message(live, name, data)
        except Conflict:
            app.live.put(row.id, row.revision, live)  # untouched: keep it warm
            raise
        persist_step(app, uow, _context(row), live, outcome, actor=user, at=now, event_type="message",
                     payload={"message": name, "data": data})
        uow.commit()
    return show(app, instance_id)


def fire_due_timers(app: Phasegate, *, limit: int = 100) -> list[int]:
    """Advance every running instance whose earliest timer is due; returns the instances moved."""
    now = clock.now()
    with app.uow() as uow:
        due = uow.instances.due_for_timers(now, limit)
    moved = []
    for instance_id in due:
        with app.uow() as uow:
            row = uow.instances.get_row(instance_id, for_update=True)
            if row is None or row.state != "running" or row.wake_at is None or row.wake_at > now:
                continue  # another worker got there first
            live = load_live(app, uow, row)
            outcome = app.runtime.fire_timers(live)
            persist_step(app, uow, _context(row), live, outcome, actor="timer", at=now, event_type="timer")
            uow.commit()
            moved.append(instance_id)
    from engine.services.gates import escalate_due_gates

    for escalation in escalate_due_gates(app, limit=limit):
        if escalation["instance"] not in moved:
            moved.append(escalation["instance"])
    return moved


def diagram(app: Phasegate, instance_id: int, actor: Actor | None = None) -> dict:
    """What the instance page draws: the BPMN XML of the instance's process (None if the definition
    has no diagram layout, BPMN DI), the element ids that ran (from the `path` of every event),
    the elements with open tasks, and the process's phases in document order."""
    with app.uow() as uow:
        row = _readable_row(uow, instance_id, actor)
        definition_row = uow.definitions.get_row(row.definition_id)
        events = uow.events.for_instance(instance_id)
        open_tasks = uow.tasks.open_for_instance(instance_id)
        phases = phases_in_order(app, uow, row.definition_id)
    files = dict(definition_row.files or {})
    xml = None
    for name, text in sorted(files.items()):
        if name.lower().endswith(".bpmn") and f'id="{definition_row.key}"' in text:
            xml = text
            break
    has_layout = bool(xml) and "BPMNDiagram" in xml
    completed: list[str] = []
    for event in events:
        for element_id in (event.payload or {}).get("path") or []:
            if element_id not in completed:
                completed.append(element_id)
    current = sorted({t.element_id for t in open_tasks})
    return {"xml": xml if has_layout else None, "has_layout": has_layout,
            "completed": [e for e in completed if e not in current], "current": current,
            "phases": phases}
