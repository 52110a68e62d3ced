"""Schedules as jobs: solve a week in the background, review, publish atomically; and "who could
take this occurrence" for a coordinator."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.community import audit, notify
from api.errors import Problem
from api.models import ScheduleRow, TaskRow, UnmetRow
from api.replanning import pinned_week
from api.security import Coordinator, SessionDep
from matcher.domain import Day, Week, format_hhmm

router = APIRouter(prefix="/v1", tags=["schedules"])


class ScheduleIn(BaseModel):
    week: str = Field(examples=["2026-W48"], description="ISO week to plan")

    @field_validator("week")
    @classmethod
    def _iso_week(cls, value: str) -> str:
        return str(Week.parse(value))


class ScheduleOut(BaseModel):
    id: int
    week: str
    status: str = Field(description="queued, running, solved, failed, published, superseded")
    progress: str
    summary: dict[str, Any] | None = None
    error: str | None = None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    published_at: dt.datetime | None = None


class PublishIn(BaseModel):
    supersede: bool = Field(False, description="replace the week's published schedule; without "
                            "it, publishing over a published week is refused (409)")


def schedule_view(row: ScheduleRow) -> ScheduleOut:
    return ScheduleOut(id=row.id, week=row.week, status=row.status, progress=row.progress,
                       summary=row.summary, error=row.error, created_at=row.created_at,
                       finished_at=row.finished_at, published_at=row.published_at)


def task_view(t: TaskRow) -> dict[str, Any]:
    return {"id": t.id, "need_id": t.need_id, "day": t.day, "date": t.date.isoformat(),
            "start": format_hhmm(t.start), "end": format_hhmm(t.end),
            "volunteer_id": t.volunteer_id, "merchant_id": t.merchant_id,
            "walk_min": t.walk_min, "state": t.state, "decline_reason": t.decline_reason}


def _schedule(session: Any, schedule_id: int) -> ScheduleRow:
    row = session.get(ScheduleRow, schedule_id)
    if row is None:
        raise Problem(404, f"no schedule {schedule_id}")
    assert isinstance(row, ScheduleRow)
    return row


@router.post("/schedules", status_code=202, response_model=ScheduleOut,
             summary="Solve a week (returns a job to poll)")
def create_schedule(body: ScheduleIn, session: SessionDep, user: Coordinator,
                    request: Request) -> ScheduleOut:
    row = ScheduleRow(week=body.week, status="queued", progress="queued", created_by=user.id)
    session.add(row)
    audit(session, user, "solve", f"week:{body.week}")
    session.commit()
    request.app.state.worker.submit(row.id)
    return schedule_view(row)


@router.get("/schedules", response_model=list[ScheduleOut], summary="Schedules of a week")
def list_schedules(session: SessionDep, user: Coordinator,
                   week: str | None = None) -> list[ScheduleOut]:
    query = select(ScheduleRow).order_by(ScheduleRow.id.desc())
    if week:
        query = query.where(ScheduleRow.week == str(Week.parse(week)))
    return [schedule_view(r) for r in session.scalars(query.limit(100))]


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut,
            summary="A schedule job: progress, then coverage, bound and unmet counts")
def read_schedule(schedule_id: int, session: SessionDep, user: Coordinator) -> ScheduleOut:
    return schedule_view(_schedule(session, schedule_id))


@router.get("/schedules/{schedule_id}/tasks", summary="Every assignment of a schedule")
def schedule_tasks(schedule_id: int, session: SessionDep,
                   user: Coordinator) -> list[dict[str, Any]]:
    _schedule(session, schedule_id)
    rows = session.scalars(select(TaskRow).where(TaskRow.schedule_id == schedule_id)
                           .order_by(TaskRow.date, TaskRow.start, TaskRow.id))
    return [task_view(t) for t in rows]


@router.get("/schedules/{schedule_id}/unmet", summary="Uncovered occurrences with reasons")
def schedule_unmet(schedule_id: int, session: SessionDep,
                   user: Coordinator) -> list[dict[str, Any]]:
    _schedule(session, schedule_id)
    rows = session.scalars(select(UnmetRow).where(UnmetRow.schedule_id == schedule_id)
                           .order_by(UnmetRow.date, UnmetRow.need_id))
    return [{"need_id": u.need_id, "day": u.day, "date": u.date.isoformat(),
             "reason_code": u.reason_code, "reason": u.reason, "fix": u.fix} for u in rows]


@router.post("/schedules/{schedule_id}/publish", response_model=ScheduleOut,
             summary="Publish a solved schedule (atomic)")
def publish(schedule_id: int, body: PublishIn, session: SessionDep,
            user: Coordinator) -> ScheduleOut:
    row = _schedule(session, schedule_id)
    if row.status != "solved":
        raise Problem(409, f"schedule {schedule_id} is {row.status}; only a solved schedule "
                      "can be published")
    current = session.scalars(select(ScheduleRow).where(
        ScheduleRow.week == row.week, ScheduleRow.status == "published")).one_or_none()
    if current is not None:
        if not body.supersede:
            raise Problem(409, f"week {row.week} already has published schedule {current.id}; "
                          "publish with supersede=true to replace it")
        current.status = "superseded"
        for task in session.scalars(select(TaskRow).where(TaskRow.schedule_id == current.id,
                                                          TaskRow.state != "declined")):
            if task.state in ("offered", "accepted"):
                notify(session, f"volunteer:{task.volunteer_id}", "task.cancelled",
                       {"task_id": task.id, "need_id": task.need_id, "date": str(task.date)})
                task.state = "cancelled"
        session.flush()
    row.status = "published"
    row.published_at = dt.datetime.now(dt.UTC)
    tasks = session.scalars(select(TaskRow).where(TaskRow.schedule_id == schedule_id)).all()
    for task in tasks:
        task.state = "offered"
        notify(session, f"volunteer:{task.volunteer_id}", "task.offered",
               {"task_id": task.id, "need_id": task.need_id, "date": str(task.date),
                "start": format_hhmm(task.start)})
        if task.merchant_id:
            notify(session, f"merchant:{task.merchant_id}", "order.scheduled",
                   {"task_id": task.id, "need_id": task.need_id, "date": str(task.date),
                    "start": format_hhmm(task.start)})
    audit(session, user, "publish", f"schedule:{schedule_id}", f"{len(tasks)} tasks")
    try:
        session.commit()  # everything above, or nothing
    except IntegrityError as exc:  # another publish of this week won the race
        session.rollback()
        raise Problem(409, f"week {row.week} was published by someone else meanwhile") from exc
    return schedule_view(row)


@router.get("/schedules/{schedule_id}/occurrences/{need_id}/{day}/candidates",
            summary="Who could take this occurrence (recommended fit)")
def candidates(schedule_id: int, need_id: str, day: Day, session: SessionDep,
               user: Coordinator, request: Request,
               replacing: Annotated[str | None, Query(
                   description="the volunteer to replace; default: everyone on it")] = None
               ) -> list[dict[str, Any]]:
    """Volunteers who satisfy every rule with the rest of the schedule pinned, best first; each
    says which of their tasks it would displace (none for a free fit)."""
    row = _schedule(session, schedule_id)
    week = pinned_week(session, request.app.state, row)
    on_it = set(session.scalars(select(TaskRow.volunteer_id).where(
        TaskRow.schedule_id == schedule_id, TaskRow.need_id == need_id,
        TaskRow.day == day.value)))
    try:
        fits = week.recommend(need_id, day, exclude={replacing} if replacing else on_it)
    except KeyError as exc:
        raise Problem(404, f"{need_id} has no occurrence on {day.value}") from exc
    return [{"volunteer_id": f.volunteer_id, "start": format_hhmm(f.start),
             "merchant_id": f.merchant_id, "walk_min": f.walk_min,
             "displaces": [{"need_id": n, "day": d.value} for n, d in f.displaces]}
            for f in fits]
