"""Log in (OAuth2 password flow), who am I, and accounts (coordinators create them)."""

from __future__ import annotations

from typing import Annotated

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from api import calendar
from api.community import audit
from api.db import Database
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
from api.throttle import LoginGuard

router = APIRouter(prefix="/v1", tags=["auth"])
USERNAME_MAX = 64


class Token(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxNyJ9.c2lnbmF0dXJl",
        "token_type": "bearer"}]})
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 17, "username": "wangfang", "role": "volunteer", "volunteer_id": "V0007",
        "merchant_id": None,
        "calendar_url": "https://linli.example.org/v1/calendar/Zm9vYmFyYmF6.ics"}]})
    id: int
    username: str
    role: Role
    volunteer_id: str | None = None
    merchant_id: str | None = None
    calendar_url: str | None = Field(None, description="private ICS feed of your tasks")


class UserIn(BaseModel):
    username: str = Field(min_length=2, max_length=USERNAME_MAX, examples=["wangfang"])
    password: str = Field(min_length=8, max_length=128, examples=["换成你自己的密码"])
    role: Role
    volunteer_id: str | None = Field(None, examples=["V0007"])
    merchant_id: str | None = None
    grid_units: list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^;]+$")]] \
        = Field(default_factory=list, max_length=100, description="a grid worker's units")


class ApiKey(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "api_key": "lk_3f9a0c12de4b5a6978c0d1e2f3a4b5c6"}]})
    api_key: str = Field(description="shown once; send it as X-API-Key")


# Built once; the login runs on the event loop, so it reads through the async connection.
ACCOUNT_BY_USERNAME = select(User.id, User.role, User.password_hash).where(
    User.username == bindparam("username"))


@router.post("/auth/token", response_model=Token, summary="Log in (OAuth2 password flow)",
             responses={429: {"description": "too many failed logins for this username or "
                              "from this address; wait Retry-After seconds"}})
async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()],
                settings: SettingsDep, request: Request) -> Token:
    """Failed logins are throttled per username and per client address (429 with
    ``Retry-After``); an unknown username takes as long to refuse as a wrong password."""
    guard: LoginGuard = request.app.state.login_guard
    address = request.client.host if request.client else ""
    wait = guard.attempt(form.username, address)
    if wait:
        raise Problem(429, f"too many failed logins; try again in {wait} s",
                      headers={"Retry-After": str(wait)})
    account = None
    # No account has such a name (and PostgreSQL refuses NUL in text): not worth a query.
    if "\x00" not in form.username and len(form.username) <= USERNAME_MAX:
        # A connection of its own, returned before hashing: logins waiting for the password
        # threads must not hold the connections the other routes need.
        db: Database = request.app.state.db
        async with db.async_engine.connect() as connection:
            account = (await connection.execute(ACCOUNT_BY_USERNAME,
                                                {"username": form.username})).first()
    limiter: CapacityLimiter = request.app.state.password_limiter
    valid = await to_thread.run_sync(verify_password, form.password,
                                     account.password_hash if account else None,
                                     limiter=limiter)
    if account is None or not valid:
        raise Problem(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    guard.succeeded(form.username, address)
    return Token(access_token=create_token(account, settings))


def feed_url(token: str, request: Request) -> str:
    """The calendar link: under ``LINLI_PUBLIC_URL`` when set, else on the address the client
    reached (its Host header; uvicorn applies X-Forwarded-Proto from the proxies it trusts,
    ``FORWARDED_ALLOW_IPS``)."""
    public_url = request.app.state.settings.public_url
    if public_url:
        return f"{public_url.rstrip('/')}/v1/calendar/{token}.ics"
    return str(request.url_for("calendar_feed", token=token))


def me_view(user: User | Caller, request: Request) -> Me:
    url = feed_url(user.calendar_token, request) if user.calendar_token else None
    return Me(id=user.id, username=user.username, role=Role(user.role),
              volunteer_id=user.volunteer_id, merchant_id=user.merchant_id, calendar_url=url)


@router.get("/me", response_model=Me, summary="Who am I")
def whoami(user: CurrentUser, request: Request) -> Me:
    return me_view(user, request)


@router.post("/me/calendar-token", response_model=Me,
             summary="A new calendar link (the old one stops working at once)")
def rotate_calendar_token(caller: CurrentUser, session: SessionDep, request: Request) -> Me:
    user = session.get(User, caller.id)
    if user is None:  # deleted since the caller was looked up
        raise Problem(404, "no such account")
    user.calendar_token = calendar.new_token()
    audit(session, caller, "calendar_token", f"user:{caller.id}")
    session.commit()
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
                merchant_id=body.merchant_id, calendar_token=calendar.new_token(),
                grid_units=";".join(body.grid_units) or None)
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
