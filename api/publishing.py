"""Re-publishing a week under way (``supersede``) without disturbing the work.

The re-solve already kept the work under way and the declines (:mod:`api.under_way`).

Publishing compares the new plan with the published schedule **as it is at publish time**
(:func:`plan_changes`, which the preview ``GET /v1/schedules/{id}/changes`` shows as well):

* ``kept``: a published task the plan has identically (same volunteer, occurrence, start and
  merchant). The row itself, with its id and state, moves to the new schedule: volunteers'
  apps, the ledger and the audit keep their references, and an offered task is not offered
  twice.
* ``moved``: an offered task the plan gives the same volunteer at another start or merchant;
  the row moves with its new time, stays offered, and the volunteer is told.
* ``new``: offered, with a notification.
* ``dropped``: a published offered task the plan no longer has; cancelled, with a
  notification (and the merchant's order cancelled).
* ``conflicts``: work under way (or a decline) the plan does not respect, because it happened
  after the solve read the week. Publishing then refuses with 409: re-solve. Refusing is the
  safe choice: anything else would move or duplicate work a person agreed to.

Declined tasks move to the new schedule unchanged, so the decline holds in later re-solves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import calendar, lifecycle
from api.community import audit, notify
from api.errors import Problem
from api.lifecycle import Action
from api.models import ScheduleRow, TaskRow
from api.replanning import broken_tasks
from api.security import Caller
from api.under_way import UNDER_WAY, busy_clashes, published_schedule
from api.weekly import commit_published, mark_published
from matcher.domain import format_hhmm
from matcher.i18n import _

STALE = "re-solve: the week changed since this plan was made"


@dataclass
class Changes:
    """What publishing a plan does to the published week (see the module's docstring)."""

    kept: list[tuple[TaskRow, TaskRow]] = field(default_factory=list)  # (published, planned)
    moved: list[tuple[TaskRow, TaskRow]] = field(default_factory=list)
    new: list[TaskRow] = field(default_factory=list)
    dropped: list[TaskRow] = field(default_factory=list)
    declined: list[TaskRow] = field(default_factory=list)  # carried over unchanged
    conflicts: list[tuple[TaskRow, str]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The changes as the preview shows them."""
        return {
            "kept": [_task(old) for old, _ in self.kept],
            "moved": [_task(old) | {"to_start": format_hhmm(new.start),
                                    "to_end": format_hhmm(new.end),
                                    "to_merchant_id": new.merchant_id}
                      for old, new in self.moved],
            "new": [_task(t) for t in self.new],
            "dropped": [_task(t) for t in self.dropped],
            "conflicts": [_task(t) | {"problem": why} for t, why in self.conflicts],
        }


def _task(t: TaskRow) -> dict[str, Any]:
    return {"task_id": t.id, "need_id": t.need_id, "day": t.day, "date": t.date.isoformat(),
            "start": format_hhmm(t.start), "end": format_hhmm(t.end),
            "volunteer_id": t.volunteer_id, "merchant_id": t.merchant_id, "state": t.state}


def plan_changes(session: Session, state: Any, schedule: ScheduleRow, *,
                 lock: bool = False) -> Changes:
    """Compare the solved ``schedule`` with its week's published schedule and community, as
    stored now: a task the plan would offer afresh that an edit since the solve broke is a
    conflict too (``state`` is the app's, for the week's options).

    With ``lock`` the published tasks are locked until the transaction ends (PostgreSQL), so
    no accept or check-in slips in between this comparison and the publication.
    """
    planned = session.scalars(select(TaskRow).where(TaskRow.schedule_id == schedule.id)
                              .order_by(TaskRow.date, TaskRow.start, TaskRow.id)).all()
    changes = Changes()
    current = published_schedule(session, schedule.week, exclude=schedule.id)
    if current is None:
        changes.new = list(planned)
        _broken_offers(session, state, schedule, changes)
        return changes
    query = select(TaskRow).where(TaskRow.schedule_id == current.id).order_by(
        TaskRow.date, TaskRow.start, TaskRow.id)
    published = session.scalars(query.with_for_update() if lock else query).all()
    by_key: dict[tuple[str, str, str], list[TaskRow]] = defaultdict(list)
    for t in planned:
        by_key[t.need_id, t.day, t.volunteer_id].append(t)
    matched: set[int] = set()
    for old in published:
        key = (old.need_id, old.day, old.volunteer_id)
        same = next((t for t in by_key.get(key, []) if t.id not in matched and
                     (t.start, t.end, t.merchant_id) == (old.start, old.end, old.merchant_id)),
                    None)
        other = next((t for t in by_key.get(key, []) if t.id not in matched), None)
        if old.state == "declined":
            changes.declined.append(old)
            if other is not None:
                changes.conflicts.append((old, f"{old.volunteer_id} declined it; {STALE}"))
        elif old.state in UNDER_WAY:
            if same is None:
                changes.conflicts.append((old, f"{old.state} but not in this plan; {STALE}"))
            else:
                changes.kept.append((old, same))
                matched.add(same.id)
        elif old.state == "offered":
            if same is not None:
                changes.kept.append((old, same))
                matched.add(same.id)
            elif other is not None:
                changes.moved.append((old, other))
                matched.add(other.id)
            else:
                changes.dropped.append(old)
    changes.new = [t for t in planned if t.id not in matched]
    _broken_offers(session, state, schedule, changes)
    return changes


def _broken_offers(session: Session, state: Any, schedule: ScheduleRow,
                   changes: Changes) -> None:
    """Offers the plan would make (new, or moved to another start) that break a rule of the
    community as it is now become conflicts. Work kept as it is keeps its own at-risk mark."""
    broken = broken_tasks(session, state, schedule)
    for planned in [*changes.new, *(new for _old, new in changes.moved)]:
        if planned.id in broken:
            changes.conflicts.append((planned, f"{broken[planned.id]}; the community changed "
                                      f"since this plan was made: {STALE}"))


def publish_schedule(session: Session, state: Any, user: Caller, schedule: ScheduleRow,
                     supersede: bool) -> Changes:
    """Publish ``schedule`` atomically, carrying the published week's work over (see the
    module's docstring). Raises 409 when the plan conflicts with the week as it is now."""
    current = published_schedule(session, schedule.week, exclude=schedule.id)
    if schedule.status != "solved" or (current is not None and not supersede):
        mark_published(session, ScheduleRow, schedule, supersede)  # refuses with its 409
    clashes = busy_clashes(session, schedule)
    if clashes:
        # Another community published work of the same volunteers since this plan was solved.
        raise Problem(409, _("re-solve: {n} task(s) of this plan take volunteers who are busy "
                             "then in another community's published week, or over their "
                             "weekly hours").format(n=len(clashes)),
                      errors=clashes, code="volunteer_busy_elsewhere")
    changes = plan_changes(session, state, schedule, lock=True)
    if changes.conflicts:
        # The plan predates work agreed since: publishing it would move or duplicate that work.
        raise Problem(409, _("re-solve: the week changed since this plan was made: {n} "
                             "published task(s) conflict with it").format(
            n=len(changes.conflicts)), errors=changes.view()["conflicts"], code="plan_stale")
    mark_published(session, ScheduleRow, schedule, supersede)
    for old, planned in changes.kept:
        session.delete(planned)
        old.schedule_id = schedule.id
    for old, planned in changes.moved:
        session.delete(planned)
        old.schedule_id = schedule.id
        old.start, old.end, old.merchant_id, old.walk_min = \
            planned.start, planned.end, planned.merchant_id, planned.walk_min
        calendar.task_changed(old)
        notify(session, f"volunteer:{old.volunteer_id}", "task.moved",
               {"task_id": old.id, "need_id": old.need_id, "date": str(old.date),
                "start": format_hhmm(old.start)})
        if old.merchant_id:
            notify(session, f"merchant:{old.merchant_id}", "order.scheduled",
                   {"task_id": old.id, "need_id": old.need_id, "date": str(old.date),
                    "start": format_hhmm(old.start)})
    for old in changes.declined:
        old.schedule_id = schedule.id
    for old in changes.dropped:
        lifecycle.system_step(old, Action.CANCEL)
        notify(session, f"volunteer:{old.volunteer_id}", "task.cancelled",
               {"task_id": old.id, "need_id": old.need_id, "date": str(old.date)})
        if old.merchant_id:
            notify(session, f"merchant:{old.merchant_id}", "order.cancelled",
                   {"task_id": old.id, "need_id": old.need_id, "date": str(old.date)})
    for task in changes.new:
        lifecycle.system_step(task, Action.PUBLISH)
        notify(session, f"volunteer:{task.volunteer_id}", "task.offered",
               {"task_id": task.id, "need_id": task.need_id, "date": str(task.date),
                "start": format_hhmm(task.start)})
        if task.merchant_id:
            notify(session, f"merchant:{task.merchant_id}", "order.scheduled",
                   {"task_id": task.id, "need_id": task.need_id, "date": str(task.date),
                    "start": format_hhmm(task.start)})
    audit(session, user, "publish", f"schedule:{schedule.id}",
          f"{len(changes.kept)} kept, {len(changes.moved)} moved, {len(changes.new)} new, "
          f"{len(changes.dropped)} dropped")
    commit_published(session, schedule)
    return changes
