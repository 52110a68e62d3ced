"""The audit log, for coordinators: who read personal data or changed something, and when."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from api.models import AuditEntry
from api.paging import Page
from api.params import MAX_ID, Limit, Offset, UtcDateTime
from api.security import Coordinator, SessionDep

router = APIRouter(prefix="/v1", tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": 812, "at": "2026-11-24T02:15:09Z", "user_id": 17, "action": "read",
        "target": "tasks:V0007", "detail": "2026-W48"}]})
    id: int
    at: dt.datetime
    user_id: int | None
    action: str
    target: str
    detail: str


@router.get("/audit", response_model=Page[AuditOut], summary="The audit log, newest first")
def audit_log(session: SessionDep, user: Coordinator,
              user_id: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                                    description="one account's entries")] = None,
              action: Annotated[str | None, Query(examples=["read"])] = None,
              target: Annotated[str | None, Query(
                  description="exact target, or a prefix ending in ':' (e.g. 'task:')")] = None,
              since: Annotated[UtcDateTime | None, Query(description="from this time on")]
              = None,
              limit: Limit = 100,
              offset: Offset = 0) -> Page[AuditOut]:
    # Reading the log is not itself logged: it holds who-did-what, not residents' details.
    query = select(AuditEntry)
    if user_id is not None:
        query = query.where(AuditEntry.user_id == user_id)
    if action:
        query = query.where(AuditEntry.action == action)
    if target:
        query = query.where(AuditEntry.target.startswith(target, autoescape=True)
                            if target.endswith(":") else AuditEntry.target == target)
    if since:
        query = query.where(AuditEntry.at >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return Page(items=[AuditOut.model_validate(r) for r in rows], total=total, limit=limit,
                offset=offset)
