"""Server-rendered pages: sign-in, the inbox, task pages, instance pages, and the overview.

Every page but /sign-in and /healthz needs a signed-in user (else a redirect to
/sign-in?next=...); every POST form carries a CSRF token (web.security). Routes stay thin: they
parse the request, call `engine.services`, and render.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask import (Blueprint, current_app, flash, g, jsonify, redirect, render_template, request,
                   url_for)
from werkzeug.exceptions import HTTPException

from engine.domain import clock
from engine.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, PhasegateError, Unauthenticated
from engine.domain.inbox import TaskFilter
from engine.domain.permissions import Action, allowed
from engine.services import auth, definitions, gates, instances, tasks
from web import formfields, security

blueprint = Blueprint("pages", __name__)

PUBLIC_ENDPOINTS = {"pages.sign_in", "pages.health"}
PER_PAGE_CHOICES = (10, 25, 50, 100)
VIEWER_SCRIPT = "vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"
VIEWER_STYLES = ("vendor/bpmn-js/assets/diagram-js.css", "vendor/bpmn-js/assets/bpmn-js.css")
OUTCOME_LABELS = {"go": "Approve", "conditional-go": "Approve with conditions", "hold": "Put on hold",
                  "recycle": "Reject (send back for rework)", "kill": "Reject and stop", "abstain": "Abstain"}
COMMENT_REQUIRED = ("hold", "recycle", "kill")
# A form shown again with its errors is a 200: browsers log every 4xx page load as a console
# error, and the page itself says what is wrong (refusals with no form to fix keep their status).
FORM_ERROR = 200


def _engine():
    return current_app.extensions["phasegate"]


@blueprint.before_request
def _require_sign_in():
    if request.method == "POST":
        security.check_csrf()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user = security.current_user()
    if user:
        try:
            g.actor = auth.authenticate(_engine(), session_user=user)
            return None
        except Unauthenticated:
            security.sign_out()  # the user was deactivated or removed
    return redirect(url_for("pages.sign_in", next=request.full_path.rstrip("?")))


@blueprint.app_context_processor
def _globals():
    return {"me": getattr(g, "actor", None), "outcome_labels": OUTCOME_LABELS}


@blueprint.errorhandler(PhasegateError)
def _engine_error(error: PhasegateError):
    status = error.http_status if error.http_status in (400, 403, 404, 409, 422) else 500
    return render_template("error.html", title={403: "Not allowed", 404: "Not found"}.get(status, "Cannot do that"),
                           message=error.message), status


@blueprint.errorhandler(400)
def _bad_request(error: HTTPException):
    return render_template("error.html", title="Bad request", message=error.description), 400


# -- sign-in ---------------------------------------------------------------------------------

@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    next_url = security.safe_next(request.values.get("next"), url_for("pages.inbox"))
    if request.method == "GET":
        if security.current_user():
            return redirect(next_url)
        return render_template("sign_in.html", next=next_url, username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    key = (username.lower(), request.remote_addr or "-")
    limiter = security.limiter(current_app)
    wait = limiter.retry_after(key)
    if wait:
        response = render_template("sign_in.html", next=next_url, username=username, status=429,
                                   error=f"Too many failed sign-ins. Try again in {wait // 60 + 1} minutes.")
        return response, 429, {"Retry-After": str(wait)}
    if username and password and auth.verify_password(_engine(), username, password):
        limiter.reset(key)
        security.sign_in(username)
        return redirect(next_url)
    limiter.fail(key)
    return render_template("sign_in.html", next=next_url, username=username,
                           error="Unknown user name or wrong password."), FORM_ERROR


@blueprint.post("/sign-out")
def sign_out():
    security.sign_out()
    flash("You are signed out.")
    return redirect(url_for("pages.sign_in"))


# -- inbox -----------------------------------------------------------------------------------

def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


@blueprint.get("/")
def home():
    return redirect(url_for("pages.inbox"))


@blueprint.get("/inbox")
def inbox():
    args = request.args
    filters = {k: (args.get(k) or "").strip() or None for k in ("process", "phase", "gate", "role", "q")}
    sort = args.get("sort") or None
    flags = {"overdue": args.get("overdue") == "1", "due_this_week": args.get("due_this_week") == "1"}
    page, per_page = max(1, _int_arg("page", 1)), _int_arg("per_page", 25)
    if per_page not in PER_PAGE_CHOICES:
        per_page = 25
    app = _engine()
    try:
        task_filter = TaskFilter(**filters, **flags, sort=sort)
    except InvalidInput as exc:
        flash(exc.message, "error")
        task_filter = TaskFilter(**filters, **flags)
    found, total = tasks.my_tasks(app, g.actor, task_filter, page=page, per_page=per_page)
    counts = {"all": tasks.count_my_tasks(app, g.actor),
              "overdue": tasks.count_my_tasks(app, g.actor, TaskFilter(overdue=True)),
              "due_this_week": tasks.count_my_tasks(app, g.actor, TaskFilter(due_this_week=True))}
    query = {k: v for k, v in {**filters, "sort": task_filter.sort}.items() if v}
    query.update({k: "1" for k, v in flags.items() if v})
    if per_page != 25:
        query["per_page"] = per_page
    return render_template(
        "inbox.html", tasks=found, total=total, counts=counts, page=page, per_page=per_page,
        pages=max(1, -(-total // per_page)), filters=filters, flags=flags, sort=task_filter.sort, query=query,
        processes=definitions.list_definitions(app, latest_only=True), roles=sorted(g.actor.process_roles),
        per_page_choices=PER_PAGE_CHOICES, now=clock.now(), age=_age)


def _age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _back_to_inbox() -> str:
    return security.safe_next(request.form.get("next"), url_for("pages.inbox"))


@blueprint.post("/tasks/<int:task_id>/claim")
def claim(task_id: int):
    try:
        auth.authorize(g.actor, Action.WORK_ON_TASKS)
        task = tasks.claim(_engine(), task_id, g.actor.name)
        flash(f"You claimed “{task.name or task.element_id}”.")
    except (Conflict, Forbidden, NotFound) as exc:
        flash(exc.message, "error")
    return redirect(_back_to_inbox())


@blueprint.post("/tasks/<int:task_id>/unclaim")
def unclaim(task_id: int):
    try:
        auth.authorize(g.actor, Action.WORK_ON_TASKS)
        task = tasks.unclaim(_engine(), task_id, g.actor.name)
        flash(f"“{task.name or task.element_id}” is back with its role.")
    except (Conflict, Forbidden, NotFound) as exc:
        flash(exc.message, "error")
    return redirect(_back_to_inbox())


# -- task page -------------------------------------------------------------------------------

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
    return _render_task(tasks.task_view(_engine(), task_id, g.actor))


@blueprint.post("/tasks/<int:task_id>")
def complete_task(task_id: int):
    app = _engine()
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
    app = _engine()
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


# -- instance page ---------------------------------------------------------------------------

@blueprint.get("/instances/<int:instance_id>")
def instance_page(instance_id: int):
    app = _engine()
    detail = instances.detail(app, instance_id, actor=g.actor, with_history=True)
    drawing = instances.diagram(app, instance_id, actor=g.actor)
    static = Path(current_app.static_folder)
    viewer = (static / VIEWER_SCRIPT).is_file()
    return render_template("instance.html", instance=detail, diagram=drawing, progress=_progress(detail, drawing),
                           viewer_script=VIEWER_SCRIPT if viewer else None,
                           viewer_styles=[s for s in VIEWER_STYLES if (static / s).is_file()] if viewer else [])


def _progress(detail: dict, drawing: dict) -> list[dict]:
    """The phase bar: every phase of the process in order — done, current or to come — with the
    gates that close it."""
    states = {p["phase"]: p["state"] for p in detail["phases"]}
    names = list(drawing["phases"]) + [p for p in states if p not in drawing["phases"]]
    finished = detail["state"] != "running"
    bar = []
    for name in names:
        state = states.get(name) or ("skipped" if finished else "todo")
        bar.append({"phase": name, "state": state,
                    "gates": [gt for gt in detail["gates"] if gt.get("phase") == name]})
    return bar


# -- overview (admins and auditors) and health -----------------------------------------------

@blueprint.get("/overview")
def overview():
    auth.authorize(g.actor, Action.LIST_INSTANCES)
    app = _engine()
    return render_template(
        "overview.html",
        definitions=definitions.list_definitions(app, latest_only=True),
        instances=instances.list_instances(app, limit=50),
        tasks=tasks.list_tasks(app, limit=100),
    )


@blueprint.get("/healthz")
def health():
    return jsonify({"status": "ok"})
