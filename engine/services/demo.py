"""Demo users for a first look: one per role the deployed processes use, plus the staff roles."""
from __future__ import annotations

import re

from engine.bootstrap import Phasegate
from engine.domain.model import User
from engine.services.users import add_user

# The portfolio role `pmo` (a PMO lead reads every running instance) counts as staff here.
STAFF_ROLES = {"admin": "admin", "designer": "designer", "auditor": "auditor", "pmo": "pmo"}


def user_name_for(role: str) -> str:
    """'Project Manager' -> 'project-manager'."""
    return re.sub(r"[^a-z0-9]+", "-", role.lower()).strip("-") or "user"


def create_demo_users(app: Phasegate, password: str = "demo") -> list[User]:
    with app.uow() as uow:
        roles = uow.definitions.roles_in_use()
    wanted = {user_name_for(role): role for role in sorted(roles)}
    wanted.update(STAFF_ROLES)
    return [
        add_user(app, name, [role], display_name=f"Demo {role}", password=password, exist_ok=True)
        for name, role in sorted(wanted.items())
    ]
