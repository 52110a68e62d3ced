"""Work that runs outside requests: schedule solves and webhook deliveries.

By default one worker thread per kind lives in the API process (``LINLI_RUN_WORKERS``); the job
state is in the database, so a client polls ``GET /v1/schedules/{id}`` and a restart marks an
interrupted solve as failed rather than leaving it running forever.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from typing import Any

import httpx
from sqlalchemy import select, update

from api.community import load_problem
from api.db import Database
from api.models import OutboxEvent, ScheduleRow, TaskRow, UnmetRow
from api.settings import ApiSettings
from matcher.domain import Week
from matcher.params import SolveParams
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


def run_schedule(db: Database, settings: ApiSettings, networks: Networks,
                 schedule_id: int) -> None:
    """Solve one queued schedule and store its tasks, unmet occurrences and summary."""
    with db.session() as session:
        row = session.get(ScheduleRow, schedule_id)
        if row is None or row.status != "queued":
            return
        row.status, row.progress = "running", "reading the community"
        session.commit()
        week = Week.parse(row.week)

    def progress(message: str) -> None:
        with db.session() as s:
            s.execute(update(ScheduleRow).where(ScheduleRow.id == schedule_id)
                      .values(progress=message))
            s.commit()

    try:
        with db.session() as session:
            problem = load_problem(session, week)
        progress("walking times")
        travel = TravelTimes.build(problem, Settings(), networks.get())
        schedule = solve(problem, SolveParams(time_limit_s=settings.solve_time_limit_s),
                         travel=travel, progress=progress)
        with db.session() as session:
            session.add_all(TaskRow(
                schedule_id=schedule_id, need_id=a.need_id, day=a.day.value, date=a.date,
                start=a.start, end=a.end, volunteer_id=a.volunteer_id,
                merchant_id=a.merchant_id, walk_min=a.walk_min, state="proposed")
                for a in schedule.assignments)
            session.add_all(UnmetRow(
                schedule_id=schedule_id, need_id=u.need_id, day=u.day.value, date=u.date,
                reason_code=u.reason.value, reason=u.detail, fix=u.fix)
                for u in schedule.unmet)
            row = session.get(ScheduleRow, schedule_id)
            assert row is not None
            row.summary = schedule.summary()
            row.status, row.progress = "solved", "done"
            row.finished_at = dt.datetime.now(dt.UTC)
            session.commit()
    except Exception as exc:  # a failed job must say why, whatever failed
        log.exception("schedule %s failed", schedule_id)
        with db.session() as session:
            row = session.get(ScheduleRow, schedule_id)
            if row is not None:
                row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"
                row.finished_at = dt.datetime.now(dt.UTC)
                session.commit()


class Worker:
    """One background thread taking schedule ids from a queue."""

    def __init__(self, db: Database, settings: ApiSettings, networks: Networks) -> None:
        self.db, self.settings, self.networks = db, settings, networks
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="linli-solver", daemon=True)

    def start(self) -> None:
        # Solves interrupted by a restart will never finish: say so.
        with self.db.session() as session:
            session.execute(update(ScheduleRow).where(ScheduleRow.status == "running")
                            .values(status="failed", error="interrupted by a restart"))
            queued = session.scalars(select(ScheduleRow.id)
                                     .where(ScheduleRow.status == "queued")).all()
            session.commit()
        self.thread.start()
        for schedule_id in queued:
            self.queue.put(schedule_id)

    def submit(self, schedule_id: int) -> None:
        self.queue.put(schedule_id)

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while (schedule_id := self.queue.get()) is not None:
            run_schedule(self.db, self.settings, self.networks, schedule_id)


def deliver_outbox(db: Database, settings: ApiSettings, client: httpx.Client,
                   now: dt.datetime | None = None, batch: int = 100) -> int:
    """POST due events to the webhook; back off exponentially on failure. Returns how many were
    delivered."""
    if not settings.webhook_url:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    delivered = 0
    with db.session() as session:
        due = session.scalars(
            select(OutboxEvent).where(OutboxEvent.delivered_at.is_(None),
                                      OutboxEvent.attempts < settings.webhook_attempts,
                                      OutboxEvent.next_attempt_at <= now)
            .order_by(OutboxEvent.id).limit(batch)).all()
        for event in due:
            body: dict[str, Any] = {"id": event.id, "recipient": event.recipient,
                                    "kind": event.kind, "payload": event.payload,
                                    "created_at": event.created_at.isoformat()}
            event.attempts += 1
            try:
                response = client.post(settings.webhook_url, json=body, timeout=5.0,
                                       headers={"Idempotency-Key": f"linli-event-{event.id}"})
                response.raise_for_status()
            except httpx.HTTPError as exc:
                event.last_error = str(exc)[:500]
                event.next_attempt_at = now + dt.timedelta(seconds=2 ** event.attempts)
            else:
                event.delivered_at = now
                delivered += 1
        session.commit()
    return delivered


class OutboxSender:
    """Deliver the outbox every few seconds in a background thread."""

    def __init__(self, db: Database, settings: ApiSettings, every_s: float = 2.0) -> None:
        self.db, self.settings, self.every_s = db, settings, every_s
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="linli-outbox", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        with httpx.Client() as client:
            while not self._stop.is_set():
                try:
                    deliver_outbox(self.db, self.settings, client)
                except Exception:  # keep the sender alive; the next round retries
                    log.exception("outbox delivery failed")
                self._stop.wait(self.every_s)
