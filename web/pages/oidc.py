"""Single sign-on pages (docs/oidc.md): /sign-in/oidc sends the browser to the OpenID Connect
provider, /sign-in/oidc/callback signs in the Phasegate user the provider names. Both 404 unless
single sign-on is configured (web.oidc).

A failure shows the sign-in page with what went wrong (password sign-in stays there for local
users). Failures that could be someone probing — a forged or replayed callback, an unknown or
deactivated user — count against the client address in the same limiter as failed passwords.
"""
from __future__ import annotations

import logging

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for

from engine.domain.errors import Unauthenticated
from engine.services import oidc_users
from web import oidc, security
from web.pages import FORM_ERROR, blueprint, engine_app

log = logging.getLogger("phasegate.web.oidc")

# Where to go after the provider sends the browser back (the provider only carries `state`).
SESSION_NEXT = "oidc_next"
# Failed single sign-ons are counted per client address under a name no user can have (user
# names have no spaces), apart from any user's failed passwords.
LIMITER_NAME = "single sign-on"


def _sso() -> oidc.SingleSignOn:
    sso = oidc.of(current_app)
    if sso is None:
        abort(404)
    return sso


def _sign_in_page(next_url: str, error: str, status: int = FORM_ERROR, headers: dict | None = None):
    return render_template("sign_in.html", next=next_url, username="", error=error), status, headers or {}


def _limited(key: tuple, next_url: str):
    """The 429 page when this address has failed too often, like the password form; else None."""
    wait = security.limiter(current_app).retry_after(key)
    if not wait:
        return None
    return _sign_in_page(next_url, f"Too many failed sign-ins. Try again in {wait // 60 + 1} minutes.",
                         429, {"Retry-After": str(wait)})


@blueprint.get("/sign-in/oidc")
def oidc_sign_in():
    sso = _sso()
    next_url = security.safe_next(request.args.get("next"), url_for("pages.inbox"))
    if security.current_user():
        return redirect(next_url)
    limited = _limited((LIMITER_NAME, request.remote_addr or "-"), next_url)
    if limited:
        return limited
    session[SESSION_NEXT] = next_url
    try:
        return sso.start()
    except oidc.SignOnFailed as failure:
        return _sign_in_page(next_url, failure.message)


@blueprint.get("/sign-in/oidc/callback")
def oidc_callback():
    sso = _sso()
    next_url = security.safe_next(session.pop(SESSION_NEXT, None), url_for("pages.inbox"))
    key = (LIMITER_NAME, request.remote_addr or "-")
    limited = _limited(key, next_url)
    if limited:
        return limited
    limiter = security.limiter(current_app)
    try:
        claims = sso.finish()
        result = oidc_users.sign_in_user(engine_app(), claims, sso.settings.mapping)
    except oidc.SignOnFailed as failure:
        if failure.counts:
            limiter.fail(key)
        return _sign_in_page(next_url, failure.message)
    except Unauthenticated as refusal:
        limiter.fail(key)
        log.info("single sign-on refused: %s", refusal.message)
        return _sign_in_page(next_url, refusal.message)
    limiter.reset(key)
    security.sign_in(result.user)
    if result.ignored_roles:
        log.warning("single sign-on: %s: ignored values of %s that are not role names: %s", result.user,
                    sso.settings.roles_claim, ", ".join(result.ignored_roles))
    if result.changed:
        log.info("single sign-on: %s: %s", result.user, result.describe())
    if result.role_changes():
        flash(f"Your roles were updated from single sign-on: {result.role_changes()}.")
    return redirect(next_url)
