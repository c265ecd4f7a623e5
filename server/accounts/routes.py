"""Sign-in for the API: username and password -> a signed, expiring bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from server.accounts import service
from server.db import Db

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: str
    hospital_id: int | None


@router.post("/token", response_model=TokenResponse)
def sign_in(body: TokenRequest, db: Db, request: Request) -> TokenResponse:
    user = service.authenticate(db, username=body.username, password=body.password)
    token = service.issue_token(user, request.app.state.settings.secret)
    return TokenResponse(access_token=token, role=user.role.value, hospital_id=user.hospital_id)
