"""The outbox: changes someone must hear about, POSTed to the webhook at least once, never lost.

Each community's events go to its own receiver (``communities.webhook_url``, its mini
program's backend) when it has one, else to the deployment's ``webhook_url``. An event with
neither waits, pending, until one is set (nothing is claimed, so no try is spent on it).

No transaction is ever open across network I/O. A sender claims a batch in one short
transaction (a lease on each row, ``claimed_until``; on PostgreSQL ``FOR UPDATE SKIP LOCKED``,
so concurrent senders in other processes take disjoint rows; SQLite serialises writers
anyway), commits, POSTs each event with no transaction open, then records each outcome in its
own short transaction.

A failing event is retried with capped exponential back-off for ``webhook_retry_hours``; then
it is a dead letter: kept, listed for coordinators and delivered again on request. Receivers
get an ``Idempotency-Key`` per event: a crash between a POST and its record (or a lease that
ran out) can repeat a delivery, never lose one.

Time is a parameter (``clock``) so that tests can run hours of outage without waiting.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from api.db import Database
from api.errors import Problem, label
from api.models import Community, OutboxEvent
from api.settings import ApiSettings
from matcher.i18n import _

log = logging.getLogger("linli.outbox")

Clock = Callable[[], dt.datetime]
Status = Literal["pending", "delivered", "dead"]
FIRST_RETRY = dt.timedelta(seconds=2)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Claimed:
    """An event a sender holds the lease on, as the receiver gets it, and where it goes."""

    id: int
    body: dict[str, Any]
    url: str


@dataclass(frozen=True, slots=True)
class Round:
    claimed: int
    delivered: int


def backoff(failing_since: dt.datetime, now: dt.datetime, cap: dt.timedelta) -> dt.timedelta:
    """The wait before the next try: as long as the event has been failing (so waits double:
    2 s, 4 s, 8 s...), at most ``cap``. Needs no count of tries, so a redelivered dead letter
    starts again from the shortest wait."""
    return min(cap, max(FIRST_RETRY, now - failing_since))


def lease(settings: ApiSettings, batch: int) -> dt.timedelta:
    """How long a claim lasts: long enough to POST the whole batch to a slow receiver."""
    return dt.timedelta(seconds=2 * (batch + 1) * settings.webhook_timeout_s)


def claim(db: Database, settings: ApiSettings, now: dt.datetime, batch: int,
          hold: dt.timedelta) -> list[Claimed]:
    """Take up to ``batch`` due events that have somewhere to go (their community's webhook or
    the deployment's), oldest first, in one short transaction."""
    with db.session() as session, session.begin():
        urls = {ident: url for ident, url in session.execute(
            select(Community.id, Community.webhook_url)
            .where(Community.webhook_url.is_not(None))) if url}
        if not urls and not settings.webhook_url:
            return []
        query = select(OutboxEvent).where(
            OutboxEvent.status == "pending", OutboxEvent.next_attempt_at <= now,
            or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until <= now))
        if not settings.webhook_url:
            query = query.where(OutboxEvent.community_id.in_(list(urls)))
        events = session.scalars(
            query
            .order_by(OutboxEvent.id).limit(batch)
            .with_for_update(skip_locked=True)).all()
        for event in events:
            event.claimed_until = now + hold
        return [Claimed(e.id, {"id": e.id, "recipient": e.recipient, "kind": e.kind,
                               "payload": e.payload, "created_at": e.created_at.isoformat()},
                        urls.get(e.community_id) or settings.webhook_url or "")
                for e in events]


def post(client: httpx.Client, settings: ApiSettings, event: Claimed) -> str | None:
    """POST one event to its receiver (no transaction open); the error, or None when the
    receiver took it."""
    try:
        response = client.post(event.url, json=event.body,
                               timeout=settings.webhook_timeout_s,
                               headers={"Idempotency-Key": f"linli-event-{event.id}"})
        response.raise_for_status()
    except Exception as exc:  # whatever went wrong is this event's failure, not the sender's
        return f"{type(exc).__name__}: {exc}"[:500]
    return None


