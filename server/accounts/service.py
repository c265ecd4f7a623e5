"""Users, password hashing and signed API tokens."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session, select

from models.errors import Conflict, InvalidCredential
from server.accounts.tables import Role, UserAccount

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong username takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no-such-user")


def create_user(
    db: Session, *, username: str, password: str, role: Role, hospital_id: int | None = None
) -> UserAccount:
    """Creates a user; hospital staff must belong to a hospital."""
    if role == Role.HOSPITAL_STAFF and hospital_id is None:
        raise Conflict("hospital staff need a hospital")
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
    return URLSafeTimedSerializer(secret, salt="user-token").dumps({"uid": user.id})


def read_token(token: str, secret: str, max_age_s: int) -> int:
    try:
        payload = URLSafeTimedSerializer(secret, salt="user-token").loads(token, max_age=max_age_s)
    except SignatureExpired as e:
        raise InvalidCredential("token expired; sign in again") from e
    except BadSignature as e:
        raise InvalidCredential() from e
    return int(payload["uid"])
