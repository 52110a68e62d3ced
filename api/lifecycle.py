"""The life of a task, written once: its states, the actions that move it, who may take each
and when; and the services the routes call (they only authorise and answer).

::

    proposed -publish-> offered -accept-> accepted -check in-> checked_in -complete-> completed
    -confirm (credits points)-> confirmed; offered or accepted -decline-> declined (re-planned)
    or -cancel (a coordinator, or publishing over the week)-> cancelled

Time rules, on the community's clock (Asia/Shanghai, ``app.state.clock``):

* accept, decline and cancel only before the task starts;
* check in on the task's own date, from :data:`CHECK_IN_EARLY` before the start (never on
  another day, so never days early nor for a forgotten task of last week);
* complete after checking in, and not before the start;
* confirm only completed work whose start has passed (never a task dated in the future).

"At risk" is a mark, not a state (``TaskRow.at_risk``: the rule an edit of the community
broke). An at-risk task keeps its state; it cannot be accepted until a coordinator resolves it
(by an edit that makes it valid again, or by cancelling it), but what a volunteer already agreed
to stands: she may check in, complete and be credited, or decline, which clears the mark.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from api import calendar, replanning, timebank
from api.community import TZ, audit, notify
from api.errors import Problem, label
from api.models import (
    NeedRow,
    PaidSeat,
    ScheduleRow,
    TaskRow,
    in_community,
    session_community,
)
from api.replanning import assignment_of, pinned_with_versions
from api.security import Caller
from api.timebank import TimeRules
from matcher.domain import Day, format_hhmm
from matcher.i18n import N_, _

log = logging.getLogger(__name__)

CHECK_IN_EARLY = dt.timedelta(minutes=30)  # how long before the start a volunteer may check in
REPLANNING_LOCK = 0x4C4E  # PostgreSQL advisory lock class: re-planning a schedule ("LN")


class State(StrEnum):
    PROPOSED = "proposed"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class Action(StrEnum):
    PUBLISH = "publish"
    ACCEPT = "accept"
    DECLINE = "decline"
    CHECK_IN = "check_in"
    COMPLETE = "complete"
    CONFIRM = "confirm"
    CANCEL = "cancel"


class Actor(StrEnum):
    VOLUNTEER = "volunteer"  # the task's own volunteer, nobody else
    COORDINATOR = "coordinator"
    SYSTEM = "system"  # publishing a schedule


class When(StrEnum):
    ANY_TIME = "any time"
    BEFORE_START = "before the start"
    ON_THE_DAY = "on the task's date, from shortly before the start"
    AFTER_START = "after the start"


@dataclass(frozen=True, slots=True)
class Rule:
    """An action: the states it leaves, the state it makes, who takes it and when."""

    sources: frozenset[State]
    target: State
    actor: Actor
    when: When
    refused_at_risk: bool = False


RULES: dict[Action, Rule] = {
    Action.PUBLISH: Rule(frozenset({State.PROPOSED}), State.OFFERED, Actor.SYSTEM,
                         When.ANY_TIME),
    Action.ACCEPT: Rule(frozenset({State.OFFERED}), State.ACCEPTED, Actor.VOLUNTEER,
                        When.BEFORE_START, refused_at_risk=True),
    Action.DECLINE: Rule(frozenset({State.OFFERED, State.ACCEPTED}), State.DECLINED,
                         Actor.VOLUNTEER, When.BEFORE_START),
    Action.CHECK_IN: Rule(frozenset({State.ACCEPTED}), State.CHECKED_IN, Actor.VOLUNTEER,
                          When.ON_THE_DAY),
    Action.COMPLETE: Rule(frozenset({State.CHECKED_IN}), State.COMPLETED, Actor.VOLUNTEER,
                          When.AFTER_START),
    Action.CONFIRM: Rule(frozenset({State.COMPLETED}), State.CONFIRMED, Actor.COORDINATOR,
                         When.AFTER_START),
    Action.CANCEL: Rule(frozenset({State.OFFERED, State.ACCEPTED}), State.CANCELLED,
                        Actor.COORDINATOR, When.BEFORE_START),
}
UPCOMING = frozenset(State(s) for s in replanning.UPCOMING)  # published, not yet done


class Refusal(str):
    """Why an action is refused, in the current language, with the stable ``code`` a program
    branches on (the problem's ``code``)."""

    code: str

    def __new__(cls, code: str, why: str) -> Refusal:
        refused = super().__new__(cls, why)
        refused.code = code
        return refused


def refusal(action: Action, state: State, *, at_risk: str | None, start: dt.datetime,
            end: dt.datetime, now: dt.datetime) -> Refusal | None:
    """Why ``action`` may not be taken on a task in ``state`` at ``now`` (None: it may), in the
    current language.

    ``start`` and ``end`` are the task's, aware; ``now`` is aware (any zone). The task's own
    date is read in Asia/Shanghai.
    """
    rule = RULES[action]
    # Each sentence gets the action twice: English says "can be declined", Chinese "婉拒".
    words = {"done": _DONE[action], "verb": _(_VERBS[action])}
    if state not in rule.sources:
        allowed = _(" or ").join(label(s) for s in sorted(rule.sources))
        return Refusal("task_state_conflict", _(
            "the task is {state}; only a task that is {allowed} can be {done}").format(
            state=label(state), allowed=allowed, **words))
    if rule.refused_at_risk and at_risk:
        return Refusal("task_at_risk", _(
            "the task is at risk ({at_risk}); a coordinator must resolve it before it can be "
            "{done}").format(at_risk=at_risk, **words))
    local = now.astimezone(TZ)
    starts = f"{start.astimezone(TZ):%Y-%m-%d %H:%M}"
    if rule.when is When.BEFORE_START and local >= start:
        return Refusal("task_started", _(
            "the task started at {starts}; it can no longer be {done}").format(
            starts=starts, **words))
    if rule.when is When.AFTER_START and local < start:
        return Refusal("task_not_started", _(
            "the task starts at {starts}; it cannot be {done} before it starts").format(
            starts=starts, **words))
    if rule.when is When.ON_THE_DAY:
        opens = f"{(start - CHECK_IN_EARLY).astimezone(TZ):%H:%M}"
        if local.date() != start.astimezone(TZ).date():
            return Refusal("check_in_closed", _(
                "the task is on {date}; check in on that day, from {opens}").format(
                date=f"{start.astimezone(TZ):%Y-%m-%d}", opens=opens))
        if local < start - CHECK_IN_EARLY:
            return Refusal("check_in_closed", _(
                "the task starts at {starts}; check in from {opens}").format(
                starts=starts, opens=opens))
    return None


# What each action makes of a task, as an English sentence ends ("it cannot be declined"), and
# the verb the Chinese sentences use instead.
_DONE = {Action.PUBLISH: "offered", Action.ACCEPT: "accepted", Action.DECLINE: "declined",
         Action.CHECK_IN: "checked in", Action.COMPLETE: "completed",
         Action.CONFIRM: "confirmed", Action.CANCEL: "cancelled"}
_VERBS = {Action.PUBLISH: N_("offer"), Action.ACCEPT: N_("accept"),
          Action.DECLINE: N_("decline"), Action.CHECK_IN: N_("check in"),
          Action.COMPLETE: N_("complete"), Action.CONFIRM: N_("confirm"),
          Action.CANCEL: N_("cancel")}


def task_times(task: TaskRow) -> tuple[dt.datetime, dt.datetime]:
    """A task's start and end, aware, in Asia/Shanghai."""
    midnight = dt.datetime.combine(task.date, dt.time(0, 0), TZ)
    return midnight + dt.timedelta(minutes=task.start), midnight + dt.timedelta(minutes=task.end)


def system_clock() -> dt.datetime:
    return dt.datetime.now(TZ)


async def current_time(request: Request) -> dt.datetime:
    """The community's clock (``app.state.clock``; tests set their own)."""
    now: dt.datetime = request.app.state.clock()
    return now


Now = Annotated[dt.datetime, Depends(current_time)]


# --- services: each loads, checks through the rules above, changes, audits and commits ---

def _load(session: Session, task_id: int, user: Caller | None) -> TaskRow:
    """The task, locked for the change; with ``user``, only that volunteer's own (others 404,
    so nobody learns which tasks exist)."""
    task = session.get(TaskRow, task_id, with_for_update=True)
    if task is None or (user is not None and task.volunteer_id != user.volunteer_id):
        raise Problem(404, (_("you have no task {task}") if user else _("no task {task}"))
                      .format(task=task_id))
    schedule = session.get(ScheduleRow, task.schedule_id)
    assert schedule is not None  # a task belongs to its schedule (foreign key)
    if schedule.status != "published":
        raise Problem(409, _("task {task} belongs to a schedule that is {status}").format(
            task=task_id, status=label(schedule.status)), code="schedule_not_published")
    return task


@contextmanager
def her_task_community(session: Session, user: Caller, task_id: int) -> Iterator[None]:
    """Inside the block ``session`` works in the community of the schedule of ``task_id``
    when the task is the calling volunteer's (a volunteer registered in one community may
    serve a neighbouring one's need inside her circle): her request is scoped to her own
    community, the task belongs to the other. Any other task leaves the scope as it is, so it
    stays a 404 that says nothing. A plain statement: no row of the other community enters
    the session before the scope is the task's."""
    tasks, schedules = TaskRow.__table__.c, ScheduleRow.__table__.c
    found = session.execute(select(schedules.community_id)
                            .join_from(TaskRow.__table__, ScheduleRow.__table__,
                                       schedules.id == tasks.schedule_id)
                            .where(tasks.id == task_id,
                                   tasks.volunteer_id == user.volunteer_id)).scalar()
    home = session_community(session)
    if found is None or home is None or found == home:
        yield
        return
    with in_community(session, found):
        yield


def _move(session: Session, task: TaskRow, action: Action, user: Caller,
          now: dt.datetime) -> None:
    start, end = task_times(task)
    why = refusal(action, State(task.state), at_risk=task.at_risk, start=start, end=end, now=now)
    if why is not None:
        raise Problem(409, _("task {task}: {why}").format(task=task.id, why=why), code=why.code)
    task.state = RULES[action].target.value
    calendar.task_changed(task)
    if task.state not in UPCOMING:  # resolved: declined, cancelled or done
        task.at_risk, task.at_risk_since = None, None
    if action is not Action.CONFIRM:  # a confirmation is audited with its points
        audit(session, user, task.state, f"task:{task.id}")


def system_step(task: TaskRow, action: Action) -> None:
    """A change the system makes for a coordinator's publication (a planned task offered, an
    offer the new plan no longer holds cancelled): the same table of states, no clock rule,
    and the calendar hears of it. The caller notifies, audits and commits."""
    rule = RULES[action]
    if State(task.state) not in rule.sources:
        raise Problem(409, _("task {task} is {state}; it cannot be {done}").format(
            task=task.id, state=label(task.state), done=_DONE[action],
            verb=_(_VERBS[action])), code="task_state_conflict")
    task.state = rule.target.value
    calendar.task_changed(task)


def volunteer_step(session: Session, user: Caller, task_id: int, action: Action,
                   now: dt.datetime) -> TaskRow:
    """Accept, check in or complete one of the caller's own tasks."""
    assert RULES[action].actor is Actor.VOLUNTEER and action is not Action.DECLINE
    with her_task_community(session, user, task_id):
        task = _load(session, task_id, user)
        _move(session, task, action, user, now)
        if action is Action.COMPLETE:
            notify(session, "coordinators", "task.completed", {"task_id": task.id})
        session.commit()
    return task


def cancel(session: Session, user: Caller, task_id: int, now: dt.datetime) -> TaskRow:
    """A coordinator takes a task away (e.g. one at risk); its volunteer is told."""
    task = _load(session, task_id, None)
    _move(session, task, Action.CANCEL, user, now)
    notify(session, f"volunteer:{task.volunteer_id}", "task.cancelled",
           {"task_id": task.id, "need_id": task.need_id, "date": str(task.date)})
    session.commit()
    return task


@dataclass(frozen=True, slots=True)
class Declined:
    task: TaskRow
    replaced: bool  # offered to another volunteer; else the coordinators were told


def decline(session: Session, state: Any, user: Caller, task_id: int, reason: str,
            now: dt.datetime) -> Declined:
    """:func:`_decline` in the community of the task when it is the caller's (see
    :func:`her_task_community`)."""
    with her_task_community(session, user, task_id):
        return _decline(session, state, user, task_id, reason, now)


def _decline(session: Session, state: Any, user: Caller, task_id: int, reason: str,
             now: dt.datetime) -> Declined:
    """Decline and re-plan the occurrence, all or nothing: the decline, the offer to the best
    volunteer who is free under every rule (or the coordinators' alert) and their outbox events
    commit together; if re-planning fails, nothing is recorded and a 409 says so.

    Declines of one schedule are re-planned one at a time (SQLite serialises writers anyway;
    on PostgreSQL a transaction-scoped advisory lock per schedule, taken before the task's row
    lock), so two at once never offer one volunteer two overlapping places."""
    schedule_id = session.scalar(select(TaskRow.schedule_id).where(TaskRow.id == task_id))
    if schedule_id is not None and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(CAST(:kind AS integer), "
                             "CAST(:schedule AS integer))"),
                        {"kind": REPLANNING_LOCK, "schedule": schedule_id})
    task = _load(session, task_id, user)
    start, end = task_times(task)
    why = refusal(Action.DECLINE, State(task.state), at_risk=task.at_risk, start=start,
                  end=end, now=now)
    if why is not None:
        raise Problem(409, _("task {task}: {why}").format(task=task.id, why=why), code=why.code)
    schedule = session.get(ScheduleRow, task.schedule_id)
    assert schedule is not None  # foreign key
    declined_before = set(session.scalars(select(TaskRow.volunteer_id).where(
        TaskRow.schedule_id == task.schedule_id, TaskRow.need_id == task.need_id,
        TaskRow.day == task.day, TaskRow.state == State.DECLINED.value)))
    try:
        week, before = pinned_with_versions(session, state, schedule, without={task.id})
        day = Day(task.day)
        fits = [] if (task.need_id, day) not in week.occ_index else week.recommend(
            task.need_id, day, exclude=declined_before | {task.volunteer_id}, free_only=True)
    except Exception as exc:  # any failure: refuse the whole decline, keep the cause in the log
        log.exception("re-planning the decline of task %s failed", task.id)
        session.rollback()
        raise Problem(409, _("task {task} could not be re-planned ({why}); nothing was "
                             "recorded: try again later or tell a coordinator").format(
            task=task.id, why=exc), code="replanning_failed") from exc
    _move(session, task, Action.DECLINE, user, now)
    task.decline_reason = reason
    if fits:
        fit = fits[0]
        need = session.get(NeedRow, task.need_id)
        assert need is not None  # foreign key
        replacement = TaskRow(schedule_id=task.schedule_id, need_id=task.need_id, day=task.day,
                              date=task.date, start=fit.start,
                              end=fit.start + need.duration_min, volunteer_id=fit.volunteer_id,
                              merchant_id=fit.merchant_id, walk_min=fit.walk_min,
                              state=State.OFFERED.value)
        session.add(replacement)
        session.flush()
        notify(session, f"volunteer:{fit.volunteer_id}", "task.offered",
               {"task_id": replacement.id, "need_id": task.need_id, "date": str(task.date),
                "start": format_hhmm(fit.start), "replaces": task.id})
    else:
        replacement = None
        notify(session, "coordinators", "occurrence.uncovered",
               {"need_id": task.need_id, "day": task.day, "declined_task": task.id})
    try:
        session.flush()
        after = state.candidates.versions(session, schedule)  # with this decline's raise
        offered = None if replacement is None else (replacement.id,
                                                    assignment_of(replacement))
        session.commit()
    except (IntegrityError, OperationalError) as exc:
        session.rollback()
        raise Problem(409, _("task {task} changed while it was being declined; nothing was "
                             "recorded: try again").format(task=task_id),
                      code="concurrent_change") from exc
    state.candidates.declined(schedule.id, before, after, task_id, offered)
    return Declined(task, bool(fits))


