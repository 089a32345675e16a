"""The task page: instructions, instance context, the form, and gate decisions."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from engine.domain.errors import Conflict, Forbidden, InvalidInput
from engine.domain.permissions import Action, allowed
from engine.services import auth, gates, tasks
from web import formfields
from web.pages import COMMENT_REQUIRED, FORM_ERROR, OUTCOME_LABELS, blueprint, engine_app


def _render_task(view: dict, *, values: dict | None = None, errors: dict | None = None, decision: dict | None = None,
                 error: str | None = None, status: int = 200):
    fields = formfields.fields_of(view["form"])
    errors = errors or {}
    shown = _field_paths(fields)
    return render_template(
        "task.html", view=view, task=view["task"], instance=view["instance"], fields=fields,
        values=values if values is not None else dict(view["instance"].data or {}), errors=errors,
        other_errors={k: v for k, v in errors.items() if k not in shown and k not in ("comment", "conditions",
                                                                                        "outcome", "password")},
        decision=decision or {}, error=error, display_value=formfields.display_value,
        comment_required=COMMENT_REQUIRED, may_work=allowed(g.actor, Action.WORK_ON_TASKS)), status


def _field_paths(fields) -> set[str]:
    paths = set()
    for item in fields:
        paths.add(item.path)
        paths |= _field_paths(item.children)
    return paths


@blueprint.get("/tasks/<int:task_id>")
def task_page(task_id: int):
    return _render_task(tasks.task_view(engine_app(), task_id, g.actor))


@blueprint.post("/tasks/<int:task_id>")
def complete_task(task_id: int):
    app = engine_app()
    view = tasks.task_view(app, task_id, g.actor)
    fields = formfields.fields_of(view["form"])
    data, errors = formfields.parse_submission(fields, request.form)
    if errors:
        return _render_task(view, values=data, errors=errors, error="Please correct the marked fields.", status=FORM_ERROR)
    try:
        auth.authorize(g.actor, Action.WORK_ON_TASKS)
        tasks.complete(app, task_id, g.actor.name, data)
    except InvalidInput as exc:
        return _render_task(view, values=data, errors=exc.fields, error="Please correct the marked fields.",
                            status=FORM_ERROR)
    except (Forbidden, Conflict) as exc:
        return _render_task(view, values=data, error=exc.message, status=FORM_ERROR)
    flash(f"Done: “{view['task'].name or view['task'].element_id}” ({view['instance'].business_key or '#' + str(view['instance'].id)}).")
    return redirect(url_for("pages.inbox"))


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
