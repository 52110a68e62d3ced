"""Log in (a JSON body or the OAuth2 password form; WeChat when configured), refresh and log
out, who am I, and accounts (coordinators create them)."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from api import calendar, permissions
from api.community import audit
from api.db import Database
from api.errors import Problem
from api.models import MerchantRow, User, VolunteerRow, scope_session
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
    issue_refresh_token,
    new_api_key,
    revoke_refresh_token,
    rotate_refresh_token,
    verify_password,
)
from api.settings import ApiSettings
from api.tenancy import NO_COMMUNITY, community_in_scope
from api.throttle import LoginGuard
from api.wechat import Code2Session, WeChatLoginError
from matcher.i18n import _

router = APIRouter(prefix="/v1", tags=["auth"])
USERNAME_MAX = 64


class Token(BaseModel):
    """A login: send ``access_token`` as ``Authorization: Bearer``; when it expires, trade
    ``refresh_token`` for a new pair at ``POST /v1/auth/refresh`` (each refresh token works
    once)."""

    model_config = {"json_schema_extra": {"examples": [{
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...", "token_type": "bearer",
        "expires_in": 43200, "refresh_token": "lnr_3q2Yk...", "refresh_expires_in": 2592000}]}}
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str = Field(description="works once, at POST /v1/auth/refresh; keep it "
                               "like a password")
    refresh_expires_in: int = Field(description="seconds the refresh token is valid")


class LoginIn(BaseModel):
    """What ``wx.request`` sends as JSON, or the OAuth2 password form's fields."""

    model_config = {"json_schema_extra": {"examples": [{"username": "wangfang",
                                                        "password": "换成你自己的密码"}]}}
    username: str
    password: str
    grant_type: str | None = Field(None, pattern="^password$",
                                   description="the OAuth2 form sends `password`; optional")


class RefreshIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"refresh_token": "lnr_3q2Yk..."}]}}
    refresh_token: str = Field(min_length=1, max_length=256)


class WeChatCodeIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"code": "0a3Xyz000abc"}]}}
    code: str = Field(min_length=1, max_length=128, description="from wx.login() in the mini "
                      "program; works once, for five minutes")


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
    community: str | None = Field(
        None, max_length=40, examples=["jingtian"],
        description="the community's code: a street or district admin names one of hers "
        "(or sends X-Linli-Community); a coordinator's accounts are of her own community")


class ApiKey(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "api_key": "lk_3f9a0c12de4b5a6978c0d1e2f3a4b5c6"}]})
    api_key: str = Field(description="shown once; send it as X-API-Key")


# Built once; the login runs on the event loop, so it reads through the async connection.
ACCOUNT_BY_USERNAME = select(User.id, User.role, User.password_hash).where(
    User.username == bindparam("username"))


_LOGIN_BODY = LoginIn.model_json_schema(ref_template="#/components/schemas/{model}")
_PROBLEM = {"application/problem+json": {
    "schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
_REFUSED: dict[int | str, dict[str, Any]] = {401: {
    "description": "the refresh token is unknown, expired, revoked or was used before (`code` "
    "says which; the last revokes the whole login)", "content": _PROBLEM}}


async def _credentials(request: Request) -> LoginIn:
    """The username and password, from a JSON body or a form; 422 naming the field otherwise."""
    content_type = request.headers.get("content-type", "")
    try:
        if "json" in content_type:
            return LoginIn.model_validate_json(await request.body())
        form = await request.form()
        return LoginIn.model_validate({k: v for k, v in form.items() if isinstance(v, str)})
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors()]) from exc


def token_pair(user_id: int, role: str, refresh_token: str, settings: ApiSettings) -> Token:
    return Token(access_token=create_token(_Account(user_id, role), settings),
                 expires_in=settings.token_minutes * 60, refresh_token=refresh_token,
                 refresh_expires_in=settings.refresh_days * 86400)


class _Account:
    def __init__(self, id: int, role: str) -> None:
        self.id, self.role = id, role


def _new_login(db: Database, user_id: int, settings: ApiSettings) -> str:
    with db.session() as session:
        token = issue_refresh_token(session, user_id, settings)
        session.commit()
    return token


@router.post("/auth/token", response_model=Token,
             summary="Log in with a username and password (JSON or the OAuth2 form)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": _LOGIN_BODY},
                 "application/x-www-form-urlencoded": {"schema": _LOGIN_BODY}}}},
             responses={429: {"description": "too many failed logins for this username or "
                              "from this address; wait Retry-After seconds"}})
