"""What every API blueprint shares: authentication, the permission decorator, the error shape.

Authentication runs before every API view (never for the OpenAPI document and docs page):
`Authorization: Bearer <token>` (a personal API token), else the signed-in user of the browser
session (`session["user"]`, set by the pages' sign-in). A session may only change something
(POST, PUT, PATCH, DELETE) with the header `X-Requested-With` — a page's script sets it; another
site's form cannot — so a session cookie alone never authorises a write (CSRF).
"""
from __future__ import annotations

import functools
import logging

from flask import current_app, g, jsonify, request, session
from flask_smorest import Blueprint as SmorestBlueprint
from werkzeug.exceptions import HTTPException

from engine.bootstrap import Phasegate
from engine.domain.errors import Forbidden, PhasegateError, Unauthenticated
from engine.domain.permissions import Action, Actor, require
from engine.services import auth

log = logging.getLogger("phasegate.api")

API_PREFIX = "/api/v1"
SESSION_USER = "user"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def engine() -> Phasegate:
    return current_app.extensions["phasegate"]


def actor() -> Actor:
    """The authenticated caller of this request."""
    return g.phasegate_actor


def error_body(code: str, message: str, details: dict | None = None, status: int = 400, headers=None):
    response = jsonify({"code": code, "message": message, "details": details or {}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def phasegate_error(error: PhasegateError):
    headers = {"WWW-Authenticate": 'Bearer realm="phasegate"'} if isinstance(error, Unauthenticated) else None
    if error.http_status >= 500:
        log.error("API error %s: %s", error.code, error.message)
    return error_body(error.code, error.message, error.details, error.http_status, headers)


def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    token = None
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'")
        token = value.strip()
    session_user = None if token else session.get(SESSION_USER)
    if session_user and request.method not in _SAFE_METHODS and not request.headers.get("X-Requested-With"):
        raise Forbidden("a browser session may only change data from Phasegate's pages "
                        "(header X-Requested-With missing)", details={"reason": "csrf"})
    g.phasegate_actor = auth.authenticate(engine(), token=token, session_user=session_user)


class Blueprint(SmorestBlueprint):
    """An API blueprint: every view authenticates first; engine errors become the JSON error shape."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.before_request(_authenticate)
        self.register_error_handler(PhasegateError, phasegate_error)


def requires(action: Action):
    """The view needs `action` (engine.domain.permissions): 403 otherwise, before anything is parsed.

    Object-level rules (a task's roles, an instance one takes part in) are the services' to apply.
    """
    action = Action(action)

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            require(actor(), action)
            return view(*args, **kwargs)

        wrapper.phasegate_action = action
        return SmorestBlueprint.doc(**{"x-permission": action.value})(wrapper)

    return decorator


# -- HTTP errors (unknown URL, wrong method, bad request bodies) --------------------------------

def flatten_messages(messages, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow messages {"json": {"a": {"b": ["msg"]}}} -> {"a/b": ["msg"]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            key = "(body)" if key == "_schema" else key  # marshmallow's name for the whole object
            name = f"{prefix}/{key}" if prefix else str(key)
            if isinstance(value, (dict, list)) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                flat.update(flatten_messages(value, name))
            else:
                flat[name] = [value] if isinstance(value, str) else list(value)
    elif isinstance(messages, list):
        flat[prefix or "(body)"] = [str(m) for m in messages]
    else:
        flat[prefix or "(body)"] = [str(messages)]
    return flat


def http_error(error: HTTPException):
    """HTTP errors under /api/v1 get the JSON error shape; elsewhere Flask's own pages stay."""
    if not request.path.startswith(API_PREFIX):
        return error
    data = getattr(error, "data", None) or {}
    status = error.code or 500
    if "messages" in data or "errors" in data:
        messages = data.get("messages", data.get("errors"))
        locations = list(messages) if isinstance(messages, dict) else []
        fields = {}
        for location in locations:
            fields.update(flatten_messages(messages[location]))
        if not locations:
            fields = flatten_messages(messages)
        where = {"json": "request body", "query": "query parameters", "files": "upload", "form": "form"}
        described = ", ".join(where.get(loc, loc) for loc in locations) or "request"
        return error_body("invalid_input" if status == 422 else "bad_request", f"invalid {described}: " + "; ".join(
            f"{name}: {msgs[0]}" for name, msgs in fields.items()), {"fields": fields}, status)
    if status >= 500:
        original = getattr(error, "original_exception", None)
        log.error("API internal error on %s %s", request.method, request.path,
                  exc_info=(type(original), original, original.__traceback__) if original else None)
        return error_body("internal_error", "internal error: it was logged; the request may be retried",
                          status=500)
    code = (error.name or "error").lower().replace(" ", "_").replace("'", "")
    code = {"unauthorized": "unauthenticated", "unprocessable_entity": "invalid_input",
            "request_entity_too_large": "too_large"}.get(code, code)
    return error_body(code, error.description or error.name, status=status)
