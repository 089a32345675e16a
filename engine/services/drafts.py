"""Use cases for task drafts: save, read and discard a half-filled task form.

A draft belongs to one user and one task and is private scratch: only its author reads it, and
nothing about it is recorded in the instance's hash-chained event log — saving a draft changes
nothing in the workflow, and the completion that follows records the data actually submitted.
Drafts are checked for shape and size only (engine.domain.drafts.check_draft: a JSON object of
the form's fields, at most 256 KiB), never validated against the form's schema.

Saving needs the right to work on the task now: it is ready, its instance runs, the user holds
one of its roles (or has it assigned) and nobody else has claimed it. Completing the task deletes
every draft of it in the same transaction (engine.services.tasks.complete); a draft of a task
that left the inbox another way (cancelled, withdrawn) is no longer offered.
"""
from __future__ import annotations

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.drafts import Draft, check_draft
from engine.domain.errors import Conflict
from engine.domain.permissions import Action, Actor, require
from engine.services.definitions import deployed_process
from engine.services.tasks import _actionable, get_task


def save_draft(app: Phasegate, task_id: int, actor: Actor, data) -> Draft:
    """Store `data` as `actor`'s draft of the task, replacing their previous one."""
    require(actor, Action.WORK_ON_TASKS)
    now = clock.now()
    with app.uow() as uow:
        # Locked like a completion, so a draft never lands after the task was completed.
        row = _actionable(uow, task_id, actor.name, lock=True)
        if row.kind == "approval":
            raise Conflict(f"task {task_id} is a gate approval: decisions have no drafts")
        form = deployed_process(app, uow, row.definition_id).forms.get(row.form) if row.form else None
        draft = uow.drafts.save(task_id, actor.name, check_draft(form, data), now)
        uow.commit()
    return draft


def get_draft(app: Phasegate, task_id: int, actor: Actor) -> Draft | None:
    """`actor`'s own draft of a task they may see, or None (also once the task is no longer ready)."""
    task = get_task(app, task_id, actor=actor)
    if task.state != "ready":
        return None
    with app.uow() as uow:
        return uow.drafts.get(task_id, actor.name)


def discard_draft(app: Phasegate, task_id: int, actor: Actor) -> bool:
    """Delete `actor`'s draft of the task; False if they had none."""
    require(actor, Action.WORK_ON_TASKS)
    get_task(app, task_id, actor=actor)
    with app.uow() as uow:
        deleted = uow.drafts.delete(task_id, actor.name)
        uow.commit()
    return deleted
