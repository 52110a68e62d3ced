"""The work under way in a published week, which a re-solve of that week must respect.

A solve of a week that has a published schedule pins the tasks agreed with a person (accepted,
checked in, completed or confirmed), keeps every declined volunteer off the occurrence they
declined, and offers nothing that starts before now (Asia/Shanghai) plus :data:`OFFER_NOTICE`:
earlier days are closed, and today's occurrences keep only the starts still ahead. The same
holds for a first solve of a week already under way. Offers not yet answered are kept as made
where that costs little (``SolveParams.keep_weight``), so few volunteers hear of a change. See
:mod:`matcher.pinning`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import community
from api.models import (
    Community,
    CommunityVersion,
    ScheduleRow,
    StreetOffice,
    TaskRow,
    VolunteerRow,
    session_community,
    sole_community,
)
from matcher.busy import Busy, margins, remaining_week, within_reach
from matcher.domain import Assignment, Day, Location, Problem, Volunteer, Week, format_hhmm
from matcher.settings import Settings

UNDER_WAY = ("accepted", "checked_in", "completed", "confirmed")  # agreed with a person
# A published task that holds its volunteer's time (api.replanning.STANDING): offered and not
# declined or cancelled.
HOLDING = ("offered", *UNDER_WAY)
# New tasks start at least this long after the solve: time to accept and to walk there.
OFFER_NOTICE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Commitments:
    """What a solve of a week must respect (arguments of :func:`matcher.solver.solve`)."""

    pinned: list[Assignment]
    offered: list[Assignment]  # kept as made where as good (SolveParams.keep_weight)
    forbidden: set[tuple[str, str, Day]]  # (volunteer_id, need_id, day)
    not_before: dt.datetime  # naive, Asia/Shanghai


def published_schedule(session: Session, week: str, *, exclude: int | None = None
                       ) -> ScheduleRow | None:
    """The published schedule of ``week`` (other than ``exclude``), if any."""
    query = select(ScheduleRow).where(ScheduleRow.week == week,
                                      ScheduleRow.status == "published")
    if exclude is not None:
        query = query.where(ScheduleRow.id != exclude)
    return session.scalars(query).one_or_none()


def _assignment(t: TaskRow) -> Assignment:
    return Assignment(t.need_id, Day(t.day), t.date, t.start, t.end, t.volunteer_id,
                      t.merchant_id, t.walk_min)


def commitments(session: Session, week: Week, now: dt.datetime) -> Commitments:
    """The work under way and the declines of ``week``'s published schedule, and the first
    moment anything new may start (``now`` on the community's clock, plus notice)."""
    not_before = now.astimezone(community.TZ).replace(tzinfo=None) + OFFER_NOTICE
    current = published_schedule(session, str(week))
    if current is None:
        return Commitments([], [], set(), not_before)
    tasks = session.scalars(select(TaskRow).where(TaskRow.schedule_id == current.id)).all()
    return Commitments(
        [_assignment(t) for t in tasks if t.state in UNDER_WAY],
        [_assignment(t) for t in tasks if t.state == "offered"],
        {(t.volunteer_id, t.need_id, Day(t.day)) for t in tasks if t.state == "declined"},
        not_before)


# Plain table statements: another community's rows, which a scoped session's criteria (its own
# community's ORM rows) do not reach, read without unscoping the session (as api.ledger).
SCHEDULES = ScheduleRow.__table__.c
TASKS = TaskRow.__table__.c
VOLUNTEERS = VolunteerRow.__table__.c
COMMUNITIES = Community.__table__.c
OFFICES = StreetOffice.__table__.c
VERSIONS = CommunityVersion.__table__.c


def own_community(session: Session) -> int:
    """The community ``session`` plans for (its scope, or the deployment's only one)."""
    return session_community(session) or sole_community(session)


def busy_elsewhere(session: Session, week: str, volunteer_ids: Collection[str],
                   community_id: int | None) -> dict[str, list[Busy]]:
    """Each volunteer's tasks of ``week`` holding her time in the published schedules of other
    communities than ``community_id`` (None: of every community)."""
    if not volunteer_ids:
        return {}
    rows = session.execute(
        select(TASKS.volunteer_id, TASKS.day, TASKS.start, TASKS.end, TASKS.merchant_id)
        .join(ScheduleRow.__table__, SCHEDULES.id == TASKS.schedule_id)
        .where(SCHEDULES.week == week, SCHEDULES.status == "published",
               *(() if community_id is None else (SCHEDULES.community_id != community_id,)),
               TASKS.state.in_(HOLDING),
               TASKS.volunteer_id.in_(sorted(volunteer_ids)))
        .order_by(TASKS.volunteer_id, TASKS.date, TASKS.start)).all()
    busy: dict[str, list[Busy]] = {}
    for volunteer_id, day, start, end, merchant_id in rows:
        busy.setdefault(volunteer_id, []).append(
            Busy(Day(day), start, end, merchant_id is not None))
    return busy


def _district_communities(session: Session, community_id: int) -> list[int]:
    """The other communities of ``community_id``'s district."""
    district = (select(OFFICES.district_id)
                .join(Community.__table__, COMMUNITIES.street_office_id == OFFICES.id)
                .where(COMMUNITIES.id == community_id).scalar_subquery())
    return list(session.scalars(
        select(COMMUNITIES.id).join(StreetOffice.__table__,
                                    COMMUNITIES.street_office_id == OFFICES.id)
        .where(OFFICES.district_id == district, COMMUNITIES.id != community_id)
        .order_by(COMMUNITIES.id)))


def shared_problem(session: Session, week: Week, settings: Settings | None = None, *,
                   guests: Sequence[Volunteer] = ()) -> Problem:
    """The community's week as a solve or a re-plan sees it, with volunteers' weeks shared
    between communities.

    Its volunteers are its own, those of other communities of its district whose home lies
    within a circle of one of its needs (a straight-line prefilter; the circles decide), and any
    volunteer holding a task of its published schedule of the week (pinned work keeps its
    volunteer), and ``guests`` (:func:`api.community.guest_volunteers`: those holding tasks of
    a schedule not yet published). Each is the week left once her tasks in other communities'
    published schedules of the week are counted (:func:`matcher.busy.remaining_week`).
    """
    settings = settings or Settings()
    problem = community.load_problem(session, week)
    own = own_community(session)
    known = {v.id for v in problem.volunteers}
    places = [n.location for n in problem.needs]
    extra: list[Volunteer] = []
    others = _district_communities(session, own)
    if others and places:
        rows = session.execute(select(VolunteerRow.__table__)
                               .where(VOLUNTEERS.community_id.in_(others))
                               .order_by(VOLUNTEERS.volunteer_id)).all()
        rows = [row for row in rows if row.volunteer_id not in known]
        reach = within_reach([Location(row.lat, row.lon) for row in rows], places, settings)
        near = [row for row, close in zip(rows, reach, strict=True) if close]
        extra += community.volunteers_of_rows(near)
        known.update(v.id for v in extra)
    published = session.scalar(select(SCHEDULES.id).where(
        SCHEDULES.week == str(week), SCHEDULES.status == "published",
        SCHEDULES.community_id == own))
    holders = [] if published is None else community.guest_volunteers(session, published)
    for volunteer in [*guests, *holders]:
        if volunteer.id not in known:
            extra.append(volunteer)
            known.add(volunteer.id)
    legs = any(n.merchant_service is not None for n in problem.needs)
    volunteers = weeks_left(session, str(week), [*problem.volunteers, *extra], own, legs,
                            settings)
    return Problem(week, volunteers, problem.needs, problem.merchants)


def weeks_left(session: Session, week: str, volunteers: Sequence[Volunteer],
               community_id: int | None, merchant_legs: bool, settings: Settings
               ) -> list[Volunteer]:
    """Each volunteer's week less her tasks of ``week`` in the published schedules of other
    communities than ``community_id`` (None: of every community), as
    :func:`matcher.busy.remaining_week` counts them."""
    busy = busy_elsewhere(session, week, [v.id for v in volunteers], community_id)
    return [remaining_week(v, busy.get(v.id, ()), settings.circle_min, merchant_legs)
            for v in volunteers]


def elsewhere_versions(session: Session, week: str, community_id: int
                       ) -> tuple[tuple[int, ...], ...]:
    """What :func:`shared_problem` reads of other communities, as numbers that move with it:
    the versions of the other communities of the district (their volunteers) and the tasks'
    versions of every other community's published schedule of ``week`` (their tasks, and which
    schedule is published). Read before the rows, as every version."""
    others = _district_communities(session, community_id)
    communities = session.execute(
        select(VERSIONS.community_id, VERSIONS.version)
        .where(VERSIONS.community_id.in_(others)).order_by(VERSIONS.community_id)).all()
    schedules = session.execute(
        select(SCHEDULES.id, SCHEDULES.tasks_version)
        .where(SCHEDULES.week == week, SCHEDULES.status == "published",
               SCHEDULES.community_id != community_id).order_by(SCHEDULES.id)).all()
    return (tuple(v for row in communities for v in row), tuple(v for row in schedules
                                                                for v in row))


def busy_clashes(session: Session, schedule: ScheduleRow,
                 settings: Settings | None = None) -> list[dict[str, Any]]:
    """The tasks of the solved ``schedule`` that its volunteers cannot take given their tasks
    in other communities' published schedules of the week, as a refusal lists them: ``busy``
    when too close to one of those to walk between (the margins the solve plans with,
    :func:`matcher.busy.margins`), ``hours`` when they take her over her weekly cap.

    Locks the plan's volunteers' rows first (PostgreSQL; in id order, so two publications wait
    for each other rather than deadlock): two communities publishing plans that share a
    volunteer then check one after the other, and the second sees the first's tasks. SQLite
    serialises every writing transaction already.
    """
    settings = settings or Settings()
    planned = session.execute(
        select(TASKS.volunteer_id, TASKS.day, TASKS.date, TASKS.start, TASKS.end,
               TASKS.merchant_id)
        .where(TASKS.schedule_id == schedule.id, TASKS.state.in_(("proposed", *HOLDING)))
        .order_by(TASKS.date, TASKS.start, TASKS.volunteer_id)).all()
    ids = sorted({row.volunteer_id for row in planned})
    if not ids:
        return []
    caps = {vid: round(60 * hours) for vid, hours in session.execute(
        select(VOLUNTEERS.volunteer_id, VOLUNTEERS.max_hours_week)
        .where(VOLUNTEERS.volunteer_id.in_(ids)).order_by(VOLUNTEERS.volunteer_id)
        .with_for_update())}
    busy = busy_elsewhere(session, schedule.week, ids, schedule.community_id)
    used = {vid: sum(b.minutes for b in tasks) for vid, tasks in busy.items()}
    clashes: list[dict[str, Any]] = []
    for row in planned:
        problem = None
        for other in busy.get(row.volunteer_id, ()):
            before, after = margins(other, settings.circle_min, row.merchant_id is not None)
            if other.day.value == row.day and not (row.end + before <= other.start
                                                   or other.end + after <= row.start):
                problem = "busy"
                break
        if row.volunteer_id in busy:
            used[row.volunteer_id] += row.end - row.start
            if problem is None and used[row.volunteer_id] > caps.get(row.volunteer_id, 0):
                problem = "hours"
        if problem is not None:
            clashes.append({"volunteer_id": row.volunteer_id, "day": row.day,
                            "date": row.date.isoformat(), "start": format_hhmm(row.start),
                            "end": format_hhmm(row.end), "problem": problem})
    return clashes
