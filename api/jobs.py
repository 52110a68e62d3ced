"""Work that runs outside requests: schedule solves and allocations (webhook deliveries are
``api.outbox``).

By default one worker thread for jobs and one for the outbox live in the API process
(``LINLI_RUN_WORKERS``); the job state is in the database, so a client polls
``GET /v1/schedules/{id}`` (or ``/v1/allocations/{id}``) and a restart marks an interrupted job
as failed rather than leaving it running forever.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from api.community import coarse_area, load_charity, load_problem
from api.db import Database
from api.models import (
    AllocationLineRow,
    AllocationRow,
    NeedRow,
    ScheduleRow,
    ShortRow,
    TaskRow,
    UnmetRow,
    WeeklyJob,
)
from api.settings import ApiSettings
from api.under_way import commitments
from matcher.allocation import allocate, delivery_needs
from matcher.domain import Week
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.solver import solve
from matcher.spreadsheets import needs_frame
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


@contextmanager
def _job(db: Database, cls: type[Job], job_id: int) -> Iterator[tuple[Week, Callable[[str], None]]
                                                                 | None]:
    """Run a queued job: mark it running, hand over its week and a progress callback, then
    mark it solved, or failed with the reason whatever went wrong. Yields None when the job is
    not (or no longer) queued."""
    with db.session() as session:
        row = session.get(cls, job_id)
        if row is None or row.status != "queued":
            yield None
            return
        row.status, row.progress = "running", "reading the data"
        session.commit()
        week = Week.parse(row.week)

    def progress(message: str) -> None:
        with db.session() as s:
            s.execute(update(cls).where(cls.id == job_id).values(progress=message))
            s.commit()

    try:
        yield week, progress
    except Exception as exc:  # a failed job must say why, whatever failed
        log.exception("%s %s failed", cls.__tablename__, job_id)
        with db.session() as session:
            row = session.get(cls, job_id)
            if row is not None:
                row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"
                row.finished_at = dt.datetime.now(dt.UTC)
                session.commit()


def _finish(row: Job | None, summary: dict[str, Any]) -> None:
    assert row is not None
    row.summary = summary
    row.status, row.progress = "solved", "done"
    row.finished_at = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class JobContext:
    """What a job runs with: the database, the settings, the street network and the
    community's clock (the app's, so tests and the API agree on what "now" is)."""

    db: Database
    settings: ApiSettings
    networks: Networks
    clock: Callable[[], dt.datetime]


def run_schedule(ctx: JobContext, schedule_id: int) -> None:
    """Solve one queued schedule and store its tasks, unmet occurrences and summary.

    A week with a published schedule is re-solved around it: its work under way pinned, its
    declines honoured, nothing new before now (:mod:`api.under_way`)."""

    with _job(ctx.db, ScheduleRow, schedule_id) as job:
        if job is None:
            return
        week, progress = job
        with ctx.db.session() as session:
            problem = load_problem(session, week)
            under_way = commitments(session, week, ctx.clock())
        progress("walking times")
        travel = TravelTimes.build(problem, Settings(), ctx.networks.get())
        params = SolveParams(time_limit_s=ctx.settings.solve_time_limit_s,
                             wall_clock=ctx.settings.solve_wall_clock)
        schedule = solve(problem, params, travel=travel, progress=progress,
                         pinned=under_way.pinned, forbidden=under_way.forbidden,
                         not_before=under_way.not_before, offered=under_way.offered)
        with ctx.db.session() as session:
            session.add_all(TaskRow(
                schedule_id=schedule_id, need_id=a.need_id, day=a.day.value, date=a.date,
                start=a.start, end=a.end, volunteer_id=a.volunteer_id,
                merchant_id=a.merchant_id, walk_min=a.walk_min, state="proposed")
                for a in schedule.assignments)
            session.add_all(UnmetRow(
                schedule_id=schedule_id, need_id=u.need_id, day=u.day.value, date=u.date,
                reason_code=u.reason.value, reason=u.detail, fix=u.fix)
                for u in schedule.unmet)
            _finish(session.get(ScheduleRow, schedule_id), schedule.summary())
            session.commit()


def run_allocation(ctx: JobContext, allocation_id: int) -> None:
    """Allocate one queued run and store its lines, short requests, summary and the deliveries
    as one-off needs of its week (which schedules see once the allocation is published)."""
    with _job(ctx.db, AllocationRow, allocation_id) as job:
        if job is None:
            return
        week, progress = job
        with ctx.db.session() as session:
            problem = load_charity(session, week)
        progress(f"allocating {len(problem.donations)} donations to "
                 f"{len(problem.requests)} requests")
        allocation = allocate(problem, Settings(), ctx.networks.get())
        requests = {r.id: r for r in problem.requests}
        with ctx.db.session() as session:
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
            for record in needs_frame(delivery_needs(problem, allocation)).to_dict("records"):
                values = {str(k): v for k, v in record.items()}
                values["need_id"] = f"A{allocation_id}-{values['need_id']}"
                session.add(NeedRow(**values, only_week=str(week), allocation_id=allocation_id))
            _finish(session.get(AllocationRow, allocation_id), allocation.summary())
            session.commit()


RUNNERS: dict[type[Job], Callable[[JobContext, int], None]] = {
    ScheduleRow: run_schedule, AllocationRow: run_allocation}


class Worker:
    """One background thread running queued jobs (schedules and allocations) in order."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx, self.db = ctx, ctx.db
        self.queue: queue.Queue[tuple[type[Job], int] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="linli-solver", daemon=True)

    def start(self) -> None:
        # Jobs interrupted by a restart will never finish: say so; queued ones still run.
        queued: list[tuple[type[Job], int]] = []
        with self.db.session() as session:
            for cls in RUNNERS:
                session.execute(update(cls).where(cls.status == "running")
                                .values(status="failed", error="interrupted by a restart"))
                queued += [(cls, i) for i in session.scalars(
                    select(cls.id).where(cls.status == "queued").order_by(cls.id))]
            session.commit()
        self.thread.start()
        for job in queued:
            self.queue.put(job)

    def submit(self, cls: type[Job], job_id: int) -> None:
        self.queue.put((cls, job_id))

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while (job := self.queue.get()) is not None:
            cls, job_id = job
            RUNNERS[cls](self.ctx, job_id)
