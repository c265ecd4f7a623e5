from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from server.tables_base import utc_field


class Device(SQLModel, table=True):
    __tablename__ = "device"

    id: int | None = Field(default=None, primary_key=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    name: str = Field(default="", max_length=120)
    # sha256 of the token: the token has 256 bits of entropy, so a slow hash would add nothing.
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = utc_field(now=True)
    revoked_at: datetime | None = utc_field(nullable=True)
    last_seen_at: datetime | None = utc_field(nullable=True, index=True)
    clock_offset_ms: int = 0
    outbox_pending: int = 0
    # The face engine the device embeds with (its tag, reported at pairing and in heartbeats): its roster
    # carries that engine's enrolled embeddings only. Empty until reported: the server's own engine.
    engine_version: str = Field(default="", max_length=80)
    # "ward" (a hospital's tablet or camera) or "inspector" (a bureau inspector's phone, 移动稽查): an inspector's
    # device belongs to its user, points at the ward it inspects now, and is never shown to the hospital.
    kind: str = Field(default="ward", max_length=20, sa_column_kwargs={"server_default": "ward"})
    owner_user_id: int | None = Field(default=None, foreign_key="user_account.id")


class PairingCode(SQLModel, table=True):
    __tablename__ = "pairing_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(unique=True, max_length=64)
    hospital_id: int = Field(foreign_key="hospital.id")
    ward_id: int = Field(foreign_key="ward.id")
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(nullable=True)
    created_by: str = Field(max_length=80)
