"""The REST API under /api/v1 (flask-smorest): definitions, instances, tasks, gates, users and
roles, API tokens; the OpenAPI 3 document at /api/v1/openapi.json and a docs page at /api/v1/docs.

Routes are thin: they parse input with the schemas in `schemas`, call one function of
`engine.services`, and serialise its result — the same services, and the same JSON shapes, as
the CLI's `--json`. See docs/api.md.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from web.api.common import API_PREFIX, http_error
from web.api.schemas import ErrorSchema

# Swagger UI is vendored by `make assets` (web/static/vendor/swagger-ui) so the docs page works
# offline; without it, it comes from a CDN, and without access to that the page still loads and
# links the OpenAPI document (web/templates/swagger_ui.html).
SWAGGER_UI_CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.17.14/"
SWAGGER_UI_VENDORED = "vendor/swagger-ui/"

DEFAULTS = {
    "API_TITLE": "Phasegate API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": API_PREFIX,
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": SWAGGER_UI_CDN,
    "API_SPEC_OPTIONS": {
        "info": {"description": "Phasegate's REST API. Authenticate with `Authorization: Bearer <token>` "
                                "(create one with `phasegate tokens create USER --name NAME` or POST "
                                "/api/v1/tokens). Errors are `{code, message, details}`. See docs/api.md."},
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "description": "a personal API token (pg_...)"}}},
    },
}


class PhasegateApi(Api):
    """flask-smorest's Api with Phasegate's error shape, applied to /api/v1 paths only."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        self._app.register_error_handler(HTTPException, http_error)


def init_api(app: Flask) -> PhasegateApi:
    """Mount the API on `app` (called by web.app.create_app)."""
    from web.api import definitions, gates, instances, me, portfolio, tasks, tokens, users

    if (Path(app.static_folder) / SWAGGER_UI_VENDORED / "swagger-ui-bundle.js").is_file():
        app.config.setdefault("OPENAPI_SWAGGER_UI_URL", f"{app.static_url_path}/{SWAGGER_UI_VENDORED}")
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    api = PhasegateApi(app)
    for module in (definitions, instances, tasks, gates, users, tokens, me, portfolio):
        api.register_blueprint(module.blp, url_prefix=API_PREFIX + module.PREFIX)
    app.extensions["phasegate_api"] = api
    return api
