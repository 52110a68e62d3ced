"""Schedules as jobs: solve a week in the background, review, publish atomically; and "who could
take this occurrence" for a coordinator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from api.community import audit, notify
from api.errors import Problem
from api.models import ScheduleRow, TaskRow, UnmetRow
from api.params import Id, IsoWeek, Key
from api.replanning import pinned_week
from api.routers.weekly_jobs import (
    JobOut,
    PublishIn,
    WeekIn,
    commit_published,
    get_job,
    job_view,
    list_jobs,
    mark_published,
    queue_job,
)
from api.security import Coordinator, SessionDep
from matcher.domain import Day, format_hhmm

router = APIRouter(prefix="/v1", tags=["schedules"])


def task_view(t: TaskRow) -> dict[str, Any]:
    return {"id": t.id, "need_id": t.need_id, "day": t.day, "date": t.date.isoformat(),
            "start": format_hhmm(t.start), "end": format_hhmm(t.end),
            "volunteer_id": t.volunteer_id, "merchant_id": t.merchant_id,
            "walk_min": t.walk_min, "state": t.state, "decline_reason": t.decline_reason}


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
    return job_view(get_job(session, ScheduleRow, schedule_id))


@router.get("/schedules/{schedule_id}/tasks", summary="Every assignment of a schedule")
def schedule_tasks(schedule_id: Id, session: SessionDep,
                   user: Coordinator) -> list[dict[str, Any]]:
    get_job(session, ScheduleRow, schedule_id)
    rows = session.scalars(select(TaskRow).where(TaskRow.schedule_id == schedule_id)
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


@router.post("/schedules/{schedule_id}/publish", response_model=JobOut,
             summary="Publish a solved schedule (atomic)")
def publish(schedule_id: Id, body: PublishIn, session: SessionDep,
            user: Coordinator) -> JobOut:
    row = get_job(session, ScheduleRow, schedule_id)
    current = mark_published(session, ScheduleRow, row, body.supersede)
    if current is not None:
        for task in session.scalars(select(TaskRow).where(TaskRow.schedule_id == current.id,
                                                          TaskRow.state != "declined")):
            if task.state in ("offered", "accepted"):
                notify(session, f"volunteer:{task.volunteer_id}", "task.cancelled",
                       {"task_id": task.id, "need_id": task.need_id, "date": str(task.date)})
                task.state = "cancelled"
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
    commit_published(session, row)
    return job_view(row)


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
