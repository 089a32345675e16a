"""Who may do what: pure rules over an actor's roles, tested without a database.

Five kinds of people use Phasegate (a user may be several at once — permissions add up):

- **admin** (role `admin`): everything, including users, roles and every task;
- **designer** (role `designer`): checks and deploys process definitions;
- **auditor** (role `auditor`): reads everything — definitions, instances, histories, gates,
  every task, users and roles — and changes nothing;
- **PMO** (role `pmo`, project management office): reads the portfolio — every running instance
  by phase and gate status (`Action.PORTFOLIO`, also granted to admins and auditors) — and every
  instance it lists (`reads_every_instance`); nothing more: their tasks are those of their
  other roles;
- **approvers**: everyone else, through the process roles they hold (`Sponsor`, `reviewer`…).
  They see and act on the tasks routed to those roles (or assigned to them), read the
  instances they take part in, start a process whose start event is in one of their roles'
  lanes, and close the action items they own.

Two levels: `allowed(actor, action)` is what the roles permit at all (checked before a request
does anything); the `may_*` functions decide for one object (a task's roles, an instance the
actor takes part in, a process's start roles) and are applied by the services, which read the
object and the actor's roles in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable

from engine.domain.errors import Forbidden

ADMIN = "admin"
DESIGNER = "designer"
AUDITOR = "auditor"
PMO = "pmo"
STAFF_ROLES = frozenset({ADMIN, DESIGNER, AUDITOR, PMO})


class Action(str, Enum):
    READ_DEFINITIONS = "definitions:read"
    CHECK = "definitions:check"
    DEPLOY = "definitions:deploy"
    LIST_INSTANCES = "instances:list"  # every instance, not only those the actor takes part in
    READ_INSTANCE = "instances:read"  # one instance (object level: `may_read_instance`)
    START = "instances:start"  # object level: `may_start`
    CANCEL = "instances:cancel"
    SEND_MESSAGE = "instances:message"
    READ_TASKS = "tasks:read"  # one's own task list (object level: `may_see_task`)
    WORK_ON_TASKS = "tasks:work"  # claim, unclaim, complete, decide (object level: role checks in the services)
    CLOSE_ACTION_ITEMS = "action-items:close"  # object level: the owner, or an admin
    READ_USERS = "users:read"
    MANAGE_USERS = "users:manage"
    OWN_TOKENS = "tokens:own"  # one's own API tokens
    PORTFOLIO = "portfolio:read"  # every running instance by phase and gate status: admins, auditors, pmo

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Actor:
    """Who is acting, with the roles they hold now (read when the request or command began)."""

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self):
        object.__setattr__(self, "roles", frozenset(self.roles))

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def process_roles(self) -> frozenset[str]:
        """The roles tasks are routed to (every role that is not admin, designer or auditor)."""
        return self.roles - STAFF_ROLES

    @property
    def read_only(self) -> bool:
        """An auditor and nothing else: may read everything and change nothing."""
        return AUDITOR in self.roles and not (self.roles - {AUDITOR})

    @property
    def sees_everything(self) -> bool:
        """Admins and auditors read every instance and every task."""
        return bool(self.roles & {ADMIN, AUDITOR})

    @property
    def reads_every_instance(self) -> bool:
        """Admins, auditors and the PMO (who opens any project from the portfolio) read every
        instance; a PMO lead sees only their own tasks, though."""
        return self.sees_everything or PMO in self.roles


_EVERYONE = frozenset({Action.READ_DEFINITIONS, Action.READ_INSTANCE, Action.READ_TASKS, Action.OWN_TOKENS})
_BY_ROLE = {
    DESIGNER: frozenset({Action.CHECK, Action.DEPLOY}),
    AUDITOR: frozenset({Action.LIST_INSTANCES, Action.READ_USERS, Action.PORTFOLIO}),
    PMO: frozenset({Action.PORTFOLIO, Action.LIST_INSTANCES}),
}
# Anyone who is not read-only: the object-level rule then decides (task roles, owner, start roles).
_NOT_READ_ONLY = frozenset({Action.WORK_ON_TASKS, Action.CLOSE_ACTION_ITEMS})


def allowed(actor: Actor, action: Action) -> bool:
    """Whether the actor's roles permit `action` at all."""
    action = Action(action)
    if actor.is_admin or action in _EVERYONE:
        return True
    if any(action in _BY_ROLE.get(role, ()) for role in actor.roles):
        return True
    if action in _NOT_READ_ONLY:
        return not actor.read_only
    if action is Action.START:
        return bool(actor.process_roles)
    return False