async def login(settings: SettingsDep, request: Request) -> Token:
    """Send ``{"username": ..., "password": ...}`` as JSON (what a mini program's
    ``wx.request`` sends) or as the OAuth2 password form. The answer carries a short-lived
    access token and a refresh token.

    Failed logins are throttled per username and per client address (429 with
    ``Retry-After``); an unknown username takes as long to refuse as a wrong password."""
    form = await _credentials(request)
    guard: LoginGuard = request.app.state.login_guard
    address = request.client.host if request.client else ""
    wait = guard.attempt(form.username, address)
    if wait:
        raise Problem(429, _("too many failed logins; try again in {wait} s").format(wait=wait),
                      headers={"Retry-After": str(wait)})
    account = None
    db: Database = request.app.state.db
    # No account has such a name (and PostgreSQL refuses NUL in text): not worth a query.
    if "\x00" not in form.username and len(form.username) <= USERNAME_MAX:
        # A connection of its own, returned before hashing: logins waiting for the password
        # threads must not hold the connections the other routes need.
        async with db.async_engine.connect() as connection:
            account = (await connection.execute(ACCOUNT_BY_USERNAME,
                                                {"username": form.username})).first()
    limiter: CapacityLimiter = request.app.state.password_limiter
    valid = await to_thread.run_sync(verify_password, form.password,
                                     account.password_hash if account else None,
                                     limiter=limiter)
    if account is None or not valid:
        raise Problem(401, _("wrong username or password"),
                      headers={"WWW-Authenticate": "Bearer"})
    guard.succeeded(form.username, address)
    refresh = await to_thread.run_sync(_new_login, db, account.id, settings)
    return token_pair(account.id, account.role, refresh, settings)


@router.post("/auth/refresh", response_model=Token, responses=_REFUSED,
             summary="Trade a refresh token for a new access token and refresh token")
def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep) -> Token:
    """The refresh token works once: the answer carries its successor. Presenting a used one
    again (it may have been copied) ends the whole login (401 ``refresh_token_reused``)."""
    user_id, successor = rotate_refresh_token(session, body.refresh_token, settings)
    user = session.get(User, user_id)
    if user is None:  # deleted since (its tokens went with it; a race at most)
        raise Problem(401, _("this login was ended; log in again"),
                      code="refresh_token_revoked")
    session.commit()
    return token_pair(user.id, user.role, successor, settings)


@router.post("/auth/logout", status_code=204, response_class=Response,
             summary="Log out: the refresh token and its successors stop working")
def logout(body: RefreshIn, session: SessionDep) -> Response:
    """Answers 204 whether or not the token was known (it tells nothing about tokens). The
    access token already issued lasts until it expires (``LINLI_TOKEN_MINUTES``)."""
    revoke_refresh_token(session, body.refresh_token)
    session.commit()
    return Response(status_code=204)


# Not configured is a 404, not a 501: a feature switched off is no server failure, and
# monitoring (and the API's fuzz test) count every 5xx as one.
_WECHAT: dict[int | str, dict[str, Any]] = {404: {
    "description": "WeChat login is not configured on this server "
    "(`wechat_login_not_configured`)", "content": _PROBLEM}}


def _wechat(request: Request) -> Code2Session:
    provider: Code2Session | None = request.app.state.wechat
    if provider is None:
        raise Problem(404, _("WeChat login is not set up on this server; log in with your "
                             "username and password"), code="wechat_login_not_configured")
    return provider


async def _openid(request: Request, code: str) -> str:
    try:
        identity = await _wechat(request)(code)
    except WeChatLoginError as exc:
        raise Problem(401, _("WeChat did not accept this login code; please try again"),
                      code="wechat_code_invalid") from exc
    return identity.openid


def _wechat_login(db: Database, openid: str, settings: ApiSettings) -> Token | None:
    with db.session() as session:
        user = session.scalars(select(User).filter_by(wechat_openid=openid)).one_or_none()
        if user is None:
            return None
        token = issue_refresh_token(session, user.id, settings)
        session.commit()
        return token_pair(user.id, user.role, token, settings)


@router.post("/auth/wechat", response_model=Token, responses=_WECHAT,
             summary="Log in from a WeChat mini program with a wx.login() code")
