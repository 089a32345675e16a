"""Use cases for human tasks: what a user may do now, claim, unclaim, complete."""
from __future__ import annotations

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.domain.forms import validate_submission
from engine.domain.gate_config import gate_from_dict
from engine.domain.inbox import TaskFilter, page_window, repository_filters, week_bounds
from engine.domain.model import HumanTask
from engine.domain.permissions import Actor, assign_refusal, may_hold_task, may_see_task, roles_text
from engine.services.definitions import deployed_process
from engine.services.instances import load_live, read_instance
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

    One indexed query reads the page and counts every match (no workflow is read); only a page
    past the end needs a second statement to count.
    """
    limit, offset = page_window(page, per_page)
    keywords = repository_filters(filters, clock.now())
    with app.uow() as uow:
        visible = _visibility(uow, actor)
        found, total = uow.tasks.page(**visible, **keywords, sort=filters.sort, limit=limit, offset=offset)
        if total is None:
            total = uow.tasks.count(**visible, **keywords) if offset else 0
        return found, total


def count_my_tasks(app: Phasegate, actor: Actor, filters: TaskFilter = TaskFilter()) -> int:
    """How many ready tasks `my_tasks` would list with the same filters (one COUNT)."""
    keywords = repository_filters(filters, clock.now())
    with app.uow() as uow:
        return uow.tasks.count(**_visibility(uow, actor), **keywords)


def inbox_page(app: Phasegate, actor: Actor, filters: TaskFilter = TaskFilter(), *, page: int = 1,
               per_page: int = 25) -> tuple[list[HumanTask], int, dict[str, int]]:
    """What the inbox page shows: `my_tasks` (this page, the total) and `inbox_counts`, in one
    transaction. Without filters the page's statement takes the counts too: one pass over the
    user's tasks instead of two."""
    limit, offset = page_window(page, per_page)
    now = clock.now()
    keywords = repository_filters(filters, now)
    with app.uow() as uow:
        visible = _visibility(uow, actor)
        counts = None
        if not any(value is not None for value in keywords.values()):
            found, total, counts = uow.tasks.page_with_due_counts(
                **visible, now=now, week=week_bounds(now), sort=filters.sort, limit=limit, offset=offset)
        else:
            found, total = uow.tasks.page(**visible, **keywords, sort=filters.sort, limit=limit, offset=offset)
        if total is None:
            total = uow.tasks.count(**visible, **keywords) if offset else 0
        if counts is None:
            counts = uow.tasks.count_by_due(**visible, now=now, week=week_bounds(now))
        return found, total, counts


def inbox_counts(app: Phasegate, actor: Actor) -> dict[str, int]:
    """{"all", "overdue", "due_this_week"}: how many ready tasks `actor` sees, is late with and has
    due this (ISO) week — what `count_my_tasks` gives for TaskFilter(), TaskFilter(overdue=True)
    and TaskFilter(due_this_week=True), in one statement."""
    now = clock.now()
    with app.uow() as uow:
        return uow.tasks.count_by_due(**_visibility(uow, actor), now=now, week=week_bounds(now))


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
    row = _ready_row(uow, task_id, user, lock=lock, doing="worked on")
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
        if row.kind == "approval":
            # One approval task stands for a whole approver group (e.g. two reviewers of four):
            # claiming it would hide it from the others who must decide too.
            raise Conflict(f"task {task_id} is a gate approval: every eligible approver decides it, "
                           "so it cannot be claimed")
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


# -- reassignment -----------------------------------------------------------------------------
# Who holds a task is the `assignee` of its inbox row; every change of hands is an event in the
# instance's hash chain with `from` and `to`. A task is only ever handed to someone who holds one
# of its roles (read now, like every role check), so it stays with the people it is routed to.

def _roles_of_task(task: HumanTask) -> list[str]:
    return task.candidate_roles or ([task.role] if task.role else [])


