"""Browser sessions for the pages: sign-in state, CSRF tokens, and the failed sign-in limiter.

- The signed-in user is `session["user"]` (the name the API's session authentication reads too).
  The session cookie is HttpOnly, SameSite=Lax, and Secure when PHASEGATE_SECURE_COOKIES=1.
- Every POST form carries `csrf_token` (a random token kept in the session); a POST to a page
  without the right token is refused with 400 before the view runs.
- Failed sign-ins are counted per (user name, client address) in memory: after
  SIGN_IN_MAX_FAILURES within SIGN_IN_WINDOW_SECONDS the next attempts get 429 until the oldest
  failure leaves the window. Per process: with several workers each counts its own.
"""
from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from urllib.parse import urlsplit

from flask import Flask, abort, request, session

SESSION_USER = "user"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
SECURE_COOKIES_ENV = "PHASEGATE_SECURE_COOKIES"


def configure(app: Flask) -> None:
    # Flask's defaults hold these keys already (HttpOnly on, SameSite unset, Secure off).
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    if os.environ.get(SECURE_COOKIES_ENV) == "1":
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config.setdefault("SIGN_IN_MAX_FAILURES", 5)
    app.config.setdefault("SIGN_IN_WINDOW_SECONDS", 300)
    app.extensions["phasegate_sign_in_limiter"] = FailureLimiter(
        app.config["SIGN_IN_MAX_FAILURES"], app.config["SIGN_IN_WINDOW_SECONDS"])
    app.jinja_env.globals["csrf_token"] = csrf_token


def csrf_token() -> str:
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """400 unless the POSTed form carries this session's CSRF token."""
    expected = session.get(SESSION_CSRF)
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        abort(400, description="The form expired or did not come from Phasegate (CSRF token missing or wrong). "
                               "Reload the page and try again.")


def sign_in(user: str) -> None:
    """A fresh session for `user` (a new CSRF token too: no session fixation)."""
    session.clear()
    session[SESSION_USER] = user
    session[SESSION_CSRF] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def current_user() -> str | None:
    return session.get(SESSION_USER)


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path on this site (no scheme, no host), else `default`."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


class FailureLimiter:
    """Failed attempts per key within a sliding window, in memory (thread safe)."""

    def __init__(self, max_failures: int, window_seconds: float, clock=time.monotonic):
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[tuple, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple) -> deque:
        now = self.clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, key: tuple) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        with self._lock:
            failures = self._recent(key)
            if len(failures) < self.max_failures:
                return 0
            return max(1, int(failures[0] + self.window - self.clock()) + 1)

    def fail(self, key: tuple) -> None:
        with self._lock:
            self._recent(key)
            self._failures.setdefault(key, deque()).append(self.clock())

    def reset(self, key: tuple) -> None:
        with self._lock:
            self._failures.pop(key, None)


def limiter(app: Flask) -> FailureLimiter:
    return app.extensions["phasegate_sign_in_limiter"]
