"""Schedules as jobs: solve a week in the background, review, publish atomically; and "who could
take this occurrence" for a coordinator. The rules are in :mod:`api.scheduling` and
:mod:`api.weekly`; routes authorise, call them and answer."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api import scheduling
from api.models import ScheduleRow, UnmetRow
from api.paging import Page, page_of
from api.params import Id, IsoWeek, Key, Limit, Offset
from api.schemas import JobOut, PublishIn, TaskOut, WeekIn
from api.security import Coordinator, SessionDep
from api.weekly import cancel_job, list_jobs, queue_job
from matcher.domain import Day, format_hhmm

router = APIRouter(prefix="/v1", tags=["schedules"])
VolunteerFilter = Annotated[str | None, Query(min_length=1, max_length=64,
                                              description="only this volunteer's tasks")]
DayFilter = Annotated[Day | None, Query(description="only this day of the week (mon ... sun)")]


class UnmetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "need_id": "N0007", "day": "wed", "date": "2026-11-25",
        "reason_code": "no_available_volunteer",
        "reason": "附近有 5 位能做的志愿者，但周三 13:30-17:00 没有人有空",
        "fix": "如果 V0017 周三 13:30-17:00 也有空，就能安排"}]})
    need_id: str
    day: str
    date: dt.date
    reason_code: str = Field(description="a stable code for programs (see the README)")
    reason: str
    fix: str

    @classmethod
    def of(cls, row: UnmetRow) -> UnmetOut:
        return cls.model_validate(row)


CHANGED_EXAMPLE: dict[str, Any] = {
    "task_id": 41, "need_id": "N0031", "day": "mon", "date": "2026-11-23", "start": "11:05",
    "end": "11:35", "volunteer_id": "V0007", "merchant_id": "M003", "state": "offered"}


class ChangedTask(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [CHANGED_EXAMPLE]})
    task_id: int
    need_id: str
    day: str
    date: dt.date
    start: str
    end: str
    volunteer_id: str
    merchant_id: str | None
    state: str


class MovedTask(ChangedTask):
    to_start: str
    to_end: str
    to_merchant_id: str | None


class ConflictTask(ChangedTask):
    problem: str


class ChangesOut(BaseModel):
    """What publishing would do to the published week; non-empty ``conflicts``: re-solve."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kept": [CHANGED_EXAMPLE],
        "moved": [], "new": [], "dropped": [], "conflicts": []}]})
    kept: list[ChangedTask]
    moved: list[MovedTask]
    new: list[ChangedTask]
    dropped: list[ChangedTask]
    conflicts: list[ConflictTask]


class DisplacedOut(BaseModel):
    need_id: str
    day: str


