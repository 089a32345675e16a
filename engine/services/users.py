"""Use cases for users and roles. Membership is read fresh by every inbox query."""
from __future__ import annotations

import re

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import Conflict, InvalidInput, NotFound
from engine.domain.model import User

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,119}$")
_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,119}$")


def require_user(uow, name: str) -> None:
    if not uow.users.exists(name):
        raise NotFound(f"unknown user '{name}' (add it with `phasegate users add {name}`)")


def _check_name(name: str) -> None:
    if not _NAME.match(name or ""):
        raise InvalidInput(f"invalid user name '{name}'", fields={"name": [
            "letters, digits, '.', '_', '@' or '-', at most 120 characters"]})


def _check_role(role: str) -> None:
    if not _ROLE.match(role or ""):
        raise InvalidInput(f"invalid role name '{role}'", fields={"role": [
            "letters, digits, spaces, '.', '_', '@' or '-', at most 120 characters"]})


def add_user(app: Phasegate, name: str, roles: list[str] = (), display_name: str | None = None,
             password: str | None = None, exist_ok: bool = False) -> User:
    _check_name(name)
    for role in roles:
        _check_role(role)
    with app.uow() as uow:
        if uow.users.exists(name):
            if not exist_ok:
                raise Conflict(f"user '{name}' already exists")
        else:
            password_hash = None
            if password:
                from engine.domain.passwords import hash_password
                password_hash = hash_password(password)
            uow.users.add(name, display_name or name, clock.now(), password_hash)
        for role in roles:
            uow.users.ensure_role(role)
            uow.users.grant(name, role)
        uow.commit()
        return uow.users.get(name)


def set_password(app: Phasegate, name: str, password: str) -> User:
    """Set (or replace) the sign-in password of an existing user: users created by single sign-on
    have none, and need one to sign gate decisions electronically."""
    if not password:
        raise InvalidInput("the password must not be empty", fields={"password": ["empty"]})
    from engine.domain.passwords import hash_password

    password_hash = hash_password(password)  # slow on purpose (argon2): outside the transaction
    with app.uow() as uow:
        require_user(uow, name)
        uow.users.set_password_hash(name, password_hash)
        uow.commit()
        return uow.users.get(name)


def grant(app: Phasegate, name: str, role: str) -> User:
    _check_role(role)
    with app.uow() as uow:
        require_user(uow, name)
        uow.users.ensure_role(role)
        uow.users.grant(name, role)
        uow.commit()
        return uow.users.get(name)


def revoke(app: Phasegate, name: str, role: str, *, actor: str = "admin") -> User:
    """Take `role` from `name`. Tasks they had claimed (or were given) and may no longer work on go
    back to their roles' inboxes at once, each with an `unclaimed` event saying why."""
    from engine.services.steps import append_event

    now = clock.now()
    with app.uow() as uow:
        require_user(uow, name)
        if not uow.users.revoke(name, role):
            raise NotFound(f"user '{name}' does not hold role '{role}'")
        for task in uow.tasks.held_without_role(name):
            instance_row = uow.instances.get_row(task.instance_id, for_update=True)
            uow.tasks.set_assignee(task.id, None)
            append_event(uow, instance_row, actor=actor, at=now, event_type="unclaimed", task_id=task.id,
                         element_id=task.element_id,
                         payload={"previous_assignee": name, "reason": f"role '{role}' revoked"})
        uow.commit()
        return uow.users.get(name)


def list_users(app: Phasegate) -> list[User]:
    with app.uow() as uow:
        return uow.users.list()


def get_user(app: Phasegate, name: str) -> User:
    with app.uow() as uow:
        user = uow.users.get(name)
    if user is None:
        raise NotFound(f"unknown user '{name}'")
    return user


def list_roles(app: Phasegate) -> list[dict]:
    """Every role with its members: [{"name", "description", "members": [...]}], by name."""
    with app.uow() as uow:
        return [{"name": name, "description": description, "members": members}
                for name, description, members in uow.users.roles_with_members()]
