"""A volunteer's week: my tasks, accept, decline (re-planned at once), check in, complete; the
coordinator confirms completed work, which credits points; a private calendar feed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import BindParameter, ColumnElement, Row, Select, bindparam, insert, select

from api import calendar, lifecycle
from api.community import audit, audit_entry, coarse, masked
from api.conditional import conditional
from api.errors import Problem
from api.idempotency import idempotent
from api.lifecycle import Action, Now
from api.models import AuditEntry, NeedRow, ScheduleRow, TaskRow, User
from api.params import Id, IsoWeek
from api.replanning import STANDING, UPCOMING
from api.schemas import TASK_EXAMPLE, TaskOut
from api.security import ConnectionDep, Coordinator, SessionDep, SettingsDep, VolunteerUser
from api.timebank import TimeRules
from matcher.domain import Week, format_hhmm
from matcher.i18n import _

router = APIRouter(prefix="/v1", tags=["volunteers' tasks"])


class DeclineIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500, examples=["孩子生病，这周来不了"])


def _in_its_week(date: dt.date, today: dt.date) -> bool:
    """Privacy rule: exact details only during the task's ISO week (Asia/Shanghai)."""
    monday = date - dt.timedelta(days=date.weekday())
    return monday <= today <= monday + dt.timedelta(days=6)


# What a volunteer's own task shows: plain columns (not ORM objects), as this is the hot path.
MY_TASK_COLUMNS = (
    TaskRow.id, TaskRow.need_id, TaskRow.day, TaskRow.date, TaskRow.start, TaskRow.end,
    TaskRow.volunteer_id, TaskRow.merchant_id, TaskRow.walk_min, TaskRow.state,
    TaskRow.decline_reason, TaskRow.at_risk, NeedRow.service, NeedRow.priority,
    NeedRow.beneficiary, NeedRow.phone, NeedRow.address, NeedRow.lat, NeedRow.lon)


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


def my_task_view(row: Row[*tuple[Any, ...]], today: dt.date) -> dict[str, Any]:
    """A row of :func:`my_tasks_query` as its volunteer may see it on ``today`` (the
    community's clock)."""
    view = row._asdict()
    exact = _in_its_week(row.date, today) and row.state in UPCOMING
    view.update(date=row.date.isoformat(), start=format_hhmm(row.start),
                end=format_hhmm(row.end), details_visible=exact,
                state_label=calendar.state_label(row.state))
    if not exact:
        view.update(beneficiary=masked(row.beneficiary), phone="", address="",
                    lat=coarse(row.lat), lon=coarse(row.lon))
    return view


class MyTask(BaseModel):
    """One of my tasks; the beneficiary's details only while the task is due this week."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 41, "need_id": "N0031", "day": "mon", "date": "2026-11-23", "start": "11:05",
        "end": "11:35", "volunteer_id": "V0007", "merchant_id": "M003", "walk_min": 9.4,
        "state": "offered", "state_label": "待接受", "decline_reason": None, "at_risk": None,
        "service": "meal_delivery",
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
    state_label: str = Field(description="the state in the caller's language, for showing")
    decline_reason: str | None
    at_risk: str | None = Field(description="the rule an edit of the community broke (a "
                                "coordinator resolves it); null when the task keeps every rule")
    service: str
    priority: str
    beneficiary: str
    phone: str
    address: str
    lat: float
    lon: float
    details_visible: bool


MY_TASKS = TypeAdapter(list[MyTask])
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "nothing shown changed since the ETag sent in If-None-Match"}}
IfNoneMatch = Annotated[str | None, Header(description="the ETag of the copy the client has; "
                                           "304 while it is still what would be sent")]


@router.get("/me/tasks", summary="My tasks in a published week", response_model=list[MyTask],
            responses=NOT_MODIFIED)
async def my_tasks(connection: ConnectionDep, user: VolunteerUser, now: Now,
                   week: Annotated[IsoWeek | None, Query(description="ISO week, default this week")]
                   = None, if_none_match: IfNoneMatch = None,
                   ) -> Response:
    """Answered with an ``ETag`` (of the body: it changes with anything shown, also details
    shown or masked as days pass); send it back as ``If-None-Match`` to get 304 while nothing
    changed."""
    # The hot path of the app: async end to end (no thread hand-offs); the views are validated
    # and serialised once, in pydantic-core.
    iso = week or str(Week.containing(now.date()))
    assert user.volunteer_id is not None  # a volunteer account always has one
    rows = await connection.execute(MY_WEEK, {"volunteer_id": user.volunteer_id, "week": iso})
    out = [my_task_view(row, now.date()) for row in rows]
    response = conditional(MY_TASKS.dump_json(MY_TASKS.validate_python(out)),
                           "application/json", if_none_match)
    # A 304 shows nothing new: the read was recorded when the details were sent.
    if response.status_code == 200 and any(view["details_visible"] for view in out):
        await connection.execute(AUDIT_INSERT, [audit_entry(
            user, "read", f"tasks:{user.volunteer_id}", iso)])
    return response


@router.post("/me/tasks/{task_id}/accept", response_model=TaskOut,
             summary="Accept an offered task")
def accept(task_id: Id, session: SessionDep, user: VolunteerUser, now: Now) -> TaskOut:
    return TaskOut.of(lifecycle.volunteer_step(session, user, task_id, Action.ACCEPT, now))


@router.post("/me/tasks/{task_id}/check-in", response_model=TaskOut,
             summary="Arrived at the task (on its date, from shortly before the start)")
def check_in(task_id: Id, session: SessionDep, user: VolunteerUser, now: Now) -> TaskOut:
    return TaskOut.of(lifecycle.volunteer_step(session, user, task_id, Action.CHECK_IN, now))


@router.post("/me/tasks/{task_id}/complete", response_model=TaskOut,
             summary="Done, after checking in (a coordinator confirms it)")
def complete(task_id: Id, session: SessionDep, user: VolunteerUser, now: Now) -> TaskOut:
    return TaskOut.of(lifecycle.volunteer_step(session, user, task_id, Action.COMPLETE, now))


class DeclineOut(BaseModel):
    """What the declining volunteer learns: that the place was offered to someone else or that
    the coordinators were told; never who, nor where they live."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "declined": TASK_EXAMPLE | {"state": "declined", "decline_reason": "孩子生病，这周来不了"},
        "outcome": "offered_to_another_volunteer"}]})
    declined: TaskOut
    outcome: Literal["offered_to_another_volunteer", "coordinators_told"]


