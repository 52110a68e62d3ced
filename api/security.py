"""Who is calling: OAuth2 password flow with Argon2 hashes and signed bearer tokens, or an API
key for machine clients; and what each role may do."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Annotated, Protocol

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from api import permissions
from api.db import get_connection, get_session
from api.errors import Problem
from api.models import RefreshTokenRow, User
from api.settings import ApiSettings
from matcher.i18n import _

hasher = PasswordHash.recommended()  # Argon2id
oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is making a request: the account's identity and links, read once per request (a
    plain value, not a database row, so no route can write through it by accident)."""

    id: int
    username: str
    role: str
    volunteer_id: str | None
    merchant_id: str | None
    calendar_token: str | None
    grid_units: str | None = None  # a grid worker's units (网格), ";" between ids
    # A community role's community (a volunteer's: where she registered); an admin's street
    # office or district.
    community_id: int | None = None
    street_office_id: int | None = None
    district_id: int | None = None

    @property
    def reads_all(self) -> bool:
        """Whether she reads every record of the community (a coordinator, or a street or
        district admin reading one of hers), not only her own."""
        return self.role in (Role.COORDINATOR, Role.STREET_ADMIN, Role.DISTRICT_ADMIN)

    @property
    def units(self) -> frozenset[str]:
        """The grid units a grid worker looks after (none for the other roles)."""
        return frozenset(u for u in (self.grid_units or "").split(";") if u)


class Role(StrEnum):
    COORDINATOR = "coordinator"
    ORGANISER = "organiser"
    VOLUNTEER = "volunteer"
    MERCHANT = "merchant"
    GRID_WORKER = "grid_worker"
    STREET_ADMIN = "street_admin"
    DISTRICT_ADMIN = "district_admin"


def hash_password(password: str) -> str:
    return hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """A hash of a password nobody knows, made with the same parameters as the real ones."""
    return hasher.hash(secrets.token_urlsafe(24))


def verify_password(password: str, hashed: str | None) -> bool:
    """Whether ``password`` matches ``hashed``. Without a hash (no such user) a dummy hash is
    verified all the same, so the answer takes as long as for a real account and its timing
    does not tell which usernames exist."""
    try:
        matches = hasher.verify(password, hashed or _dummy_hash())
    except UnknownHashError:  # a damaged or foreign hash in the table: no way in
        return False
    return matches and hashed is not None


def new_api_key() -> tuple[str, str]:
    """A fresh key and the SHA-256 digest stored in its place (keys are long and random, so a
    fast digest is enough; passwords get Argon2)."""
    key = "lnk_" + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


