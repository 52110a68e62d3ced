"""The published week as the matcher sees it, for single-occurrence changes, and the tasks an
edit of the community put at risk."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from api.community import TZ, guest_volunteers, notify
from api.models import (
    CommunityVersion,
    NeedRow,
    ScheduleRow,
    TaskRow,
    VolunteerRow,
    in_community,
    session_community,
    sole_community,
)
from api.under_way import elsewhere_versions, shared_problem
from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.domain import Assignment, Day, Problem, Week, format_hhmm
from matcher.replan import PinnedWeek, Statics
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


# (the community and its version), and the schedule's tasks' version
Versions = tuple[tuple[int, int], int]


@dataclass
class _Kept:
    cand: Candidates
    statics: Statics


@dataclass
class _Pinned:
    """A schedule's active tasks (id, assignment; by id) as of ``versions``, on ``cand``, and
    the week pinned with all of them once asked for."""

    versions: Versions
    cand: Candidates
    rows: list[tuple[int, Assignment]]
    full: PinnedWeek | None = None


class CandidateCache:
    """The weeks being re-planned, built (walking times, options) and kept in this process:
    declines and "who could take this" reuse them.

    A week is :func:`api.under_way.shared_problem` (volunteers' weeks less their tasks in other
    communities' published schedules, neighbours within a circle). It is kept under the
    community's version (:class:`api.models.CommunityVersion`, raised in the transaction of
    every change of volunteers, needs, merchants or an allocation's status) and the versions of
    what it reads of other communities (:func:`api.under_way.elsewhere_versions`), read before
    the rows, so a week is never kept under a version older than its rows: checking costs a
    few queries, not reading and comparing the communities. Without the version row the
    community's content is the key, as before versions existed.

    A schedule's active tasks, and the week pinned with them, are kept likewise under the
    community's version and the schedule's ``tasks_version`` (raised in the transaction of
    every change of its tasks): both are in the database, so a change made by another process
    is seen. A decline updates what this process keeps in place of reading the tasks again
    (:meth:`declined`).
    """

    def __init__(self, network: Callable[[], WalkingNetwork | None], size: int = 4) -> None:
        self.network, self.size = network, size
        self._items: OrderedDict[tuple[object, ...], _Kept] = OrderedDict()
        self._pinned: OrderedDict[int, _Pinned] = OrderedDict()
        self._lock = threading.Lock()

    def week(self, session: Session, week: Week, schedule_id: int | None = None
             ) -> Candidates:
        """``week`` of the community as ``session`` sees it, built or kept; with the
        volunteers of other communities who hold tasks of ``schedule_id``, if given."""
        return self._week(session, week, self._community(session), schedule_id).cand

    def _community(self, session: Session, community: int | None = None
                   ) -> tuple[int, int] | None:
        """``community`` (default: the session's) and its version (None without its version
        row)."""
        community = community or session_community(session) or sole_community(session)
        version = session.scalar(select(CommunityVersion.version)
                                 .where(CommunityVersion.community_id == community))
        return None if version is None else (community, version)

    def _week(self, session: Session, week: Week, version: tuple[int, int] | None,
              schedule_id: int | None = None) -> _Kept:
        # The week shares volunteers with other communities: what it reads of them moves the key
        # too (their volunteers' versions, their published tasks' versions of the week). Guests
        # (volunteers of other communities holding tasks of the schedule) are read each time and
        # keyed by their content as well.
        guests = () if schedule_id is None else tuple(guest_volunteers(session, schedule_id))
        key: tuple[object, ...] | None = None if version is None else (
            "version", week, version, elsewhere_versions(session, str(week), version[0]), guests)
        kept = None if key is None else self._kept(key)
        if kept is None:
            kept = self._get(shared_problem(session, week, guests=guests))
            if key is not None:
                self._keep(key, kept)
        return kept

    def get(self, problem: Problem) -> Candidates:
        """``problem``'s candidates, kept by its content."""
        return self._get(problem).cand

    def _get(self, problem: Problem) -> _Kept:
        key = ("content", problem.week, tuple(problem.volunteers), tuple(problem.needs),
               tuple(problem.merchants))
        kept = self._kept(key)
        if kept is None:
            settings = Settings()
            travel = TravelTimes.build(problem, settings, self.network())
            cand = build_candidates(problem, travel, ServiceCircle(settings.circle_min))
            kept = _Kept(cand, Statics(cand))
            self._keep(key, kept)
        return kept

    def _kept(self, key: tuple[object, ...]) -> _Kept | None:
        with self._lock:
            kept = self._items.get(key)
            if kept is not None:
                self._items.move_to_end(key)
            return kept

    def _keep(self, key: tuple[object, ...], kept: _Kept) -> None:
        with self._lock:
            self._items[key] = kept
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def versions(self, session: Session, schedule: ScheduleRow) -> Versions | None:
        """The community's and the schedule's tasks' versions as ``session`` sees them (None
        without the community's version row)."""
        community = self._community(session, schedule.community_id)
        tasks = session.scalar(select(ScheduleRow.tasks_version)
                               .where(ScheduleRow.id == schedule.id))
        return None if community is None or tasks is None else (community, tasks)

    def pinned(self, session: Session, schedule: ScheduleRow, without: set[int] | None = None
               ) -> tuple[PinnedWeek, Versions | None]:
        """The week of ``schedule`` with its active tasks (except ``without``) pinned, and the
        versions it is of (for :meth:`declined`)."""
        versions = self.versions(session, schedule)  # before the rows, as the week's
        kept = self._week(session, Week.parse(schedule.week),
                          None if versions is None else versions[0], schedule.id)
        with self._lock:
            entry = self._pinned.get(schedule.id)
            if entry is not None:
                self._pinned.move_to_end(schedule.id)
        if entry is None or versions is None or entry.versions != versions \
                or entry.cand is not kept.cand:
            rows = _active_rows(session, schedule.id)
            entry = _Pinned(versions or ((-1, -1), -1), kept.cand, rows)
            # Kept only when no task changed while they were read (a later snapshot).
            if versions is not None and self.versions(session, schedule) == versions:
                self._keep_pinned(schedule.id, entry)
        skip = without or set()
        if skip:
            return PinnedWeek(kept.cand, [a for ident, a in entry.rows if ident not in skip],
                              kept.statics), versions
        if entry.full is None:
            entry.full = PinnedWeek(kept.cand, [a for _, a in entry.rows], kept.statics)
        return entry.full, versions

    def declined(self, schedule_id: int, before: Versions | None, after: Versions | None,
                 declined: int, replacement: tuple[int, Assignment] | None) -> None:
        """After a decline committed: what this process keeps of the schedule's tasks at
        ``before`` becomes, without ``declined`` and with ``replacement``, the tasks at
        ``after`` (the versions read in the decline's transaction, after its own raise) when
        that raise was the only change since (else the next call reads them again)."""
        if before is None or after is None or after != (before[0], before[1] + 1):
            return
        with self._lock:
            entry = self._pinned.get(schedule_id)
            if entry is None or entry.versions != before:
                return
            rows = [row for row in entry.rows if row[0] != declined]
            if replacement is not None:
                rows = sorted([*rows, replacement], key=lambda row: row[0])
            self._pinned[schedule_id] = _Pinned(after, entry.cand, rows)

    def _keep_pinned(self, schedule_id: int, entry: _Pinned) -> None:
        with self._lock:
            self._pinned[schedule_id] = entry
            self._pinned.move_to_end(schedule_id)
            while len(self._pinned) > self.size:
                self._pinned.popitem(last=False)


def _active_rows(session: Session, schedule_id: int) -> list[tuple[int, Assignment]]:
    rows = session.execute(select(
        TaskRow.id, TaskRow.need_id, TaskRow.day, TaskRow.date, TaskRow.start, TaskRow.end,
        TaskRow.volunteer_id, TaskRow.merchant_id, TaskRow.walk_min)
        .where(TaskRow.schedule_id == schedule_id, TaskRow.state.in_(ACTIVE))
        .order_by(TaskRow.id)).all()
    days = {day.value: day for day in Day}
    return [(ident, Assignment(need, days[day], date, start, end, volunteer, merchant, walk))
            for ident, need, day, date, start, end, volunteer, merchant, walk in rows]


def assignment_of(task: TaskRow) -> Assignment:
    return Assignment(task.need_id, Day(task.day), task.date, task.start, task.end,
                      task.volunteer_id, task.merchant_id, task.walk_min)


def pinned_week(session: Session, state: Any, schedule: ScheduleRow,
                without: set[int] | None = None) -> PinnedWeek:
    """Every active task of ``schedule`` (except ``without``) pinned on the current community;
    tasks an edit broke hold their volunteers' time without being validated (see
    :mod:`matcher.replan`)."""
    return pinned_with_versions(session, state, schedule, without)[0]


def pinned_with_versions(session: Session, state: Any, schedule: ScheduleRow,
                         without: set[int] | None = None
                         ) -> tuple[PinnedWeek, Versions | None]:
    """:func:`pinned_week` and the versions it is of (see :meth:`CandidateCache.declined`)."""
    cache: CandidateCache = state.candidates
    return cache.pinned(session, schedule, without)


def _pinned(session: Session, state: Any, schedule: ScheduleRow
            ) -> tuple[PinnedWeek, list[TaskRow]]:
    cand = state.candidates.week(session, Week.parse(schedule.week), schedule.id)
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
    edit put at risk (newly, or for another reason), for the edit's answer to warn about.

    The tasks its volunteers hold in other communities' weeks (a neighbour's need inside their
    circle) are reviewed too, in those communities, whose coordinators are told; they are not
    returned, since they are not this community's to show."""
    session.flush()
    today = now.astimezone(TZ).date()
    upcoming = select(TaskRow.schedule_id).where(TaskRow.state.in_(UPCOMING),
                                                 TaskRow.date >= today)
    schedules = session.scalars(select(ScheduleRow).where(
        ScheduleRow.status == "published", ScheduleRow.id.in_(upcoming))
        .order_by(ScheduleRow.week)).all()
    marked = _review(session, state, schedules, today, now)
    for community_id, ids in _served_elsewhere(session, today).items():
        with in_community(session, community_id):
            _review(session, state, session.scalars(select(ScheduleRow).where(
                ScheduleRow.id.in_(ids)).order_by(ScheduleRow.week)).all(), today, now)
            session.flush()  # the outbox events are that community's
    return marked


