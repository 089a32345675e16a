"""The task page: instructions, instance context, the form (with its drafts, array editors and the
checklist of the gate it leads to), and gate decisions."""
from __future__ import annotations

from datetime import datetime

from flask import flash, g, get_flashed_messages, redirect, render_template, request, url_for
from markupsafe import escape

from engine.domain import clock
from engine.domain.errors import Conflict, Forbidden, InvalidInput, PhasegateError
from engine.domain.permissions import Action, allowed
from engine.services import auth, checklists, drafts, gates, tasks
from web import formfields
from web.pages import COMMENT_REQUIRED, FORM_ERROR, OUTCOME_LABELS, blueprint, engine_app

# The flash category of "Draft saved at ...": the page then says the form shows that draft.
DRAFT_SAVED = "draft-saved"
_DECISION_FIELDS = ("comment", "conditions", "outcome", "password")


def _form_fields(view: dict) -> list[formfields.Field]:
    """The task's form fields, plus the checklist of the gates completing the task may open."""
    fields = formfields.fields_of(view["form"])
    return formfields.with_checklist(fields, checklists.checklist_items(view.get("gates_ahead") or []))


def _when(moment: datetime) -> str:
    """`14:02 UTC` today, `2026-11-23 14:02 UTC` on another day (times are UTC throughout)."""
    if moment.date() == clock.now().date():
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _render_task(view: dict, *, values: dict | None = None, errors: dict | None = None, decision: dict | None = None,
                 error: str | None = None, status: int = 200, focus: str | None = None, draft=None):
    fields = _form_fields(view)
    values = values if values is not None else dict(view["instance"].data or {})
    criteria_paths = [f"criteria/{c['id']}" for gate in view.get("gates_ahead") or [] for c in gate["criteria"]]
    placed, others = formfields.place_errors(fields, values, errors or {}, criteria_paths)
    for name in [n for n in others if n.split("/", 1)[0] in _DECISION_FIELDS]:
        placed[name] = others.pop(name)  # the decision form shows these itself
    return render_template(
        "task.html", view=view, task=view["task"], instance=view["instance"], fields=fields,
        values=values, errors=placed, other_errors=others, focus=focus,
        draft=draft, draft_time=_when(draft.saved_at) if draft else None,
        draft_just_saved=bool(get_flashed_messages(category_filter=[DRAFT_SAVED])),
        decision=decision or {}, error=error, **formfields.template_context(),
        comment_required=COMMENT_REQUIRED, may_work=allowed(g.actor, Action.WORK_ON_TASKS)), status


def _may_draft(view: dict) -> bool:
    task = view["task"]
    return task.state == "ready" and task.kind == "task" and allowed(g.actor, Action.WORK_ON_TASKS)


@blueprint.get("/tasks/<int:task_id>")
def task_page(task_id: int):
    app = engine_app()
    view = tasks.task_view(app, task_id, g.actor)
    draft = drafts.get_draft(app, task_id, g.actor) if _may_draft(view) else None
    if draft is None:
        return _render_task(view)
    # The draft holds every field of the form as it was left (empty ones as null): it wins.
    return _render_task(view, values={**(view["instance"].data or {}), **draft.data}, draft=draft)


@blueprint.post("/tasks/<int:task_id>")
def complete_task(task_id: int):
    app = engine_app()
    view = tasks.task_view(app, task_id, g.actor)
    fields = _form_fields(view)
    action = request.form.get(formfields.ARRAY_ACTION)
    if action:
        # "Add row" / "Remove" without JavaScript: the same form again, one row more or fewer,
        # everything entered kept, nothing validated yet.
        data, focus = formfields.apply_array_action(fields, formfields.parse_draft(fields, request.form), action)
        return _render_task(view, values=data, focus=focus)
    data, errors = formfields.parse_submission(fields, request.form)
    if errors:  # unreadable values (bad JSON), named by the rows as posted: show the form as posted
        return _render_task(view, values=formfields.parse_draft(fields, request.form), errors=errors,
                            error="Please correct the marked fields.", status=FORM_ERROR)
    try:
        auth.authorize(g.actor, Action.WORK_ON_TASKS)
        tasks.complete(app, task_id, g.actor.name, data)
    except InvalidInput as exc:
        # The schema names rows as submitted (empty rows left out): show exactly that data.
        return _render_task(view, values=data, errors=exc.fields, error="Please correct the marked fields.",
                            status=FORM_ERROR)
    except (Forbidden, Conflict) as exc:
        return _render_task(view, values=formfields.parse_draft(fields, request.form), error=exc.message,
                            status=FORM_ERROR)
    flash(f"Done: “{view['task'].name or view['task'].element_id}” ({view['instance'].business_key or '#' + str(view['instance'].id)}).")
    return redirect(url_for("pages.inbox"))