def _require_receiver(uow, task: HumanTask, receiver: str, field_name: str) -> None:
    """`receiver` exists, is active and holds one of the task's roles, else a refusal naming them."""
    if not uow.users.exists(receiver):
        raise NotFound(f"unknown user '{receiver}'")
    if not uow.users.is_active(receiver):
        raise InvalidInput(f"user '{receiver}' is deactivated and cannot be given task {task.id}",
                           fields={field_name: ["deactivated user"]})
    roles = _roles_of_task(task)
    if not may_hold_task(uow.users.roles_of(receiver), roles):
        needed = roles_text(roles)
        raise InvalidInput(f"user '{receiver}' does not hold {needed}, so cannot be given task {task.id} "
                           f"({task.name or task.element_id})", fields={field_name: [f"does not hold {needed}"]})


def _open_task(uow, task_id: int, actor: str, *, lock: bool = True):
    """(row, task) for a ready task of a running instance, for an existing acting user."""
    row = _ready_row(uow, task_id, actor, lock=lock, doing="reassigned")
    return row, uow.tasks.get(task_id)


def _ready_row(uow, task_id: int, user: str, *, lock: bool, doing: str):
    """The task's action row (see `HumanTaskRepository.for_action`): it exists, `user` exists, the
    task is ready and its instance runs — else NotFound or Conflict saying it cannot be `doing`."""
    row = uow.tasks.for_action(task_id, user, lock=lock)
    if row is None:
        raise NotFound(f"unknown task {task_id}")
    if not row.user_exists:
        raise NotFound(f"unknown user '{user}'")
    if row.state != "ready":
        raise Conflict(f"task {task_id} ({row.element_id}) is not ready: it is {row.state}")
    if row.instance_state != "running":
        raise Conflict(f"task {task_id} cannot be {doing}: instance {row.instance_id} is {row.instance_state}")
    return row


def assign(app: Phasegate, task_id: int, actor: str, to_user: str) -> HumanTask:
    """Put a task on `to_user`'s desk (recorded as `assigned`, from the previous holder).

    Who may: an admin, or whoever holds the task or one of its roles while nobody else has
    claimed it (engine.domain.permissions.assign_refusal). `to_user` must hold one of the task's
    roles. Gate approvals are not assigned: every eligible member of the role decides them, and
    an approver hands their own decision on with `delegate`.
    """
    now = clock.now()
    with app.uow() as uow:
        row, task = _open_task(uow, task_id, actor)
        if task.kind == "approval":
            raise Conflict(f"task {task_id} is a gate approval: every eligible member of "
                           f"{roles_text(_roles_of_task(task))} decides it, so it is not assigned to one person; "
                           f"an approver may delegate their decision instead")
        who = Actor(actor, frozenset(uow.users.roles_of(actor)))
        refusal = assign_refusal(who, _roles_of_task(task), row.assignee)
        if refusal is not None:
            raise Forbidden(f"user '{actor}' may not assign task {task_id} ({row.element_id}): {refusal}")
        _require_receiver(uow, task, to_user, "user")
        if row.assignee == to_user:
            return task  # already theirs: nothing changes hands, nothing to record
        uow.tasks.set_assignee(task_id, to_user)
        append_event(uow, uow.instances.get_row(row.instance_id), actor=actor, at=now, event_type="assigned",
                     task_id=task_id, element_id=row.element_id, payload={"from": row.assignee, "to": to_user})
        uow.commit()
        return uow.tasks.get(task_id)


def delegate(app: Phasegate, task_id: int, actor: str, to: str) -> dict:
    """Hand a task one works on to someone else.

    A gate approval: the approver's decision goes to `to`, who decides "on behalf of" them
    (engine.services.gates.delegate_task, where the gate's delegation setting and separation of
    duties are enforced). Any other task: `to` (holding one of its roles) becomes its assignee,
    recorded as `delegated` from the actor; the actor must be able to work on it now.
    Returns {task, kind, delegator, delegate}.
    """
    if to == actor:
        raise InvalidInput(f"user '{actor}' cannot delegate task {task_id} to themselves",
                           fields={"to": ["the same user as the delegator"]})
    with app.uow() as uow:
        task = uow.tasks.get(task_id)
    if task is None:
        raise NotFound(f"unknown task {task_id}")
    if task.kind == "approval":
        from engine.services import gates

        return {**gates.delegate_task(app, task_id, actor, to), "kind": "approval"}
    now = clock.now()
    with app.uow() as uow:
        row = _actionable(uow, task_id, actor)
        task = uow.tasks.get(task_id)
        _require_receiver(uow, task, to, "to")
        uow.tasks.set_assignee(task_id, to)
        append_event(uow, uow.instances.get_row(row.instance_id), actor=actor, at=now, event_type="delegated",
                     task_id=task_id, element_id=row.element_id,
                     payload={"from": actor, "to": to, "previous_assignee": row.assignee})
        uow.commit()
    return {"task": task_id, "kind": "task", "delegator": actor, "delegate": to}