def _served_elsewhere(session: Session, today: dt.date) -> dict[int, list[int]]:
    """The published schedules of other communities (by community) where volunteers of the
    session's community hold upcoming tasks. Plain statements: their rows are not this
    community's."""
    here = session_community(session)
    if here is None:  # unscoped: the schedules read above are every community's already
        return {}
    tasks, schedules = TaskRow.__table__.c, ScheduleRow.__table__.c
    volunteers = VolunteerRow.__table__.c
    ours = select(volunteers.volunteer_id).where(volunteers.community_id == here)
    found: dict[int, list[int]] = {}
    for community_id, schedule_id in session.execute(
            select(schedules.community_id, schedules.id).where(
                schedules.status == "published", schedules.community_id != here,
                schedules.id.in_(select(tasks.schedule_id).where(
                    tasks.state.in_(UPCOMING), tasks.date >= today,
                    tasks.volunteer_id.in_(ours))))
            .order_by(schedules.community_id, schedules.id)):
        found.setdefault(int(community_id), []).append(int(schedule_id))
    return found


def _review(session: Session, state: Any, schedules: Sequence[ScheduleRow], today: dt.date,
            now: dt.datetime) -> list[TaskRow]:
    """:func:`review_at_risk` of ``schedules`` (of the session's community)."""
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
