from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from server.tables_base import utc_field


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    REVIEWER = "reviewer"
    HOSPITAL_STAFF = "hospital_staff"


class UserAccount(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=80)
    password_hash: str = Field(max_length=200)
    role: Role
    hospital_id: int | None = Field(default=None, foreign_key="hospital.id")
    is_active: bool = True
    # Signing out ends every session and API token of the user issued before this moment.
    sessions_revoked_at: datetime | None = utc_field(nullable=True)


class ThrottleScope(StrEnum):
    ACCOUNT = "account"  # keyed by the username as typed (known or not: a lock must not reveal which exist)
    ADDRESS = "address"  # keyed by the client's address


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins per account and per address, in the database so every server process sees them."""

    __tablename__ = "sign_in_throttle"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=20)  # a ThrottleScope value
    key: str = Field(max_length=120)
    failures: int = 0
    last_failure_at: datetime | None = utc_field(nullable=True, index=True)
    # No attempt is checked before this moment (a delay, or a lock once `failures` reaches the lock count).
    blocked_until: datetime | None = utc_field(nullable=True)
