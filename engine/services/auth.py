"""Authentication and authorisation: personal API tokens, password checks, who may do what.

Tokens are `pg_` + 43 url-safe characters (32 random bytes). Only their SHA-256 is stored (see
the comment on `tables.api_token` for why not argon2); the token is shown once, when created.
A revoked token, or a token of a deactivated user, no longer authenticates.

The permission rules themselves are pure functions in `engine.domain.permissions`; this module
reads an actor's roles (fresh, so a grant or revoke applies to the next request) and applies them.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from engine.domain.model import ApiToken
from engine.domain.passwords import verify_password as _verify_password
from engine.domain.permissions import Action, Actor, allowed, require
from engine.services.users import require_user

TOKEN_PREFIX = "pg_"
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
# last_used_at is written at most this often per token, so reading the API does not always write.
TOUCH_EVERY = timedelta(seconds=60)


def hash_token(plain: str) -> str:
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def _check_token_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise InvalidInput("a token needs a name (what it is for), at most 120 characters",
                           fields={"name": ["required, at most 120 characters"]})
    return name


def create_token(app: Phasegate, user: str, name: str) -> tuple[str, ApiToken]:
    """A new token for `user`: (the plain token — show it once, it cannot be read again — and its record)."""
    name = _check_token_name(name)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with app.uow() as uow:
        require_user(uow, user)
        record = uow.tokens.add(user=user, name=name, token_hash=hash_token(plain), prefix=plain[:PREFIX_LENGTH],
                                at=clock.now())
        uow.commit()
    return plain, record


def list_tokens(app: Phasegate, user: str) -> list[ApiToken]:
    with app.uow() as uow:
        require_user(uow, user)
        return uow.tokens.for_user(user)


def revoke_token(app: Phasegate, token_id: int, user: str | None = None) -> ApiToken:
    """Revoke a token. With `user` (the API), only its owner or an admin may; without (the CLI), anyone."""
    with app.uow() as uow:
        token = uow.tokens.get(token_id)
        if token is None:
            raise NotFound(f"unknown API token {token_id}")
        if user is not None and token.user != user and "admin" not in uow.users.roles_of(user):
            raise Forbidden(f"token {token_id} belongs to another user")
        if not uow.tokens.revoke(token_id, clock.now()):
            raise NotFound(f"API token {token_id} is already revoked")
        uow.commit()
        return uow.tokens.get(token_id)


def _token_actor(uow, plain: str) -> Actor:
    """The token's owner with the roles they hold now (one statement); records the token's use."""
    if not plain or not plain.startswith(TOKEN_PREFIX):
        raise Unauthenticated("invalid API token")
    found = uow.tokens.owner(hash_token(plain))
    if found is None or found[0].revoked_at is not None or not found[0].user_active:
        raise Unauthenticated("invalid or revoked API token")
    row, roles = found
    now = clock.now()
    if row.last_used_at is None or row.last_used_at <= now - TOUCH_EVERY:
        uow.tokens.touch(row.id, now, TOUCH_EVERY)  # the caller commits
    return Actor(row.user_name, frozenset(roles))


def _token_user(uow, plain: str) -> str:
    return _token_actor(uow, plain).name


def authenticate_token(app: Phasegate, plain: str) -> str:
    """The name of the user a token belongs to; records its use. Unauthenticated if unknown or revoked."""
    with app.uow() as uow:
        user = _token_user(uow, plain)
        uow.commit()
        return user


def verify_password(app: Phasegate, user: str, password: str) -> bool:
    """Whether `password` is the user's (argon2); False for unknown or deactivated users."""
    with app.uow() as uow:
        if not uow.users.is_active(user):
            return False
        return _verify_password(uow.users.password_hash(user), password)


def _actor(uow, user: str) -> Actor:
    roles = uow.users.active_roles(user)
    if roles is None:
        raise Unauthenticated(f"unknown or deactivated user '{user}'")
    return Actor(user, frozenset(roles))


def actor(app: Phasegate, user: str) -> Actor:
    """The user with the roles they hold now. Unauthenticated if the user is unknown or deactivated
    (a session can outlive its user)."""
    with app.uow() as uow:
        return _actor(uow, user)


def authenticate(app: Phasegate, *, token: str | None = None, session_user: str | None = None) -> Actor:
    """Who is calling, with their roles now: the owner of a bearer token, else the signed-in user of
    a browser session. One transaction."""
    if not token and not session_user:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    with app.uow() as uow:
        who = _token_actor(uow, token) if token else _actor(uow, session_user)
        uow.commit()
        return who


def may(app: Phasegate, user: str, action: Action) -> bool:
    """Whether `user`'s roles permit `action` (see engine.domain.permissions)."""
    return allowed(actor(app, user), action)


def authorize(who: Actor, action: Action) -> Actor:
    """Raise Forbidden unless `who` may do `action`; returns the actor."""
    require(who, action)
    return who


def profile(app: Phasegate, who: Actor) -> dict:
    """{"user": the user's record, "permissions": what their roles permit} (GET /api/v1/me)."""
    from engine.domain.permissions import permissions_of
    from engine.services.users import get_user

    user = get_user(app, who.name)
    return {"user": user.to_dict(), "permissions": permissions_of(Actor(user.name, frozenset(user.roles)))}
