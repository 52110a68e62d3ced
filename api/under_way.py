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
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import community
from api.models import ScheduleRow, TaskRow
from matcher.domain import Assignment, Day, Week

UNDER_WAY = ("accepted", "checked_in", "completed", "confirmed")  # agreed with a person
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
