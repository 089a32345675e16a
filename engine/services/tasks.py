"""Use cases for human tasks: what a user may do now, claim, unclaim, complete."""
from __future__ import annotations

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import Conflict, Forbidden, NotFound
from engine.domain.forms import validate_submission
from engine.domain.inbox import TaskFilter, page_window, repository_filters
from engine.domain.model import HumanTask
from engine.domain.permissions import Actor, may_see_task
from engine.services.definitions import deployed_process
from engine.services.instances import load_live
from engine.services.steps import StepContext, StepResult, append_event, persist_step
from engine.services.users import require_user

ADMIN_ROLE = "admin"


def list_tasks(app: Phasegate, *, user: str | None = None, instance_id: int | None = None,
               states: tuple[str, ...] = ("ready",), limit: int = 500, offset: int = 0) -> list[HumanTask]:
    """Ready tasks; with `user`, only those routed to a role the user holds now or assigned to them."""
    with app.uow() as uow:
        if user is None:
            return uow.tasks.query(instance_id=instance_id, states=states, limit=limit, offset=offset)
        require_user(uow, user)
        roles = uow.users.roles_of(user)
        if ADMIN_ROLE in roles:
            return uow.tasks.query(instance_id=instance_id, states=states, limit=limit, offset=offset)
        return uow.tasks.query(instance_id=instance_id, roles=roles, user=user, states=states, limit=limit,
                               offset=offset)


def _visibility(uow, actor: Actor) -> dict:
    """Repository keywords limiting a task list to what `actor` sees: everything for admins and
    auditors, else the tasks of the roles they hold now (read in this transaction) and their own."""
    require_user(uow, actor.name)
    roles = set(uow.users.roles_of(actor.name))
    if Actor(actor.name, roles).sees_everything:
        return {}
    return {"roles": sorted(roles), "user": actor.name}


def my_tasks(app: Phasegate, actor: Actor, filters: TaskFilter = TaskFilter(), *, page: int = 1,
             per_page: int = 50) -> tuple[list[HumanTask], int]:
    """The ready tasks `actor` may see, filtered, sorted and paged: (this page's tasks, total count).

    One indexed query for the page and one count on `human_task` (no workflow is read).
    """
    limit, offset = page_window(page, per_page)
    keywords = repository_filters(filters, clock.now())
    with app.uow() as uow:
        visible = _visibility(uow, actor)
        found = uow.tasks.query(**visible, **keywords, sort=filters.sort, limit=limit, offset=offset)
        if len(found) < limit and (found or offset == 0):
            total = offset + len(found)  # the last page: nothing to count
        else:
            total = uow.tasks.count(**visible, **keywords)
        return found, total


def count_my_tasks(app: Phasegate, actor: Actor, filters: TaskFilter = TaskFilter()) -> int:
    """How many ready tasks `my_tasks` would list with the same filters (one COUNT)."""
    keywords = repository_filters(filters, clock.now())
    with app.uow() as uow:
        return uow.tasks.count(**_visibility(uow, actor), **keywords)


def get_task(app: Phasegate, task_id: int, actor: Actor | None = None) -> HumanTask:
    """One task, in any state. With `actor`, Forbidden unless they may see it (a role of the task,
    their own, or admin/auditor)."""
    with app.uow() as uow:
        task = uow.tasks.get(task_id)
        if task is None:
            raise NotFound(f"unknown task {task_id}")
        if actor is not None:
            current = Actor(actor.name, frozenset(uow.users.roles_of(actor.name)))
            if not may_see_task(current, task.candidate_roles or ([task.role] if task.role else []), task.assignee):
                raise Forbidden(f"user '{actor.name}' may not see task {task_id}: it is routed to "
                                f"{', '.join(task.candidate_roles or [task.role or '-'])}")
    return task


def _actionable(uow, task_id: int, user: str, lock: bool = True, claimed_by_other: type = Forbidden):
    """The task row, checked: it exists, is ready, its instance runs, and `user` may act on it.

    A task claimed by someone else raises `claimed_by_other`: Forbidden to complete or unclaim,
    a Conflict to claim (the task is taken — HTTP 409).
    """
    row = uow.tasks.for_action(task_id, user, lock=lock)
    if row is None:
        raise NotFound(f"unknown task {task_id}")
    if not row.user_exists:
        raise NotFound(f"unknown user '{user}'")
    if row.state != "ready":
        raise Conflict(f"task {task_id} ({row.element_id}) is not ready: it is {row.state}")
    if row.instance_state != "running":
        raise Conflict(f"task {task_id} cannot be worked on: instance {row.instance_id} is {row.instance_state}")
    if not row.holds_role and row.assignee != user:
        needed = f"role '{row.role}'" if row.role else f"role '{ADMIN_ROLE}' (the task has no role)"
        raise Forbidden(f"user '{user}' may not work on task {task_id} ({row.element_id}): it needs {needed}")
    if row.assignee and row.assignee != user:
        raise claimed_by_other(f"task {task_id} is claimed by '{row.assignee}'; they must unclaim it first")
    return row