async def wechat_login(body: WeChatCodeIn, settings: SettingsDep, request: Request) -> Token:
    """Off unless the server has a ``code2session`` provider (:mod:`api.wechat`): 404
    ``wechat_login_not_configured``. A WeChat user not linked to an account yet gets 403
    ``wechat_not_linked``: log in with the password once and link at ``POST /v1/me/wechat``."""
    openid = await _openid(request, body.code)
    token = await to_thread.run_sync(_wechat_login, request.app.state.db, openid, settings)
    if token is None:
        raise Problem(403, _("this WeChat user is not linked to an account yet: log in with "
                             "your username and password once, then link WeChat"),
                      code="wechat_not_linked")
    return token


def _link(db: Database, user_id: int, openid: str | None) -> bool:
    with db.session() as session:
        user = session.get(User, user_id)
        if user is None:
            return False
        user.wechat_openid = openid
        try:
            session.flush()
        except IntegrityError:
            return False
        session.commit()
        return True


@router.post("/me/wechat", status_code=204, response_class=Response, responses=_WECHAT,
             summary="Link my account to my WeChat (a wx.login() code), so I log in with it")
async def link_wechat(body: WeChatCodeIn, caller: CurrentUser, request: Request) -> Response:
    """409 ``wechat_linked_elsewhere`` when this WeChat user is linked to another account."""
    openid = await _openid(request, body.code)
    if not await to_thread.run_sync(_link, request.app.state.db, caller.id, openid):
        raise Problem(409, _("this WeChat user is already linked to another account"),
                      code="wechat_linked_elsewhere")
    return Response(status_code=204)


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
        raise Problem(404, _("no such account"))
    user.calendar_token = calendar.new_token()
    audit(session, caller, "calendar_token", f"user:{caller.id}")
    session.commit()
    return me_view(user, request)


@router.post("/users", response_model=Me, status_code=201, summary="Create an account")
def create_user(body: UserIn, session: SessionDep, actor: CurrentUser, request: Request) -> Me:
    """A coordinator makes accounts of her community; a street or district admin of one of
    hers. Street and district admins themselves are made with ``linli community admin``."""
    if body.role.value in permissions.ADMINS:
        raise Problem(422, _("street and district admins are made with `linli community "
                             "admin`"), errors=[{"path": ["body", "role"],
                                                 "message": _("a role of one community")}])
    if body.community is not None:
        community_id = community_in_scope(session, actor, body.community).id
    elif actor.role in permissions.ADMINS:
        community_id = getattr(request.state, "community_id", NO_COMMUNITY)
        if community_id == NO_COMMUNITY:
            raise Problem(422, _("say which community the account is for"), errors=[
                {"path": ["body", "community"], "message": _("required for an admin")}])
    else:
        assert actor.community_id is not None  # a community role's account has one
        community_id = actor.community_id
    scope_session(session, community_id)  # her volunteer or shop must be of that community
    if body.role is Role.VOLUNTEER and (
            not body.volunteer_id or session.get(VolunteerRow, body.volunteer_id) is None):
        raise Problem(422, _("a volunteer account needs an existing volunteer_id"),
                      errors=[{"path": ["body", "volunteer_id"],
                               "message": _("unknown volunteer")}])
    if body.role is Role.MERCHANT and (
            not body.merchant_id or session.get(MerchantRow, body.merchant_id) is None):
        raise Problem(422, _("a merchant account needs an existing merchant_id"),
                      errors=[{"path": ["body", "merchant_id"], "message": _("unknown merchant")}])
    user = User(username=body.username, password_hash=hash_password(body.password),
                role=body.role.value, volunteer_id=body.volunteer_id,
                merchant_id=body.merchant_id, calendar_token=calendar.new_token(),
                grid_units=";".join(body.grid_units) or None, community_id=community_id)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Problem(409, _("username {name} is taken").format(name=repr(body.username)),
                      code="username_taken") from exc
    audit(session, actor, "create", f"user:{user.id}", body.role.value)
    session.commit()
    return me_view(user, request)


@router.post("/users/{user_id}/api-key", response_model=ApiKey, status_code=201,
             summary="Issue an API key for a machine client (replaces the old one)")
def issue_api_key(user_id: Id, session: SessionDep, actor: Coordinator) -> ApiKey:
    user = session.get(User, user_id)
    if user is None or user.community_id != actor.community_id:  # others' are not hers
        raise Problem(404, _("no user {id}").format(id=user_id))
    key, digest = new_api_key()
    user.api_key_hash = digest
    audit(session, actor, "api_key", f"user:{user_id}")
    session.commit()
    return ApiKey(api_key=key)
