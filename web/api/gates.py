"""Phase gates: an instance's gates and action items, decisions on approval tasks, closing items."""
from __future__ import annotations

from engine.domain.permissions import Action
from engine.services import gates, instances
from web.api.common import Blueprint, actor, engine, requires
from web.api.schemas import (
    ActionItemSchema,
    BulkDecisionArgs,
    BulkDecisionReportSchema,
    CloseActionArgs,
    DecisionArgs,
    DecisionResultSchema,
    GateSchema,
)

PREFIX = ""
blp = Blueprint("gates", __name__, description="Phase gates: decisions and action items")


@blp.route("/instances/<int:instance_id>/gates", methods=["GET"])
@requires(Action.READ_INSTANCE)
@blp.response(200, GateSchema(many=True))
def instance_gates(instance_id):
    """Each gate of the instance: state, round, rule, decisions, who may still decide and who may not"""
    return instances.gates_of(engine(), instance_id, actor=actor())


@blp.route("/instances/<int:instance_id>/action-items", methods=["GET"])
@requires(Action.READ_INSTANCE)
@blp.response(200, ActionItemSchema(many=True))
def action_items(instance_id):
    """Action items from Conditional Go decisions (the next gate waits until all are closed)"""
    return instances.action_items_of(engine(), instance_id, actor=actor())


@blp.route("/tasks/<int:task_id>/decision", methods=["POST"])
@requires(Action.WORK_ON_TASKS)
@blp.arguments(DecisionArgs)
@blp.response(200, DecisionResultSchema)
def decide(args, task_id):
    """Decide on a gate approval task (role or delegation, separation of duties, signature)"""
    return gates.decide(engine(), task_id, actor().name, args["outcome"], comment=args.get("comment"),
                        conditions=args.get("conditions"), on_behalf_of=args.get("on_behalf_of"),
                        password=args.get("password"))


@blp.route("/tasks/bulk-decision", methods=["POST"])
@requires(Action.WORK_ON_TASKS)
@blp.arguments(BulkDecisionArgs)
@blp.response(200, BulkDecisionReportSchema)
def bulk_decide(args):
    """Approve several gate approval tasks: each is checked and decided on its own, exactly like a single
    decision; a gate that needs a signature, or an approval form with required fields, is skipped. 200 with a
    result per task (which were approved, skipped or refused, and why)"""
    results = gates.decide_many(engine(), args["tasks"], actor().name, args["outcome"], comment=args.get("comment"))
    counts = {status: sum(1 for r in results if r["status"] == status) for status in ("approved", "skipped", "failed")}
    return {"results": results, **counts}


@blp.route("/action-items/<int:item_id>/close", methods=["POST"])
@requires(Action.CLOSE_ACTION_ITEMS)
@blp.arguments(CloseActionArgs)
@blp.response(200, ActionItemSchema)
def close_action_item(args, item_id):
    """Close an action item (its owner, or an admin); the last one unblocks waiting gates"""
    return gates.close_action_item(engine(), item_id, actor().name, args.get("note"))
