"""The published week as the matcher sees it, for single-occurrence changes, and the tasks an
edit of the community put at risk."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from api.community import TZ, load_problem, notify
from api.models import (
    CommunityVersion,
    NeedRow,
    ScheduleRow,
    TaskRow,
    session_community,
    sole_community,
)
from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.domain import Assignment, Day, Problem, Week, format_hhmm
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
                                                      TaskRow.state.in_(ACTIVE))
                                .order_by(TaskRow.id)))


class CandidateCache:
    """The weeks being re-planned, built (walking times, options) and kept in this process:
    declines and "who could take this" reuse them.

    A week is kept under the community's version (:class:`api.models.CommunityVersion`, raised
    in the transaction of every change of volunteers, needs, merchants or an allocation's
    status), read before the rows, so a week is never kept under a version older than its
    rows: checking costs one query, not reading and comparing the community. Without the
    version row the community's content is the key, as before versions existed.
    """

    def __init__(self, network: Callable[[], WalkingNetwork | None], size: int = 4) -> None:
        self.network, self.size = network, size
        self._items: OrderedDict[tuple[object, ...], Candidates] = OrderedDict()
        self._lock = threading.Lock()

    def week(self, session: Session, week: Week) -> Candidates:
        """``week`` of the community as ``session`` sees it, built or kept."""
        community = session_community(session) or sole_community(session)
        version = session.scalar(select(CommunityVersion.version)
                                 .where(CommunityVersion.community_id == community))
        key: tuple[object, ...] | None = (
            None if version is None else ("version", community, week, version))
        cand = None if key is None else self._kept(key)
        if cand is None:
            cand = self.get(load_problem(session, week))
            if key is not None:
                self._keep(key, cand)
        return cand

    def get(self, problem: Problem) -> Candidates:
        """``problem``'s candidates, kept by its content."""
        key = ("content", problem.week, tuple(problem.volunteers), tuple(problem.needs),
               tuple(problem.merchants))
        cand = self._kept(key)
        if cand is None:
            settings = Settings()
            travel = TravelTimes.build(problem, settings, self.network())
            cand = build_candidates(problem, travel, ServiceCircle(settings.circle_min))
            self._keep(key, cand)
        return cand

    def _kept(self, key: tuple[object, ...]) -> Candidates | None:
        with self._lock:
            cand = self._items.get(key)
            if cand is not None:
                self._items.move_to_end(key)
            return cand

    def _keep(self, key: tuple[object, ...], cand: Candidates) -> None:
        with self._lock:
            self._items[key] = cand
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def pinned_week(session: Session, state: Any, schedule: ScheduleRow,
                without: set[int] | None = None) -> PinnedWeek:
    """Every active task of ``schedule`` (except ``without``) pinned on the current community;
    tasks an edit broke hold their volunteers' time without being validated (see
    :mod:`matcher.replan`)."""
    cand = state.candidates.week(session, Week.parse(schedule.week))
    rows = session.execute(select(
        TaskRow.id, TaskRow.need_id, TaskRow.day, TaskRow.date, TaskRow.start, TaskRow.end,
        TaskRow.volunteer_id, TaskRow.merchant_id, TaskRow.walk_min)
        .where(TaskRow.schedule_id == schedule.id, TaskRow.state.in_(ACTIVE))
        .order_by(TaskRow.id)).all()
    skip = without or set()
    return PinnedWeek(cand, [Assignment(need, Day(day), date, start, end, volunteer, merchant,
                                        walk)
                             for ident, need, day, date, start, end, volunteer, merchant, walk
                             in rows if ident not in skip])


def _pinned(session: Session, state: Any, schedule: ScheduleRow
            ) -> tuple[PinnedWeek, list[TaskRow]]:
    cand = state.candidates.week(session, Week.parse(schedule.week))
    tasks = active_tasks(session, schedule.id)
    assignments = [
        Assignment(t.need_id, Day(t.day), t.date, t.start, t.end, t.volunteer_id, t.merchant_id,
                   t.walk_min) for t in tasks]
    return PinnedWeek(cand, assignments), tasks


def broken_tasks(session: Session, state: Any, schedule: ScheduleRow) -> dict[int, str]:
    """The active tasks of ``schedule`` that break a rule of the community as it is now (task
    id -> the rule in words): a plan solved before an edit may no longer fit it."""
    week, tasks = _pinned(session, state, schedule)
    return {tasks[k].id: broken.reason for k, broken in week.broken.items()}


def review_at_risk(session: Session, state: Any, now: dt.datetime) -> list[TaskRow]:
    """After an edit of the community (in the caller's transaction): mark the upcoming tasks of
    published weeks that now break a rule, clear the mark of those that keep every rule again,
    and tell the coordinators and each volunteer through the outbox. Returns the tasks this
    edit put at risk (newly, or for another reason), for the edit's answer to warn about."""
    session.flush()
    today = now.astimezone(TZ).date()
    upcoming = select(TaskRow.schedule_id).where(TaskRow.state.in_(UPCOMING),
                                                 TaskRow.date >= today)
    schedules = session.scalars(select(ScheduleRow).where(
        ScheduleRow.status == "published", ScheduleRow.id.in_(upcoming))
        .order_by(ScheduleRow.week)).all()
    marked: list[TaskRow] = []
    for schedule in schedules:
        week, tasks = _pinned(session, state, schedule)
        for k, task in enumerate(tasks):
            if task.state not in UPCOMING or task.date < today:
                continue
            broken = week.broken.get(k)
            about = {"task_id": task.id, "need_id": task.need_id, "date": str(task.date),
                     "start": format_hhmm(task.start)}
            if broken is not None and task.at_risk != broken.reason:
                if task.at_risk is None:
                    task.at_risk_since = now
                task.at_risk = broken.reason
                marked.append(task)
                for recipient in ("coordinators", f"volunteer:{task.volunteer_id}"):
                    notify(session, recipient, "task.at_risk", about | {"reason": broken.reason})
            elif broken is None and task.at_risk is not None:
                task.at_risk, task.at_risk_since = None, None
                for recipient in ("coordinators", f"volunteer:{task.volunteer_id}"):
                    notify(session, recipient, "task.at_risk_cleared", about)
    return marked
