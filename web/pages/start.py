"""Starting an instance from the web: the processes the user may start, and a process's start
page (business key and the start form, if the start event has one)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from engine.domain.errors import Conflict, Forbidden, InvalidInput
from engine.domain.permissions import Action
from engine.services import auth, instances
from web import formfields
from web.pages import FORM_ERROR, blueprint, engine_app

BUSINESS_KEY_MAX = 255  # the column's length (tables.instance.business_key)


@blueprint.get("/start")
def start_list():
    auth.authorize(g.actor, Action.START)
    return render_template("start.html", startable=instances.startable(engine_app(), g.actor), view=None)


@blueprint.get("/start/<process_key>")
def start_page(process_key: str):
    auth.authorize(g.actor, Action.START)
    view = instances.start_view(engine_app(), process_key, g.actor)
    return _render(view, values=_defaults(view["form"]))


@blueprint.post("/start/<process_key>")
def start_submit(process_key: str):
    auth.authorize(g.actor, Action.START)
    app = engine_app()
    view = instances.start_view(app, process_key, g.actor)
    fields = formfields.fields_of(view["form"])
    business_key = (request.form.get("business_key") or "").strip()
    action = request.form.get(formfields.ARRAY_ACTION)
    if action:
        # "Add row" / "Remove" of an array field without JavaScript, as on the task page: the form
        # again with one row more or fewer, everything entered kept, nothing started.
        data, focus = formfields.apply_array_action(fields, formfields.parse_draft(fields, request.form), action)
        return _render(view, values=data, business_key=business_key, focus=focus)
    data, errors = formfields.parse_submission(fields, request.form)
    if len(business_key) > BUSINESS_KEY_MAX:
        errors["business_key"] = [f"at most {BUSINESS_KEY_MAX} characters"]
    if errors:  # unreadable values (bad JSON) or the business key, named by the rows as posted
        return _render(view, values=formfields.parse_draft(fields, request.form), business_key=business_key,
                       errors=errors, error="Please correct the marked fields.", status=FORM_ERROR)
    try:
        started = instances.start(app, process_key, data=data, business_key=business_key or None,
                                  version=view["definition"].version, actor=g.actor)
    except InvalidInput as exc:
        # The schema names rows as submitted (empty rows left out): show exactly that data.
        return _render(view, values=data, business_key=business_key, errors=exc.fields,
                       error="Please correct the marked fields.", status=FORM_ERROR)
    except (Forbidden, Conflict) as exc:
        return _render(view, values=formfields.parse_draft(fields, request.form), business_key=business_key,
                       error=exc.message, status=FORM_ERROR)
    definition = view["definition"]
    message = f"Started “{definition.name or definition.key}” {started.business_key or '#' + str(started.id)}."
    if started.tasks:
        message += " Next: " + "; ".join(f"{t.name or t.element_id} ({t.assignee or t.role or 'admin'})"
                                         for t in started.tasks[:3]) + "."
    elif started.state != "running":
        message += f" It is {started.state}."
    flash(message, "error" if started.state == "error" else "message")
    return redirect(url_for("pages.instance_page", instance_id=started.id))


def _render(view: dict, *, values: dict, business_key: str = "", errors: dict | None = None,
            error: str | None = None, status: int = 200, focus: str | None = None):
    """The start page with the form machinery of the task page (web.formfields, _fields.html)."""
    fields = formfields.fields_of(view["form"])
    errors = dict(errors or {})
    business_key_errors = errors.pop("business_key", None)
    placed, others = formfields.place_errors(fields, values, errors)
    if business_key_errors:
        placed["business_key"] = business_key_errors
    return render_template(
        "start.html", view=view, startable=None, fields=fields, values=values, business_key=business_key,
        errors=placed, other_errors=others, error=error, focus=focus, **formfields.template_context()), status


def _defaults(form: dict | None) -> dict:
    """The start form's `default` values, to show in its inputs before anything is entered."""
    return _schema_defaults((form or {}).get("properties") or {})


def _schema_defaults(properties: dict) -> dict:
    values = {}
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            continue
        if "default" in spec:
            values[name] = spec["default"]
        elif spec.get("type") == "object" and isinstance(spec.get("properties"), dict):
            nested = _schema_defaults(spec["properties"])
            if nested:
                values[name] = nested
    return values
