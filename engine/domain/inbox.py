"""The task list filters shared by the API (`GET /api/v1/tasks`) and the inbox page.

Plain values only: the service turns a `TaskFilter` into repository keywords (indexed SQL on
`human_task`), with the date windows computed here from "now".
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from engine.domain.errors import InvalidInput

# due: soonest due first (tasks without a due date last); age: oldest first;
# priority: gate approvals first (they hold a process at a gate), then by due date, then oldest.
SORTS = ("due", "age", "priority")
MAX_PER_PAGE = 500


@dataclass(frozen=True)
class TaskFilter:
    process: str | None = None  # process key
    phase: str | None = None
    gate: str | None = None  # gate id from the gates file, e.g. "design_review": its approval tasks
    role: str | None = None  # routed to this role (primary or candidate)
    overdue: bool = False  # due before now
    due_this_week: bool = False  # due in the current ISO week (Monday 00:00 to Monday 00:00, UTC)
    q: str | None = None  # business key (case-insensitive substring) or instance id
    sort: str | None = None  # one of SORTS; default: creation order

    def __post_init__(self):
        if self.sort is not None and self.sort not in SORTS:
            raise InvalidInput(f"unknown sort '{self.sort}'", fields={"sort": [f"one of {', '.join(SORTS)}"]})


def week_bounds(now: datetime) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) of the ISO week `now` is in, in UTC."""
    now = now.astimezone(timezone.utc)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday, monday + timedelta(days=7)


def page_window(page: int, per_page: int) -> tuple[int, int]:
    """(limit, offset) for a 1-based page."""
    fields = {}
    if page < 1:
        fields["page"] = ["must be 1 or more"]
    if not 1 <= per_page <= MAX_PER_PAGE:
        fields["per_page"] = [f"between 1 and {MAX_PER_PAGE}"]
    if fields:
        raise InvalidInput("invalid page", fields=fields)
    return per_page, (page - 1) * per_page


def repository_filters(f: TaskFilter, now: datetime) -> dict:
    """The keyword filters of `HumanTaskRepository.query`/`count` for `f` at `now`."""
    q = (f.q or "").strip() or None
    due_after = due_before = None
    if f.due_this_week:
        due_after, due_before = week_bounds(now)
    if f.overdue:
        due_before = now if due_before is None else min(due_before, now)
    return {"process": f.process or None, "phase": f.phase or None, "gate": f.gate or None,
            "role": f.role or None, "due_after": due_after, "due_before": due_before, "search": q}