def confirm(session: Session, user: Caller, task_id: int, points_per_minute: int,
            now: dt.datetime, rules: TimeRules | None = None
            ) -> tuple[TaskRow, int, dict[str, Any]]:
    """Confirm completed work and credit its points and its time-bank minutes (drawn from the
    requester's time account for a time-bank need), once per task and at most once per seat of
    its occurrence (the ``paid_seats`` key refuses a second payment even from a racing request).
    The caller commits (inside its idempotency record)."""
    from api.ledger import ISSUER, transfer_home

    task = _load(session, task_id, None)
    _move(session, task, Action.CONFIRM, user, now)
    need = session.get(NeedRow, task.need_id)
    assert need is not None  # foreign key
    points = (task.end - task.start) * points_per_minute
    seat = _paid_seat(session, task, need.volunteers_needed)
    # Issued by this community (its books show the cost), credited where she redeems: in
    # her own community when she served here from another (api.ledger.transfer_home).
    seat.transfer = transfer_home(session, ISSUER, ("volunteer", task.volunteer_id), points,
                                  f"task {task_id} {task.need_id} {task.date}", at=now)
    time = timebank.credit_task(session, task, need, rules or TimeRules(), now)
    notify(session, f"volunteer:{task.volunteer_id}", "points.credited",
           {"task_id": task_id, "points": points, "minutes": time["minutes"]})
    audit(session, user, "confirm", f"task:{task_id}",
          f"{points} points, {time['minutes']} minutes paid by {time['paid_by']}")
    return task, points, time


def _paid_seat(session: Session, task: TaskRow, seats: int) -> PaidSeat:
    """Claim a free paid seat of the task's occurrence, or refuse with 409."""
    paid = session.scalar(select(func.count()).select_from(PaidSeat).where(
        PaidSeat.need_id == task.need_id, PaidSeat.date == task.date)) or 0
    for number in range(paid, seats):
        seat = PaidSeat(need_id=task.need_id, date=task.date, seat=number, task_id=task.id,
                        transfer="")
        try:
            with session.begin_nested():  # a racing confirmation took it: try the next seat
                session.add(seat)
                session.flush()
        except IntegrityError:
            continue
        return seat
    raise Problem(409, _("task {task}: {need} on {date} was already paid for its {seats} "
                         "volunteer(s)").format(task=task.id, need=task.need_id, date=task.date,
                                                seats=seats), code="already_paid")
