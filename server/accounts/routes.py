"""Sign-in for the API: username and password -> a signed, expiring bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from server.accounts import service, throttle
from server.accounts.deps import client_address
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


@router.post("/token", response_model=TokenResponse, responses={
    429: {"description": "Too many failed sign-ins (sign_in_throttled; Retry-After says how long)"}})
def sign_in(body: TokenRequest, db: Db, request: Request) -> TokenResponse:
    user = throttle.sign_in(db, username=body.username, password=body.password, address=client_address(request),
                            policy=request.app.state.sign_in_policy, refusals=request.app.state.sign_in_refusals)
    token = service.issue_token(user, request.app.state.settings.secret)
    return TokenResponse(access_token=token, role=user.role.value, hospital_id=user.hospital_id)
