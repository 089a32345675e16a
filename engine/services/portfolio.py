"""The portfolio: every active instance by phase and gate status, overdue ones first, with counts
per phase — the page a PMO lead opens on Monday morning (`/portfolio`, `GET /api/v1/portfolio`).

Who may read it: admins, auditors and holders of the role `pmo` (`Action.PORTFOLIO`). It names
every instance; opening one still needs reading rights to it (`permissions.may_read_instance`),
so each entry says whether the reader may (`readable`).

Everything comes from the indexed tables (engine.adapters.portfolio) in a fixed number of
statements whatever the number of instances: the counts per process and phase, one page of
instances, the gates of that page and, for readers who do not see everything, which of those
instances they take part in. Phase order is the order of the process's BPMN document (the
latest version's, parsed once per definition and cached).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.adapters.portfolio import PortfolioRepository
from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import PhasegateError
from engine.domain.gate_config import GateConfig, gate_from_dict
from engine.domain.inbox import page_window
from engine.domain.permissions import Action, Actor, require
from engine.services.definitions import phases_in_order

DEFAULT_PER_PAGE = 50
# gate_status of an entry: at an open gate, at a gate waiting on action items, held by a Hold
# decision, past its last decided gate, or not at any gate yet.
GATE_STATUSES = ("open", "blocked", "on-hold", "decided", "none")


def approvals_needed(config: GateConfig) -> int | None:
    """How many approvals decide the gate positively; None when it is a share of the votes."""
    kind = config.rule.kind
    if kind == "any":
        return 1
    if kind == "quorum":
        return config.rule.quorum or 1
    if kind in ("all", "n_of_m"):
        return config.slots
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class PhaseCount:
    phase: str | None  # None: instances not in any phase (yet)
    instances: int = 0
    overdue: int = 0

    def to_dict(self) -> dict:
        return {"phase": self.phase, "instances": self.instances, "overdue": self.overdue}


@dataclass
class Pipeline:
    """One process's active instances per phase, every phase of the process in its order."""

    key: str
    name: str | None
    version: int | None
    phases: list[PhaseCount]

    @property
    def instances(self) -> int:
        return sum(p.instances for p in self.phases)

    @property
    def overdue(self) -> int:
        return sum(p.overdue for p in self.phases)

    @property
    def busiest(self) -> int:
        return max((p.instances for p in self.phases), default=0)

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "version": self.version, "instances": self.instances,
                "overdue": self.overdue, "phases": [p.to_dict() for p in self.phases]}


@dataclass
class OpenGate:
    gate: str
    title: str
    round: int
    state: str  # open | blocked
    approvals: int
    against: int
    abstentions: int
    needed: int | None  # approvals that decide it; None: a share of the deciding votes (`rule`)
    rule: str
    due: datetime | None
    overdue: bool

    def to_dict(self) -> dict:
        return {"gate": self.gate, "title": self.title, "round": self.round, "state": self.state,
                "approvals": self.approvals, "against": self.against, "abstentions": self.abstentions,
                "needed": self.needed, "rule": self.rule, "due": _iso(self.due), "overdue": self.overdue}


@dataclass
class DecidedGate:
    gate: str
    title: str
    round: int
    outcome: str | None
    decided_at: datetime | None

    def to_dict(self) -> dict:
        return {"gate": self.gate, "title": self.title, "round": self.round, "outcome": self.outcome,
                "decided_at": _iso(self.decided_at)}


@dataclass
class Entry:
    id: int
    key: str
    version: int
    process_name: str | None
    business_key: str | None
    state: str
    phase: str | None
    phase_since: datetime
    open_tasks: int
    overdue_tasks: int
    oldest_due: datetime | None
    action_items_open: int
    open_gates: list[OpenGate] = field(default_factory=list)
    last_gate: DecidedGate | None = None
    readable: bool = True
    error: dict | None = None

    @property
    def overdue(self) -> bool:
        return self.overdue_tasks > 0

    @property
    def gate_status(self) -> str:
        if any(g.state == "blocked" for g in self.open_gates):
            return "blocked"
        if self.open_gates:
            return "open"
        if self.last_gate is not None:
            return "on-hold" if self.last_gate.outcome == "hold" else "decided"
        return "none"

    def to_dict(self) -> dict:
        return {"id": self.id, "key": self.key, "version": self.version, "process_name": self.process_name,
                "business_key": self.business_key, "state": self.state, "phase": self.phase,
                "phase_since": _iso(self.phase_since), "open_tasks": self.open_tasks,
                "overdue_tasks": self.overdue_tasks, "overdue": self.overdue, "oldest_due": _iso(self.oldest_due),
                "action_items_open": self.action_items_open, "gate_status": self.gate_status,
                "gates": [g.to_dict() for g in self.open_gates],
                "last_gate": self.last_gate.to_dict() if self.last_gate else None,
                "readable": self.readable, "error": self.error}


