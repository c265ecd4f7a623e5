"""Who is calling: users (bearer token) with roles and hospital scope. Device auth is in server/devices."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel import Session

from models.errors import NotAuthenticated, NotFound, PermissionDenied
from server.accounts.csrf import check_cookie_write
from server.accounts.service import read_token, user_for_token
from server.accounts.tables import Role, UserAccount
from server.db import Db


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def client_address(request: Request) -> str | None:
    """The peer's address, as the server saw it (behind a proxy: what uvicorn's proxy headers set)."""
    return request.client.host if request.client else None


def get_current_user(request: Request, db: Db) -> UserAccount:
    token = _bearer(request)
    if token is None:
        token = request.cookies.get("bedcheck_session")
        if token:
            # The browser sends the cookie with any site's request; a bearer token it would not.
            check_cookie_write(request)
    if not token:
        raise NotAuthenticated()
    settings = request.app.state.settings
    claims = read_token(token, settings.secret, settings.user_token_ttl_s)
    return user_for_token(db, claims)


CurrentUser = Annotated[UserAccount, Depends(get_current_user)]


class RequireRoles:
    """A route dependency: the caller is a signed-in user with one of these roles."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def __call__(self, user: CurrentUser) -> UserAccount:
        if user.role not in self.roles:
            raise PermissionDenied(f"needs role {' or '.join(sorted(self.roles))}")
        return user


ANY_USER = RequireRoles(*Role)
SUPERVISORS = RequireRoles(Role.ADMIN, Role.SUPERVISOR)
REVIEWERS = RequireRoles(Role.ADMIN, Role.SUPERVISOR, Role.REVIEWER)


def scope(stmt: Any, user: UserAccount, hospital_column: Any) -> Any:
    """Default-deny hospital scope for list queries: hospital staff see their own hospital only."""
    if user.role == Role.HOSPITAL_STAFF:
        return stmt.where(hospital_column == user.hospital_id)
    return stmt


def check_hospital(user: UserAccount, hospital_id: int, what: str = "object") -> None:
    """Another hospital's object answers 404 to hospital staff, as if it did not exist."""
    if user.role == Role.HOSPITAL_STAFF and user.hospital_id != hospital_id:
        raise NotFound(f"{what} not found")


def get_session(db: Session) -> Session:
    return db
