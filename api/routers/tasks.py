"""A volunteer's week: my tasks, accept, decline (re-planned at once), check in, complete; the
coordinator confirms completed work, which credits points; a private calendar feed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from icalendar import Calendar, Event
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BindParameter, ColumnElement, Row, Select, bindparam, insert, select

from api.community import TZ, audit, audit_entry, coarse, masked, notify, today
from api.errors import Problem
from api.idempotency import idempotent
from api.models import AuditEntry, NeedRow, ScheduleRow, TaskRow, User
from api.params import Id, IsoWeek
from api.replanning import STANDING, UPCOMING, pinned_week
from api.routers.schedules import task_view
from api.security import Caller, ConnectionDep, Coordinator, SessionDep, SettingsDep, VolunteerUser
from matcher.domain import Day, Week, format_hhmm

router = APIRouter(prefix="/v1", tags=["volunteers' tasks"])


class DeclineIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500, examples=["孩子生病，这周来不了"])


def _in_its_week(date: dt.date) -> bool:
    """Privacy rule: exact details only during the task's ISO week (Asia/Shanghai)."""
    monday = date - dt.timedelta(days=date.weekday())
    return monday <= today() <= monday + dt.timedelta(days=6)


# What a volunteer's own task shows: plain columns (not ORM objects), as this is the hot path.
MY_TASK_COLUMNS = (
    TaskRow.id, TaskRow.need_id, TaskRow.day, TaskRow.date, TaskRow.start, TaskRow.end,
    TaskRow.volunteer_id, TaskRow.merchant_id, TaskRow.walk_min, TaskRow.state,
    TaskRow.decline_reason, NeedRow.service, NeedRow.priority, NeedRow.beneficiary, NeedRow.phone,
    NeedRow.address, NeedRow.lat, NeedRow.lon)


def my_tasks_query(volunteer_id: str | BindParameter[str], *where: ColumnElement[bool]
                   ) -> Select[*tuple[Any, ...]]:
    """One volunteer's tasks in published schedules, in time order."""
    return (select(*MY_TASK_COLUMNS)
            .join_from(TaskRow, NeedRow, NeedRow.need_id == TaskRow.need_id)
            .join(ScheduleRow, ScheduleRow.id == TaskRow.schedule_id)
            .where(ScheduleRow.status == "published", TaskRow.volunteer_id == volunteer_id,
                   *where)
            .order_by(TaskRow.date, TaskRow.start))


# Built once: composing a statement costs more than running it on the hot path.
MY_WEEK = my_tasks_query(bindparam("volunteer_id"), ScheduleRow.week == bindparam("week"),
                         TaskRow.state.in_(STANDING))
AUDIT_INSERT = insert(AuditEntry)


