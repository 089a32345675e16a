"""Plain records the service layer returns and every surface serialises the same way.

The `to_dict` methods define the stable JSON shapes documented in the README
(`start`/`show` → instance, `tasks` → list of tasks, `deploy` → deployed definitions).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

INSTANCE_STATES = ("running", "completed", "cancelled", "error")
TASK_STATES = ("ready", "completed", "cancelled")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class Definition:
    id: int
    key: str
    version: int
    hash: str
    name: str | None
    deployed_by: str
    deployed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "version": self.version,
            "hash": self.hash,
            "name": self.name,
            "deployed_by": self.deployed_by,
            "deployed_at": _iso(self.deployed_at),
        }


@dataclass
class HumanTask:
    id: int
    instance_id: int
    process_key: str
    business_key: str | None
    element_id: str
    name: str | None
    role: str | None
    assignee: str | None
    phase: str | None
    form: str | None
    due: datetime | None
    state: str
    created_at: datetime
    completed_at: datetime | None = None
    completed_by: str | None = None
    candidate_roles: list[str] = field(default_factory=list)
    kind: str = "task"  # "task", or "approval": an approver group's share of a gate decision
    gate_id: int | None = None
    round: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance": self.instance_id,
            "process": self.process_key,
            "business_key": self.business_key,
            "element_id": self.element_id,
            "name": self.name,
            "role": self.role,
            "roles": self.candidate_roles or ([self.role] if self.role else []),
            "assignee": self.assignee,
            "phase": self.phase,
            "form": self.form,
            "due": _iso(self.due),
            "state": self.state,
            "created_at": _iso(self.created_at),
            "completed_at": _iso(self.completed_at),
            "completed_by": self.completed_by,
            "kind": self.kind,
            "gate": self.gate_id,
            "round": self.round,
        }


@dataclass
class Instance:
    id: int
    definition_id: int
    key: str
    version: int
    business_key: str | None
    state: str
    phase: str | None
    data: dict
    error: dict | None
    started_by: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    cancel_reason: str | None
    tasks: list[HumanTask] = field(default_factory=list)
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "version": self.version,
            "business_key": self.business_key,
            "state": self.state,
            "phase": self.phase,
            "data": self.data,
            "error": self.error,
            "tasks": [t.to_dict() for t in self.tasks],
            "started_by": self.started_by,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "ended_at": _iso(self.ended_at),
            "cancel_reason": self.cancel_reason,
            "outcome": self.outcome,
        }


@dataclass
class Event:
    instance_id: int
    seq: int
    at: datetime
    actor: str
    type: str
    task_id: int | None
    element_id: str | None
    payload: dict
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance_id,
            "seq": self.seq,
            "at": _iso(self.at),
            "actor": self.actor,
            "type": self.type,
            "task": self.task_id,
            "element_id": self.element_id,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass
class User:
    name: str
    display_name: str
    roles: list[str]
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name, "roles": sorted(self.roles), "active": self.active}


@dataclass
class ApiToken:
    """A personal API token's record; the token itself is shown once, when created, and only its
    SHA-256 is stored."""

    id: int
    user: str
    name: str
    prefix: str  # the token's first characters, to recognise it in a list
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "user": self.user, "name": self.name, "prefix": self.prefix,
                "created_at": _iso(self.created_at), "last_used_at": _iso(self.last_used_at),
                "revoked_at": _iso(self.revoked_at), "active": self.revoked_at is None}
