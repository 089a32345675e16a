"""The inbox: my tasks with counts, filters, sorting and pages; claim and unclaim."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from engine.domain import clock
from engine.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.domain.inbox import TaskFilter
from engine.domain.permissions import Action
from engine.services import auth, definitions, tasks
from web import security
from web.pages import blueprint, engine_app, int_arg

PER_PAGE_CHOICES = (10, 25, 50, 100)


@blueprint.get("/")
def home():
    return redirect(url_for("pages.inbox"))


@blueprint.get("/inbox")
def inbox():
    args = request.args
    filters = {k: (args.get(k) or "").strip() or None for k in ("process", "phase", "gate", "role", "q")}
    sort = args.get("sort") or None
    flags = {"overdue": args.get("overdue") == "1", "due_this_week": args.get("due_this_week") == "1"}
    page, per_page = max(1, int_arg("page", 1)), int_arg("per_page", 25)
    if per_page not in PER_PAGE_CHOICES:
        per_page = 25
    app = engine_app()
    try:
        task_filter = TaskFilter(**filters, **flags, sort=sort)
    except InvalidInput as exc:
        flash(exc.message, "error")
        task_filter = TaskFilter(**filters, **flags)
    found, total, counts = tasks.inbox_page(app, g.actor, task_filter, page=page, per_page=per_page)
    query = {k: v for k, v in {**filters, "sort": task_filter.sort}.items() if v}
    query.update({k: "1" for k, v in flags.items() if v})
    if per_page != 25:
        query["per_page"] = per_page
    return render_template(
        "inbox.html", tasks=found, total=total, counts=counts, page=page, per_page=per_page,
        pages=max(1, -(-total // per_page)), filters=filters, flags=flags, sort=task_filter.sort, query=query,
        processes=definitions.list_definitions(app, latest_only=True), roles=sorted(g.actor.process_roles),
        per_page_choices=PER_PAGE_CHOICES, now=clock.now(),
        people=tasks.candidate_people(app, [t.id for t in found]))


def _back_to_inbox() -> str:
    return security.safe_next(request.form.get("next"), url_for("pages.inbox"))


@blueprint.post("/tasks/<int:task_id>/claim")
def claim(task_id: int):
    return _on_task(tasks.claim, task_id, "You claimed “{}”.")


@blueprint.post("/tasks/<int:task_id>/unclaim")
def unclaim(task_id: int):
    return _on_task(tasks.unclaim, task_id, "“{}” is back with its role.")


def _on_task(command, task_id: int, done: str):
    """Run a task command of the inbox rows as the signed-in user; back to the inbox with `done`
    (naming the task) or the refusal."""
    try:
        auth.authorize(g.actor, Action.WORK_ON_TASKS)
        task = command(engine_app(), task_id, g.actor.name)
        flash(done.format(task.name or task.element_id))
    except (Conflict, Forbidden, NotFound) as exc:
        flash(exc.message, "error")
    return redirect(_back_to_inbox())
