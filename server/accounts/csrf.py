"""CSRF tokens (double submit, signed): console forms send one in a field, cookie-authenticated API writes in
the `X-CSRF-Token` header. A cross-site page can make the browser send our cookies, but can read neither the
CSRF cookie nor a token signed over it.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from models.errors import CsrfFailed

CSRF_COOKIE = "bedcheck_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.secret, salt="console-csrf")


def csrf_token(request: Request) -> str:
    """A signed copy of this browser's CSRF cookie (a new cookie value is set on the response when absent)."""
    raw = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not raw:
        raw = request.state.new_csrf = secrets.token_urlsafe(24)
    return str(_serializer(request).dumps(raw))


def check_csrf(request: Request, submitted: object) -> None:
    """The submitted token must sign this browser's CSRF cookie; raises CsrfFailed."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not isinstance(submitted, str) or not submitted or not cookie:
        raise CsrfFailed()
    try:
        signed = _serializer(request).loads(submitted, max_age=int(request.app.state.settings.user_token_ttl_s))
    except BadSignature as e:
        raise CsrfFailed() from e
    if not hmac.compare_digest(str(signed), cookie):
        raise CsrfFailed()


def check_cookie_write(request: Request) -> None:
    """A write authenticated by the session cookie alone needs the CSRF header, except on console form routes,
    which check the token of their form (their route class says so with `checks_form_csrf`)."""
    if request.method in SAFE_METHODS or getattr(request.scope.get("route"), "checks_form_csrf", False):
        return
    check_csrf(request, request.headers.get(CSRF_HEADER))
