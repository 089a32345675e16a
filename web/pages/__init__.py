"""Server-rendered pages: one blueprint, a module per page family (sign-in, inbox, task pages,
instance pages, overview).

Every page but /sign-in (with /sign-in/oidc*) and /healthz needs a signed-in user (else a redirect to
/sign-in?next=...); every POST form carries a CSRF token (web.security). Routes stay thin: they
parse the request, call `engine.services`, and render.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from engine.bootstrap import Phasegate
from engine.domain.errors import PhasegateError, Unauthenticated
from engine.domain.permissions import Action, allowed
from engine.services import auth
from web import security

blueprint = Blueprint("pages", __name__)

PUBLIC_ENDPOINTS = {"pages.sign_in", "pages.health", "pages.oidc_sign_in", "pages.oidc_callback"}
OUTCOME_LABELS = {"go": "Approve", "conditional-go": "Approve with conditions", "hold": "Put on hold",
                  "recycle": "Reject (send back for rework)", "kill": "Reject and stop", "abstain": "Abstain"}
COMMENT_REQUIRED = ("hold", "recycle", "kill")
# A form shown again with its errors is a 200: browsers log every 4xx page load as a console
# error, and the page itself says what is wrong (refusals with no form to fix keep their status).
FORM_ERROR = 200


def engine_app() -> Phasegate:
    return current_app.extensions["phasegate"]


def int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


@blueprint.before_request
def _require_sign_in():
    if request.method == "POST":
        security.check_csrf()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user = security.current_user()
    if user:
        try:
            g.actor = auth.authenticate(engine_app(), session_user=user)
            return None
        except Unauthenticated:
            security.sign_out()  # the user was deactivated or removed
    return redirect(url_for("pages.sign_in", next=request.full_path.rstrip("?")))


HTMX_SCRIPT = "vendor/htmx/htmx.min.js"


@blueprint.app_context_processor
def _globals():
    actor = getattr(g, "actor", None)
    return {"me": actor, "outcome_labels": OUTCOME_LABELS, "htmx_script": _htmx_script(), "age": age_text,
            # Navigation links, from the roles alone (no database): whether one of those roles
            # starts a process is the start page's to say.
            "may_see_portfolio": actor is not None and allowed(actor, Action.PORTFOLIO),
            "may_start_something": actor is not None and allowed(actor, Action.START)}


def age_text(since: datetime, now: datetime) -> str:
    """How long ago `since` was, in one unit: "12 min", "5 h", "3 d"."""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _htmx_script() -> str | None:
    """htmx (vendored by `make assets`) when present: pages swap parts of themselves with it, and
    work as plain forms and links without it."""
    found = current_app.extensions.get("phasegate_htmx")
    if found is None:
        found = (Path(current_app.static_folder) / HTMX_SCRIPT).is_file()
        current_app.extensions["phasegate_htmx"] = found
    return HTMX_SCRIPT if found else None


@blueprint.errorhandler(PhasegateError)
def _engine_error(error: PhasegateError):
    status = error.http_status if error.http_status in (400, 403, 404, 409, 422) else 500
    return render_template("error.html", title={403: "Not allowed", 404: "Not found"}.get(status, "Cannot do that"),
                           message=error.message), status


@blueprint.errorhandler(400)
def _bad_request(error: HTTPException):
    return render_template("error.html", title="Bad request", message=error.description), 400


# The page modules add their routes to `blueprint` when imported (after it exists).
from web.pages import bulk, inbox, instance_pages, oidc, overview, portfolio, reassign, sign_in, start, task_pages  # noqa: E402,F401
