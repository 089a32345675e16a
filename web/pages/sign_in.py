"""Sign-in and sign-out."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from engine.services import auth
from web import security
from web.pages import FORM_ERROR, blueprint, engine_app


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
    if username and password and auth.verify_password(engine_app(), username, password):
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
