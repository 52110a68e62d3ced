"""Schedules as jobs: solve a week in the background, review, publish atomically; and "who could
take this occurrence" for a coordinator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import ColumnElement, and_, func, select

from api import calendar
from api.errors import Problem
from api.models import ScheduleRow, TaskRow, UnmetRow
from api.params import Id, IsoWeek, Key
from api.publishing import plan_changes, publish_schedule
from api.replanning import UPCOMING, pinned_week
from api.routers.weekly_jobs import (
    JobOut,
    PublishIn,
    WeekIn,
    cancel_job,
    get_job,
    job_view,
    list_jobs,
    queue_job,
)
from api.security import Coordinator, SessionDep
from matcher.domain import Day, format_hhmm

router = APIRouter(prefix="/v1", tags=["schedules"])


def task_view(t: TaskRow) -> dict[str, Any]:
    return {"id": t.id, "need_id": t.need_id, "day": t.day, "date": t.date.isoformat(),
            "start": format_hhmm(t.start), "end": format_hhmm(t.end),
            "volunteer_id": t.volunteer_id, "merchant_id": t.merchant_id,
            "walk_min": t.walk_min, "state": t.state,
            "state_label": calendar.state_label(t.state), "decline_reason": t.decline_reason,
            "at_risk": t.at_risk,
            "at_risk_since": t.at_risk_since.isoformat() if t.at_risk_since else None}


def _at_risk(schedule_id: int) -> ColumnElement[bool]:
    """Upcoming tasks of the schedule that an edit of the community put at risk."""
    return and_(TaskRow.schedule_id == schedule_id, TaskRow.at_risk.is_not(None),
                TaskRow.state.in_(UPCOMING))


@router.post("/schedules", status_code=202, response_model=JobOut,
             summary="Solve a week (returns a job to poll)")
def create_schedule(body: WeekIn, session: SessionDep, user: Coordinator,
                    request: Request) -> JobOut:
    return queue_job(session, ScheduleRow, body.week, user, request, "solve")


@router.get("/schedules", response_model=list[JobOut], summary="Schedules of a week")
def list_schedules(session: SessionDep, user: Coordinator,
                   week: Annotated[IsoWeek | None, Query()] = None) -> list[JobOut]:
    return list_jobs(session, ScheduleRow, week)


@router.get("/schedules/{schedule_id}", response_model=JobOut,
            summary="A schedule job: progress, then coverage, bound and unmet counts")
def read_schedule(schedule_id: Id, session: SessionDep, user: Coordinator) -> JobOut:
    view = job_view(get_job(session, ScheduleRow, schedule_id))
    if view.summary is not None:  # how many upcoming tasks an edit put at risk, live
        at_risk = session.scalar(select(func.count()).select_from(TaskRow)
                                 .where(_at_risk(schedule_id))) or 0
        view.summary = view.summary | {"at_risk": at_risk}
    return view


@router.get("/schedules/{schedule_id}/tasks", summary="Every assignment of a schedule")
def schedule_tasks(schedule_id: Id, session: SessionDep, user: Coordinator,
                   at_risk: Annotated[bool, Query(
                       description="only the upcoming tasks an edit put at risk")] = False
                   ) -> list[dict[str, Any]]:
    get_job(session, ScheduleRow, schedule_id)
    where = _at_risk(schedule_id) if at_risk else TaskRow.schedule_id == schedule_id
    rows = session.scalars(select(TaskRow).where(where)
                           .order_by(TaskRow.date, TaskRow.start, TaskRow.id))
    return [task_view(t) for t in rows]


@router.get("/schedules/{schedule_id}/unmet", summary="Uncovered occurrences with reasons")
def schedule_unmet(schedule_id: Id, session: SessionDep,
                   user: Coordinator) -> list[dict[str, Any]]:
    get_job(session, ScheduleRow, schedule_id)
    rows = session.scalars(select(UnmetRow).where(UnmetRow.schedule_id == schedule_id)
                           .order_by(UnmetRow.date, UnmetRow.need_id))
    return [{"need_id": u.need_id, "day": u.day, "date": u.date.isoformat(),
             "reason_code": u.reason_code, "reason": u.reason, "fix": u.fix} for u in rows]


@router.get("/schedules/{schedule_id}/changes",
            summary="What publishing this schedule would change: kept, moved, new, dropped")
def schedule_changes(schedule_id: Id, session: SessionDep, user: Coordinator,
                     request: Request) -> dict[str, Any]:
    """The published week compared with this plan as publishing would do it now; a
    non-empty ``conflicts`` means publishing is refused (re-solve)."""
    row = get_job(session, ScheduleRow, schedule_id)
    if row.status != "solved":
        raise Problem(409, f"schedule {schedule_id} is {row.status}; only a solved schedule "
                      "can be published")
    return plan_changes(session, request.app.state, row).view()


@router.post("/schedules/{schedule_id}/publish", response_model=JobOut,
             summary="Publish a solved schedule (atomic; with supersede, work under way kept)")
def publish(schedule_id: Id, body: PublishIn, session: SessionDep,
            user: Coordinator, request: Request) -> JobOut:
    row = get_job(session, ScheduleRow, schedule_id)
    publish_schedule(session, request.app.state, user, row, body.supersede)
    return job_view(row)


@router.post("/schedules/{schedule_id}/cancel", response_model=JobOut,
             summary="Cancel a solve (queued: at once; running: at its next progress report)")
def cancel_schedule(schedule_id: Id, session: SessionDep, user: Coordinator) -> JobOut:
    return cancel_job(session, ScheduleRow, schedule_id, user)


@router.get("/schedules/{schedule_id}/occurrences/{need_id}/{day}/candidates",
            summary="Who could take this occurrence (recommended fit)")
def candidates(schedule_id: Id, need_id: Key, day: Day, session: SessionDep,
               user: Coordinator, request: Request,
               replacing: Annotated[str | None, Query(
                   description="the volunteer to replace; default: everyone on it")] = None
               ) -> list[dict[str, Any]]:
    """Volunteers who satisfy every rule with the rest of the schedule pinned, best first; each
    says which of their tasks it would displace (none for a free fit)."""
    row = get_job(session, ScheduleRow, schedule_id)
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
