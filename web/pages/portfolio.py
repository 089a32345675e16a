"""The portfolio page: every running instance by phase and gate status, overdue first, with
counts per phase (admins, auditors and the role `pmo`: `Action.PORTFOLIO`)."""
from __future__ import annotations

from flask import g, render_template, request

from engine.domain.permissions import Action
from engine.services import auth, portfolio as portfolio_service
from web.pages import blueprint, engine_app, int_arg

PER_PAGE_CHOICES = (25, 50, 100)
DEFAULT_PER_PAGE = portfolio_service.DEFAULT_PER_PAGE


@blueprint.get("/portfolio")
def portfolio():
    auth.authorize(g.actor, Action.PORTFOLIO)
    args = request.args
    process = (args.get("process") or "").strip() or None
    phase = (args.get("phase") or "").strip() or None
    overdue = args.get("overdue") == "1"
    page, per_page = max(1, int_arg("page", 1)), int_arg("per_page", DEFAULT_PER_PAGE)
    if per_page not in PER_PAGE_CHOICES:
        per_page = DEFAULT_PER_PAGE
    view = portfolio_service.portfolio(engine_app(), g.actor, process=process, phase=phase, overdue_only=overdue,
                                       page=page, per_page=per_page)
    query = {k: v for k, v in {"process": process, "phase": phase}.items() if v}
    if overdue:
        query["overdue"] = "1"
    if per_page != DEFAULT_PER_PAGE:
        query["per_page"] = per_page
    return render_template("portfolio.html", view=view, query=query, per_page_choices=PER_PAGE_CHOICES,
                           now=view.generated_at)