def permissions_of(actor: Actor) -> list[str]:
    """Every action the actor's roles permit, sorted (shown by `GET /api/v1/me`)."""
    return sorted(a.value for a in Action if allowed(actor, a))


def require(actor: Actor, action: Action) -> None:
    if not allowed(actor, action):
        raise Forbidden(f"user '{actor.name}' may not {_describe(action)}",
                        details={"action": Action(action).value, "roles": sorted(actor.roles)})


def _describe(action: Action) -> str:
    return {
        Action.READ_DEFINITIONS: "read process definitions",
        Action.CHECK: "check process definitions (designers and admins)",
        Action.DEPLOY: "deploy process definitions (designers and admins)",
        Action.LIST_INSTANCES: "list every instance (admins, auditors and the pmo role)",
        Action.READ_INSTANCE: "read this instance",
        Action.START: "start instances",
        Action.CANCEL: "cancel instances (admins)",
        Action.SEND_MESSAGE: "send messages to instances (admins)",
        Action.READ_TASKS: "read tasks",
        Action.WORK_ON_TASKS: "work on tasks (auditors are read-only)",
        Action.CLOSE_ACTION_ITEMS: "close action items (auditors are read-only)",
        Action.READ_USERS: "read users and roles (auditors and admins)",
        Action.MANAGE_USERS: "manage users and roles (admins)",
        Action.OWN_TOKENS: "manage API tokens",
        Action.PORTFOLIO: "read the portfolio (admins, auditors and the pmo role)",
    }[Action(action)]


# -- object level -----------------------------------------------------------------------------

def may_see_task(actor: Actor, task_roles: Iterable[str], assignee: str | None) -> bool:
    """Admins and auditors see every task; others the tasks of a role they hold or assigned to them."""
    if actor.sees_everything or assignee == actor.name:
        return True
    return bool(actor.roles & set(task_roles))


def may_read_instance(actor: Actor, takes_part: bool) -> bool:
    """Admins, auditors and the PMO read every instance; others those they take part in (they
    started it, one of its tasks is or was routed to a role they hold or to them, or they own an
    action item)."""
    return actor.reads_every_instance or takes_part


def start_roles(element: dict | None) -> list[str]:
    """Who may start a process, from its start event's routing facts: the `role` property or the
    lane the start event lies in. None of them: only admins."""
    if not element:
        return []
    role = (element.get("properties") or {}).get("role")
    if role:
        return [r.strip() for r in role.split(",") if r.strip()]
    return list(element.get("roles") or ([element["lane"]] if element.get("lane") else []))


def may_start(actor: Actor, roles: Iterable[str]) -> bool:
    """Admins start anything; others a process whose start roles include one they hold."""
    if actor.is_admin:
        return True
    return not actor.read_only and bool(actor.roles & set(roles))


# -- reassignment -----------------------------------------------------------------------------

def assign_refusal(actor: Actor, task_roles: Iterable[str], assignee: str | None) -> str | None:
    """Why `actor` may not assign a task to someone (None: they may).

    Admins always may. Others hold one of the task's roles, or hold the task itself; a task
    someone else has claimed stays theirs until they hand it on (or an admin reassigns it), as
    with claiming. Auditors change nothing.
    """
    if actor.is_admin:
        return None
    if actor.read_only:
        return f"user '{actor.name}' is read-only (auditor)"
    if assignee and assignee != actor.name:
        return f"it is claimed by '{assignee}': only they or an admin may hand it on"
    if assignee == actor.name or actor.roles & set(task_roles):
        return None
    return f"user '{actor.name}' does not hold {roles_text(task_roles)}"


def may_hold_task(roles: Iterable[str], task_roles: Iterable[str]) -> bool:
    """Whether someone with `roles` may be given a task routed to `task_roles` (assigned or
    delegated): they hold one of its roles, so the task stays with the people it is routed to.
    A task without a role is for admins. Being an admin is not enough for a task of a role: an
    admin may work on it, but it is not theirs to be given."""
    task_roles = set(task_roles) or {ADMIN}
    return bool(set(roles) & task_roles)


def roles_text(task_roles: Iterable[str]) -> str:
    names = sorted(set(task_roles))
    if not names:
        return f"role '{ADMIN}' (the task has no role)"
    return "role " + " or ".join(f"'{n}'" for n in names)