@blueprint.post("/tasks/<int:task_id>/draft")
def save_draft(task_id: int):
    """Save the form as it is: the "Save draft" button, or htmx autosave (which gets only the text
    of the status line, with a 200 even when refused: htmx swaps it in, the browser logs nothing)."""
    app = engine_app()
    autosave = request.headers.get("HX-Request") == "true"
    try:
        view = tasks.task_view(app, task_id, g.actor)
    except PhasegateError as exc:
        if autosave:
            return escape(f"Draft not saved: {exc.message}")
        raise
    fields = _form_fields(view)
    data = formfields.parse_draft(fields, request.form)
    try:
        draft = drafts.save_draft(app, task_id, g.actor, data)
    except (InvalidInput, Forbidden, Conflict) as exc:
        if autosave:
            return escape(f"Draft not saved: {exc.message}")
        return _render_task(view, values=data, error=f"Your draft was not saved: {exc.message}", status=FORM_ERROR)
    message = f"Draft saved at {_when(draft.saved_at)}."
    if autosave:
        return escape(message)
    flash(message, DRAFT_SAVED)
    return redirect(url_for("pages.task_page", task_id=task_id))


@blueprint.post("/tasks/<int:task_id>/draft/discard")
def discard_draft(task_id: int):
    deleted = drafts.discard_draft(engine_app(), task_id, g.actor)
    flash("Draft discarded: the form shows the task's data." if deleted else "There was no draft to discard.")
    return redirect(url_for("pages.task_page", task_id=task_id))


@blueprint.post("/tasks/<int:task_id>/decision")
def decide(task_id: int):
    app = engine_app()
    view = tasks.task_view(app, task_id, g.actor)
    form = request.form
    outcome = form.get("outcome", "")
    decision = {"outcome": outcome, "comment": form.get("comment", ""), "conditions": form.get("conditions", "")}
    conditions, errors = (formfields.parse_conditions(decision["conditions"]) if outcome == "conditional-go"
                          else ([], {}))
    if outcome == "conditional-go" and not conditions and not errors:
        errors = {"conditions": ["at least one line 'text | owner | due' is required to approve with conditions"]}
    if outcome in COMMENT_REQUIRED and not decision["comment"].strip():
        errors["comment"] = [f"a comment is required to {OUTCOME_LABELS.get(outcome, outcome).lower()}"]
    if errors:
        return _render_task(view, decision=decision, errors=errors, error="Your decision was not recorded.",
                            status=FORM_ERROR)
    try:
        auth.authorize(g.actor, Action.WORK_ON_TASKS)
        result = gates.decide(app, task_id, g.actor.name, outcome, comment=decision["comment"].strip() or None,
                              conditions=conditions or None, password=form.get("password") or None)
    except InvalidInput as exc:
        return _render_task(view, decision=decision, errors=exc.fields, error=exc.message, status=FORM_ERROR)
    except (Forbidden, Conflict) as exc:
        return _render_task(view, decision=decision, error=exc.message, status=FORM_ERROR)
    label = OUTCOME_LABELS.get(outcome, outcome)
    message = f"Decision recorded: {label} on {result['gate']} (round {result['round']})."
    if result["decided"]:
        message += f" The gate is decided: {result['outcome']}."
    flash(message)
    return redirect(url_for("pages.inbox"))
