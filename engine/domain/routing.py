"""Routing a ready human task to people: role, candidate roles, assignee and due date.

Pure functions of the element's routing facts (extracted from the BPMN at deploy time) and
the task's data. Role *membership* is deliberately not resolved here: it is resolved when
tasks are read, so granting or revoking a role changes what people see on running instances.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


@dataclass(frozen=True)
class Routing:
    role: str | None
    candidate_roles: list[str]
    assignee: str | None
    due: datetime | None


def parse_duration(text: str) -> timedelta | None:
    """ISO 8601 duration (years and months approximated as 365 and 30 days), or None."""
    match = _DURATION.match(text.strip().upper()) if text else None
    if not match or text.strip().upper() in ("P", "PT"):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    days = parts.pop("years", 0) * 365 + parts.pop("months", 0) * 30 + parts.pop("days", 0)
    return timedelta(days=days, **parts)


def resolve_due(due: str | None, ready_at: datetime) -> datetime | None:
    """A due date from an ISO duration after the task became ready, or an ISO date/time."""
    if not due:
        return None
    duration = parse_duration(due)
    if duration is not None:
        return ready_at + duration
    try:
        when = datetime.fromisoformat(due.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def resolve_assignee(assignee: str | None, data: dict, is_expression: bool | None = None) -> str | None:
    """A literal user name, or the value of the data field the BPMN names (`${initiator}` style).

    `is_expression` says what `assignee` is: the loader translates `${initiator}` to the
    expression `initiator` and flags it (True), so that name is looked up in the data (a dotted
    `a.b` walks nested objects) and never taken for a user; False is a literal user name even if
    the data has a field of that name. None (not known) treats `${…}` as an expression and a bare
    name as the data field it names, if there is one, else as a user name.
    """
    if not assignee:
        return None
    name = assignee.strip()
    if name.startswith("${") and name.endswith("}"):
        name = name[2:-1].strip()
        is_expression = True
    if is_expression is False:
        return name or None
    value = _lookup(data, name)
    if value is not _MISSING:
        return str(value) if value not in (None, "") else None
    # An expression naming data that is not there leaves the task to its roles.
    return None if is_expression else name


_MISSING = object()


def _lookup(data: dict, name: str):
    """data[name], or for a dotted name the nested value (`owner.name`), else _MISSING."""
    if name in data:
        return data[name]
    if "." not in name:
        return _MISSING
    value = data
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def route(roles: list[str], assignee: str | None, due: str | None, data: dict, ready_at: datetime,
          assignee_expression: bool | None = None) -> Routing:
    return Routing(
        role=roles[0] if roles else None,
        candidate_roles=list(roles) if len(roles) > 1 else [],
        assignee=resolve_assignee(assignee, data, assignee_expression),
        due=resolve_due(due, ready_at),
    )
