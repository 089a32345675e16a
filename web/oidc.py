"""Optional single sign-on with an OpenID Connect provider, through Authlib's Flask client
(docs/oidc.md).

Switched on by configuration alone: the PHASEGATE_OIDC_* keys, read from the Flask config when
present there (tests, embedding) and else from the environment. Without PHASEGATE_OIDC_ISSUER
nothing is registered: no button on the sign-in page, and the routes in `web.pages.oidc` 404.

Authlib does the protocol work we do not want to write ourselves: discovery, the authorization
request with `state`, `nonce` and PKCE (S256), the code exchange, and the ID token checks
(signature against the provider's JWKS, issuer, audience, expiry, nonce). This module adds what
Authlib leaves to the application: the discovered issuer must be the configured one, an ID token
is required, and every failure becomes a `SignOnFailed` with a message for the sign-in page.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from authlib.integrations.base_client.errors import MismatchingStateError
from flask import Flask, request, url_for

from engine.domain.errors import InvalidInput
from engine.services.oidc_users import ClaimMapping, claim

try:  # Authlib 1.7+ checks ID tokens with joserfc, whose errors are not Authlib's
    from joserfc.errors import JoseError
except ImportError:  # pragma: no cover - older Authlib raises AuthlibBaseError subclasses
    JoseError = AuthlibBaseError

log = logging.getLogger("phasegate.web.oidc")

ISSUER = "PHASEGATE_OIDC_ISSUER"
CLIENT_ID = "PHASEGATE_OIDC_CLIENT_ID"
CLIENT_SECRET = "PHASEGATE_OIDC_CLIENT_SECRET"
SCOPES = "PHASEGATE_OIDC_SCOPES"
USERNAME_CLAIM = "PHASEGATE_OIDC_USERNAME_CLAIM"
ROLES_CLAIM = "PHASEGATE_OIDC_ROLES_CLAIM"
CREATE_USERS = "PHASEGATE_OIDC_CREATE_USERS"
LABEL = "PHASEGATE_OIDC_LABEL"
REDIRECT_URI = "PHASEGATE_OIDC_REDIRECT_URI"

DEFAULT_SCOPES = "openid email profile"
DEFAULT_USERNAME_CLAIM = "preferred_username"
DEFAULT_LABEL = "Sign in with single sign-on"
# Every call to the provider gives up after this long, so a provider that hangs cannot hold a
# web worker; the person signing in sees "cannot reach" instead.
PROVIDER_TIMEOUT_SECONDS = 10
# The Authlib client's name. Authlib also reads <NAME>_CLIENT_ID etc. from the Flask config;
# explicit arguments win, and this prefix is distinct from our PHASEGATE_OIDC_* keys.
CLIENT_NAME = "phasegate_sso"
EXTENSION = "phasegate_oidc"
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str = DEFAULT_SCOPES
    username_claim: str = DEFAULT_USERNAME_CLAIM
    roles_claim: str | None = None
    create_users: bool = False
    label: str = DEFAULT_LABEL
    redirect_uri: str | None = None

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def mapping(self) -> ClaimMapping:
        return ClaimMapping(self.username_claim, self.roles_claim, self.create_users)


class SignOnFailed(Exception):
    """Single sign-on did not produce verified claims. `message` is for the person signing in;
    `counts` says whether it is a failed sign-in for the limiter (a forged or replayed callback
    is, an unreachable provider or a cancelled sign-in is not)."""

    def __init__(self, message: str, *, counts: bool):
        super().__init__(message)
        self.message = message
        self.counts = counts


def read_settings(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> OidcSettings | None:
    """The settings, or None when single sign-on is not configured. InvalidInput (naming each
    variable) when it is configured wrongly: better to refuse to start than to run without it."""

    def value(key: str) -> Any:
        raw = config[key] if key in config else environ.get(key)
        if isinstance(raw, str):
            raw = raw.strip()
        return None if raw in ("", None) else raw

    issuer = value(ISSUER)
    if issuer is None:
        if ISSUER in config:  # switched off explicitly by the application's config
            return None
        stray = [key for key in (CLIENT_ID, CLIENT_SECRET) if value(key) is not None]
        if stray:
            raise InvalidInput(f"single sign-on: {', '.join(stray)} is set but {ISSUER} is not",
                               fields={ISSUER: ["required when single sign-on is configured"]})
        return None
    problems: dict[str, list[str]] = {}
    parts = urlsplit(str(issuer))
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)) \
            or not parts.hostname or parts.query or parts.fragment:
        problems[ISSUER] = ["an https URL without query or fragment (http only for localhost)"]
    client_id = value(CLIENT_ID)
    if client_id is None:
        problems[CLIENT_ID] = ["required: the client id registered with the provider"]
    scopes = str(value(SCOPES) or DEFAULT_SCOPES)
    if "openid" not in scopes.split():
        problems[SCOPES] = ["must include 'openid'"]
    create_users = value(CREATE_USERS)
    if isinstance(create_users, str):
        if create_users.lower() not in _TRUE | _FALSE:
            problems[CREATE_USERS] = ["true or false"]
        create_users = create_users.lower() in _TRUE
    if problems:
        raise InvalidInput("single sign-on is configured wrongly", fields=problems)
    secret = value(CLIENT_SECRET)
    return OidcSettings(
        issuer=str(issuer), client_id=str(client_id), client_secret=None if secret is None else str(secret),
        scopes=" ".join(scopes.split()),
        username_claim=str(value(USERNAME_CLAIM) or DEFAULT_USERNAME_CLAIM),
        roles_claim=None if value(ROLES_CLAIM) is None else str(value(ROLES_CLAIM)),
        create_users=bool(create_users), label=str(value(LABEL) or DEFAULT_LABEL),
        redirect_uri=None if value(REDIRECT_URI) is None else str(value(REDIRECT_URI)),
    )


class SingleSignOn:
    """The configured provider: `start` sends the browser there, `finish` turns the callback into
    verified claims. Both raise SignOnFailed."""

    def __init__(self, app: Flask, settings: OidcSettings):
        self.settings = settings
        client_kwargs: dict[str, Any] = {"scope": settings.scopes, "code_challenge_method": "S256",
                                         "default_timeout": PROVIDER_TIMEOUT_SECONDS}
        if settings.client_secret is None:
            # A public client: PKCE instead of a secret proves the code exchange is ours.
            client_kwargs["token_endpoint_auth_method"] = "none"
        self.client = OAuth(app).register(
            CLIENT_NAME, client_id=settings.client_id, client_secret=settings.client_secret,
            server_metadata_url=settings.metadata_url, client_kwargs=client_kwargs)

    def redirect_uri(self) -> str:
        return self.settings.redirect_uri or url_for("pages.oidc_callback", _external=True)

    def _metadata(self) -> dict:
        """The provider's discovery document (Authlib caches it). Its issuer must be the one we
        were configured with (OpenID Connect Discovery 4.3): the ID token's `iss` is checked
        against it."""
        metadata = self.client.load_server_metadata()
        if str(metadata.get("issuer", "")).rstrip("/") != self.settings.issuer.rstrip("/"):
            log.error("single sign-on: the discovery document at %s names issuer %r, not %r",
                      self.settings.metadata_url, metadata.get("issuer"), self.settings.issuer)
            raise SignOnFailed("Single sign-on is misconfigured (the provider names a different issuer). "
                               "Ask your administrator.", counts=False)
        return metadata

    def start(self):
        """A redirect to the provider's authorization endpoint (state, nonce and PKCE verifier
        kept in the session by Authlib)."""
        try:
            self._metadata()
            return self.client.authorize_redirect(self.redirect_uri())
        except SignOnFailed:
            raise
        except requests.RequestException as exc:
            log.warning("single sign-on: cannot load %s: %s", self.settings.metadata_url, exc)
            raise SignOnFailed("The single sign-on provider cannot be reached. Try again later, or sign in "
                               "with your Phasegate password.", counts=False) from None
        except (AuthlibBaseError, RuntimeError, ValueError) as exc:
            log.error("single sign-on: unusable provider configuration: %s", exc)
            raise SignOnFailed("Single sign-on is misconfigured. Ask your administrator.", counts=False) from None

    def finish(self) -> dict[str, Any]:
        """The verified claims of the ID token, completed from the userinfo endpoint when it lacks
        a claim we map."""
        error = request.args.get("error")
        if error:
            # The provider's free-text description is not shown: anyone can put it in a link.
            log.info("single sign-on: the provider answered %s: %s", error, request.args.get("error_description"))
            code = error if _ERROR_CODE.match(error) else "error"
            raise SignOnFailed(f"The single sign-on provider did not sign you in ({code}).", counts=False)
        try:
            metadata = self._metadata()
            token = self.client.authorize_access_token()
        except SignOnFailed:
            raise
        except MismatchingStateError:
            raise SignOnFailed("This sign-in did not start here, or it took too long. Start again.",
                               counts=True) from None
        except requests.RequestException as exc:
            log.warning("single sign-on: cannot reach the provider: %s", exc)
            raise SignOnFailed("The single sign-on provider cannot be reached. Try again later, or sign in "
                               "with your Phasegate password.", counts=False) from None
        except (AuthlibBaseError, JoseError, ValueError) as exc:
            log.warning("single sign-on: refused the provider's answer: %r", exc)
            raise SignOnFailed("Single sign-on could not confirm who you are. Start again.", counts=True) from None
        except Exception:  # noqa: BLE001 - provider input reaches library code; a message, never a 500
            log.exception("single sign-on: unexpected failure while exchanging the code")
            raise SignOnFailed("Single sign-on failed. Start again, or sign in with your Phasegate password.",
                               counts=True) from None
        verified = token.get("userinfo")
        if not verified:
            raise SignOnFailed("The single sign-on provider sent no ID token. Ask your administrator.", counts=True)
        claims = dict(verified)
        wanted = [name for name in (self.settings.username_claim, self.settings.roles_claim) if name]
        if any(claim(claims, name) is None for name in wanted) and metadata.get("userinfo_endpoint"):
            self._add_userinfo(claims, token)
        return claims

    def _add_userinfo(self, claims: dict, token: dict) -> None:
        """Some providers put a claim only in the userinfo response. Its `sub` must be the ID
        token's (OpenID Connect Core 5.3.2); the ID token's own claims always win."""
        try:
            extra = self.client.userinfo(token=token)
        except (requests.RequestException, AuthlibBaseError, ValueError) as exc:
            log.warning("single sign-on: userinfo request failed: %s", exc)
            return
        if extra.get("sub") != claims.get("sub"):
            log.warning("single sign-on: userinfo is about another subject; ignored")
            return
        for key, value in extra.items():
            claims.setdefault(key, value)


def init_app(app: Flask) -> None:
    """Register the provider when configured; `sso_label` (the button text, or None) for templates."""
    settings = read_settings(app.config)
    app.extensions[EXTENSION] = SingleSignOn(app, settings) if settings else None
    app.jinja_env.globals["sso_label"] = settings.label if settings else None


def of(app: Flask) -> SingleSignOn | None:
    return app.extensions.get(EXTENSION)
