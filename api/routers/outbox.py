"""The outbox, for coordinators: what was sent to the webhook, what is waiting, and the dead
letters (events the receiver never took during the retry window), which can be redelivered."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api import outbox
from api.community import audit
from api.paging import Page
from api.params import Id, Limit, Offset
from api.security import Coordinator, SessionDep

router = APIRouter(prefix="/v1", tags=["outbox"])


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": 311, "recipient": "volunteer:V0007", "kind": "task.offered",
        "payload": {"task_id": 41, "need_id": "N0031", "date": "2026-11-23", "start": "11:05"},
        "status": "dead", "attempts": 31, "created_at": "2026-11-22T08:00:03Z",
        "delivered_at": None, "next_attempt_at": "2026-11-24T07:52:41Z",
        "failing_since": "2026-11-22T08:00:05Z",
        "last_error": "ConnectError: [Errno 111] Connection refused"}]})
    id: int
    recipient: str
    kind: str
    payload: dict[str, Any]
    status: outbox.Status
    attempts: int
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime
    failing_since: dt.datetime | None
    last_error: str | None


class Redelivered(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"redelivered": 3}]})
    redelivered: int


@router.get("/outbox", response_model=Page[EventOut], summary="Webhook events, newest first")
def list_events(session: SessionDep, user: Coordinator,
                status: Annotated[outbox.Status | None, Query(
                    description="pending (waiting or being retried), delivered, or dead "
                    "(given up; redeliver them)")] = None,
                limit: Limit = 100, offset: Offset = 0) -> Page[EventOut]:
    rows, total = outbox.events(session, status, limit, offset)
    return Page(items=[EventOut.model_validate(r) for r in rows], total=total, limit=limit,
                offset=offset)


@router.post("/outbox/redeliver", response_model=Redelivered,
             summary="Send every dead letter again")
def redeliver_all(session: SessionDep, user: Coordinator) -> Redelivered:
    count = outbox.redeliver_dead(session, outbox.utcnow())
    audit(session, user, "redeliver", "outbox:dead", f"{count} events")
    session.commit()
    return Redelivered(redelivered=count)


@router.post("/outbox/{event_id}/redeliver", response_model=EventOut,
             summary="Send one dead letter again")
def redeliver_one(event_id: Id, session: SessionDep, user: Coordinator) -> EventOut:
    event = outbox.redeliver(session, event_id, outbox.utcnow())
    audit(session, user, "redeliver", f"outbox:{event_id}")
    session.commit()
    return EventOut.model_validate(event)
