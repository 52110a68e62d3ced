"""Log in (OAuth2 password flow), who am I, and accounts (coordinators create them)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.community import audit
from api.errors import Problem
from api.models import MerchantRow, User, VolunteerRow
from api.params import Id
from api.security import (
    Caller,
    Coordinator,
    CurrentUser,
    Role,
    SessionDep,
    SettingsDep,
    create_token,
    hash_password,
    new_api_key,
    verify_password,
)

router = APIRouter(prefix="/v1", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    id: int
    username: str
    role: Role
    volunteer_id: str | None = None
    merchant_id: str | None = None
    calendar_url: str | None = Field(None, description="private ICS feed of your tasks")


class UserIn(BaseModel):
    username: str = Field(min_length=2, max_length=64, examples=["wangfang"])
    password: str = Field(min_length=8, max_length=128, examples=["换成你自己的密码"])
    role: Role
    volunteer_id: str | None = Field(None, examples=["V0007"])
    merchant_id: str | None = None


class ApiKey(BaseModel):
    api_key: str = Field(description="shown once; send it as X-API-Key")


@router.post("/auth/token", response_model=Token, summary="Log in (OAuth2 password flow)")
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep,
          settings: SettingsDep) -> Token:
    user = session.scalars(select(User).filter_by(username=form.username)).one_or_none()
    if user is None or not verify_password(form.password, user.password_hash):
        raise Problem(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    return Token(access_token=create_token(user, settings))


def me_view(user: User | Caller, request: Request) -> Me:
    settings = request.app.state.settings
    url = f"{settings.public_url}/v1/calendar/{user.calendar_token}.ics" \
        if user.calendar_token else None
    return Me(id=user.id, username=user.username, role=Role(user.role),
              volunteer_id=user.volunteer_id, merchant_id=user.merchant_id, calendar_url=url)


@router.get("/me", response_model=Me, summary="Who am I")
def whoami(user: CurrentUser, request: Request) -> Me:
    return me_view(user, request)


@router.post("/users", response_model=Me, status_code=201, summary="Create an account")
def create_user(body: UserIn, session: SessionDep, actor: Coordinator, request: Request) -> Me:
    if body.role is Role.VOLUNTEER and (
            not body.volunteer_id or session.get(VolunteerRow, body.volunteer_id) is None):
        raise Problem(422, "a volunteer account needs an existing volunteer_id",
                      errors=[{"path": ["body", "volunteer_id"], "message": "unknown volunteer"}])
    if body.role is Role.MERCHANT and (
            not body.merchant_id or session.get(MerchantRow, body.merchant_id) is None):
        raise Problem(422, "a merchant account needs an existing merchant_id",
                      errors=[{"path": ["body", "merchant_id"], "message": "unknown merchant"}])
    user = User(username=body.username, password_hash=hash_password(body.password),
                role=body.role.value, volunteer_id=body.volunteer_id,
                merchant_id=body.merchant_id, calendar_token=secrets.token_urlsafe(24))
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Problem(409, f"username {body.username!r} is taken") from exc
    audit(session, actor, "create", f"user:{user.id}", body.role.value)
    session.commit()
    return me_view(user, request)


@router.post("/users/{user_id}/api-key", response_model=ApiKey, status_code=201,
             summary="Issue an API key for a machine client (replaces the old one)")
def issue_api_key(user_id: Id, session: SessionDep, actor: Coordinator) -> ApiKey:
    user = session.get(User, user_id)
    if user is None:
        raise Problem(404, f"no user {user_id}")
    key, digest = new_api_key()
    user.api_key_hash = digest
    audit(session, actor, "api_key", f"user:{user_id}")
    session.commit()
    return ApiKey(api_key=key)
