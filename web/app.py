"""The Flask application factory: `create_app()` for the dev server, gunicorn and tests.

Routes stay thin: they parse input, call `engine.services`, and render or serialise.
"""
from __future__ import annotations

import logging
import os
import secrets

from flask import Flask

from engine.adapters.database import resolve_url
from engine.bootstrap import Phasegate


def create_app(database_url: str | None = None, *, phasegate: Phasegate | None = None,
               config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    engine_app = phasegate or Phasegate(database_url)
    app.extensions["phasegate"] = engine_app
    url = engine_app.engine.url
    app.config["PHASEGATE_DATABASE_LABEL"] = url.render_as_string(hide_password=True) if url else resolve_url(None)

    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key()

    from web import oidc, pages, security

    security.configure(app)
    oidc.init_app(app)  # single sign-on, when PHASEGATE_OIDC_* configure it

    app.register_blueprint(pages.blueprint)

    from web.api import init_api

    init_api(app)
    return app


def _secret_key() -> str:
    """Signs the session cookie: $PHASEGATE_SECRET_KEY, else a random key for this process (sessions
    then end when it restarts, and gunicorn workers would not share it: set the variable)."""
    key = os.environ.get("PHASEGATE_SECRET_KEY")
    if key:
        return key
    logging.getLogger("phasegate.web").warning(
        "PHASEGATE_SECRET_KEY is not set: using a random secret key; browser sessions end when the "
        "server restarts and are not shared between workers")
    return secrets.token_urlsafe(32)


def phasegate_of(app: Flask) -> Phasegate:
    return app.extensions["phasegate"]
