"""Users, password hashing and signed API tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session, select

from models.errors import Conflict, InvalidCredential
from models.names import clean_name
from server.accounts.passwords import check_password_policy
from server.accounts.tables import Role, UserAccount
from server.audit import service as audit
from server.db import utcnow

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong username takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no-such-user")


def create_user(
    db: Session, *, username: str, password: str, role: Role, hospital_id: int | None = None
) -> UserAccount:
    """Creates a user; hospital staff must belong to a hospital; the password must meet the policy."""
    if role == Role.HOSPITAL_STAFF and hospital_id is None:
        raise Conflict("hospital staff need a hospital")
    # Typed exactly at every sign-in and shown in every audit line: no invisible or bidi characters at all.
    clean_name(username, field="username", strict=True)
    check_password_policy(password, username=username)
    if db.exec(select(UserAccount).where(UserAccount.username == username)).first():
        raise Conflict(f"user {username!r} exists")
    user = UserAccount(username=username, password_hash=_hasher.hash(password), role=role, hospital_id=hospital_id)
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, *, username: str, password: str) -> UserAccount:
    """Returns the active user with this password, or raises InvalidCredential."""
    user = db.exec(select(UserAccount).where(UserAccount.username == username)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, InvalidHashError) as e:
        raise InvalidCredential("wrong username or password") from e
    if user is None or not user.is_active:
        raise InvalidCredential("wrong username or password")
    return user


def issue_token(user: UserAccount, secret: str) -> str:
    # "iat" to the microsecond: the signer's own timestamp has whole seconds, and a sign-in in the same
    # second as a sign-out must still work.
    return URLSafeTimedSerializer(secret, salt="user-token").dumps({"uid": user.id, "iat": time.time()})


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    issued_at: float


def read_token(token: str, secret: str, max_age_s: int) -> TokenClaims:
    try:
        payload = URLSafeTimedSerializer(secret, salt="user-token").loads(token, max_age=max_age_s)
    except SignatureExpired as e:
        raise InvalidCredential("token expired; sign in again") from e
    except BadSignature as e:
        raise InvalidCredential() from e
    return TokenClaims(int(payload["uid"]), float(payload.get("iat", 0.0)))


def user_for_token(db: Session, claims: TokenClaims) -> UserAccount:
    """The active user a token names, unless the user signed out after the token was issued."""
    user = db.get(UserAccount, claims.user_id)
    if user is None or not user.is_active:
        raise InvalidCredential()
    if user.sessions_revoked_at is not None and claims.issued_at < user.sessions_revoked_at.timestamp():
        raise InvalidCredential("signed out; sign in again")
    return user


def sign_out(db: Session, user: UserAccount) -> None:
    """Ends every session and API token of the user (the cookie alone could be replayed until it expires)."""
    user.sessions_revoked_at = utcnow()
    db.add(user)
    audit.record(db, actor=f"user:{user.id}", action="user.signed_out", object_type="user", object_id=user.id or 0)
    db.commit()
