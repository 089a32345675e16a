"""Request and response bodies of the API as marshmallow schemas (the OpenAPI document is built
from them).

Response schemas describe the JSON shapes the CLI prints with `--json` (README "JSON shapes"):
the services' `to_dict()` output goes through them unchanged. `Shape.keep_undeclared` passes on
any key a schema does not declare, so a key added to a shape later can never be dropped by the
API (the shapes are stable: keys are added, never removed or renamed).
"""
from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from engine.domain.inbox import MAX_PER_PAGE, SORTS
from engine.domain.model import INSTANCE_STATES


def _text(description: str | None = None, **kwargs):
    return fields.String(allow_none=True, metadata={"description": description} if description else {}, **kwargs)


def _when(description: str | None = None):
    meta = {"format": "date-time"}
    if description:
        meta["description"] = description
    return fields.String(allow_none=True, metadata=meta)


def _int(description: str | None = None):
    return fields.Integer(allow_none=True, metadata={"description": description} if description else {})


# -- errors -----------------------------------------------------------------------------------

class ErrorSchema(ma.Schema):
    """Every error: a stable machine `code`, a message for people, and details."""

    class Meta:
        unknown = ma.INCLUDE

    code = fields.String(required=True, metadata={"description": "invalid_input, not_found, forbidden, conflict, "
                                                                 "unauthenticated, model_rejected, ..."})
    message = fields.String(required=True)
    details = fields.Dict(required=True, metadata={"description": "invalid_input: {\"fields\": {path: [messages]}}; "
                                                   "model_rejected: {\"issues\": [...]}"})


# -- response shapes --------------------------------------------------------------------------