class CandidateOut(BaseModel):
    """A volunteer who could take the occurrence, and what they would give up for it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "volunteer_id": "V0017", "start": "13:30", "merchant_id": None, "walk_min": 6.2,
        "displaces": [{"need_id": "N0102", "day": "wed"}]}]})
    volunteer_id: str
    start: str
    merchant_id: str | None
    walk_min: float
    displaces: list[DisplacedOut] = Field(description="empty: a free fit")


@router.post("/schedules", status_code=202, response_model=JobOut,
             summary="Solve a week (returns a job to poll)")
def create_schedule(body: WeekIn, session: SessionDep, user: Coordinator,
                    request: Request) -> JobOut:
    return JobOut.of(queue_job(session, request.app.state, ScheduleRow, body.week, user,
                               "solve"))


@router.get("/schedules", response_model=Page[JobOut], summary="Schedules, newest first")
def list_schedules(session: SessionDep, user: Coordinator,
                   week: Annotated[IsoWeek | None, Query()] = None,
                   limit: Limit = 100, offset: Offset = 0) -> Page[JobOut]:
    rows, total = list_jobs(session, ScheduleRow, week, limit, offset)
    return Page(items=[JobOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/schedules/{schedule_id}", response_model=JobOut,
            summary="A schedule job: progress, then coverage, bound and unmet counts")
def read_schedule(schedule_id: Id, session: SessionDep, user: Coordinator) -> JobOut:
    return JobOut.of(scheduling.schedule(session, schedule_id))


@router.get("/schedules/{schedule_id}/tasks", response_model=Page[TaskOut],
            summary="The assignments of a schedule, in time order")
def schedule_tasks(schedule_id: Id, session: SessionDep, user: Coordinator,
                   at_risk: Annotated[bool, Query(
                       description="only the upcoming tasks an edit put at risk")] = False,
                   volunteer_id: VolunteerFilter = None, day: DayFilter = None,
                   limit: Limit = 100, offset: Offset = 0) -> Page[TaskOut]:
    rows, total = scheduling.tasks(session, schedule_id, at_risk=at_risk,
                                   volunteer_id=volunteer_id, day=day, limit=limit,
                                   offset=offset)
    return Page(items=[TaskOut.of(t) for t in rows], total=total, limit=limit, offset=offset)


@router.get("/schedules/{schedule_id}/unmet", response_model=Page[UnmetOut],
            summary="Uncovered occurrences with reasons, by date")
def schedule_unmet(schedule_id: Id, session: SessionDep, user: Coordinator,
                   day: DayFilter = None,
                   reason_code: Annotated[str | None, Query(
                       max_length=64, examples=["no_available_volunteer"])] = None,
                   limit: Limit = 100, offset: Offset = 0) -> Page[UnmetOut]:
    rows, total = scheduling.unmet(session, schedule_id, day=day, reason_code=reason_code,
                                   limit=limit, offset=offset)
    return Page(items=[UnmetOut.of(u) for u in rows], total=total, limit=limit, offset=offset)


@router.get("/schedules/{schedule_id}/changes", response_model=ChangesOut,
            summary="What publishing this schedule would change: kept, moved, new, dropped")
def schedule_changes(schedule_id: Id, session: SessionDep, user: Coordinator,
                     request: Request) -> ChangesOut:
    """The published week compared with this plan as publishing would do it now; a
    non-empty ``conflicts`` means publishing is refused (re-solve)."""
    changes = scheduling.changes(session, request.app.state, schedule_id)
    return ChangesOut.model_validate(changes.view())


@router.post("/schedules/{schedule_id}/publish", response_model=JobOut,
             summary="Publish a solved schedule (atomic; with supersede, work under way kept)")
def publish(schedule_id: Id, body: PublishIn, session: SessionDep,
            user: Coordinator, request: Request) -> JobOut:
    return JobOut.of(scheduling.publish(session, request.app.state, user, schedule_id,
                                        body.supersede))


@router.post("/schedules/{schedule_id}/cancel", response_model=JobOut,
             summary="Cancel a solve (queued: at once; running: at its next progress report)")
def cancel_schedule(schedule_id: Id, session: SessionDep, user: Coordinator) -> JobOut:
    return JobOut.of(cancel_job(session, ScheduleRow, schedule_id, user))


@router.get("/schedules/{schedule_id}/occurrences/{need_id}/{day}/candidates",
            response_model=Page[CandidateOut],
            summary="Who could take this occurrence (recommended fit), best first")
def candidates(schedule_id: Id, need_id: Key, day: Day, session: SessionDep,
               user: Coordinator, request: Request,
               replacing: Annotated[str | None, Query(
                   description="the volunteer to replace; default: everyone on it")] = None,
               limit: Limit = 20, offset: Offset = 0) -> Page[CandidateOut]:
    """Volunteers who satisfy every rule with the rest of the schedule pinned, best first; each
    says which of their tasks it would displace (none for a free fit)."""
    fits = scheduling.candidates(session, request.app.state, schedule_id, need_id, day,
                                 replacing)
    return page_of([CandidateOut(
        volunteer_id=f.volunteer_id, start=format_hhmm(f.start), merchant_id=f.merchant_id,
        walk_min=f.walk_min, displaces=[DisplacedOut(need_id=n, day=d.value)
                                        for n, d in f.displaces]) for f in fits],
        limit, offset)