def claim(app: Phasegate, task_id: int, user: str) -> HumanTask:
    now = clock.now()
    with app.uow() as uow:
        row = _actionable(uow, task_id, user, claimed_by_other=Conflict)
        if row.assignee != user:
            uow.tasks.set_assignee(task_id, user)
            instance_row = uow.instances.get_row(row.instance_id)
            append_event(uow, instance_row, actor=user, at=now, event_type="claimed", task_id=task_id,
                         element_id=row.element_id, payload={"assignee": user})
        uow.commit()
        return uow.tasks.get(task_id)


def unclaim(app: Phasegate, task_id: int, user: str) -> HumanTask:
    now = clock.now()
    with app.uow() as uow:
        row = _actionable(uow, task_id, user)
        if row.assignee is None:
            raise Conflict(f"task {task_id} is not claimed")
        uow.tasks.set_assignee(task_id, None)
        instance_row = uow.instances.get_row(row.instance_id)
        append_event(uow, instance_row, actor=user, at=now, event_type="unclaimed", task_id=task_id,
                     element_id=row.element_id, payload={"previous_assignee": row.assignee})
        uow.commit()
        return uow.tasks.get(task_id)


def complete(app: Phasegate, task_id: int, user: str, data: dict | None = None) -> StepResult:
    """Validate the submission against the task's form, complete it, and run the engine on."""
    data = {} if data is None else data
    now = clock.now()
    with app.uow() as uow:
        row = _actionable(uow, task_id, user)
        deployed = deployed_process(app, uow, row.definition_id)
        form = deployed.forms.get(row.form) if row.form else None
        data = validate_submission(form, data, row.form)
        live = app.live.take(row.instance_id, row.instance_revision)
        if live is None:
            live = load_live(app, uow, uow.instances.get_row(row.instance_id))
        outcome = app.runtime.complete(live, row.spiff_task_id, data)
        ctx = StepContext(row.instance_id, row.instance_revision, row.process_key, row.business_key,
                          row.instance_phase, row.event_seq, row.event_hash)
        result = persist_step(app, uow, ctx, live, outcome, actor=user, at=now, event_type="completed",
                              task_id=task_id, element_id=row.element_id,
                              payload={"data": data, "spiff_task_id": row.spiff_task_id},
                              completed_spiff_id=row.spiff_task_id)
        uow.commit()
    return result



def complete_and_show(app: Phasegate, task_id: int, user: str, data: dict | None = None) -> dict:
    """`complete`, then the instance as `phasegate complete --json` prints it: the instance with
    `path`, the element ids that ran in that step."""
    from engine.services import instances

    result = complete(app, task_id, user, data)
    shown = instances.show(app, result.instance_id).to_dict()
    shown["path"] = result.path
    return shown


def task_view(app: Phasegate, task_id: int, actor: Actor) -> dict:
    """Everything the task page shows, for someone who may see the task: the task, its instructions
    (the element's BPMN documentation), its instance, its form (a JSON Schema, or None) and, for a
    gate approval, the gate as `gates.gates_view` shows it plus the decision options."""
    from engine.services import gates, instances

    task = get_task(app, task_id, actor=actor)
    with app.uow() as uow:
        instance_row = uow.instances.get_row(task.instance_id)
        deployed = deployed_process(app, uow, instance_row.definition_id)
    info = deployed.process.elements.get(task.element_id)
    form = deployed.forms.get(task.form) if task.form else None
    view = {"task": task, "documentation": info.documentation if info else None,
            "instance": instances.show(app, task.instance_id), "form": form, "gate": None, "options": None}
    options = gates.decision_options(app, task_id)
    if options is not None:
        view["options"] = options
        view["gate"] = next((g for g in gates.gates_view(app, task.instance_id)
                             if g["gate"] == options["gate"] and g.get("round") == options["round"]), None)
    return view