def my_task_view(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    """A row of :func:`my_tasks_query` as its volunteer may see it."""
    view = row._asdict()
    exact = _in_its_week(row.date) and row.state in UPCOMING
    view.update(date=row.date.isoformat(), start=format_hhmm(row.start),
                end=format_hhmm(row.end), details_visible=exact)
    if not exact:
        view.update(beneficiary=masked(row.beneficiary), phone="", address="",
                    lat=coarse(row.lat), lon=coarse(row.lon))
    return view


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


@router.get("/me/tasks", summary="My tasks in a published week", response_model=list[MyTask])
async def my_tasks(connection: ConnectionDep, user: VolunteerUser,
                   week: Annotated[IsoWeek | None, Query(description="ISO week, default this week")]
                   = None
                   ) -> list[dict[str, Any]]:
    # The hot path of the app: async end to end (no thread hand-offs); FastAPI validates and
    # serialises the views against the declared model once, in pydantic-core.
    iso = week or str(Week.containing(today()))
    assert user.volunteer_id is not None  # a volunteer account always has one
    rows = await connection.execute(MY_WEEK, {"volunteer_id": user.volunteer_id, "week": iso})
    out = [my_task_view(row) for row in rows]
    if any(view["details_visible"] for view in out):
        await connection.execute(AUDIT_INSERT, [audit_entry(
            user, "read", f"tasks:{user.volunteer_id}", iso)])
    return out


def _my_task(session: Any, user: Caller, task_id: int) -> TaskRow:
    task = session.get(TaskRow, task_id)
    if task is None or task.volunteer_id != user.volunteer_id:
        raise Problem(404, f"you have no task {task_id}")
    schedule = session.get(ScheduleRow, task.schedule_id)
    if schedule.status != "published":
        raise Problem(409, f"task {task_id} belongs to a schedule that is {schedule.status}")
    assert isinstance(task, TaskRow)
    return task


def _move(session: Any, user: Caller, task_id: int, allowed: tuple[str, ...],
          target: str) -> TaskRow:
    task = _my_task(session, user, task_id)
    if task.state not in allowed:
        raise Problem(409, f"task {task_id} is {task.state}; cannot become {target}")
    task.state = target
    audit(session, user, target, f"task:{task_id}")
    return task


@router.post("/me/tasks/{task_id}/accept", summary="Accept an offered task")
def accept(task_id: Id, session: SessionDep, user: VolunteerUser) -> dict[str, Any]:
    task = _move(session, user, task_id, ("offered",), "accepted")
    session.commit()
    return task_view(task)


@router.post("/me/tasks/{task_id}/check-in", summary="Arrived at the task")
def check_in(task_id: Id, session: SessionDep, user: VolunteerUser) -> dict[str, Any]:
    task = _move(session, user, task_id, ("accepted",), "checked_in")
    session.commit()
    return task_view(task)


@router.post("/me/tasks/{task_id}/complete", summary="Done (a coordinator confirms it)")
def complete(task_id: Id, session: SessionDep, user: VolunteerUser) -> dict[str, Any]:
    task = _move(session, user, task_id, ("checked_in",), "completed")
    notify(session, "coordinators", "task.completed", {"task_id": task.id})
    session.commit()
    return task_view(task)


@router.post("/me/tasks/{task_id}/decline",
             summary="Decline a task: the occurrence is re-planned with the rest pinned")
def decline(task_id: Id, body: DeclineIn, session: SessionDep, user: VolunteerUser,
            request: Request) -> dict[str, Any]:
    """Only what the decline touched changes: the freed place goes to the best volunteer who is
    free under every rule, and the change is offered to them. If nobody is, coordinators are
    told and the occurrence shows in ``replacement: null``."""
    task = _move(session, user, task_id, ("offered", "accepted"), "declined")
    task.decline_reason = body.reason
    schedule = session.get(ScheduleRow, task.schedule_id)
    assert schedule is not None  # a task belongs to its schedule (foreign key)
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
        assert need is not None  # foreign key
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
def confirm(task_id: Id, session: SessionDep, user: Coordinator, settings: SettingsDep,
            idempotency_key: Annotated[str, Header(min_length=8, max_length=128)],
            request: Request) -> JSONResponse:
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

    return idempotent(session, user, request, idempotency_key, work)


@router.get("/calendar/{token}.ics", tags=["volunteers' tasks"], response_class=Response,
            summary="A volunteer's private calendar feed (the link is the secret)",
            responses={200: {"content": {"text/calendar": {}}}})
def calendar_feed(token: Annotated[str, Path(max_length=64)], session: SessionDep) -> Response:
    user = session.scalars(select(User).filter_by(calendar_token=token)).one_or_none()
    if user is None or user.volunteer_id is None:
        raise Problem(404, "no such calendar")
    rows = session.execute(my_tasks_query(user.volunteer_id, TaskRow.state.in_(UPCOMING))).all()
    cal = Calendar()
    cal.add("prodid", "-//Linli//tasks//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"邻里志愿服务 {user.volunteer_id}")
    views = [(row, my_task_view(row)) for row in rows]
    for row, view in views:
        event = Event()
        event.add("uid", f"task-{row.id}@linli")
        event.add("summary", f"{row.service} · {view['beneficiary']}")
        midnight = dt.datetime.combine(row.date, dt.time(0, 0), TZ)
        event.add("dtstart", midnight + dt.timedelta(minutes=row.start))
        event.add("dtend", midnight + dt.timedelta(minutes=row.end))
        event.add("dtstamp", dt.datetime.now(dt.UTC))
        event.add("location", view["address"] or f"{view['lat']},{view['lon']}")
        cal.add_component(event)
    if any(view["details_visible"] for _, view in views):
        audit(session, user, "read", f"calendar:{user.volunteer_id}")
        session.commit()
    return Response(bytes(cal.to_ical()), media_type="text/calendar")