class Shape(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE  # documented as open: keys may be added to a shape, never removed

    @ma.post_dump(pass_original=True)
    def keep_undeclared(self, data, original, **_kwargs):
        if isinstance(original, dict):
            for key, value in original.items():
                data.setdefault(key, value)
        return data


class DefinitionSchema(Shape):
    id = fields.Integer()
    key = fields.String()
    version = fields.Integer()
    hash = fields.String(metadata={"description": "SHA-256 of the process's files"})
    name = _text()
    deployed_by = fields.String()
    deployed_at = _when()


class DeployedSchema(Shape):
    key = fields.String()
    version = fields.Integer()
    hash = fields.String()
    new = fields.Boolean(metadata={"description": "false: identical content, the existing version"})
    gates = fields.Dict(metadata={"description": "the gate configuration deployed with it: {version, hash, new}"})


class DeployResultSchema(Shape):
    deployed = fields.List(fields.Nested(DeployedSchema))


class TaskSchema(Shape):
    id = fields.Integer()
    instance = fields.Integer()
    process = fields.String()
    business_key = _text()
    element_id = fields.String()
    name = _text()
    role = _text("primary candidate role")
    roles = fields.List(fields.String(), metadata={"description": "every candidate role"})
    assignee = _text()
    phase = _text()
    form = _text()
    due = _when()
    state = fields.String(metadata={"description": "ready | completed | cancelled | withdrawn"})
    created_at = _when()
    completed_at = _when()
    completed_by = _text()
    kind = fields.String(metadata={"description": "task, or approval (one approver group's share of a gate)"})
    gate = _int("gate round id (approvals)")
    round = _int("gate round number (approvals)")


class InstanceSchema(Shape):
    id = fields.Integer()
    key = fields.String()
    version = fields.Integer()
    business_key = _text()
    state = fields.String(metadata={"description": " | ".join(INSTANCE_STATES)})
    phase = _text()
    data = fields.Dict()
    error = fields.Dict(allow_none=True)
    tasks = fields.List(fields.Nested(TaskSchema))
    started_by = fields.String()
    created_at = _when()
    updated_at = _when()
    ended_at = _when()
    cancel_reason = _text()
    outcome = _text("how a gate ended the instance, e.g. killed")


class EventSchema(Shape):
    instance = fields.Integer()
    seq = fields.Integer()
    at = _when()
    actor = fields.String()
    type = fields.String()
    task = _int()
    element_id = _text()
    payload = fields.Dict()
    prev_hash = fields.String()
    hash = fields.String()


class PhaseSchema(Shape):
    phase = fields.String()
    state = fields.String(metadata={"description": "done | current"})


class ActionItemSchema(Shape):
    id = fields.Integer()
    text = fields.String()
    owner = fields.String()
    due = _when()
    state = fields.String(metadata={"description": "open | closed"})
    closed_by = _text()
    closed_at = _when()
    note = _text()


class GateDecisionSchema(Shape):
    user = fields.String()
    on_behalf_of = _text()
    role = fields.String()
    outcome = fields.String()
    comment = _text()
    conditions = fields.List(fields.Dict(), allow_none=True)
    signature = _text()
    carried_over = fields.Boolean()
    at = _when()


class GateSchema(Shape):
    gate = fields.String()
    title = _text()
    element_id = _text()
    phase = _text()
    state = fields.String(metadata={"description": "not opened | blocked | open | passed | rejected | withdrawn"})
    round = fields.Integer()
    outcome = _text()
    reason = _text()
    rule = fields.String()
    approvers = fields.List(fields.Dict())
    config_version = _int()
    submitter = _text()
    opened_at = _when()
    due = _when()
    decided_at = _when()
    criteria = fields.Dict(allow_none=True)
    changes = fields.Dict(allow_none=True)
    decisions = fields.List(fields.Nested(GateDecisionSchema))
    action_items = fields.List(fields.Nested(ActionItemSchema))
    eligible = fields.List(fields.String())
    excluded = fields.List(fields.Dict())
    waiting_on = fields.Dict(metadata={"description": "open gates: {approver role: [who may still decide]}"})


class InstanceDetailSchema(InstanceSchema):
    phases = fields.List(fields.Nested(PhaseSchema))
    gates = fields.List(fields.Nested(GateSchema))
    history = fields.List(fields.Nested(EventSchema), metadata={"description": "with ?history=true"})


class CompletedSchema(InstanceSchema):
    path = fields.List(fields.String(), metadata={"description": "the element ids that ran in this step"})


class DecisionResultSchema(Shape):
    gate = fields.String()
    round = fields.Integer()
    decided = fields.Boolean()
    outcome = _text()
    reason = _text()
    instance = fields.Integer()


class CountSchema(Shape):
    count = fields.Integer()


class DelegationSchema(Shape):
    task = fields.Integer()
    kind = fields.String(metadata={"description": "task: the delegate is now its assignee; approval: the delegate "
                                                  "decides on behalf of the delegator"})
    delegator = fields.String()
    delegate = fields.String()


class BulkDecisionResultSchema(Shape):
    task = fields.Integer()
    ok = fields.Boolean()
    status = fields.String(metadata={"description": "approved | skipped (needs a signature or form fields: decide "
                                                    "it on its own) | failed (refused, see code and error)"})
    gate = _text()
    round = _int()
    instance = _int()
    name = _text()
    business_key = _text()
    decided = fields.Boolean(metadata={"description": "approved: whether this decision decided the gate"})
    outcome = _text("approved and decided: the gate's outcome")
    reason = _text()
    code = _text("skipped or failed: not_simple, forbidden, conflict, not_found, invalid_input")
    error = _text("skipped or failed: why")


class BulkDecisionReportSchema(Shape):
    results = fields.List(fields.Nested(BulkDecisionResultSchema))
    approved = fields.Integer()
    skipped = fields.Integer()
    failed = fields.Integer()


class UserSchema(Shape):
    name = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String())
    active = fields.Boolean()


class RoleSchema(Shape):
    name = fields.String()
    description = _text()
    members = fields.List(fields.String())


class TokenSchema(Shape):
    id = fields.Integer()
    user = fields.String()
    name = fields.String()
    prefix = fields.String(metadata={"description": "the token's first characters"})
    created_at = _when()
    last_used_at = _when()
    revoked_at = _when()
    active = fields.Boolean()


class NewTokenSchema(TokenSchema):
    token = fields.String(metadata={"description": "the token: shown this once, only its SHA-256 is stored"})


class MeSchema(Shape):
    user = fields.Nested(UserSchema)
    permissions = fields.List(fields.String())


# -- requests ---------------------------------------------------------------------------------

