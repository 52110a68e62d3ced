"""Idempotent requests: a retry with the same ``Idempotency-Key`` gets the first answer back and
moves no points twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import Problem
from api.models import IdempotencyKey
from api.security import Caller


def idempotent(session: Session, user: Caller, key: str,
               work: Callable[[], tuple[int, dict[str, Any]]]) -> JSONResponse:
    """Run ``work`` once per ``(user, key)``; store and replay its answer."""
    scoped = f"{user.id}:{key}"
    stored = session.get(IdempotencyKey, scoped)
    if stored is not None:
        return JSONResponse(stored.response, status_code=stored.status_code)
    status, body = work()
    session.add(IdempotencyKey(key=scoped, user_id=user.id, status_code=status, response=body))
    try:
        session.commit()
    except IntegrityError as exc:
        # The same key raced in from another request and won: nothing of ours is kept.
        session.rollback()
        stored = session.get(IdempotencyKey, scoped)
        if stored is None:
            raise Problem(409, "conflicting concurrent request; retry") from exc
        return JSONResponse(stored.response, status_code=stored.status_code)
    return JSONResponse(body, status_code=status)
