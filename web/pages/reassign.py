"""Handing a task on from its page: assign it to a role member, or delegate it (a gate approver's
decision goes to a delegate who decides on their behalf)."""
from __future__ import annotations

from flask import flash, g, redirect, request, url_for

from engine.domain.errors import PhasegateError
from engine.domain.permissions import Action
from engine.services import auth, tasks
from web.pages import blueprint, engine_app


def _chosen(field_name: str) -> str:
    return (request.form.get(field_name) or "").strip()


def _back_to_task(task_id: int):
    return redirect(url_for("pages.task_page", task_id=task_id))


@blueprint.post("/tasks/<int:task_id>/assign")
def assign_task(task_id: int):
    to_user = _chosen("user")
    if not to_user:
        flash("Choose whom to assign the task to.", "error")
        return _back_to_task(task_id)
    try:
        auth.authorize(g.actor, Action.WORK_ON_TASKS)
        task = tasks.assign(engine_app(), task_id, g.actor.name, to_user)
    except PhasegateError as exc:
        # The refusal is shown on the task page (a redirect, not a 4xx page: nothing to fix in a form here).
        flash(exc.message, "error")
        return _back_to_task(task_id)
    flash(f"“{task.name or task.element_id}” is assigned to {to_user}.")
    return redirect(url_for("pages.inbox"))


@blueprint.post("/tasks/<int:task_id>/delegate")
def delegate_task(task_id: int):
    to = _chosen("to")
    if not to:
        flash("Choose whom to delegate to.", "error")
        return _back_to_task(task_id)
    try:
        auth.authorize(g.actor, Action.WORK_ON_TASKS)
        result = tasks.delegate(engine_app(), task_id, g.actor.name, to)
    except PhasegateError as exc:
        flash(exc.message, "error")
        return _back_to_task(task_id)
    if result["kind"] == "approval":
        flash(f"{to} may now decide task {task_id} on your behalf.")
    else:
        flash(f"Task {task_id} is delegated to {to}.")
    return redirect(url_for("pages.inbox"))