def candidate_people(app: Phasegate, task_ids: list[int]) -> dict[int, int]:
    """Task id -> how many people hold its roles now (the inbox's "waiting on"), one query per page."""
    with app.uow() as uow:
        return uow.tasks.candidate_people(list(task_ids))


def reassign_options(app: Phasegate, task: HumanTask, actor: Actor) -> dict:
    """What the task page offers for handing `task` on, for `actor` (roles read now):

    {"action": "assign" | "delegate" | None, "people": [who may receive it], "holder": assignee,
     "roles": the task's roles, "members": how many active users hold them}.
    The holder of a task delegates it; others who may assign it assign it; an approver delegates
    their decision on a gate approval when the gate allows delegation (to anyone active: the gate's
    rules are checked when it is submitted).
    """
    roles = _roles_of_task(task)
    with app.uow() as uow:
        who = Actor(actor.name, frozenset(uow.users.roles_of(actor.name)))
        members = uow.users.active_holders(roles or ["admin"])
        options = {"action": None, "people": [], "holder": task.assignee, "roles": roles, "members": len(members)}
        instance_row = uow.instances.get_row(task.instance_id)
        if task.state != "ready" or instance_row is None or instance_row.state != "running" or who.read_only:
            return options
        if task.kind == "approval":
            gate_row = uow.gates.get(task.gate_id) if task.gate_id is not None else None
            allows = gate_row is not None and gate_from_dict(gate_row.gate, gate_row.config).delegation
            if allows and (who.is_admin or who.roles & set(roles)):
                options.update(action="delegate", people=[n for n in uow.users.active_names() if n != who.name])
            return options
        if task.assignee == who.name:
            options.update(action="delegate", people=[n for n in members if n != who.name])
        elif assign_refusal(who, roles, task.assignee) is None:
            # Not oneself: taking a task is claiming it.
            options.update(action="assign", people=[n for n in members if n not in (task.assignee, who.name)])
        return options


def complete(app: Phasegate, task_id: int, user: str, data: dict | None = None) -> StepResult:
    """Validate the submission against the task's form, complete it, and run the engine on."""
    return _complete(app, task_id, user, data, show=False)[0]


def _complete(app: Phasegate, task_id: int, user: str, data: dict | None, show: bool):
    """`complete`; with `show`, also the instance afterwards (`instances.show`), read in the same
    transaction (an API completion then costs one transaction, not two)."""
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
        if row.has_draft:
            uow.drafts.delete_for_task(task_id)  # drafts are scratch for this task: done with it
        shown = read_instance(uow, row.instance_id) if show else None
        uow.commit()
    return result, shown



def complete_and_show(app: Phasegate, task_id: int, user: str, data: dict | None = None) -> dict:
    """`complete`, then the instance as `phasegate complete --json` prints it: the instance with
    `path`, the element ids that ran in that step."""
    result, instance = _complete(app, task_id, user, data, show=True)
    shown = instance.to_dict()
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
            "instance": instances.show(app, task.instance_id), "form": form, "gate": None, "options": None,
            "reassign": reassign_options(app, task, actor)}
    options = gates.decision_options(app, task_id)
    if options is not None:
        view["options"] = options
        view["gate"] = next((g for g in gates.gates_view(app, task.instance_id)
                             if g["gate"] == options["gate"] and g.get("round") == options["round"]), None)
    from engine.services import checklists

    view["gates_ahead"] = checklists.gates_ahead(app, task, deployed)
    view["gate_checklist"] = checklists.round_checklist(app, task)
    return view
