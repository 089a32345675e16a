"""Single sign-on: which Phasegate user a verified OpenID Connect ID token names, whether they may
sign in, and (when configured) keeping their roles in step with the provider.

The web layer (`web.oidc`, through Authlib) has already checked the token's signature, issuer,
audience, expiry and nonce; the claims arrive here as a plain mapping. Rules:

- The user is named by one claim (`preferred_username` unless configured otherwise), matched
  exactly against Phasegate user names.
- An unknown user is refused unless creating users is switched on; then they are created with no
  password (they can only sign in through the provider until one is set).
- A deactivated user is always refused.
- With a roles claim configured the provider owns the user's roles: every sign-in grants each
  role the claim lists and revokes every role it does not (an absent claim means no roles), so
  a user removed from a group in the provider loses the role at their next sign-in.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import InvalidInput, Unauthenticated
from engine.services.users import _check_name, _check_role

# Column widths of app_user (engine.adapters.tables): longer values are not stored.
DISPLAY_NAME_MAX = 200
EMAIL_MAX = 200


@dataclass(frozen=True)
class ClaimMapping:
    """How claims map to a Phasegate user (from the PHASEGATE_OIDC_* settings)."""

    username_claim: str = "preferred_username"
    roles_claim: str | None = None
    create_users: bool = False


@dataclass(frozen=True)
class OidcSignIn:
    """Who signed in and what the sign-in changed."""

    user: str
    created: bool = False
    granted: tuple[str, ...] = ()
    revoked: tuple[str, ...] = ()
    # Values of the roles claim that are not valid role names (e.g. Keycloak's "/group/path").
    ignored_roles: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.created or bool(self.granted or self.revoked)

    def role_changes(self) -> str:
        """E.g. "granted reviewer; revoked engineer" ("" when the roles stayed as they were)."""
        parts = []
        if self.granted:
            parts.append("granted " + ", ".join(self.granted))
        if self.revoked:
            parts.append("revoked " + ", ".join(self.revoked))
        return "; ".join(parts)

    def describe(self) -> str:
        return "; ".join(part for part in ("created" if self.created else "", self.role_changes()) if part) \
            or "no change"


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """The claim `name`: the key itself (providers use names like "https://example.com/roles"),
    else a dotted path into nested objects ("realm_access.roles"). None when absent."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def sign_in_user(app: Phasegate, claims: Mapping[str, Any], mapping: ClaimMapping) -> OidcSignIn:
    """The Phasegate user the claims name, created and role-synced as `mapping` says; one
    transaction. Unauthenticated (with a message for the person signing in) when they may not."""
    name = _username(claims, mapping.username_claim)
    wanted = _roles(claims, mapping.roles_claim) if mapping.roles_claim else None
    with app.uow() as uow:
        created = False
        if not uow.users.exists(name):
            if not mapping.create_users:
                raise Unauthenticated(f"Single sign-on worked, but there is no Phasegate user '{name}'. "
                                      "Ask a Phasegate administrator to add you.")
            try:
                _check_name(name)
            except InvalidInput:
                raise Unauthenticated(f"'{name}' (the provider's '{mapping.username_claim}' claim) cannot be a "
                                      "Phasegate user name: letters, digits, '.', '_', '@' or '-', at most 120 "
                                      "characters.") from None
            uow.users.add(name, _display_name(claims, name), clock.now(), password_hash=None, email=_email(claims))
            created = True
        elif not uow.users.is_active(name):
            raise Unauthenticated(f"The Phasegate user '{name}' is deactivated.")
        granted: list[str] = []
        revoked: list[str] = []
        ignored: tuple[str, ...] = ()
        if wanted is not None:
            valid, ignored = _valid_roles(wanted)
            held = set(uow.users.roles_of(name))
            for role in sorted(valid - held):
                uow.users.ensure_role(role)
                uow.users.grant(name, role)
                granted.append(role)
            for role in sorted(held - valid):
                uow.users.revoke(name, role)
                revoked.append(role)
        uow.commit()
    return OidcSignIn(name, created, tuple(granted), tuple(revoked), ignored)


def _username(claims: Mapping[str, Any], username_claim: str) -> str:
    value = claim(claims, username_claim)
    if not isinstance(value, str) or not value.strip():
        raise Unauthenticated(f"Single sign-on did not say who you are: the provider sent no '{username_claim}' "
                              "claim. Ask your administrator to check PHASEGATE_OIDC_USERNAME_CLAIM.")
    # An address the provider has not verified could be anyone's: never sign in by it.
    if username_claim == "email" and claims.get("email_verified") is False:
        raise Unauthenticated("Single sign-on named you by an e-mail address the provider has not verified.")
    return value.strip()


def _roles(claims: Mapping[str, Any], roles_claim: str) -> list[str]:
    value = claim(claims, roles_claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, str)]
    return []


def _valid_roles(names: list[str]) -> tuple[set[str], tuple[str, ...]]:
    valid: set[str] = set()
    ignored: list[str] = []
    for role in names:
        try:
            _check_role(role)
            valid.add(role)
        except InvalidInput:
            ignored.append(role)
    return valid, tuple(ignored)


def _display_name(claims: Mapping[str, Any], name: str) -> str:
    display = claims.get("name")
    if not isinstance(display, str) or not display.strip():
        given, family = claims.get("given_name"), claims.get("family_name")
        display = " ".join(part.strip() for part in (given, family) if isinstance(part, str) and part.strip())
    return (display.strip() or name)[:DISPLAY_NAME_MAX]


def _email(claims: Mapping[str, Any]) -> str | None:
    email = claims.get("email")
    if isinstance(email, str) and 0 < len(email) <= EMAIL_MAX:
        return email
    return None