class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class PageArgs(Strict):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class TaskFilterArgs(Strict):
    process = fields.String(metadata={"description": "process key"})
    phase = fields.String()
    gate = fields.String(metadata={"description": "gate id from the gates file: its approval tasks"})
    role = fields.String(metadata={"description": "routed to this role"})
    overdue = fields.Boolean(load_default=False, metadata={"description": "due before now"})
    due_this_week = fields.Boolean(load_default=False,
                                   metadata={"description": "due in the current ISO week (UTC, Monday to Sunday)"})
    q = fields.String(metadata={"description": "business key (case-insensitive substring) or instance id"})
    sort = fields.String(validate=validate.OneOf(SORTS), metadata={"description": "due | age | priority"})


class TaskListArgs(TaskFilterArgs, PageArgs):
    pass


class DefinitionListArgs(Strict):
    latest = fields.Boolean(load_default=False, metadata={"description": "only the newest version of each key"})


class InstanceListArgs(PageArgs):
    state = fields.String(validate=validate.OneOf(INSTANCE_STATES))
    key = fields.String()
    business_key = fields.String()


class InstanceShowArgs(Strict):
    history = fields.Boolean(load_default=False, metadata={"description": "include the event history"})


class DeployJson(Strict):
    files = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                        metadata={"description": "{relative file name: text}: *.bpmn, *.dmn, forms/*.json, "
                                                 "*.gates.yaml",
                                  "example": {"review.bpmn": "<?xml ...>", "forms/review.json": "{...}"}})
    gate_overrides = fields.Dict(allow_none=True, metadata={"description": "{gate id: {setting: value}}"})
    apply_to_open_gates = fields.Boolean(load_default=False)


class DeployUpload(Strict):
    file = fields.List(Upload(), required=True,
                       metadata={"description": "one or more .bpmn/.dmn/.json/.gates.yaml files, or a .zip"})
    gate_overrides = fields.String(metadata={"description": "JSON {gate id: {setting: value}}"})
    apply_to_open_gates = fields.Boolean(load_default=False)


class StartArgs(Strict):
    key = fields.String(required=True, metadata={"description": "process key"})
    business_key = fields.String(allow_none=True, validate=validate.Length(max=255))
    data = fields.Dict(load_default=dict)
    version = fields.Integer(allow_none=True, metadata={"description": "default: the latest"})
    gate_overrides = fields.Dict(allow_none=True,
                                 metadata={"description": "{gate id: {setting: value}}, within each gate's "
                                                          "`overridable`"})


class CancelArgs(Strict):
    reason = fields.String(required=True)


class MessageArgs(Strict):
    name = fields.String(required=True, metadata={"description": "BPMN message name, e.g. raise_risk"})
    data = fields.Dict(load_default=dict)


class CompleteArgs(Strict):
    data = fields.Dict(load_default=dict, metadata={"description": "the form data, validated against the task's form"})


class DecisionArgs(Strict):
    outcome = fields.String(required=True, metadata={
        "description": "go | conditional-go | hold | recycle | kill | approve | reject | abstain | recuse"})
    comment = fields.String(allow_none=True, metadata={"description": "required for hold, recycle and kill"})
    conditions = fields.List(fields.Dict(), allow_none=True,
                             metadata={"description": "conditional-go: [{text, owner, due}]"})
    on_behalf_of = fields.String(allow_none=True, metadata={"description": "decide as this approver's delegate"})
    password = fields.String(allow_none=True, load_only=True,
                             metadata={"description": "electronic signature: your password, when the gate asks"})


class AssignArgs(Strict):
    user = fields.String(required=True, validate=validate.Length(min=1),
                         metadata={"description": "who gets the task: a user holding one of its roles"})


class DelegateArgs(Strict):
    to = fields.String(required=True, validate=validate.Length(min=1),
                       metadata={"description": "the delegate (a normal task: a user holding one of its roles)"})


class BulkDecisionArgs(Strict):
    tasks = fields.List(fields.Integer(), required=True, validate=validate.Length(min=1, max=100),
                        metadata={"description": "gate approval task ids, each decided on its own"})
    outcome = fields.String(load_default="go", validate=validate.OneOf(["go", "approve"]),
                            metadata={"description": "only go: other outcomes are decided one by one"})
    comment = fields.String(allow_none=True, metadata={"description": "recorded with every decision"})


