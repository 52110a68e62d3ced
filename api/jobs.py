"""Work that runs outside requests: schedule solves and allocations (webhook deliveries are
``api.outbox``), in ``linli worker`` processes, never in the API's.

The database is the queue. A request only inserts a queued row; a worker claims it in one
short transaction with a lease (``claimed_until``, in the style of the outbox sender), renews
the lease while it works, writes progress to the row and stores the result only while the
claim is still its own. A client polls ``GET /v1/schedules/{id}`` (or ``/v1/allocations/{id}``).
A worker that dies leaves its lease to run out: the job is then claimed again (one retry), or
failed with a reason after its second worker stopped too. No start-up code touches jobs, so
any number of server and worker processes share one database. Cancelling a queued job is
immediate; a running one stops at its next progress report.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from api.community import coarse_area, columns_of, load_charity, load_problem
from api.db import Database
from api.models import (
    AllocationLineRow,
    AllocationRow,
    DistrictRunRow,
    JobColumns,
    NeedRow,
    Owned,
    ScheduleRow,
    ShortRow,
    SuggestionRow,
    TaskRow,
    UnmetRow,
    WeeklyJob,
)
from api.settings import ApiSettings
from api.under_way import commitments, shared_problem
from matcher.allocation import allocate, delivery_needs
from matcher.domain import Problem, Schedule, Week
from matcher.i18n import _
from matcher.params import SolveParams
from matcher.partners import partner_rows, suggest_partners
from matcher.recruit import suggest_recruits, when_free
from matcher.settings import Settings
from matcher.solver import solve
from matcher.travel import TravelTimes, WalkingNetwork

log = logging.getLogger("linli.jobs")


class Networks:
    """The street network, loaded once per process (it takes a second)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._network: WalkingNetwork | None = None
        self._lock = threading.Lock()

    def get(self) -> WalkingNetwork | None:
        if self.path is None:
            return None
        with self._lock:
            if self._network is None:
                self._network = WalkingNetwork.from_file(self.path)
            return self._network


