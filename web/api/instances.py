"""Process instances: list (admins, auditors), start, show, cancel, history, messages."""
from __future__ import annotations

import marshmallow as ma

from engine.domain.inbox import page_window
from engine.domain.permissions import Action
from engine.services import instances
from web.api.common import Blueprint, actor, engine, requires
from web.api.schemas import (
    CancelArgs,
    EventSchema,
    InstanceDetailSchema,
    InstanceListArgs,
    InstanceSchema,
    InstanceShowArgs,
    MessageArgs,
    StartArgs,
)

PREFIX = "/instances"
blp = Blueprint("instances", __name__, description="Process instances")


@blp.route("", methods=["GET"])
@requires(Action.LIST_INSTANCES)
@blp.arguments(InstanceListArgs, location="query", unknown=ma.RAISE)
@blp.response(200, InstanceSchema(many=True))
def list_instances(args):
    """Instances, newest first (admins and auditors)"""
    limit, offset = page_window(args["page"], args["per_page"])
    return [i.to_dict() for i in instances.list_instances(
        engine(), state=args.get("state"), key=args.get("key"), business_key=args.get("business_key"),
        limit=limit, offset=offset)]


@blp.route("", methods=["POST"])
@requires(Action.START)
@blp.arguments(StartArgs)
@blp.response(201, InstanceSchema)
def start(args):
    """Start an instance of a process and run it until it waits

    Admins start any process; others a process whose start event lies in the lane of (or has the
    `role` property naming) a role they hold.
    """
    return instances.start(engine(), args["key"], data=args["data"], business_key=args.get("business_key"),
                           version=args.get("version"), gate_overrides=args.get("gate_overrides"),
                           actor=actor()).to_dict()


@blp.route("/<int:instance_id>", methods=["GET"])
@requires(Action.READ_INSTANCE)
@blp.arguments(InstanceShowArgs, location="query", unknown=ma.RAISE)
@blp.response(200, InstanceDetailSchema)
def show(args, instance_id):
    """An instance with open tasks, phases and gates (`phasegate show --json`)"""
    return instances.detail(engine(), instance_id, actor=actor(), with_history=args["history"])


@blp.route("/<int:instance_id>/cancel", methods=["POST"])
@requires(Action.CANCEL)
@blp.arguments(CancelArgs)
@blp.response(200, InstanceSchema)
def cancel(args, instance_id):
    """Cancel a running instance (admins)"""
    return instances.cancel(engine(), instance_id, reason=args["reason"], user=actor().name).to_dict()


@blp.route("/<int:instance_id>/history", methods=["GET"])
@requires(Action.READ_INSTANCE)
@blp.response(200, EventSchema(many=True))
def history(instance_id):
    """The instance's events, oldest first (hash chained)"""
    return [e.to_dict() for e in instances.history(engine(), instance_id, actor=actor())]


@blp.route("/<int:instance_id>/messages", methods=["POST"])
@requires(Action.SEND_MESSAGE)
@blp.arguments(MessageArgs)
@blp.response(200, InstanceSchema)
def message(args, instance_id):
    """Deliver a BPMN message (e.g. raise_risk) to a running instance (admins)"""
    return instances.send_message(engine(), instance_id, args["name"], args["data"], user=actor().name).to_dict()