@router.post("/me/tasks/{task_id}/decline", response_model=DeclineOut,
             summary="Decline a task: the occurrence is re-planned with the rest pinned")
def decline(task_id: Id, body: DeclineIn, session: SessionDep, user: VolunteerUser,
            request: Request, now: Now) -> DeclineOut:
    """Only what the decline touched changes: the freed place goes to the best volunteer who is
    free under every rule, and the change is offered to them; if nobody is, coordinators are
    told. All or nothing: if the week cannot be re-planned, nothing is recorded (409)."""
    done = lifecycle.decline(session, request.app.state, user, task_id, body.reason, now)
    return DeclineOut(declined=TaskOut.of(done.task),
                      outcome="offered_to_another_volunteer" if done.replaced
                      else "coordinators_told")


class TimeCreditOut(BaseModel):
    minutes: int = Field(description="credited to the volunteer's time account, bonuses "
                         "included")
    served: int = Field(description="the task's own minutes")
    multipliers: dict[str, float] = Field(description="bonus factors that applied, by code")
    paid_by: str = Field(description="community, subsidy, or the paying account")


class ConfirmOut(TaskOut):
    """The confirmed task, the points credited and the time bank's minutes."""

    model_config = ConfigDict(json_schema_extra={"examples": [TASK_EXAMPLE | {
        "state": "confirmed", "points": 30, "minutes": 30,
        "time_bank": {"minutes": 30, "served": 30, "multipliers": {},
                      "paid_by": "community"}}]})
    points: int
    minutes: int
    time_bank: TimeCreditOut


@router.post("/tasks/{task_id}/confirm", response_model=ConfirmOut,
             summary="Confirm completed work and credit points")
def confirm(task_id: Id, session: SessionDep, user: Coordinator, settings: SettingsDep,
            now: Now, idempotency_key: Annotated[str, Header(min_length=8, max_length=128)],
            request: Request) -> JSONResponse:
    def work() -> tuple[int, dict[str, Any]]:
        task, points, time = lifecycle.confirm(session, user, task_id,
                                               settings.points_per_minute, now,
                                               TimeRules.of(settings))
        return 200, ConfirmOut(**TaskOut.of(task).model_dump(), points=points,
                               minutes=time["minutes"],
                               time_bank=TimeCreditOut(**time)).model_dump(mode="json")

    return idempotent(session, user, request, idempotency_key, work)


@router.post("/tasks/{task_id}/cancel", response_model=TaskOut,
             summary="Take an offered or accepted task away (e.g. one at risk)")
def cancel(task_id: Id, session: SessionDep, user: Coordinator, now: Now) -> TaskOut:
    return TaskOut.of(lifecycle.cancel(session, user, task_id, now))


@router.get("/calendar/{token}.ics", tags=["volunteers' tasks"], response_class=Response,
            summary="A volunteer's private calendar feed (the link is the secret)",
            responses={200: {"content": {"text/calendar": {}}}, **NOT_MODIFIED})
def calendar_feed(token: str, session: SessionDep, now: Now,
                  if_none_match: IfNoneMatch = None) -> Response:
    """Upcoming and done tasks, and the recently cancelled or declined ones (STATUS:CANCELLED,
    so subscribed calendars remove them); SEQUENCE rises with every change. ``ETag`` and
    ``If-None-Match`` (304) as for ``GET /v1/me/tasks``."""
    if not calendar.plausible_token(token):
        raise Problem(404, _("no such calendar"))
    user = session.scalars(select(User).filter_by(calendar_token=token)).one_or_none()
    if user is None or user.volunteer_id is None:
        raise Problem(404, _("no such calendar"))
    rows = session.execute(
        select(*MY_TASK_COLUMNS, TaskRow.sequence, TaskRow.updated_at)
        .join_from(TaskRow, NeedRow, NeedRow.need_id == TaskRow.need_id)
        .join(ScheduleRow, ScheduleRow.id == TaskRow.schedule_id)
        .where(TaskRow.volunteer_id == user.volunteer_id, calendar.in_feed(now.date()))
        .order_by(TaskRow.date, TaskRow.start, TaskRow.id)).all()
    views = [my_task_view(row, now.date()) for row in rows]
    body = calendar.feed(f"邻里志愿服务 {user.volunteer_id}", [calendar.FeedEvent(
        task_id=row.id, date=row.date, start=row.start, end=row.end, state=row.state,
        sequence=row.sequence, changed_at=row.updated_at,
        summary=f"{row.service} · {view['beneficiary']}",
        location=view["address"] or f"{view['lat']},{view['lon']}")
        for row, view in zip(rows, views, strict=True)])
    response = conditional(body, "text/calendar", if_none_match)
    if response.status_code == 200 and any(view["details_visible"] for view in views):
        audit(session, user, "read", f"calendar:{user.volunteer_id}")
        session.commit()
    return response
