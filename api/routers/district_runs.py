"""A street office's (or district's) week solved as one job: queue it, follow each community's
progress, cancel it (:mod:`api.district_runs` has the rules). Each community solved gets an
ordinary draft schedule, which its coordinator reviews and publishes at ``/v1/schedules``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api import district_runs
from api.errors import label
from api.models import DistrictRunRow
from api.paging import Page
from api.params import Id, IsoWeek, Limit, Offset
from api.security import Caller, Role, SessionDep, require

router = APIRouter(prefix="/v1", tags=["district"])

Admin = Annotated[Caller, Depends(require(Role.STREET_ADMIN, Role.DISTRICT_ADMIN))]


class DistrictRunIn(BaseModel):
    week: IsoWeek = Field(examples=["2026-W50"], description="ISO week to plan")
    time_limit_s: float | None = Field(
        None, gt=0, le=3600, description="each community's time limit (deterministic "
        "seconds); a group of k coupled communities gets k times it. Unset: the service's")


_ENTRY_EXAMPLE: dict[str, Any] = {
    "state": "solved", "state_label": "已完成，待发布", "name": "景田社区", "schedule_id": 12,
    "covered": 40, "occurrences": 44, "group": ["futian", "jingtian"], "error": None, "why": None}


class CommunityProgressOut(BaseModel):
    """One community of the run."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ENTRY_EXAMPLE]})
    state: str = Field(description="queued, solving, solved, failed or skipped")
    state_label: str = Field(description="the state in the caller's language, for showing")
    name: str = Field("", description="the community's name")
    schedule_id: int | None = Field(None, description="its draft schedule, once solved")
    covered: int | None = Field(None, description="visits the schedule covers")
    occurrences: int | None = Field(None, description="visits of its week")
    group: list[str] | None = Field(None, description="the communities solved together with "
                                    "it (they share volunteers or are within a walk)")
    error: str | None = Field(None, description="why it failed")
    why: str | None = Field(None, description="why it was skipped")

    @classmethod
    def of(cls, entry: dict[str, Any]) -> CommunityProgressOut:
        return cls(**{k: v for k, v in entry.items() if k in cls.model_fields},
                   state_label=label(str(entry.get("state", ""))))


class DistrictRunOut(BaseModel):
    """A district run, as clients poll it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 3, "week": "2026-W50", "status": "running", "attempts": 1,
        "cancel_requested": False, "progress": "1 of 2 groups done",
        "communities": {"jingtian": _ENTRY_EXAMPLE},
        "summary": None, "error": None, "created_at": "2026-12-06T12:00:00Z",
        "finished_at": None}]})
    id: int
    week: str
    status: str = Field(description="queued, running, solved (some communities may have "
                        "failed: see each), failed (none could be solved) or cancelled")
    attempts: int
    cancel_requested: bool
    progress: str
    communities: dict[str, CommunityProgressOut] = Field(description="by community code")
    summary: dict[str, Any] | None = Field(None, description="counts by state, once done")
    error: str | None = None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: DistrictRunRow) -> DistrictRunOut:
        return cls(id=row.id, week=row.week, status=row.status, attempts=row.attempts,
                   cancel_requested=row.cancel_requested, progress=row.progress,
                   communities={code: CommunityProgressOut.of(entry)
                                for code, entry in (row.communities or {}).items()},
                   summary=row.summary, error=row.error, created_at=row.created_at,
                   finished_at=row.finished_at)


@router.post("/district/schedules", status_code=202, response_model=DistrictRunOut,
             summary="Solve the week of every community of the street office or district")
def create_district_run(body: DistrictRunIn, session: SessionDep, user: Admin,
                        request: Request) -> DistrictRunOut:
    """A job to poll: every community of the caller's scope (no community header), each
    solved community's draft schedule stored for its coordinator."""
    return DistrictRunOut.of(district_runs.queue_run(session, request.app.state, user,
                                                     body.week, body.time_limit_s))


@router.get("/district/schedules", response_model=Page[DistrictRunOut],
            summary="District runs, newest first")
def list_district_runs(session: SessionDep, user: Admin,
                       week: Annotated[IsoWeek | None, Query()] = None,
                       limit: Limit = 100, offset: Offset = 0) -> Page[DistrictRunOut]:
    rows, total = district_runs.list_runs(session, user, week, limit, offset)
    return Page(items=[DistrictRunOut.of(r) for r in rows], total=total, limit=limit,
                offset=offset)


@router.get("/district/schedules/{run_id}", response_model=DistrictRunOut,
            summary="A district run: each community's progress")
def read_district_run(run_id: Id, session: SessionDep, user: Admin) -> DistrictRunOut:
    return DistrictRunOut.of(district_runs.get_run(session, user, run_id))


@router.post("/district/schedules/{run_id}/cancel", response_model=DistrictRunOut,
             summary="Cancel a queued or running district run")
def cancel_district_run(run_id: Id, session: SessionDep, user: Admin) -> DistrictRunOut:
    """The schedules it stored before it stops stay, as drafts of their communities."""
    return DistrictRunOut.of(district_runs.cancel_run(session, user, run_id))
