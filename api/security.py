"""Who is calling: OAuth2 password flow with Argon2 hashes and signed bearer tokens, or an API
key for machine clients; and what each role may do."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pwdlib import PasswordHash
from sqlalchemy.orm import Session

from api.db import get_session
from api.errors import Problem
from api.models import User
from api.settings import ApiSettings

hasher = PasswordHash.recommended()  # Argon2id
oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
ALGORITHM = "HS256"


class Role(StrEnum):
    COORDINATOR = "coordinator"
    ORGANISER = "organiser"
    VOLUNTEER = "volunteer"
    MERCHANT = "merchant"


def hash_password(password: str) -> str:
    return hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    return hasher.verify(password, hashed)


def new_api_key() -> tuple[str, str]:
    """A fresh key and the SHA-256 digest stored in its place (keys are long and random, so a
    fast digest is enough; passwords get Argon2)."""
    key = "lnk_" + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


def create_token(user: User, settings: ApiSettings) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": str(user.id), "role": user.role, "iat": now,
              "exp": now + dt.timedelta(minutes=settings.token_minutes)}
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


async def get_settings(request: Request) -> ApiSettings:
    # Dependencies that do no I/O are async: FastAPI would run a plain ``def`` in the thread
    # pool, and each hop there costs more than the work itself on the hot path.
    settings: ApiSettings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def current_user(session: SessionDep, settings: SettingsDep,
                 token: Annotated[str | None, Depends(oauth2)],
                 api_key: Annotated[str | None, Depends(api_key_header)]) -> User:
    """The caller, from a bearer token or an ``X-API-Key``; 401 otherwise."""
    unauthorised = Problem(401, "log in at /v1/auth/token or send an X-API-Key",
                           headers={"WWW-Authenticate": "Bearer"})
    if api_key:
        digest = hashlib.sha256(api_key.encode()).hexdigest()
        user = session.query(User).filter_by(api_key_hash=digest).one_or_none()
        if user is None:
            raise unauthorised
        session.commit()  # as below: release the connection
        return user
    if not token:
        raise unauthorised
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM])
    except jwt.PyJWTError as exc:
        raise Problem(401, f"invalid token: {exc}",
                      headers={"WWW-Authenticate": "Bearer"}) from exc
    user = session.get(User, int(claims["sub"]))
    if user is None:
        raise unauthorised
    # End the read so the connection goes back to the pool while the request waits for a
    # thread to run its route (objects stay loaded: sessions do not expire on commit).
    session.commit()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency letting only ``roles`` through (403 for the others)."""
    allowed = {r.value for r in roles}

    async def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Problem(403, f"a {user.role} may not do this (needs "
                          f"{' or '.join(sorted(allowed))})")
        return user

    return check


Coordinator = Annotated[User, Depends(require(Role.COORDINATOR))]
Staff = Annotated[User, Depends(require(Role.COORDINATOR, Role.ORGANISER))]
VolunteerUser = Annotated[User, Depends(require(Role.VOLUNTEER))]
MerchantUser = Annotated[User, Depends(require(Role.MERCHANT))]
