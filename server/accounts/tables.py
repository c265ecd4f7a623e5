from __future__ import annotations

from datetime import datetime
from enum import StrEnum

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
