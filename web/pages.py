"""Server-rendered pages. For now an overview of definitions, instances and open tasks."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from engine.services import definitions, instances, tasks

blueprint = Blueprint("pages", __name__)


def _engine():
    return current_app.extensions["phasegate"]


@blueprint.get("/")
def overview():
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