def record(db: Database, settings: ApiSettings, event_id: int, now: dt.datetime,
           error: str | None) -> None:
    """Store how one delivery went, in its own short transaction."""
    with db.session() as session, session.begin():
        event = session.get(OutboxEvent, event_id, with_for_update=True)
        if event is None or event.status != "pending":
            return  # a coordinator changed it meanwhile
        event.attempts += 1
        event.claimed_until = None
        if error is None:
            event.status, event.delivered_at, event.failing_since = "delivered", now, None
            return
        event.last_error = error
        since = event.failing_since or now
        event.failing_since = since
        retry_at = now + backoff(since, now, dt.timedelta(seconds=settings.webhook_max_backoff_s))
        if retry_at > since + dt.timedelta(hours=settings.webhook_retry_hours):
            event.status = "dead"
            log.warning("outbox event %s is a dead letter after %s tries: %s", event_id,
                        event.attempts, error)
        else:
            event.next_attempt_at = retry_at


def deliver_batch(db: Database, settings: ApiSettings, client: httpx.Client,
                  clock: Clock = utcnow, batch: int = 100) -> Round:
    """Claim due events, POST them, record each outcome."""
    events = claim(db, settings, clock(), batch, lease(settings, batch))
    delivered = 0
    for event in events:
        error = post(client, settings, event)
        record(db, settings, event.id, clock(), error)
        delivered += error is None
    return Round(len(events), delivered)


def deliver_outbox(db: Database, settings: ApiSettings, client: httpx.Client,
                   clock: Clock = utcnow, batch: int = 100) -> int:
    """One round of :func:`deliver_batch`; how many events the receiver took."""
    return deliver_batch(db, settings, client, clock, batch).delivered


def events(session: Session, status: Status | None, limit: int, offset: int
           ) -> tuple[list[OutboxEvent], int]:
    """A page of events (newest first) and how many there are."""
    query = select(OutboxEvent)
    if status is not None:
        query = query.where(OutboxEvent.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(OutboxEvent.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def _revived(now: dt.datetime) -> dict[str, Any]:
    return {"status": "pending", "next_attempt_at": now, "claimed_until": None,
            "failing_since": None}


def redeliver(session: Session, event_id: int, now: dt.datetime) -> OutboxEvent:
    """Put a dead letter back in line (in the caller's transaction)."""
    event = session.get(OutboxEvent, event_id, with_for_update=True)
    if event is None:
        raise Problem(404, _("no outbox event {id}").format(id=event_id))
    if event.status != "dead":
        raise Problem(409, _("outbox event {id} is {status}; only dead letters are redelivered")
                      .format(id=event_id, status=label(event.status)), code="event_not_dead")
    for key, value in _revived(now).items():
        setattr(event, key, value)
    return event


def redeliver_dead(session: Session, now: dt.datetime) -> int:
    """Put every dead letter back in line (in the caller's transaction); how many."""
    result = session.execute(update(OutboxEvent).where(OutboxEvent.status == "dead")
                             .values(**_revived(now)))
    return int(result.rowcount)  # type: ignore[attr-defined]


class OutboxSender:
    """Deliver the outbox every few seconds in a background thread (one per process; several
    processes share the work safely)."""

    def __init__(self, db: Database, settings: ApiSettings, every_s: float = 2.0,
                 batch: int = 100) -> None:
        self.db, self.settings, self.every_s, self.batch = db, settings, every_s, batch
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
                    # A full batch means more may be due: go on at once.
                    while (not self._stop.is_set() and deliver_batch(
                            self.db, self.settings, client, batch=self.batch).claimed
                           == self.batch):
                        pass
                except Exception:  # keep the sender alive; the next round retries
                    log.exception("outbox delivery failed")
                self._stop.wait(self.every_s)
