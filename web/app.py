"""The Flask application factory: `create_app()` for the dev server, gunicorn and tests.

Routes stay thin: they parse input, call `engine.services`, and render or serialise.
"""
from __future__ import annotations

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

    from web import pages

    app.register_blueprint(pages.blueprint)
    return app


def phasegate_of(app: Flask) -> Phasegate:
    return app.extensions["phasegate"]
