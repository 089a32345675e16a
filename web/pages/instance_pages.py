"""The instance page: phase progress bar, BPMN diagram, data and history."""
from __future__ import annotations

from pathlib import Path

from flask import current_app, g, render_template

from engine.domain.permissions import may_see_task
from engine.services import instances
from web.pages import blueprint, engine_app

VIEWER_SCRIPT = "vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"
VIEWER_STYLES = ("vendor/bpmn-js/assets/diagram-js.css", "vendor/bpmn-js/assets/bpmn-js.css")


@blueprint.get("/instances/<int:instance_id>")
def instance_page(instance_id: int):
    app = engine_app()
    detail = instances.detail(app, instance_id, actor=g.actor, with_history=True)
    drawing = instances.diagram(app, instance_id, actor=g.actor)
    static = Path(current_app.static_folder)
    viewer = (static / VIEWER_SCRIPT).is_file()
    # Open tasks link to their page only for those who may open it (the page would refuse others).
    openable = {t["id"] for t in detail["tasks"] if may_see_task(g.actor, t["roles"], t["assignee"])}
    return render_template("instance.html", instance=detail, diagram=drawing, progress=_progress(detail, drawing),
                           openable=openable,
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
