"""A volunteer's week: my tasks, accept, decline (re-planned at once), check in, complete; the
coordinator confirms completed work, which credits points; a private calendar feed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from icalendar import Calendar, Event
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.community import TZ, audit, coarse, masked, notify, today
from api.errors import Problem
from api.idempotency import idempotent
from api.models import NeedRow, ScheduleRow, TaskRow, User
from api.replanning import STANDING, UPCOMING, pinned_week, published_tasks
from api.routers.schedules import task_view
from api.security import Coordinator, SessionDep, SettingsDep, VolunteerUser
from matcher.domain import Day, Week, format_hhmm

router = APIRouter(prefix="/v1", tags=["volunteers' tasks"])


class DeclineIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500, examples=["孩子生病，这周来不了"])


def _in_its_week(task: TaskRow) -> bool:
    """Privacy rule: exact details only during the task's ISO week (Asia/Shanghai)."""
    monday = task.date - dt.timedelta(days=task.date.weekday())
    return monday <= today() <= monday + dt.timedelta(days=6)


def my_task_view(task: TaskRow, need: NeedRow) -> dict[str, Any]:
    exact = _in_its_week(task) and task.state in UPCOMING
    return task_view(task) | {
        "service": need.service, "priority": need.priority,
        "beneficiary": need.beneficiary if exact else masked(need.beneficiary),
        "phone": need.phone if exact else "",
        "address": need.address if exact else "",
        "lat": need.lat if exact else coarse(need.lat),
        "lon": need.lon if exact else coarse(need.lon),
        "details_visible": exact,
    }