class Account(Protocol):
    """What a token is issued for: an account row, or a row of its columns."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...


def create_token(user: Account, settings: ApiSettings) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": str(user.id), "role": user.role, "iat": now,
              "exp": now + dt.timedelta(minutes=settings.token_minutes)}
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_refresh_token(session: Session, user_id: int, settings: ApiSettings,
                        family: str | None = None) -> str:
    """A new refresh token for ``user_id`` (of ``family``, or of a new one: a new login). Only
    its digest is stored; the caller commits."""
    token = "lnr_" + secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    session.add(RefreshTokenRow(user_id=user_id, family=family or secrets.token_hex(16),
                                token_hash=_digest(token), issued_at=now,
                                expires_at=now + dt.timedelta(days=settings.refresh_days)))
    return token


def _refused(code: str, detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": "Bearer"}, code=code)


def rotate_refresh_token(session: Session, token: str, settings: ApiSettings
                         ) -> tuple[int, str]:
    """Spend ``token``: the account it was issued to and its successor. A token used before
    (someone kept a copy) revokes its whole family, so neither the thief nor the owner can go
    on without logging in again; the change is committed even though the call is refused.

    Raises
    ------
    Problem
        401 when the token is unknown, expired, revoked, or used before.
    """
    row = session.scalars(select(RefreshTokenRow).where(
        RefreshTokenRow.token_hash == _digest(token))).one_or_none()
    if row is None:
        raise _refused("invalid_refresh_token", _("this refresh token is not valid; log in "
                                                  "again"))
    if row.revoked_at is not None:
        raise _refused("refresh_token_revoked", _("this login was ended; log in again"))
    now = dt.datetime.now(dt.UTC)
    if row.expires_at <= now:
        raise _refused("refresh_token_expired", _("this login has expired; log in again"))
    # Spent only if nobody spent it first: of two requests racing with one token, one wins and
    # the other counts as reuse.
    spent = session.execute(update(RefreshTokenRow).where(
        RefreshTokenRow.id == row.id, RefreshTokenRow.used_at.is_(None),
        RefreshTokenRow.revoked_at.is_(None)).values(used_at=now))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, row.family)
        session.commit()
        raise _refused("refresh_token_reused", _(
            "this refresh token was already used, so it may have been copied: this login is "
            "ended everywhere; log in again"))
    successor = issue_refresh_token(session, row.user_id, settings, row.family)
    return row.user_id, successor


def revoke_family(session: Session, family: str) -> None:
    """End one login: every refresh token of ``family`` stops working (the caller commits)."""
    session.execute(update(RefreshTokenRow).where(
        RefreshTokenRow.family == family, RefreshTokenRow.revoked_at.is_(None)).values(
        revoked_at=dt.datetime.now(dt.UTC)))


def revoke_refresh_token(session: Session, token: str) -> bool:
    """Log out: the login ``token`` belongs to ends. Whether there was such a token."""
    family = session.scalar(select(RefreshTokenRow.family).where(
        RefreshTokenRow.token_hash == _digest(token)))
    if family is None:
        return False
    revoke_family(session, family)
    return True


async def get_settings(request: Request) -> ApiSettings:
    # Dependencies that do no I/O are async: FastAPI would run a plain ``def`` in the thread
    # pool, and each hop there costs more than the work itself on the hot path.
    settings: ApiSettings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


ConnectionDep = Annotated[AsyncConnection, Depends(get_connection)]

# Built once (composing a statement costs more than running it); every request asks.
_CALLER = select(*(User.__table__.c[f.name] for f in fields(Caller)))
CALLER_BY_ID = _CALLER.where(User.id == bindparam("id"))
CALLER_BY_KEY = _CALLER.where(User.api_key_hash == bindparam("digest"))


async def current_user(request: Request, connection: ConnectionDep, settings: SettingsDep,
                       token: Annotated[str | None, Depends(oauth2)],
                       api_key: Annotated[str | None, Depends(api_key_header)]) -> Caller:
    """The caller, from a bearer token or an ``X-API-Key``; 401 otherwise, and 403 when the
    permission table (:mod:`api.permissions`) does not let the caller's role use the route.

    Looked up on every request (not trusted from the token alone), so a deleted account stops
    working at once.
    """
    unauthorised = Problem(401, _("log in at /v1/auth/token or send an X-API-Key"),
                           headers={"WWW-Authenticate": "Bearer"})
    if api_key:
        digest = hashlib.sha256(api_key.encode()).hexdigest()
        row = (await connection.execute(CALLER_BY_KEY, {"digest": digest})).first()
    elif token:
        row = (await connection.execute(CALLER_BY_ID, {"id": _token_subject(token, settings)})
               ).first()
    else:
        row = None
    if row is None:
        raise unauthorised
    caller = Caller(*row)
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or request.url.path
    if caller.role not in permissions.allowed(request.method, template):
        raise Problem(403, _("a {role} may not {method} {route}").format(
            role=caller.role, method=request.method, route=template))
    from api.tenancy import enter_community  # it reads the caller's rows: imported late

    await enter_community(request, connection, caller, template)
    return caller


def _token_subject(token: str, settings: ApiSettings) -> int:
    """The user id a bearer token was issued to; 401 if it is forged, expired or malformed
    (even one signed with our secret may lack a claim or carry one of the wrong type)."""
    try:
        subject, expires = _verified(token, settings.secret_key)
    except (jwt.PyJWTError, MalformedClaimsError) as exc:
        raise Problem(401, _("invalid token: {why}").format(why=exc),
                      headers={"WWW-Authenticate": "Bearer"}, code="invalid_token") from exc
    if expires <= dt.datetime.now(dt.UTC).timestamp():
        raise Problem(401, _("invalid token: Signature has expired"),
                      headers={"WWW-Authenticate": "Bearer"}, code="token_expired")
    return subject


@functools.lru_cache(maxsize=4096)
def _verified(token: str, secret: str) -> tuple[int, float]:
    """Subject and expiry of a token whose signature checks out. Cached: a client sends the
    same token on every call, and verifying it again costs more than the rest of the lookup
    (errors are not cached; expiry is checked by the caller on every use)."""
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                        options={"require": ["sub", "exp"]})
    subject, expires = claims["sub"], claims["exp"]
    # PyJWT checks that "sub" is a string and "exp" a number; an account id is a positive
    # integer that the database's integer column can hold.
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()
            and len(subject) <= len(str(MAX_ID)) and 0 < int(subject) <= MAX_ID):
        raise MalformedClaimsError("the subject is not an account id")
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        raise MalformedClaimsError("the expiry is not a time")
    return int(subject), float(expires)


class MalformedClaimsError(ValueError):
    """A correctly signed token whose claims are not ones we issue."""


MAX_ID = 2**31 - 1  # the largest value of an INTEGER column on PostgreSQL


CurrentUser = Annotated[Caller, Depends(current_user)]


def require(*roles: Role) -> Callable[[Request, Caller], Awaitable[Caller]]:
    """A dependency letting only ``roles`` through (403 for the others)."""
    allowed = {r.value for r in roles}

    async def check(request: Request, user: CurrentUser) -> Caller:
        # Street and district admins read what a coordinator reads, in their communities.
        if (user.role in permissions.ADMINS and Role.COORDINATOR.value in allowed
                and request.method in ("GET", "HEAD")):
            return user
        if user.role not in allowed:
            raise Problem(403, _("a {role} may not do this (needs {roles})").format(
                role=user.role, roles=" / ".join(sorted(allowed))))
        return user

    return check


Coordinator = Annotated[Caller, Depends(require(Role.COORDINATOR))]
Staff = Annotated[Caller, Depends(require(Role.COORDINATOR, Role.ORGANISER))]
VolunteerUser = Annotated[Caller, Depends(require(Role.VOLUNTEER))]
MerchantUser = Annotated[Caller, Depends(require(Role.MERCHANT))]
