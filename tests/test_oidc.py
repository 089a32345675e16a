"""Single sign-on with OpenID Connect (web.oidc, web.pages.oidc, engine.services.oidc_users).

A small fake provider runs in a thread on a loopback port: discovery, JWKS, /authorize (which
insists on PKCE S256 and a nonce), /token (client secret, single-use code, redirect URI and code
verifier checked; returns an RS256 ID token signed with a key made here with `cryptography`)
and /userinfo. The browser side is Flask's test client; the provider's /authorize is called
through the provider app's own test client, and Authlib reaches /token over real HTTP.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, abort, jsonify, redirect, request
from werkzeug.serving import make_server

from engine.adapters import tables
from engine.bootstrap import Phasegate
from engine.domain.errors import InvalidInput
from engine.services import users
from engine.services.oidc_users import claim
from tests.api_support import PASSWORD
from web import oidc
from web.app import create_app

CLIENT_ID = "phasegate-test"
CLIENT_SECRET = "s3cret-for-tests"
KID = "test-key-1"


# --------------------------------------------------------------------------- the fake provider


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _sign(private_key, claims: dict, kid: str = KID) -> str:
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = private_key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"


def _jwk(public_key, kid: str = KID) -> dict:
    numbers = public_key.public_numbers()

    def unsigned(value: int) -> str:
        return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": unsigned(numbers.n), "e": unsigned(numbers.e)}


class FakeProvider:
    """An OpenID Connect provider just strict enough to prove what the client sends."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.server = make_server("127.0.0.1", 0, self._app(), threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.reset()

    def reset(self):
        self.claims: dict = {}  # the user who signs in at /authorize next
        self.userinfo_claims: dict = {}  # extra claims only /userinfo returns
        self.token_overrides: dict = {}  # ID token claims replaced (wrong nonce, audience...)
        self.sign_with_other_key = False
        self.advertised_issuer: str | None = None  # discovery naming another issuer
        self.codes: dict = {}
        self.access_tokens: dict = {}
        self.authorize_requests: list[dict] = []

    def close(self):
        self.server.shutdown()
        self.thread.join(5)

    def _app(self) -> Flask:
        app = Flask("fake_oidc_provider")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify({
                "issuer": self.advertised_issuer or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            })

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [_jwk(self.key.public_key())]})

        @app.get("/authorize")
        def authorize():
            args = request.args
            self.authorize_requests.append(dict(args))
            if (args.get("client_id") != CLIENT_ID or args.get("response_type") != "code"
                    or "openid" not in args.get("scope", "").split() or not args.get("nonce")
                    or args.get("code_challenge_method") != "S256" or not args.get("code_challenge")
                    or not args.get("state") or not args.get("redirect_uri")):
                abort(400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"redirect_uri": args["redirect_uri"], "nonce": args["nonce"],
                                "challenge": args["code_challenge"], "claims": dict(self.claims)}
            return redirect(f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args['state']})}")

        @app.post("/token")
        def token():
            auth = request.authorization
            form = request.form
            grant = self.codes.pop(form.get("code", ""), None)  # single use
            if auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
                return jsonify({"error": "invalid_client"}), 401
            verifier = form.get("code_verifier", "")
            if (grant is None or form.get("grant_type") != "authorization_code"
                    or form.get("redirect_uri") != grant["redirect_uri"]
                    or _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]):
                return jsonify({"error": "invalid_grant"}), 400
            now = int(time.time())
            claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                      "nonce": grant["nonce"], "sub": "sub-" + str(grant["claims"].get("preferred_username")),
                      **grant["claims"], **self.token_overrides}
            access_token = secrets.token_urlsafe(16)
            self.access_tokens[access_token] = claims["sub"]
            key = self.other_key if self.sign_with_other_key else self.key
            return jsonify({"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                            "id_token": _sign(key, claims)})

        @app.get("/userinfo")
        def userinfo():
            sub = self.access_tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
            if sub is None:
                return jsonify({"error": "invalid_token"}), 401
            return jsonify({"sub": sub, **self.userinfo_claims})

        self.test_client = app.test_client()
        return app


@pytest.fixture(scope="module")
def fake_provider():
    provider = FakeProvider()
    yield provider
    provider.close()


@pytest.fixture
def provider(fake_provider):
    fake_provider.reset()
    return fake_provider


@pytest.fixture(autouse=True)
def _no_oidc_environment(monkeypatch):
    # A developer's own PHASEGATE_OIDC_* must not switch single sign-on on (or off) in these tests.
    for key in (oidc.ISSUER, oidc.CLIENT_ID, oidc.CLIENT_SECRET, oidc.SCOPES, oidc.USERNAME_CLAIM,
                oidc.ROLES_CLAIM, oidc.CREATE_USERS, oidc.LABEL, oidc.REDIRECT_URI):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def engine_app(db_url):
    app = Phasegate(db_url)
    users.add_user(app, "rita", ["reviewer"], password=PASSWORD)
    yield app
    app.dispose()


def web(engine_app, provider=None, **config):
    settings = {"TESTING": True, "SECRET_KEY": "test"}
    if provider is not None:
        settings.update({oidc.ISSUER: provider.issuer, oidc.CLIENT_ID: CLIENT_ID, oidc.CLIENT_SECRET: CLIENT_SECRET})
    settings.update(config)
    return create_app(phasegate=engine_app, config=settings).test_client()


def html(response) -> str:
    return response.get_data(as_text=True)


def to_provider(client, provider, next_url="/inbox"):
    """Click the button: the redirect to the provider's /authorize, and where that sends the browser back."""
    response = client.get("/sign-in/oidc?" + urlencode({"next": next_url}))
    assert response.status_code == 302, html(response)
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == provider.issuer
    back = provider.test_client.get(f"{location.path}?{location.query}")
    assert back.status_code == 302, "the provider refused the authorization request"
    return urlsplit(back.headers["Location"])


def round_trip(client, provider, claims, next_url="/inbox"):
    """Sign in at the provider as `claims` and follow the redirect back: the callback's response."""
    provider.claims = claims
    callback = to_provider(client, provider, next_url)
    assert callback.path == "/sign-in/oidc/callback"
    return client.get(f"{callback.path}?{callback.query}")


def signed_in_as(client) -> str | None:
    with client.session_transaction() as session:
        return session.get("user")


def roles_of(engine_app, name):
    return sorted(users.get_user(engine_app, name).roles)


# --------------------------------------------------------------------------- pages


def test_not_configured_no_button_and_the_routes_404(engine_app):
    client = web(engine_app)
    page = html(client.get("/sign-in"))
    assert "sso-button" not in page and "single sign-on" not in page.lower()
    assert client.get("/sign-in/oidc").status_code == 404
    assert client.get("/sign-in/oidc/callback?code=x&state=y").status_code == 404


def test_configured_sign_in_page_shows_the_button(engine_app, provider):
    page = html(web(engine_app, provider).get("/sign-in?next=/inbox%3Fsort%3Ddue"))
    assert 'class="sso-button"' in page
    assert 'href="/sign-in/oidc?next=/inbox?sort%3Ddue"' in page
    assert ">Sign in with single sign-on</a>" in page
    assert 'name="password"' in page  # password sign-in stays for local users
    labelled = html(web(engine_app, provider, PHASEGATE_OIDC_LABEL="Sign in with Contoso").get("/sign-in"))
    assert ">Sign in with Contoso</a>" in labelled


def test_existing_user_signs_in_and_lands_on_next(engine_app, provider):
    client = web(engine_app, provider)
    response = round_trip(client, provider, {"preferred_username": "rita"}, next_url="/inbox?sort=due")
    assert response.status_code == 302
    assert response.headers["Location"] == "/inbox?sort=due"
    assert signed_in_as(client) == "rita"
    assert client.get("/inbox").status_code == 200
    request_sent = provider.authorize_requests[-1]
    assert request_sent["redirect_uri"] == "http://localhost/sign-in/oidc/callback"
    assert request_sent["scope"] == "openid email profile"
    assert roles_of(engine_app, "rita") == ["reviewer"]  # no roles claim configured: roles untouched


def test_next_off_site_is_ignored(engine_app, provider):
    client = web(engine_app, provider)
    response = round_trip(client, provider, {"preferred_username": "rita"}, next_url="//evil.example/x")
    assert response.headers["Location"] == "/inbox"


def test_unknown_user_is_refused(engine_app, provider):
    client = web(engine_app, provider)
    response = round_trip(client, provider, {"preferred_username": "mallory"})
    assert response.status_code == 200
    assert "there is no Phasegate user &#39;mallory&#39;" in html(response)
    assert signed_in_as(client) is None
    with pytest.raises(Exception):
        users.get_user(engine_app, "mallory")


def test_deactivated_user_is_refused(engine_app, provider):
    with engine_app.engine.begin() as conn:
        conn.execute(sa.update(tables.user).where(tables.user.c.name == "rita").values(active=False))
    client = web(engine_app, provider)
    response = round_trip(client, provider, {"preferred_username": "rita"})
    assert response.status_code == 200
    assert "is deactivated" in html(response)
    assert signed_in_as(client) is None


def test_create_users_creates_the_user_with_roles_synced_from_the_claim(engine_app, provider):
    client = web(engine_app, provider, PHASEGATE_OIDC_CREATE_USERS="true", PHASEGATE_OIDC_ROLES_CLAIM="groups")
    claims = {"preferred_username": "nina", "name": "Nina Noor", "email": "nina@example.com",
              "groups": ["reviewer", "qa_lead", "/full/group/path"]}
    response = round_trip(client, provider, claims)
    assert response.headers["Location"] == "/inbox"
    assert signed_in_as(client) == "nina"
    nina = users.get_user(engine_app, "nina")
    assert nina.display_name == "Nina Noor"
    assert sorted(nina.roles) == ["qa_lead", "reviewer"]  # the group path is no role name: ignored

    client.post("/sign-out", data={"csrf_token": _csrf(client)})
    response = round_trip(client, provider, {**claims, "groups": ["reviewer", "engineer"]})
    assert response.status_code == 302
    assert roles_of(engine_app, "nina") == ["engineer", "reviewer"]
    page = html(client.get("/inbox"))
    assert "Your roles were updated from single sign-on: granted engineer; revoked qa_lead." in page


def test_roles_claim_syncs_existing_users_and_reads_nested_claims(engine_app, provider):
    client = web(engine_app, provider, PHASEGATE_OIDC_ROLES_CLAIM="realm_access.roles")
    response = round_trip(client, provider, {"preferred_username": "rita", "realm_access": {"roles": ["qa_lead"]}})
    assert response.status_code == 302
    assert roles_of(engine_app, "rita") == ["qa_lead"]


def test_without_create_users_an_unknown_user_is_not_created_even_with_roles(engine_app, provider):
    client = web(engine_app, provider, PHASEGATE_OIDC_ROLES_CLAIM="groups")
    response = round_trip(client, provider, {"preferred_username": "nina", "groups": ["admin"]})
    assert "there is no Phasegate user" in html(response)
    assert [u.name for u in users.list_users(engine_app)] == ["rita"]


def test_claims_missing_from_the_id_token_come_from_userinfo(engine_app, provider):
    client = web(engine_app, provider, PHASEGATE_OIDC_ROLES_CLAIM="groups")
    provider.userinfo_claims = {"preferred_username": "someone-else", "groups": ["engineer"]}
    response = round_trip(client, provider, {"preferred_username": "rita"})
    assert response.status_code == 302
    assert signed_in_as(client) == "rita"  # the ID token's own claim wins
    assert roles_of(engine_app, "rita") == ["engineer"]


def test_missing_username_claim_is_refused_with_its_name(engine_app, provider):
    client = web(engine_app, provider, PHASEGATE_OIDC_USERNAME_CLAIM="upn")
    response = round_trip(client, provider, {"preferred_username": "rita"})
    assert response.status_code == 200
    assert "the provider sent no &#39;upn&#39; claim" in html(response)
    assert signed_in_as(client) is None


def test_bad_state_is_refused(engine_app, provider):
    client = web(engine_app, provider)
    provider.claims = {"preferred_username": "rita"}
    callback = to_provider(client, provider)
    query = parse_qs(callback.query)
    forged = urlencode({"code": query["code"][0], "state": "not-the-state-we-sent"})
    response = client.get(f"{callback.path}?{forged}")
    assert response.status_code == 200
    assert "This sign-in did not start here" in html(response)
    assert signed_in_as(client) is None
    # A callback into a browser that never started a sign-in is refused the same way.
    fresh = web(engine_app, provider)
    response = fresh.get(f"{callback.path}?{callback.query}")
    assert "This sign-in did not start here" in html(response)
    assert signed_in_as(fresh) is None


@pytest.mark.parametrize("tamper", ["nonce", "audience", "signature"])
def test_an_id_token_that_fails_verification_is_refused(engine_app, provider, tamper):
    if tamper == "nonce":
        provider.token_overrides = {"nonce": "replayed-from-another-sign-in"}
    elif tamper == "audience":
        provider.token_overrides = {"aud": "another-client"}
    else:
        provider.sign_with_other_key = True
    client = web(engine_app, provider)
    response = round_trip(client, provider, {"preferred_username": "rita"})
    assert response.status_code == 200
    assert "Single sign-on could not confirm who you are" in html(response)
    assert signed_in_as(client) is None


def test_a_provider_naming_another_issuer_is_not_used(engine_app, provider):
    provider.advertised_issuer = "https://impostor.example"
    response = web(engine_app, provider).get("/sign-in/oidc")
    assert response.status_code == 200
    assert "the provider names a different issuer" in html(response)
    assert provider.authorize_requests == []


def test_failed_single_sign_ons_are_rate_limited(engine_app, provider):
    client = web(engine_app, provider, SIGN_IN_MAX_FAILURES=2)
    for _ in range(2):
        assert "there is no Phasegate user" in html(round_trip(client, provider, {"preferred_username": "mallory"}))
    response = client.get("/sign-in/oidc")
    assert response.status_code == 429
    assert "Too many failed sign-ins" in html(response)
    assert int(response.headers["Retry-After"]) > 0


def test_provider_error_is_shown_without_its_description_and_not_counted(engine_app, provider):
    client = web(engine_app, provider, SIGN_IN_MAX_FAILURES=1)
    for _ in range(2):
        response = client.get("/sign-in/oidc/callback?" + urlencode(
            {"error": "access_denied", "error_description": "Call 555-0100 to unlock", "state": "x"}))
        assert response.status_code == 200
        assert "did not sign you in (access_denied)" in html(response)
        assert "555-0100" not in html(response)
    assert client.get("/sign-in/oidc").status_code == 302  # not rate limited


def test_provider_down_shows_a_message(engine_app):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = web(engine_app, PHASEGATE_OIDC_ISSUER=f"http://127.0.0.1:{port}", PHASEGATE_OIDC_CLIENT_ID=CLIENT_ID)
    page = client.get("/sign-in")
    assert 'class="sso-button"' in html(page)
    response = client.get("/sign-in/oidc")
    assert response.status_code == 200
    assert "The single sign-on provider cannot be reached" in html(response)


def test_password_sign_in_still_works_when_configured(engine_app, provider):
    client = web(engine_app, provider)
    client.get("/sign-in")
    response = client.post("/sign-in", data={"username": "rita", "password": PASSWORD, "csrf_token": _csrf(client)})
    assert response.status_code == 302
    assert signed_in_as(client) == "rita"


def _csrf(client) -> str:
    with client.session_transaction() as session:
        return session["csrf"]


# --------------------------------------------------------------------------- configuration


def test_settings_come_from_the_environment_and_flask_config_wins():
    environ = {oidc.ISSUER: "https://id.example.com/realms/main", oidc.CLIENT_ID: "pg", oidc.CLIENT_SECRET: "x",
               oidc.CREATE_USERS: "yes", oidc.ROLES_CLAIM: "groups"}
    settings = oidc.read_settings({}, environ)
    assert settings.metadata_url == "https://id.example.com/realms/main/.well-known/openid-configuration"
    assert (settings.client_id, settings.scopes, settings.username_claim) == ("pg", "openid email profile",
                                                                              "preferred_username")
    assert settings.create_users and settings.roles_claim == "groups"
    assert settings.label == "Sign in with single sign-on"
    assert oidc.read_settings({oidc.ISSUER: ""}, environ) is None  # the app's config can switch it off
    assert oidc.read_settings({}, {}) is None


@pytest.mark.parametrize("environ, field", [
    ({oidc.ISSUER: "http://id.example.com", oidc.CLIENT_ID: "pg"}, oidc.ISSUER),
    ({oidc.ISSUER: "https://id.example.com"}, oidc.CLIENT_ID),
    ({oidc.ISSUER: "https://id.example.com", oidc.CLIENT_ID: "pg", oidc.SCOPES: "email profile"}, oidc.SCOPES),
    ({oidc.ISSUER: "https://id.example.com", oidc.CLIENT_ID: "pg", oidc.CREATE_USERS: "maybe"}, oidc.CREATE_USERS),
    ({oidc.CLIENT_ID: "pg"}, oidc.ISSUER),
])
def test_wrong_settings_are_refused_naming_the_variable(environ, field):
    with pytest.raises(InvalidInput) as refused:
        oidc.read_settings({}, environ)
    assert field in refused.value.fields


def test_claim_reads_a_key_or_a_dotted_path():
    claims = {"https://example.com/roles": ["a"], "realm_access": {"roles": ["b"]}, "flat": 1}
    assert claim(claims, "https://example.com/roles") == ["a"]
    assert claim(claims, "realm_access.roles") == ["b"]
    assert claim(claims, "realm_access.missing") is None
    assert claim(claims, "flat.deeper") is None
