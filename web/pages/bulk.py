"""Approving several gate approvals from the inbox at once, with a report of each."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from engine.domain.errors import InvalidInput
from engine.domain.permissions import Action
from engine.services import auth, gates
from web.pages import blueprint, engine_app


@blueprint.post("/tasks/bulk-decision")
def bulk_decision():
    auth.authorize(g.actor, Action.WORK_ON_TASKS)
    picked = request.form.getlist("task")
    task_ids = [int(value) for value in picked if value.isdigit()]
    if len(task_ids) != len(picked):
        flash("The selection was not understood: choose gate approvals in the list.", "error")
        return redirect(url_for("pages.inbox"))
    try:
        results = gates.decide_many(engine_app(), task_ids, g.actor.name, "go",
                                    comment=request.form.get("comment") or None)
    except InvalidInput as exc:
        flash("Select at least one gate approval to approve." if "tasks" in exc.fields and not task_ids
              else exc.message, "error")
        return redirect(url_for("pages.inbox"))
    counts = {status: sum(1 for r in results if r["status"] == status) for status in ("approved", "skipped", "failed")}
    return render_template("bulk_report.html", results=results, counts=counts)
