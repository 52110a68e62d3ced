"""Response models that several routers share (a job, a task of a schedule) and the requests
of the weekly jobs. Each has an example, so the OpenAPI document shows one for every route and
a generated client gets typed answers. Models only one router answers with live in it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api import calendar
from api.jobs import Job
from api.models import TaskRow
from api.params import IsoWeek
from matcher.domain import format_hhmm


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok",
                                                               "version": "0.1.0"}]})
    status: str
    version: str


class WeekIn(BaseModel):
    week: IsoWeek = Field(examples=["2026-W48"], description="ISO week to plan")


class PublishIn(BaseModel):
    supersede: bool = Field(False, description="replace the week's published result; without "
                            "it, publishing over a published week is refused (409)")


class JobOut(BaseModel):
    """A schedule or allocation job, as clients poll it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 3, "week": "2026-W48", "status": "solved", "attempts": 1,
        "cancel_requested": False, "progress": "done",
        "summary": {"occurrences": 867, "covered": 767, "at_risk": 0},
        "error": None, "created_at": "2026-11-20T02:00:00Z",
        "finished_at": "2026-11-20T02:02:13Z", "published_at": None}]})
    id: int
    week: str
    status: str = Field(description="queued, running, solved, failed, cancelled, published, "
                        "superseded (a running job asked to stop keeps running until its "
                        "worker sees the request, then is cancelled)")
    attempts: int = Field(0, description="how many times a worker took the job (a second "
                          "time only when the first worker stopped)")
    cancel_requested: bool = False
    progress: str
    summary: dict[str, Any] | None = Field(
        None, description="the solve's or allocation's summary (as summary.json), once done")
    error: str | None = None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    published_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: Job) -> JobOut:
        return cls(id=row.id, week=row.week, status=row.status, progress=row.progress,
                   summary=row.summary, error=row.error, created_at=row.created_at,
                   finished_at=row.finished_at, published_at=row.published_at,
                   attempts=row.attempts, cancel_requested=row.cancel_requested)


TASK_EXAMPLE: dict[str, Any] = {
    "id": 41, "need_id": "N0031", "day": "mon", "date": "2026-11-23", "start": "11:05",
    "end": "11:35", "volunteer_id": "V0007", "merchant_id": "M003", "walk_min": 9.4,
    "state": "offered", "state_label": "待接受", "decline_reason": None, "at_risk": None,
    "at_risk_since": None}


class TaskOut(BaseModel):
    """A task of a schedule: one volunteer on one occurrence of a need."""

    model_config = ConfigDict(json_schema_extra={"examples": [TASK_EXAMPLE]})
    id: int
    need_id: str
    day: str = Field(description="mon ... sun")
    date: dt.date
    start: str = Field(description="HH:MM, Asia/Shanghai")
    end: str
    volunteer_id: str
    merchant_id: str | None
    walk_min: float
    state: str = Field(description="proposed, offered, accepted, checked_in, completed, "
                       "confirmed, declined or cancelled")
    state_label: str = Field(description="the state in the caller's language, for showing")
    decline_reason: str | None
    at_risk: str | None = Field(description="the rule an edit of the community broke; null "
                                "when the task keeps every rule")
    at_risk_since: dt.datetime | None

    @classmethod
    def of(cls, t: TaskRow) -> TaskOut:
        return cls(id=t.id, need_id=t.need_id, day=t.day, date=t.date,
                   start=format_hhmm(t.start), end=format_hhmm(t.end),
                   volunteer_id=t.volunteer_id, merchant_id=t.merchant_id,
                   walk_min=t.walk_min, state=t.state, state_label=calendar.state_label(t.state),
                   decline_reason=t.decline_reason, at_risk=t.at_risk,
                   at_risk_since=t.at_risk_since)
