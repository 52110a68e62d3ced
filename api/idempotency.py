"""Idempotent requests: a retry with the same ``Idempotency-Key`` gets the first answer back and
moves no points twice.

A key is scoped by the user, the method and the route template, and stored with a fingerprint
of the request (method, route, path parameters, canonical body): the same key sent again with
a different request is a client error (422), not a replay of someone else's answer, as in the
IETF Idempotency-Key draft and Stripe's API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import Problem
from api.models import IdempotencyKey
from api.security import Caller
from matcher.i18n import _


def route_template(request: Request) -> str:
    """The matched route's path template (``/v1/redemptions/{redemption_id}/confirm``)."""
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def fingerprint(request: Request, body: BaseModel | None) -> str:
    """A digest of what makes two requests the same request."""
    canonical = json.dumps({
        "method": request.method, "route": route_template(request),
        "path": {k: str(v) for k, v in request.path_params.items()},
        "body": body.model_dump(mode="json") if body is not None else None,
    }, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(stored: IdempotencyKey, digest: str, key: str) -> JSONResponse:
    if stored.fingerprint != digest:
        raise Problem(422, _("Idempotency-Key {key} was already used for a different request "
                             "to this operation; use a new key for a new request").format(
            key=repr(key)), code="idempotency_key_reused",
                      errors=[{"path": ["header", "idempotency-key"],
                               "message": "reused with a different request"}])
    return JSONResponse(stored.response, status_code=stored.status_code)


def idempotent(session: Session, user: Caller, request: Request, key: str,
               work: Callable[[], tuple[int, dict[str, Any]]],
               body: BaseModel | None = None) -> JSONResponse:
    """Run ``work`` once per ``(user, method, route, key)``; store and replay its answer."""
    scope = (user.id, request.method, route_template(request), key)
    digest = fingerprint(request, body)
    stored = session.get(IdempotencyKey, scope)
    if stored is not None:
        return _replay(stored, digest, key)
    status, answer = work()
    session.add(IdempotencyKey(user_id=user.id, method=scope[1], route=scope[2], key=key,
                               fingerprint=digest, status_code=status, response=answer))
    try:
        session.commit()
    except IntegrityError as exc:
        # The same key raced in from another request and won: nothing of ours is kept.
        session.rollback()
        stored = session.get(IdempotencyKey, scope)
        if stored is None:
            raise Problem(409, _("conflicting concurrent request; retry"),
                          code="concurrent_change") from exc
        return _replay(stored, digest, key)
    return JSONResponse(answer, status_code=status)
