"""The service behind a schedule's pages: its live summary, its tasks and unmet occurrences a
page at a time, the preview and the act of publishing, and "who could take this occurrence".
Routers authorise and answer; the rules are here and in :mod:`api.publishing`."""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from api.errors import Problem, label
from api.models import ScheduleRow, TaskRow, UnmetRow
from api.paging import page_rows
from api.publishing import Changes, plan_changes, publish_schedule
from api.replanning import ACTIVE, UPCOMING, pinned_week
from api.security import Caller
from api.weekly import get_job
from matcher.domain import (
    Assignment,
    Day,
    LevelResult,
    Priority,
    Schedule,
    SolveStatus,
    Unmet,
    UnmetReason,
    Week,
)
from matcher.i18n import _
from matcher.replan import Fit


def _at_risk(schedule_id: int) -> ColumnElement[bool]:
    """Upcoming tasks of the schedule that an edit of the community put at risk."""
    return and_(TaskRow.schedule_id == schedule_id, TaskRow.at_risk.is_not(None),
                TaskRow.state.in_(UPCOMING))


def schedule(session: Session, schedule_id: int) -> ScheduleRow:
    """The schedule, its summary counting the upcoming tasks an edit put at risk, live (the
    count is not stored: the row is left unchanged)."""
    row = get_job(session, ScheduleRow, schedule_id)
    if row.summary is not None:
        at_risk = session.scalar(select(func.count()).select_from(TaskRow)
                                 .where(_at_risk(schedule_id))) or 0
        session.expunge(row)  # the live count is for this answer, never written back
        row.summary = row.summary | {"at_risk": at_risk}
    return row


def tasks(session: Session, schedule_id: int, *, at_risk: bool = False,
          volunteer_id: str | None = None, day: Day | None = None, limit: int,
          offset: int) -> tuple[list[TaskRow], int]:
    """One page of the schedule's tasks in time order, filtered, and how many match."""
    get_job(session, ScheduleRow, schedule_id)
    query = select(TaskRow).where(_at_risk(schedule_id) if at_risk
                                  else TaskRow.schedule_id == schedule_id)
    if volunteer_id is not None:
        query = query.where(TaskRow.volunteer_id == volunteer_id)
    if day is not None:
        query = query.where(TaskRow.day == day.value)
    return page_rows(session, query.order_by(TaskRow.date, TaskRow.start, TaskRow.id),
                     limit, offset)


def unmet(session: Session, schedule_id: int, *, day: Day | None = None,
          reason_code: str | None = None, limit: int, offset: int
          ) -> tuple[list[UnmetRow], int]:
    """One page of the schedule's uncovered occurrences, by date, and how many match."""
    get_job(session, ScheduleRow, schedule_id)
    query = select(UnmetRow).where(UnmetRow.schedule_id == schedule_id)
    if day is not None:
        query = query.where(UnmetRow.day == day.value)
    if reason_code is not None:
        query = query.where(UnmetRow.reason_code == reason_code)
    return page_rows(session, query.order_by(UnmetRow.date, UnmetRow.need_id, UnmetRow.id),
                     limit, offset)


def changes(session: Session, state: Any, schedule_id: int) -> Changes:
    """What publishing the schedule would change now (409 unless it is solved)."""
    row = get_job(session, ScheduleRow, schedule_id)
    if row.status != "solved":
        raise Problem(409, _("schedule {id} is {status}; only a solved schedule can be "
                             "published").format(id=schedule_id, status=label(row.status)),
                      code="job_not_solved")
    return plan_changes(session, state, row)


def publish(session: Session, state: Any, user: Caller, schedule_id: int,
            supersede: bool) -> ScheduleRow:
    """Publish the schedule atomically, carrying the published week's work over."""
    row = get_job(session, ScheduleRow, schedule_id)
    publish_schedule(session, state, user, row, supersede)
    return row


def candidates(session: Session, state: Any, schedule_id: int, need_id: str, day: Day,
               replacing: str | None) -> list[Fit]:
    """Volunteers who satisfy every rule with the rest of the schedule pinned, best first
    (everyone on the occurrence excluded, or only ``replacing``)."""
    row = get_job(session, ScheduleRow, schedule_id)
    week = pinned_week(session, state, row)
    on_it = set(session.scalars(select(TaskRow.volunteer_id).where(
        TaskRow.schedule_id == schedule_id, TaskRow.need_id == need_id,
        TaskRow.day == day.value)))
    try:
        # Every fit, best first, so that pages and their total agree.
        return week.recommend(need_id, day, exclude={replacing} if replacing else on_it,
                              limit=sys.maxsize)
    except KeyError as exc:
        raise Problem(404, _("{need} has no occurrence on {day}").format(
            need=need_id, day=label(day.value))) from exc


def stored_schedule(session: Session, row: ScheduleRow) -> Schedule:
    """A solved schedule as the matcher sees it, from its rows: the tasks that hold a
    volunteer (declined and cancelled ones do not cover anything) and the unmet list."""
    tasks = session.scalars(select(TaskRow).where(TaskRow.schedule_id == row.id,
                                                  TaskRow.state.in_(ACTIVE)))
    assignments = [Assignment(t.need_id, Day(t.day), t.date, t.start, t.end, t.volunteer_id,
                              t.merchant_id, t.walk_min) for t in tasks]
    unmet = [Unmet(u.need_id, Day(u.day), u.date, UnmetReason(u.reason_code), u.reason, u.fix)
             for u in session.scalars(select(UnmetRow).where(UnmetRow.schedule_id == row.id))]
    summary: dict[str, Any] = row.summary or {}

    def level(p: Priority) -> LevelResult:
        covered = int(summary.get("covered_by_priority", {}).get(p.value, 0))
        bound = summary.get("bound", {}).get(p.value)
        return LevelResult(covered, int(summary.get("occurrences_by_priority", {})
                                        .get(p.value, 0)),
                           covered if bound is None else int(bound),
                           bool(summary.get("optimal_by_priority", {}).get(p.value)))

    status = summary.get("status", SolveStatus.FEASIBLE.value)
    return Schedule(Week.parse(row.week), assignments, unmet, {p: level(p) for p in Priority},
                    SolveStatus(status) if status in set(SolveStatus) else SolveStatus.FEASIBLE,
                    float(summary.get("total_walk_min", 0.0)),
                    float(summary.get("solve_seconds", 0.0)))
