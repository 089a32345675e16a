"""Tasks: my tasks (filtered, sorted, paged), their count, one task, claim, unclaim, assign, delegate,
complete, and my draft of a task's form."""
from __future__ import annotations

import marshmallow as ma

from engine.domain.errors import NotFound
from engine.domain.inbox import TaskFilter
from engine.domain.permissions import Action
from engine.services import drafts, tasks
from web.api.common import Blueprint, actor, engine, requires
from web.api.schemas import (
    AssignArgs,
    CompleteArgs,
    CompletedSchema,
    CountSchema,
    DelegateArgs,
    DelegationSchema,
    TaskFilterArgs,
    TaskListArgs,
    TaskSchema,
)
from web.api.schemas import DraftArgs, DraftDeletedSchema, DraftSchema

PREFIX = "/tasks"
blp = Blueprint("tasks", __name__, description="Human tasks: the inbox")

_PAGE_HEADERS = {
    "X-Total-Count": {"description": "tasks matching the filters, on every page", "schema": {"type": "integer"}},
    "X-Page": {"description": "this page (1-based)", "schema": {"type": "integer"}},
    "X-Per-Page": {"description": "page size", "schema": {"type": "integer"}},
}


def _filter(args: dict) -> TaskFilter:
    return TaskFilter(**{k: args.get(k) for k in ("process", "phase", "gate", "role", "q", "sort")},
                      overdue=args["overdue"], due_this_week=args["due_this_week"])


@blp.route("", methods=["GET"])
@requires(Action.READ_TASKS)
@blp.arguments(TaskListArgs, location="query", unknown=ma.RAISE)
@blp.response(200, TaskSchema(many=True), headers=_PAGE_HEADERS)
def my_tasks(args):
    """My tasks: ready tasks of the roles I hold or assigned to me (every task for admins and auditors)"""
    found, total = tasks.my_tasks(engine(), actor(), _filter(args), page=args["page"], per_page=args["per_page"])
    return [t.to_dict() for t in found], 200, {"X-Total-Count": str(total), "X-Page": str(args["page"]),
                                               "X-Per-Page": str(args["per_page"])}


@blp.route("/count", methods=["GET"])
@requires(Action.READ_TASKS)
@blp.arguments(TaskFilterArgs, location="query", unknown=ma.RAISE)
@blp.response(200, CountSchema)
def count(args):
    """How many of my tasks match the filters"""
    return {"count": tasks.count_my_tasks(engine(), actor(), _filter(args))}


@blp.route("/<int:task_id>", methods=["GET"])
@requires(Action.READ_TASKS)
@blp.response(200, TaskSchema)
def one(task_id):
    """One task, in any state (if it is routed to a role I hold or to me)"""
    return tasks.get_task(engine(), task_id, actor=actor()).to_dict()


@blp.route("/<int:task_id>/claim", methods=["POST"])
@requires(Action.WORK_ON_TASKS)
@blp.response(200, TaskSchema)
def claim(task_id):
    """Claim a task: it leaves the other role members' lists (409 if someone else has it)"""
    return tasks.claim(engine(), task_id, actor().name).to_dict()


@blp.route("/<int:task_id>/unclaim", methods=["POST"])
@requires(Action.WORK_ON_TASKS)
@blp.response(200, TaskSchema)
def unclaim(task_id):
    """Give a claimed task back to its role"""
    return tasks.unclaim(engine(), task_id, actor().name).to_dict()


@blp.route("/<int:task_id>/assign", methods=["POST"])
@requires(Action.WORK_ON_TASKS)
@blp.arguments(AssignArgs)
@blp.response(200, TaskSchema)
def assign(args, task_id):
    """Assign a task to a user holding one of its roles (admins; others for a task they hold or of their role
    that nobody else has claimed). Recorded as `assigned` with from and to. Gate approvals are delegated instead."""
    return tasks.assign(engine(), task_id, actor().name, args["user"]).to_dict()


@blp.route("/<int:task_id>/delegate", methods=["POST"])
@requires(Action.WORK_ON_TASKS)
@blp.arguments(DelegateArgs)
@blp.response(200, DelegationSchema)
def delegate(args, task_id):
    """Hand a task I work on to someone else: a normal task to a user holding one of its roles (they become its
    assignee), a gate approval's decision to a delegate who decides on my behalf (the gate's rules apply)"""
    return tasks.delegate(engine(), task_id, actor().name, args["to"])


@blp.route("/<int:task_id>/complete", methods=["POST"])
@requires(Action.WORK_ON_TASKS)
@blp.arguments(CompleteArgs)
@blp.response(200, CompletedSchema)
def complete(args, task_id):
    """Complete a task with form data; the instance afterwards, with the elements that ran (`path`)

    The data is validated against the task's form: 422 with every bad field, and nothing written.
    """
    return tasks.complete_and_show(engine(), task_id, actor().name, args["data"])


# -- drafts: a half-filled form kept for its author (engine.services.drafts) ------------------

@blp.route("/<int:task_id>/draft", methods=["GET"])
@requires(Action.WORK_ON_TASKS)
@blp.response(200, DraftSchema)
def get_draft(task_id):
    """My draft of a task (404 if I have none; only its author reads a draft)"""
    draft = drafts.get_draft(engine(), task_id, actor())
    if draft is None:
        raise NotFound(f"no draft of task {task_id} by '{actor().name}'")
    return draft.to_dict()


@blp.route("/<int:task_id>/draft", methods=["PUT"])
@requires(Action.WORK_ON_TASKS)
@blp.arguments(DraftArgs)
@blp.response(200, DraftSchema)
def put_draft(args, task_id):
    """Save my draft of a task I may work on, replacing the previous one

    Not validated against the form (a draft may be unfinished): it must be an object of the form's
    fields and at most 256 KiB (422 otherwise). Completing the task deletes it. Not recorded in
    the instance's event history.
    """
    return drafts.save_draft(engine(), task_id, actor(), args["data"]).to_dict()


@blp.route("/<int:task_id>/draft", methods=["DELETE"])
@requires(Action.WORK_ON_TASKS)
@blp.response(200, DraftDeletedSchema)
def delete_draft(task_id):
    """Discard my draft of a task (404 if I have none)"""
    if not drafts.discard_draft(engine(), task_id, actor()):
        raise NotFound(f"no draft of task {task_id} by '{actor().name}'")
    return {"task": task_id, "deleted": True}