Job = WeeklyJob
AnyJob = JobColumns  # a job of any table the worker runs (RUNNERS)
MAX_ATTEMPTS = 2  # a job whose worker stopped is retried once


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobStopped(Exception):  # noqa: N818 - a stop, not an error
    """Raised from a job's progress report to stop it: ``cancelled`` (someone asked),
    ``released`` (its worker is shutting down: the job goes back in line) or ``lost`` (the
    lease ran out and the job is no longer this worker's)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claim:
    """A job a worker holds the lease on."""

    cls: type[AnyJob]
    id: int
    attempt: int
    week: str
    # The job's community: its runner's sessions see only its rows (None: a district run,
    # whose runner scopes a session to each community in turn).
    community_id: int | None


def claim_job(db: Database, worker: str, now: dt.datetime, lease: dt.timedelta,
              error: str = "") -> Claim | None:
    """Take the oldest job waiting (queued, or running under a lease that ran out), in one short
    transaction; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` so workers in other processes take
    different jobs, on SQLite the transaction is the single writer (``BEGIN IMMEDIATE``).

    A job found running under an expired lease lost its worker: it is retried (attempt two),
    or failed with ``error`` when that was its second attempt; cancelled if that was asked."""
    with db.session() as session, session.begin():
        for cls in RUNNERS:
            while True:
                row = session.scalars(
                    select(cls)
                    .where(or_(cls.status == "queued",
                               and_(cls.status == "running",
                                    or_(cls.claimed_until.is_(None), cls.claimed_until <= now))))
                    .order_by(cls.id).limit(1).with_for_update(skip_locked=True)).first()
                if row is None:
                    break
                if row.status == "running":
                    log.warning("%s %s: worker %s stopped (attempt %s)", cls.__tablename__,
                                row.id, row.worker, row.attempts)
                    if row.cancel_requested or row.attempts >= MAX_ATTEMPTS:
                        row.status = "cancelled" if row.cancel_requested else "failed"
                        row.error = None if row.cancel_requested else error
                        row.claimed_until, row.finished_at = None, now
                        session.flush()
                        continue
                row.status, row.progress = "running", "reading the data"
                row.attempts += 1
                row.worker, row.claimed_until = worker, now + lease
                return Claim(cls, row.id, row.attempts, row.week,
                             row.community_id if isinstance(row, Owned) else None)
    return None


class Running:
    """A claimed job as its runner sees it: its week, progress reports (which renew the lease
    and stop the job when it was cancelled, released or lost) and the row to store results on.

    Every write is fenced: it applies only while the row is still this worker's claim (same
    worker, same attempt, running), so a worker that lost its lease can never overwrite the
    work of the one that took the job over."""

    def __init__(self, db: Database, claim: Claim, worker: str, lease: dt.timedelta,
                 stopping: threading.Event) -> None:
        self.db, self.claim, self.worker, self.lease = db, claim, worker, lease
        self.stopping = stopping
        self.week = Week.parse(claim.week)

    def owned(self) -> ColumnElement[bool]:
        cls = self.claim.cls
        return and_(cls.id == self.claim.id, cls.worker == self.worker,
                    cls.attempts == self.claim.attempt, cls.status == "running")

    def renew(self, **values: Any) -> bool | None:
        """Extend the lease (and set ``values``); whether a cancel was asked, None when the job
        is no longer this worker's."""
        cls = self.claim.cls
        with self.db.session() as session, session.begin():
            return session.scalar(update(cls).where(self.owned())
                                  .values(claimed_until=utcnow() + self.lease, **values)
                                  .returning(cls.cancel_requested))

    def progress(self, message: str, **values: Any) -> None:
        """Report ``message`` (and set ``values``); stops the job as :meth:`renew` says."""
        cancel = self.renew(progress=message, **values)
        if cancel is None:
            raise JobStopped("lost")
        if cancel:
            raise JobStopped("cancelled")
        if self.stopping.is_set():
            raise JobStopped("released")

    def row(self, session: Session) -> AnyJob:
        """The job's row, locked, to store the results on (in the caller's transaction)."""
        row = session.scalars(select(self.claim.cls).where(self.owned())
                              .with_for_update()).one_or_none()
        if row is None:
            raise JobStopped("lost")
        if row.cancel_requested:
            raise JobStopped("cancelled")
        return row

    def end(self, **values: Any) -> None:
        """Leave the job in its final state (or back in line), if it is still ours."""
        with self.db.session() as session, session.begin():
            session.execute(update(self.claim.cls).where(self.owned())
                            .values(claimed_until=None, **values))


def _finish(row: AnyJob, summary: dict[str, Any]) -> None:
    row.summary = summary
    row.status, row.progress = "solved", "done"
    row.claimed_until = None
    row.finished_at = utcnow()


@dataclass(frozen=True)
class JobContext:
    """What a job runs with: the database, the settings, the street network and the
    community's clock (the app's, so tests and the API agree on what "now" is)."""

    db: Database
    settings: ApiSettings
    networks: Networks
    clock: Callable[[], dt.datetime]


def run_schedule(ctx: JobContext, job: Running) -> None:
    """Solve one claimed schedule and store its tasks, unmet occurrences and summary.

    A week with a published schedule is re-solved around it: its work under way pinned, its
    declines honoured, nothing new before now (:mod:`api.under_way`). Volunteers' weeks are
    shared with other communities: each plans with what her tasks elsewhere leave, and
    neighbours within a circle serve too (:func:`api.under_way.shared_problem`)."""
    schedule_id, week, progress = job.claim.id, job.week, job.progress
    with ctx.db.session(job.claim.community_id) as session:
        problem = shared_problem(session, week)
        under_way = commitments(session, week, ctx.clock())
    progress("walking times")
    travel = TravelTimes.build(problem, Settings(), ctx.networks.get())
    params = SolveParams(time_limit_s=ctx.settings.solve_time_limit_s,
                         wall_clock=ctx.settings.solve_wall_clock)
    schedule = solve(problem, params, travel=travel, progress=progress,
                     pinned=under_way.pinned, forbidden=under_way.forbidden,
                     not_before=under_way.not_before, offered=under_way.offered)
    with ctx.db.session(job.claim.community_id) as session:
        row = job.row(session)
        store_schedule(session, schedule_id, schedule)
        _finish(row, schedule.summary())
        session.commit()


def store_schedule(session: Session, schedule_id: int, schedule: Schedule) -> None:
    """A solved week's tasks (proposed) and unmet occurrences, as rows of schedule
    ``schedule_id`` (in the caller's transaction): a community's own solve and a district
    run store them alike."""
    session.add_all(TaskRow(
        schedule_id=schedule_id, need_id=a.need_id, day=a.day.value, date=a.date,
        start=a.start, end=a.end, volunteer_id=a.volunteer_id,
        merchant_id=a.merchant_id, walk_min=a.walk_min, state="proposed")
        for a in schedule.assignments)
    session.add_all(UnmetRow(
        schedule_id=schedule_id, need_id=u.need_id, day=u.day.value, date=u.date,
        reason_code=u.reason.value, reason=u.detail, fix=u.fix)
        for u in schedule.unmet)


def run_allocation(ctx: JobContext, job: Running) -> None:
    """Allocate one claimed run and store its lines, short requests, summary and the deliveries
    as one-off needs of its week (which schedules see once the allocation is published)."""
    allocation_id, week, progress = job.claim.id, job.week, job.progress
    with ctx.db.session(job.claim.community_id) as session:
        problem = load_charity(session, week)
    progress(f"allocating {len(problem.donations)} donations to "
             f"{len(problem.requests)} requests")
    allocation = allocate(problem, Settings(), ctx.networks.get())
    requests = {r.id: r for r in problem.requests}
    with ctx.db.session(job.claim.community_id) as session:
        row = job.row(session)
        session.add_all(AllocationLineRow(
            allocation_id=allocation_id, donation_id=line.donation_id,
            request_id=line.request_id, category=requests[line.request_id].category,
            priority=requests[line.request_id].priority.value, quantity=line.quantity,
            walk_min=line.walk_min, delivery=line.delivery, date=line.date,
            **coarse_area(requests[line.request_id].location))
            for line in allocation.lines)
        session.add_all(ShortRow(
            allocation_id=allocation_id, request_id=s.request_id, category=s.category,
            priority=s.priority.value, requested=s.requested, allocated=s.allocated,
            reason_code=s.reason.value, reason=s.detail,
            **coarse_area(requests[s.request_id].location))
            for s in allocation.short)
        # Ids carry the run, so two runs of one week never collide.
        for need in delivery_needs(problem, allocation):
            values = columns_of("needs", replace(need, id=f"A{allocation_id}-{need.id}"))
            session.add(NeedRow(**values, only_week=str(week), allocation_id=allocation_id))
        _finish(row, allocation.summary())
        session.commit()


def run_suggestions(ctx: JobContext, job: Running) -> None:
    """Where to recruit (one skill) or whom to partner with for one claimed week, each
    suggestion checked by re-solving; the suggestions are stored as the job's summary."""
    with ctx.db.session(job.claim.community_id) as session:
        row = session.get(SuggestionRow, job.claim.id)
        assert row is not None, "a claimed job's row is there"
        kind, skill, k = row.kind, row.skill, row.k
        problem = load_problem(session, job.week)
    job.progress(f"solving the week and {k} re-solve(s)")
    params = SolveParams(time_limit_s=ctx.settings.solve_time_limit_s,
                         wall_clock=ctx.settings.solve_wall_clock)
    summary = suggestions_summary(problem, kind, skill, k, ctx.networks.get(), params)
    with ctx.db.session(job.claim.community_id) as session:
        _finish(job.row(session), summary)
        session.commit()


def suggestions_summary(problem: Problem, kind: str, skill: str | None, k: int,
                        network: WalkingNetwork | None,
                        params: SolveParams) -> dict[str, Any]:
    """The suggestions of one week as JSON: the ranked rows (places in WGS84), the sentences
    for people, and the figures (unmet, both coverage values, covered before and after)."""
    if kind == "partners":
        partners = suggest_partners(problem, k, Settings(), network, params)
        rows = partner_rows(partners)
        return {"kind": kind, "k": k, "unmet": partners.blocked,
                "by_service": partners.by_service, "greedy_cover": partners.greedy_cover,
                "exact_cover": partners.exact_cover, "covered_before": partners.covered_before,
                "covered_after": partners.covered_after, "proven": partners.proven,
                "suggestions": [row | {"sentence": text} for row, text
                                in zip(rows, partners.sentences(), strict=True)]}
    recruits = suggest_recruits(problem, str(skill), k, Settings(), network, params)
    return {"kind": kind, "k": k, "skill": skill, "unmet": recruits.unmet,
            "greedy_cover": recruits.greedy_cover, "exact_cover": recruits.exact_cover,
            "covered_before": recruits.covered_before,
            "covered_after": recruits.covered_after, "proven": recruits.proven,
            "suggestions": [{"rank": n, "near": s.street, "lat": round(s.place.lat, 6),
                             "lon": round(s.place.lon, 6), "when": when_free(s.availability),
                             "reaches": len(s.reaches), "adds": s.adds, "gain": s.gain}
                            for n, s in enumerate(recruits.suggestions, start=1)],
            "sentences": recruits.sentences()}


def run_district(ctx: JobContext, job: Running) -> None:
    """Solve the week of every community of a street office or district on the district path
    (:func:`api.district_runs.solve_run`)."""
    from api.district_runs import solve_run  # it builds on this module

    solve_run(ctx, job)


RUNNERS: dict[type[AnyJob], Callable[[JobContext, Running], None]] = {
    ScheduleRow: run_schedule, AllocationRow: run_allocation, SuggestionRow: run_suggestions,
    DistrictRunRow: run_district}


def execute(ctx: JobContext, claim: Claim, worker: str, stopping: threading.Event) -> str:
    """Run one claimed job to its end, renewing the lease in a heartbeat thread meanwhile (a
    solve reports progress only between its stages); returns how it ended."""
    job = Running(ctx.db, claim, worker, dt.timedelta(seconds=ctx.settings.job_lease_s),
                  stopping)
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(ctx.settings.job_lease_s / 3):
            try:
                job.renew()
            except Exception:  # the next beat (or the runner's own report) tries again
                log.exception("renewing the lease on %s %s failed", claim.cls.__tablename__,
                              claim.id)

    beat = threading.Thread(target=heartbeat, name="linli-job-lease", daemon=True)
    beat.start()
    what = f"{claim.cls.__tablename__} {claim.id}"
    try:
        RUNNERS[claim.cls](ctx, job)
        outcome = "solved"
    except JobStopped as stop:
        outcome = stop.reason
        if stop.reason == "cancelled":
            job.end(status="cancelled", progress="cancelled", finished_at=utcnow())
        elif stop.reason == "released":  # the worker is stopping: back in line, not a failure
            job.end(status="queued", progress="queued", worker=None,
                    attempts=claim.attempt - 1)
    except Exception as exc:  # a failed job must say why, whatever failed
        log.exception("%s failed", what)
        outcome = "failed"
        # Told as the worker's other failure is (in the product's language); the cause stays
        # at the end, for whoever runs the service.
        job.end(status="failed", error=_(
            "This run stopped with an error; nothing was saved. Try again, and if it happens "
            "again tell whoever runs the service (the cause: {cause})").format(
            cause=f"{type(exc).__name__}: {exc}")[:2000], finished_at=utcnow())
    finally:
        done.set()
        beat.join()
    log.info("%s (attempt %s): %s", what, claim.attempt, outcome)
    return outcome


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobWorker:
    """Claims jobs from the database and runs them one at a time: the loop of `linli worker`,
    and, as a thread, of ``linli serve --demo`` and the tests (the same claim code either way).
    """

    def __init__(self, ctx: JobContext, name: str | None = None, poll_s: float = 1.0) -> None:
        self.ctx, self.name, self.poll_s = ctx, name or default_worker_name(), poll_s
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self.thread: threading.Thread | None = None

    def run_once(self) -> str | None:
        """Claim one job and run it; how it ended, None when no job was waiting."""
        from matcher.i18n import _

        lease = dt.timedelta(seconds=self.ctx.settings.job_lease_s)
        claim = claim_job(self.ctx.db, self.name, utcnow(), lease,
                          _("The worker stopped twice while solving this week; nothing was "
                            "saved. Try again, perhaps with a shorter time limit."))
        if claim is None:
            return None
        log.info("%s %s: claimed by %s (attempt %s)", claim.cls.__tablename__, claim.id,
                 self.name, claim.attempt)
        return execute(self.ctx, claim, self.name, self.stopping)

    def run(self, once: bool = False) -> None:
        """Run jobs until :meth:`stop` (with ``once``: until none is waiting)."""
        while not self.stopping.is_set():
            try:
                ran = self.run_once()
            except Exception:  # the database may be away for a moment: poll again
                log.exception("claiming a job failed")
                ran = None
            if ran is None:
                if once:
                    return
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def wake(self) -> None:
        """Look for a job now (a job was just queued in this process)."""
        self._wake.set()

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="linli-jobs", daemon=True)
        self.thread.start()

    def stop(self, timeout_s: float = 10) -> None:
        """Stop after the current job, or release it at its next progress report."""
        self.stopping.set()
        self._wake.set()
        if self.thread is not None:
            self.thread.join(timeout_s)