class CloseActionArgs(Strict):
    note = fields.String(allow_none=True, metadata={"description": "how it was resolved"})


class NewUserArgs(Strict):
    name = fields.String(required=True)
    display_name = fields.String(allow_none=True)
    roles = fields.List(fields.String(), load_default=list)
    password = fields.String(allow_none=True, load_only=True, metadata={"description": "stored as an argon2 hash"})


class GrantArgs(Strict):
    role = fields.String(required=True)


class NewTokenArgs(Strict):
    name = fields.String(required=True, metadata={"description": "what the token is for"})


# -- portfolio (GET /api/v1/portfolio) ---------------------------------------------------------

class PortfolioArgs(PageArgs):
    process = fields.String(metadata={"description": "process key"})
    phase = fields.String(metadata={"description": "the instance's current phase"})
    overdue = fields.Boolean(load_default=False, metadata={"description": "only instances with a task due before now"})


class PhaseCountSchema(Shape):
    phase = _text("null: instances not in any phase")
    instances = fields.Integer()
    overdue = fields.Integer(metadata={"description": "of them with a task due before now"})


class PipelineSchema(Shape):
    key = fields.String()
    name = _text()
    version = _int("the latest version (its phase order is used)")
    instances = fields.Integer()
    overdue = fields.Integer()
    phases = fields.List(fields.Nested(PhaseCountSchema), metadata={"description": "every phase, in process order"})


class PortfolioGateSchema(Shape):
    gate = fields.String()
    title = fields.String()
    round = fields.Integer()
    state = fields.String(metadata={"description": "open | blocked (waiting on open action items)"})
    approvals = fields.Integer()
    against = fields.Integer()
    abstentions = fields.Integer()
    needed = _int("approvals that decide it; null when the rule is a share of the votes")
    rule = fields.String()
    due = _when()
    overdue = fields.Boolean()


class PortfolioLastGateSchema(Shape):
    gate = fields.String()
    title = fields.String()
    round = fields.Integer()
    outcome = _text()
    decided_at = _when()


class PortfolioEntrySchema(Shape):
    id = fields.Integer()
    key = fields.String()
    version = fields.Integer()
    process_name = _text()
    business_key = _text()
    state = fields.String(metadata={"description": "running | error"})
    phase = _text()
    phase_since = _when("when the instance entered its current phase")
    open_tasks = fields.Integer()
    overdue_tasks = fields.Integer()
    overdue = fields.Boolean()
    oldest_due = _when("the earliest due date of its open tasks")
    action_items_open = fields.Integer()
    gate_status = fields.String(metadata={"description": "open | blocked | on-hold | decided | none"})
    gates = fields.List(fields.Nested(PortfolioGateSchema), metadata={"description": "open and blocked gates"})
    last_gate = fields.Nested(PortfolioLastGateSchema, allow_none=True)
    readable = fields.Boolean(metadata={"description": "whether the caller may open the instance"})
    error = fields.Dict(allow_none=True)


class PortfolioSchema(Shape):
    generated_at = _when()
    total = fields.Integer(metadata={"description": "instances matching the filters, on every page"})
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()
    filters = fields.Dict()
    counts = fields.Dict(metadata={"description": "active, overdue, at_gate, blocked, errors (within the process "
                                                  "filter)"})
    pipelines = fields.List(fields.Nested(PipelineSchema), metadata={"description": "counts per process and phase"})
    instances = fields.List(fields.Nested(PortfolioEntrySchema),
                            metadata={"description": "overdue first, then by oldest due date"})


# -- task drafts (GET/PUT/DELETE /api/v1/tasks/<id>/draft) ------------------------------------

class DraftSchema(Shape):
    task = fields.Integer()
    user = fields.String(metadata={"description": "whose draft: drafts are private to their author"})
    data = fields.Dict(metadata={"description": "the form's fields as entered (not validated against the form)"})
    saved_at = _when()


class DraftArgs(Strict):
    data = fields.Dict(required=True, metadata={"description": "the form's fields, at most 256 KiB as JSON; "
                                                               "not validated against the form"})


class DraftDeletedSchema(Shape):
    task = fields.Integer()
    deleted = fields.Boolean()
