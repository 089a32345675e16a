"""The portfolio: every active instance by phase and gate status (admins, auditors, role pmo)."""
from __future__ import annotations

import marshmallow as ma

from engine.domain.permissions import Action
from engine.services import portfolio
from web.api.common import Blueprint, actor, engine, requires
from web.api.schemas import PortfolioArgs, PortfolioSchema

PREFIX = "/portfolio"
blp = Blueprint("portfolio", __name__, description="The portfolio of running instances")


@blp.route("", methods=["GET"])
@requires(Action.PORTFOLIO)
@blp.arguments(PortfolioArgs, location="query", unknown=ma.RAISE)
@blp.response(200, PortfolioSchema)
def read(args):
    """Every running instance by phase and gate status, overdue first, with counts per phase

    Admins, auditors and holders of the role `pmo`. `instances` is one page (overdue first, then by
    the oldest due date of their open tasks); `pipelines` counts the instances per process and
    phase, in the process's phase order, within the `process` filter only.
    """
    return portfolio.portfolio(engine(), actor(), process=args.get("process"), phase=args.get("phase"),
                               overdue_only=args["overdue"], page=args["page"], per_page=args["per_page"]).to_dict()
