"""The published week as the matcher sees it, for single-occurrence changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from api.community import load_problem
from api.models import NeedRow, ScheduleRow, TaskRow
from matcher.circles import ServiceCircle, build_candidates
from matcher.domain import Assignment, Day, Week
from matcher.replan import PinnedWeek
from matcher.settings import Settings
from matcher.travel import TravelTimes

UPCOMING = ("offered", "accepted", "checked_in")  # published, not yet done
STANDING = (*UPCOMING, "completed", "confirmed")  # published and not declined or cancelled
ACTIVE = ("proposed", *STANDING)  # holds a volunteer's time in its schedule


def published_tasks(*where: ColumnElement[bool]) -> Select[tuple[TaskRow, NeedRow]]:
    """Tasks of published schedules with their needs, filtered by ``where``."""
    return (select(TaskRow, NeedRow).join(NeedRow, NeedRow.need_id == TaskRow.need_id)
            .join(ScheduleRow, ScheduleRow.id == TaskRow.schedule_id)
            .where(ScheduleRow.status == "published", *where))


def active_tasks(session: Session, schedule_id: int) -> list[TaskRow]:
    return list(session.scalars(select(TaskRow).where(TaskRow.schedule_id == schedule_id,
                                                      TaskRow.state.in_(ACTIVE))))


def pinned_week(session: Session, state: Any, schedule: ScheduleRow,
                without: set[int] | None = None) -> PinnedWeek:
    """Every active task of ``schedule`` (except ``without``) pinned on the current community."""
    problem = load_problem(session, Week.parse(schedule.week))
    settings = Settings()
    travel = TravelTimes.build(problem, settings, state.networks.get())
    cand = build_candidates(problem, travel, ServiceCircle(settings.circle_min))
    assignments = [
        Assignment(t.need_id, Day(t.day), t.date, t.start, t.end, t.volunteer_id, t.merchant_id,
                   t.walk_min)
        for t in active_tasks(session, schedule.id) if t.id not in (without or set())]
    return PinnedWeek(cand, assignments)