@dataclass
class Portfolio:
    generated_at: datetime
    entries: list[Entry]
    total: int  # entries matching the filters, on every page
    page: int
    per_page: int
    pipelines: list[Pipeline]
    counts: dict[str, int]  # active, overdue, at_gate, blocked, errors (within the process filter)
    filters: dict
    processes: list[tuple[str, str]]  # (key, name) of every deployed process, for a filter
    phases: list[str]  # phases to filter by, in process order

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def to_dict(self) -> dict:
        return {"generated_at": _iso(self.generated_at), "total": self.total, "page": self.page,
                "per_page": self.per_page, "pages": self.pages, "filters": self.filters, "counts": self.counts,
                "pipelines": [p.to_dict() for p in self.pipelines], "instances": [e.to_dict() for e in self.entries]}


def portfolio(app: Phasegate, actor: Actor, *, process: str | None = None, phase: str | None = None,
              overdue_only: bool = False, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Portfolio:
    """The active (running, or stopped by an error) instances matching the filters, one page of
    them, overdue first; and the counts per process and phase (within the process filter, so the
    phase counts stay visible while one phase is listed)."""
    require(actor, Action.PORTFOLIO)
    limit, offset = page_window(page, per_page)
    process = (process or "").strip() or None
    phase = (phase or "").strip() or None
    now = clock.now()
    with app.uow() as uow:
        repo = PortfolioRepository(uow.conn)
        counted = repo.phase_counts(now=now, process=process)
        rows = repo.page(now=now, process=process, phase=phase, overdue_only=overdue_only, limit=limit,
                         offset=offset)
        gate_rows = repo.gates([r.id for r in rows])
        readable = None if actor.reads_every_instance else repo.taking_part([r.id for r in rows], actor.name)
        latest = {d.key: d for d in uow.definitions.list(latest_only=True)}
        orders = {key: _phase_order(app, uow, latest.get(key)) for key in sorted({r.key for r in counted})}

    total = sum((r.overdue if overdue_only else r.instances) for r in counted if phase is None or r.phase == phase)
    pipelines = _pipelines(counted, orders, latest)
    entries = [_entry(r, latest, readable) for r in rows]
    by_id = {e.id: e for e in entries}
    for row in gate_rows:
        _add_gate(by_id[row.instance_id], row, now)
    counts = {"active": sum(r.instances for r in counted), "overdue": sum(r.overdue for r in counted),
              "at_gate": sum(r.at_gate for r in counted), "blocked": sum(r.blocked for r in counted),
              "errors": sum(r.errors for r in counted)}
    phases: list[str] = []
    for pipeline in pipelines:
        phases += [p.phase for p in pipeline.phases if p.phase and p.phase not in phases]
    return Portfolio(
        generated_at=now, entries=entries, total=total, page=page, per_page=per_page, pipelines=pipelines,
        counts=counts, filters={"process": process, "phase": phase, "overdue": overdue_only},
        processes=[(d.key, d.name or d.key) for d in sorted(latest.values(), key=lambda d: (d.name or d.key).lower())],
        phases=phases)


def _phase_order(app: Phasegate, uow, definition) -> list[str]:
    """The phases of a process in BPMN document order (the stored `elements` JSON cannot say:
    PostgreSQL's JSONB does not keep key order). Empty if the process cannot be loaded."""
    if definition is None:
        return []
    try:
        return phases_in_order(app, uow, definition.id)
    except PhasegateError:
        return []


def _pipelines(counted, orders: dict[str, list[str]], latest: dict) -> list[Pipeline]:
    by_key: dict[str, dict[str | None, PhaseCount]] = {}
    for row in counted:
        by_key.setdefault(row.key, {})[row.phase] = PhaseCount(row.phase, row.instances, row.overdue)
    pipelines = []
    for key, found in by_key.items():
        names = list(orders.get(key, []))
        names += sorted(p for p in found if p is not None and p not in names)  # phases of older versions
        phases = [found.get(name) or PhaseCount(name) for name in names]
        if None in found:
            phases.append(found[None])
        definition = latest.get(key)
        pipelines.append(Pipeline(key, definition.name if definition else None,
                                  definition.version if definition else None, phases))
    return sorted(pipelines, key=lambda p: ((p.name or p.key).lower(), p.key))


def _entry(row, latest: dict, readable: set[int] | None) -> Entry:
    definition = latest.get(row.key)
    return Entry(
        id=row.id, key=row.key, version=row.version, process_name=definition.name if definition else None,
        business_key=row.business_key, state=row.state, phase=row.phase, phase_since=row.phase_since,
        open_tasks=row.open_tasks, overdue_tasks=row.overdue_tasks, oldest_due=row.oldest_due,
        action_items_open=row.action_items_open, readable=readable is None or row.id in readable, error=row.error)


def _add_gate(entry: Entry, row, now: datetime) -> None:
    config = gate_from_dict(row.gate, row.config or {})
    title = config.title or row.gate
    if row.state in ("open", "blocked"):
        entry.open_gates.append(OpenGate(
            gate=row.gate, title=title, round=row.round, state=row.state, approvals=row.approvals,
            against=row.against, abstentions=row.abstentions, needed=approvals_needed(config),
            rule=config.rule.describe(), due=row.due_at, overdue=row.due_at is not None and row.due_at < now))
    else:
        entry.last_gate = DecidedGate(row.gate, title, row.round, row.outcome, row.decided_at)
