"""The overview for admins and auditors, and the health check."""
from __future__ import annotations

from flask import g, jsonify, render_template

from engine.domain.permissions import Action
from engine.services import auth, definitions, instances, tasks
from web.pages import blueprint, engine_app


@blueprint.get("/overview")
def overview():
    auth.authorize(g.actor, Action.LIST_INSTANCES)
    app = engine_app()
    return render_template(
        "overview.html",
        definitions=definitions.list_definitions(app, latest_only=True),
        instances=instances.list_instances(app, limit=50),
        tasks=tasks.list_tasks(app, limit=100),
    )


@blueprint.get("/healthz")
def health():
    return jsonify({"status": "ok"})