class MyTask(BaseModel):
    """One of my tasks; the beneficiary's details only while the task is due this week."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 41, "need_id": "N0031", "day": "mon", "date": "2026-11-23", "start": "11:05",
        "end": "11:35", "volunteer_id": "V0007", "merchant_id": "M003", "walk_min": 9.4,
        "state": "offered", "decline_reason": None, "service": "meal_delivery",
        "priority": "yellow", "beneficiary": "张奶奶", "phone": "13800000000",
        "address": "香蜜湖街道 3 栋 502", "lat": 22.5352, "lon": 114.0183,
        "details_visible": True}]})
    id: int
    need_id: str
    day: str
    date: str
    start: str
    end: str
    volunteer_id: str
    merchant_id: str | None
    walk_min: float
    state: str
    decline_reason: str | None
    service: str
    priority: str
    beneficiary: str
    phone: str
    address: str
    lat: float
    lon: float
    details_visible: bool


@router.get("/me/tasks", summary="My tasks in a published week")
def my_tasks(session: SessionDep, user: VolunteerUser,
             week: Annotated[str | None, Query(description="ISO week, default this week")]
             = None
             ) -> list[MyTask]:
    # A declared model lets FastAPI serialise in pydantic-core: the hot path of the app.
    iso = str(Week.parse(week)) if week else str(Week.containing(today()))
    rows = session.execute(published_tasks(
        ScheduleRow.week == iso, TaskRow.volunteer_id == user.volunteer_id,
        TaskRow.state.in_(STANDING)).order_by(TaskRow.date, TaskRow.start)).all()
    out = [MyTask(**my_task_view(t, n)) for t, n in rows]
    if any(t.details_visible for t in out):
        audit(session, user, "read", f"tasks:{user.volunteer_id}", iso)
        session.commit()
    return out


def _my_task(session: Any, user: User, task_id: int) -> TaskRow:
    task = session.get(TaskRow, task_id)
    if task is None or task.volunteer_id != user.volunteer_id:
        raise Problem(404, f"you have no task {task_id}")
    schedule = session.get(ScheduleRow, task.schedule_id)
    if schedule.status != "published":
        raise Problem(409, f"task {task_id} belongs to a schedule that is {schedule.status}")
    assert isinstance(task, TaskRow)
    return task


def _move(session: Any, user: User, task_id: int, allowed: tuple[str, ...],
          target: str) -> TaskRow:
    task = _my_task(session, user, task_id)
    if task.state not in allowed:
        raise Problem(409, f"task {task_id} is {task.state}; cannot become {target}")
    task.state = target
    audit(session, user, target, f"task:{task_id}")
    return task


@router.post("/me/tasks/{task_id}/accept", summary="Accept an offered task")
def accept(task_id: int, session: SessionDep, user: VolunteerUser) -> dict[str, Any]:
    task = _move(session, user, task_id, ("offered",), "accepted")
    session.commit()
    return task_view(task)


@router.post("/me/tasks/{task_id}/check-in", summary="Arrived at the task")
def check_in(task_id: int, session: SessionDep, user: VolunteerUser) -> dict[str, Any]:
    task = _move(session, user, task_id, ("accepted",), "checked_in")
    session.commit()
    return task_view(task)


@router.post("/me/tasks/{task_id}/complete", summary="Done (a coordinator confirms it)")
def complete(task_id: int, session: SessionDep, user: VolunteerUser) -> dict[str, Any]:
    task = _move(session, user, task_id, ("checked_in",), "completed")
    notify(session, "coordinators", "task.completed", {"task_id": task.id})
    session.commit()
    return task_view(task)


@router.post("/me/tasks/{task_id}/decline",
             summary="Decline a task: the occurrence is re-planned with the rest pinned")
def decline(task_id: int, body: DeclineIn, session: SessionDep, user: VolunteerUser,
            request: Request) -> dict[str, Any]:
    """Only what the decline touched changes: the freed place goes to the best volunteer who is
    free under every rule, and the change is offered to them. If nobody is, coordinators are
    told and the occurrence shows in ``replacement: null``."""
    task = _move(session, user, task_id, ("offered", "accepted"), "declined")
    task.decline_reason = body.reason
    schedule = session.get(ScheduleRow, task.schedule_id)
    session.flush()
    declined_before = set(session.scalars(select(TaskRow.volunteer_id).where(
        TaskRow.schedule_id == task.schedule_id, TaskRow.need_id == task.need_id,
        TaskRow.day == task.day, TaskRow.state == "declined")))
    week = pinned_week(session, request.app.state, schedule)
    fits = [f for f in week.recommend(task.need_id, Day(task.day), exclude=declined_before)
            if not f.displaces]
    replacement = None
    if fits:
        fit = fits[0]
        need = session.get(NeedRow, task.need_id)
        replacement = TaskRow(schedule_id=task.schedule_id, need_id=task.need_id, day=task.day,
                              date=task.date, start=fit.start,
                              end=fit.start + need.duration_min, volunteer_id=fit.volunteer_id,
                              merchant_id=fit.merchant_id, walk_min=fit.walk_min,
                              state="offered")
        session.add(replacement)
        session.flush()
        notify(session, f"volunteer:{fit.volunteer_id}", "task.offered",
               {"task_id": replacement.id, "need_id": task.need_id, "date": str(task.date),
                "start": format_hhmm(fit.start), "replaces": task.id})
    else:
        notify(session, "coordinators", "occurrence.uncovered",
               {"need_id": task.need_id, "day": task.day, "declined_task": task.id})
    session.commit()
    return {"declined": task_view(task),
            "replacement": task_view(replacement) if replacement else None}


@router.post("/tasks/{task_id}/confirm", summary="Confirm completed work and credit points")
def confirm(task_id: int, session: SessionDep, user: Coordinator, settings: SettingsDep,
            idempotency_key: Annotated[str, Header(min_length=8, max_length=128)]
            ) -> dict[str, Any]:
    def work() -> tuple[int, dict[str, Any]]:
        from api.ledger import ISSUER, transfer

        task = session.get(TaskRow, task_id)
        if task is None:
            raise Problem(404, f"no task {task_id}")
        if task.state != "completed":
            raise Problem(409, f"task {task_id} is {task.state}; only completed work is "
                          "confirmed")
        task.state = "confirmed"
        points = (task.end - task.start) * settings.points_per_minute
        transfer(session, ISSUER, ("volunteer", task.volunteer_id), points,
                 f"task {task_id} {task.need_id} {task.date}")
        notify(session, f"volunteer:{task.volunteer_id}", "points.credited",
               {"task_id": task_id, "points": points})
        audit(session, user, "confirm", f"task:{task_id}", f"{points} points")
        return 200, task_view(task) | {"points": points}

    return idempotent(session, user, idempotency_key, work)


@router.get("/calendar/{token}.ics", tags=["volunteers' tasks"],
            summary="A volunteer's private calendar feed (the link is the secret)")
def calendar_feed(token: str, session: SessionDep) -> Response:
    user = session.scalars(select(User).filter_by(calendar_token=token)).one_or_none()
    if user is None or user.volunteer_id is None:
        raise Problem(404, "no such calendar")
    rows = session.execute(published_tasks(
        TaskRow.volunteer_id == user.volunteer_id, TaskRow.state.in_(UPCOMING))).all()
    cal = Calendar()
    cal.add("prodid", "-//Linli//tasks//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"邻里志愿服务 {user.volunteer_id}")
    for task, need in rows:
        view = my_task_view(task, need)
        event = Event()
        event.add("uid", f"task-{task.id}@linli")
        event.add("summary", f"{need.service} · {view['beneficiary']}")
        midnight = dt.datetime.combine(task.date, dt.time(0, 0), TZ)
        event.add("dtstart", midnight + dt.timedelta(minutes=task.start))
        event.add("dtend", midnight + dt.timedelta(minutes=task.end))
        event.add("dtstamp", dt.datetime.now(dt.UTC))
        event.add("location", view["address"] or f"{view['lat']},{view['lon']}")
        cal.add_component(event)
    return Response(bytes(cal.to_ical()), media_type="text/calendar")
