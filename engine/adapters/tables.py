"""The relational schema, as SQLAlchemy Core tables.

Core rather than the ORM on purpose: a task completion must stay within a handful of
statements (see bench/engine.py), so every write here is an explicit, batched statement.
The schema itself is owned by alembic (`engine/migrations`); `metadata.create_all` is only
used by the test-suite fixtures that build throwaway databases.

Design notes
- `workflow_task` holds one row per SpiffWorkflow task (its serialized dict): a step writes
  only the tasks it changed, never the whole workflow.
- `human_task` is the inbox: ready user/manual tasks with role, assignee, phase and due date,
  indexed so "what can user U do now" never deserializes a workflow.
- `event` is the append-only history, one row per command, sequenced per instance and hash
  chained, so an instance can be rebuilt from its definition and its events.
"""
from __future__ import annotations

from datetime import timezone

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

class UtcDateTime(sa.types.TypeDecorator):
    """Timestamps are UTC and timezone-aware in Python on every database.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are stored as UTC and
    given back their UTC zone when read (comparing naive and aware datetimes would fail).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JsonType = sa.JSON().with_variant(JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

user = sa.Table(
    "app_user",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(200)),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

role = sa.Table(
    "role",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("description", sa.String(500)),
)

user_role = sa.Table(
    "user_role",
    metadata,
    sa.Column("user_name", sa.String(120), sa.ForeignKey("app_user.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("role_name", sa.String(120), sa.ForeignKey("role.name", ondelete="CASCADE"), primary_key=True),
    sa.Index(None, "role_name"),
)

deployment = sa.Table(
    "deployment",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployed_by", sa.String(120), nullable=False),
    sa.Column("deployed_at", UtcDateTime(), nullable=False),
    sa.Column("source", sa.String(1000)),
)

definition = sa.Table(
    "definition",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(500)),
    sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployment.id"), nullable=False),
    sa.Column("deployed_by", sa.String(120), nullable=False),
    sa.Column("deployed_at", UtcDateTime(), nullable=False),
    # {relative file name: text} for every BPMN/DMN/form file this process needs.
    sa.Column("files", JsonType, nullable=False),
    # Per-element routing facts (roles, phase, form, due...) extracted at deploy time.
    sa.Column("elements", JsonType, nullable=False),
    sa.UniqueConstraint("key", "version"),
    sa.Index(None, "key", "hash"),
)

instance = sa.Table(
    "instance",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("definition_id", sa.Integer, sa.ForeignKey("definition.id"), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("business_key", sa.String(255)),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("phase", sa.String(255)),
    sa.Column("data", JsonType, nullable=False),
    sa.Column("error", JsonType),
    # Workflow-level SpiffWorkflow state (root, last task, subprocess headers); tasks live in workflow_task.
    # JSON text written with SpiffWorkflow's own encoder (dates, UUIDs in task data), hence Text.
    sa.Column("workflow", sa.Text, nullable=False),
    # Optimistic concurrency: every command bumps it; a stale writer gets a Conflict.
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("started_by", sa.String(120), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime()),
    sa.Column("cancel_reason", sa.Text),
    # Earliest pending timer, so a worker finds due instances with one indexed query.
    sa.Column("wake_at", UtcDateTime()),
    # Head of the event chain, so appending an event needs no read of the event table.
    sa.Column("event_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("event_hash", sa.String(64), nullable=False, server_default="0" * 64),
    # How the project ended when a gate decided it (e.g. "killed"); null otherwise.
    sa.Column("outcome", sa.String(40)),
    # Gate settings this instance was started with ({gate id: {key: value}}), within `overridable`.
    sa.Column("gate_overrides", JsonType),
    sa.Index(None, "state", "key"),
    sa.Index(None, "business_key"),
    sa.Index(None, "wake_at"),
)

workflow_task = sa.Table(
    "workflow_task",
    metadata,
    sa.Column("instance_id", sa.Integer, sa.ForeignKey("instance.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("task_id", sa.String(36), primary_key=True),
    # The (sub)workflow the task belongs to: "" for the top workflow, else the subprocess task id.
    sa.Column("workflow_id", sa.String(36), nullable=False),
    # SpiffWorkflow's serialized task (data stored as a delta to the parent), JSON text.
    sa.Column("body", sa.Text, nullable=False),
)

human_task = sa.Table(
    "human_task",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.Integer, sa.ForeignKey("instance.id", ondelete="CASCADE"), nullable=False),
    sa.Column("spiff_task_id", sa.String(36), nullable=False),
    sa.Column("process_key", sa.String(255), nullable=False),
    sa.Column("business_key", sa.String(255)),
    sa.Column("element_id", sa.String(255), nullable=False),
    sa.Column("name", sa.String(500)),
    # Primary candidate role; tasks with several candidate groups also have human_task_candidate rows.
    sa.Column("role", sa.String(120)),
    sa.Column("assignee", sa.String(120)),
    sa.Column("phase", sa.String(255)),
    sa.Column("form", sa.String(255)),
    sa.Column("due", UtcDateTime()),
    sa.Column("state", sa.String(20), nullable=False),  # ready | completed | cancelled | withdrawn
    # "task": the BPMN task itself; "approval": one approver group's share of a gate's decision.
    sa.Column("kind", sa.String(20), nullable=False, server_default="task"),
    sa.Column("gate_id", sa.Integer),
    sa.Column("round", sa.Integer),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("completed_at", UtcDateTime()),
    sa.Column("completed_by", sa.String(120)),
    sa.Index(None, "state", "role"),
    sa.Index(None, "state", "assignee"),
    sa.Index(None, "instance_id", "state"),
    sa.Index(None, "spiff_task_id"),
    # Task lists filtered or sorted by due date (overdue, due this week, sort=due).
    sa.Index(None, "state", "due"),
)

human_task_candidate = sa.Table(
    "human_task_candidate",
    metadata,
    sa.Column("task_id", sa.Integer, sa.ForeignKey("human_task.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role", sa.String(120), primary_key=True),
    sa.Index(None, "role"),
)

event = sa.Table(
    "event",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.Integer, sa.ForeignKey("instance.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("task_id", sa.Integer),
    sa.Column("element_id", sa.String(255)),
    sa.Column("payload", JsonType, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("instance_id", "seq"),
)


# -- phase gates ------------------------------------------------------------------------------

gate_config = sa.Table(
    "gate_config",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("process_key", sa.String(255), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("path", sa.String(1000)),
    sa.Column("document", JsonType, nullable=False),
    # Applies to gates already open when deployed (otherwise only to gates that open later).
    sa.Column("apply_to_open", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deployed_by", sa.String(120), nullable=False),
    sa.Column("deployed_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("process_key", "version"),
)

gate = sa.Table(
    "gate",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.Integer, sa.ForeignKey("instance.id", ondelete="CASCADE"), nullable=False),
    sa.Column("gate", sa.String(255), nullable=False),
    sa.Column("element_id", sa.String(255), nullable=False),
    sa.Column("spiff_task_id", sa.String(36), nullable=False),
    sa.Column("phase", sa.String(255)),
    sa.Column("round", sa.Integer, nullable=False),
    # blocked (open action items) | open | passed | rejected | withdrawn
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("outcome", sa.String(40)),
    sa.Column("reason", sa.Text),
    sa.Column("config_id", sa.Integer, sa.ForeignKey("gate_config.id"), nullable=False),
    sa.Column("config", JsonType, nullable=False),  # the gate's settings as applied (overrides included)
    sa.Column("submitter", sa.String(120)),
    sa.Column("data", JsonType, nullable=False),  # the data under review when the gate opened
    sa.Column("changes", JsonType),  # what changed in that data since the previous round
    sa.Column("criteria", JsonType),  # entry criteria values seen when it opened
    sa.Column("form_hash", sa.String(64), nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("due_at", UtcDateTime()),
    sa.Column("decided_at", UtcDateTime()),
    # Next escalation step (remind, reassign, auto-decide) and how many were taken.
    sa.Column("escalate_at", UtcDateTime()),
    sa.Column("escalation_stage", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "instance_id", "gate"),
    sa.Index(None, "state", "escalate_at"),
)

gate_decision = sa.Table(
    "gate_decision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gate_id", sa.Integer, sa.ForeignKey("gate.id", ondelete="CASCADE"), nullable=False),
    sa.Column("task_id", sa.Integer),  # the approval task it was made on
    sa.Column("user_name", sa.String(120), nullable=False),
    sa.Column("on_behalf_of", sa.String(120)),
    sa.Column("role", sa.String(120), nullable=False),
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("conditions", JsonType),
    sa.Column("criteria", JsonType),
    sa.Column("form_hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(255)),  # the stated meaning of an electronic signature
    sa.Column("carried_over", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index(None, "gate_id"),
    sa.Index(None, "task_id", "user_name"),
)

action_item = sa.Table(
    "action_item",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.Integer, sa.ForeignKey("instance.id", ondelete="CASCADE"), nullable=False),
    sa.Column("gate_id", sa.Integer, sa.ForeignKey("gate.id", ondelete="CASCADE"), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("due", UtcDateTime()),
    sa.Column("state", sa.String(20), nullable=False),  # open | closed
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime()),
    sa.Column("closed_by", sa.String(120)),
    sa.Column("note", sa.Text),
    sa.Index(None, "instance_id", "state"),
)

delegation = sa.Table(
    "delegation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delegator", sa.String(120), sa.ForeignKey("app_user.name", ondelete="CASCADE"), nullable=False),
    sa.Column("delegate", sa.String(120), sa.ForeignKey("app_user.name", ondelete="CASCADE"), nullable=False),
    sa.Column("task_id", sa.Integer),  # one approval task, or null for an out-of-office period
    sa.Column("starts_at", UtcDateTime(), nullable=False),
    sa.Column("ends_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Index(None, "delegate"),
    sa.Index(None, "delegator"),
)


# -- API tokens -------------------------------------------------------------------------------

api_token = sa.Table(
    "api_token",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_name", sa.String(120), sa.ForeignKey("app_user.name", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    # SHA-256 (hex) of the token. Not argon2: a token is 32 random bytes (256 bits), so there is
    # nothing to guess or look up in a dictionary and a slow, salted hash adds no protection; it
    # would cost tens of milliseconds on every API request and, being salted, could not be found
    # by an indexed lookup. Passwords, chosen by people, keep argon2 (engine/domain/passwords.py).
    sa.Column("token_hash", sa.String(64), nullable=False),
    # The token's first characters ("pg_" + 8), so a user can tell their tokens apart.
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_used_at", UtcDateTime()),
    sa.Column("revoked_at", UtcDateTime()),
    sa.UniqueConstraint("token_hash"),
    sa.Index(None, "user_name"),
)


# -- task drafts ------------------------------------------------------------------------------

# A half-filled task form, kept for the person filling it in (engine/services/drafts.py): one
# per task and user, never validated against the form, deleted when the task is completed.
task_draft = sa.Table(
    "task_draft",
    metadata,
    sa.Column("task_id", sa.Integer, sa.ForeignKey("human_task.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_name", sa.String(120), sa.ForeignKey("app_user.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("data", JsonType, nullable=False),
    sa.Column("saved_at", UtcDateTime(), nullable=False),
)
