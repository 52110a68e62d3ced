"""The published week as the matcher sees it, for single-occurrence changes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from api.community import load_problem
from api.models import NeedRow, ScheduleRow, TaskRow
from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.domain import Assignment, Day, Problem, Week
from matcher.replan import PinnedWeek
from matcher.settings import Settings
from matcher.travel import TravelTimes, WalkingNetwork

UPCOMING = ("offered", "accepted", "checked_in")  # published, not yet done
STANDING = (*UPCOMING, "completed", "confirmed")  # published and not declined or cancelled
ACTIVE = ("proposed", *STANDING)  # holds a volunteer's time in its schedule


def published_tasks(*where: ColumnElement[bool]) -> Select[TaskRow, NeedRow]:
    """Tasks of published schedules with their needs, filtered by ``where``."""
    return (select(TaskRow, NeedRow).join(NeedRow, NeedRow.need_id == TaskRow.need_id)
            .join(ScheduleRow, ScheduleRow.id == TaskRow.schedule_id)
            .where(ScheduleRow.status == "published", *where))


def active_tasks(session: Session, schedule_id: int) -> list[TaskRow]:
    return list(session.scalars(select(TaskRow).where(TaskRow.schedule_id == schedule_id,
                                                      TaskRow.state.in_(ACTIVE))))


class CandidateCache:
    """Walking times and options of the weeks being re-planned, by their community's content:
    declines and "who could take this" reuse them until a volunteer, need or merchant changes
    (building them takes seconds at district size; comparing the community takes milliseconds).
    """

    def __init__(self, network: Callable[[], WalkingNetwork | None], size: int = 4) -> None:
        self.network, self.size = network, size
        self._items: OrderedDict[tuple[object, ...], Candidates] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, problem: Problem) -> Candidates:
        key = (problem.week, tuple(problem.volunteers), tuple(problem.needs),
               tuple(problem.merchants))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        settings = Settings()
        travel = TravelTimes.build(problem, settings, self.network())
        cand = build_candidates(problem, travel, ServiceCircle(settings.circle_min))
        with self._lock:
            self._items[key] = cand
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return cand


def pinned_week(session: Session, state: Any, schedule: ScheduleRow,
                without: set[int] | None = None) -> PinnedWeek:
    """Every active task of ``schedule`` (except ``without``) pinned on the current community."""
    problem = load_problem(session, Week.parse(schedule.week))
    cand = state.candidates.get(problem)
    assignments = [
        Assignment(t.need_id, Day(t.day), t.date, t.start, t.end, t.volunteer_id, t.merchant_id,
                   t.walk_min)
        for t in active_tasks(session, schedule.id) if t.id not in (without or set())]
    return PinnedWeek(cand, assignments)
