"""The outbox (api/outbox.py and its coordinator routes): no event lost through hours of
receiver outage, no lock held while POSTing, each event delivered once by concurrent senders,
dead letters kept and redelivered, each community's events sent to its own receiver; on SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text

from api.db import Database
from api.main import create_app
from api.migrate import upgrade
from api.models import Community, OutboxEvent
from api.outbox import backoff, deliver_batch, deliver_outbox, utcnow
from api.settings import ApiSettings
from api.tenancy import add_community, find_street_office
from tests.api.conftest import make_user

HOOK = "http://receiver.test/hook"


def _settings(database_url: str, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {"database_url": database_url, "webhook_url": HOOK,
                              "secret_key": "test-secret-key-0123456789abcdef",
                              "run_workers": False}
    return ApiSettings(**(values | overrides))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def add_events(db: Database, count: int, community_id: int | None = None) -> list[int]:
    with db.session(community_id) as session:
        events = [OutboxEvent(recipient=f"volunteer:V{i:04d}", kind="task.offered",
                              payload={"task_id": i}) for i in range(count)]
        session.add_all(events)
        session.commit()
        return [e.id for e in events]


class Receiver:
    """A webhook receiver on a simulated clock: down until ``up_at``, then taking events."""

    def __init__(self, now: dt.datetime, up_at: dt.datetime) -> None:
        self.now, self.up_at = now, up_at
        self.received: Counter[int] = Counter()
        self.tries: dict[int, list[dt.datetime]] = defaultdict(list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        event = int(request.headers["Idempotency-Key"].removeprefix("linli-event-"))
        self.tries[event].append(self.now)
        if self.now < self.up_at:
            raise httpx.ConnectError("connection refused", request=request)
        self.received[event] += 1
        return httpx.Response(204)


class Receivers:
    """Receivers at several addresses on one simulated clock (each community's own)."""

    def __init__(self, now: dt.datetime, by_url: dict[str, Receiver]) -> None:
        self.by_url = by_url
        self.now = now

    @property
    def now(self) -> dt.datetime:
        return self._now

    @now.setter
    def now(self, value: dt.datetime) -> None:
        self._now = value
        for receiver in self.by_url.values():
            receiver.now = value

    def handle(self, request: httpx.Request) -> httpx.Response:
        return self.by_url[str(request.url)].handle(request)


def run_simulation(db: Database, settings: ApiSettings, receiver: Receiver | Receivers,
                   horizon: dt.timedelta) -> None:
    """Run the sender whenever an event is next due, jumping the clock there, until nothing is
    pending or ``horizon`` has passed: hours of outage without sleeping."""
    end = receiver.now + horizon
    with httpx.Client(transport=httpx.MockTransport(receiver.handle)) as http:
        while receiver.now <= end:
            while deliver_batch(db, settings, http, clock=lambda: receiver.now,
                                batch=7).claimed:
                pass
            with db.session() as session:
                due = session.scalar(select(func.min(OutboxEvent.next_attempt_at))
                                     .where(OutboxEvent.status == "pending"))
            if due is None:
                return
            assert due > receiver.now  # everything due now was tried
            receiver.now = due


def statuses(db: Database) -> Counter[str]:
    with db.session() as session:
        return Counter(session.scalars(select(OutboxEvent.status)))


@pytest.mark.parametrize("outage", [dt.timedelta(hours=1), dt.timedelta(hours=6)])
def test_no_event_is_lost_when_the_receiver_is_down_for_hours(
        db: Database, database_url: str, outage: dt.timedelta) -> None:
    ids = add_events(db, 25)
    settings = _settings(database_url)
    start = utcnow()
    receiver = Receiver(start, up_at=start + outage)
    run_simulation(db, settings, receiver, horizon=dt.timedelta(days=3))
    # Every event arrived, once, soon after the receiver came back.
    assert receiver.received == Counter(ids)
    assert statuses(db) == Counter({"delivered": len(ids)})
    cap = dt.timedelta(seconds=settings.webhook_max_backoff_s)
    for tries in receiver.tries.values():
        assert tries[-1] - receiver.up_at <= cap
        assert max(b - a for a, b in pairwise(tries)) <= cap


def test_events_failing_past_the_retry_window_are_kept_as_dead_letters(
        db: Database, database_url: str) -> None:
    ids = add_events(db, 5)
    settings = _settings(database_url, webhook_retry_hours=2)
    start = utcnow()
    receiver = Receiver(start, up_at=start + dt.timedelta(hours=3))
    run_simulation(db, settings, receiver, horizon=dt.timedelta(hours=3))
    assert not receiver.received and statuses(db) == Counter({"dead": len(ids)})
    # Retried for the whole window, not given up after a minute.
    for tries in receiver.tries.values():
        assert tries[-1] - tries[0] > dt.timedelta(hours=1, minutes=30)
    with db.session() as session:
        event = session.get(OutboxEvent, ids[0])
        assert event is not None and "ConnectError" in (event.last_error or "")
    # A dead letter is not sent again on its own, even when the receiver is back.
    receiver.now = receiver.up_at
    with httpx.Client(transport=httpx.MockTransport(receiver.handle)) as http:
        assert deliver_outbox(db, settings, http, clock=lambda: receiver.now) == 0


HOOK_A, HOOK_B = "http://a.receiver.test/events", "https://b.receiver.test/linli?k=1"


def _communities(db: Database) -> tuple[int, int, int]:
    """The default community with its own receiver, b with its own, c with none."""
    with db.session() as session:
        office = find_street_office(session, "default")
        assert office is not None
        b = add_community(session, "b", "乙社区", office)
        c = add_community(session, "c", "丙社区", office)
        a = session.scalars(select(Community).where(Community.code == "default")).one()
        a.webhook_url, b.webhook_url = HOOK_A, HOOK_B
        session.commit()
        return a.id, b.id, c.id


def test_each_community_s_events_go_to_its_own_receiver(db: Database,
                                                          database_url: str) -> None:
    a, b, c = _communities(db)
    a_ids, b_ids = add_events(db, 9, a), add_events(db, 8, b)
    settings = _settings(database_url, webhook_url=None)
    start = utcnow()
    outage = dt.timedelta(hours=1)
    receivers = Receivers(start, {HOOK_A: Receiver(start, up_at=start),
                                  HOOK_B: Receiver(start, up_at=start + outage)})
    run_simulation(db, settings, receivers, horizon=dt.timedelta(days=1))
    got_a, got_b = receivers.by_url[HOOK_A], receivers.by_url[HOOK_B]
    # Each receiver got its community's events, each once, and nothing of the other's.
    assert got_a.received == Counter(a_ids) and got_b.received == Counter(b_ids)
    assert set(got_a.tries) == set(a_ids) and set(got_b.tries) == set(b_ids)
    assert statuses(db) == Counter({"delivered": len(a_ids) + len(b_ids)})
    # B's receiver down did not hold A's events back, and B's were retried as ever.
    assert all(tries == [start] for tries in got_a.tries.values())
    cap = dt.timedelta(seconds=settings.webhook_max_backoff_s)
    for tries in got_b.tries.values():
        assert len(tries) > 2 and tries[-1] - got_b.up_at <= cap
        assert max(y - x for x, y in pairwise(tries)) <= cap
    # A community with no receiver, in a deployment without one, keeps its events pending
    # and untried.
    c_ids = add_events(db, 3, c)
    with httpx.Client(transport=httpx.MockTransport(receivers.handle)) as http:
        assert deliver_batch(db, settings, http, clock=lambda: receivers.now).claimed == 0
    with db.session() as session:
        kept = session.scalars(select(OutboxEvent).where(OutboxEvent.id.in_(c_ids))).all()
        assert [(e.status, e.attempts) for e in kept] == [("pending", 0)] * len(c_ids)
    # The deployment's webhook takes those of a community without its own, and only those.
    more_a = add_events(db, 2, a)
    receivers.by_url[HOOK] = Receiver(receivers.now, up_at=start)
    receivers.now = receivers.now
    run_simulation(db, _settings(database_url), receivers, horizon=dt.timedelta(hours=1))
    assert receivers.by_url[HOOK].received == Counter(c_ids)
    assert got_a.received == Counter(a_ids + more_a)
    assert got_b.received == Counter(b_ids)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=50))
def test_backoff_doubles_and_is_capped(gaps: list[int]) -> None:
    cap = dt.timedelta(minutes=15)
    since = now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    waits = []
    for gap in sorted(gaps):
        now = since + dt.timedelta(seconds=gap)
        waits.append(backoff(since, now, cap))
    assert waits == sorted(waits)
    assert all(dt.timedelta(seconds=1) < w <= cap for w in waits)


def test_the_sender_holds_no_lock_while_posting(db: Database, database_url: str) -> None:
    """A slow receiver must not block anyone's writes: while the POST is in flight, another
    connection updates the very event being sent and writes elsewhere, with a short lock
    timeout (SQLite's writer lock, PostgreSQL's row lock)."""
    [event_id] = add_events(db, 1)
    settings = _settings(database_url)
    is_sqlite = database_url.startswith("sqlite")
    other = create_engine(database_url, connect_args={"timeout": 0.3} if is_sqlite else {})
    outcomes: list[str] = []

    def slow_receiver(request: httpx.Request) -> httpx.Response:
        try:
            with other.begin() as conn:
                if not is_sqlite:
                    conn.execute(text("SET LOCAL lock_timeout = '300ms'"))
                conn.execute(text("UPDATE outbox SET kind = kind WHERE id = :id"),
                             {"id": event_id})
                conn.execute(text("INSERT INTO audit_log (at, action, target, detail, "
                                  "community_id) VALUES (:at, 'read', 'x', '', 1)"),
                             {"at": utcnow()})
            outcomes.append("written")
        except Exception as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(slow_receiver)) as http:
        assert deliver_outbox(db, settings, http) == 1
    other.dispose()
    assert outcomes == ["written"]
    assert statuses(db) == Counter({"delivered": 1})


def test_concurrent_senders_deliver_each_event_exactly_once(db: Database,
                                                            database_url: str) -> None:
    ids = add_events(db, 120)
    settings = _settings(database_url)
    received: Counter[int] = Counter()
    lock = threading.Lock()

    def receiver(request: httpx.Request) -> httpx.Response:
        time.sleep(0.002)  # a real receiver takes a moment: the senders overlap
        with lock:
            received[int(request.read().decode().split('"id":')[1].split(",")[0])] += 1
        return httpx.Response(200)

    start = threading.Barrier(2)
    # Each sender as a separate process would have it: its own engine and its own client.
    senders = [Database(database_url) for _ in range(2)]
    errors: list[BaseException] = []

    def sender(own: Database) -> None:
        try:
            with httpx.Client(transport=httpx.MockTransport(receiver)) as http:
                start.wait()
                while deliver_batch(own, settings, http, batch=10).claimed:
                    pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(own,)) for own in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for own in senders:
        own.dispose()
    assert not errors
    assert received == Counter(ids)  # every event, each exactly once
    assert statuses(db) == Counter({"delivered": len(ids)})


@pytest.fixture
def app_client(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(database_url, webhook_retry_hours=1))) as client:
        yield client


def test_coordinators_list_and_redeliver_dead_letters(app_client: TestClient) -> None:
    coordinator = make_user(app_client, "coordinator", "coordinator")
    db: Database = app_client.app.state.db  # type: ignore[attr-defined]
    settings: ApiSettings = app_client.app.state.settings  # type: ignore[attr-defined]
    ids = add_events(db, 4)
    start = utcnow()
    receiver = Receiver(start, up_at=start + dt.timedelta(hours=2))
    with httpx.Client(transport=httpx.MockTransport(receiver.handle)) as http:
        receiver.now = start + dt.timedelta(hours=2)
        assert deliver_outbox(db, settings, http, clock=lambda: receiver.now,
                              batch=1) == 1  # the first event is delivered
    run_simulation(db, settings, Receiver(start, up_at=start + dt.timedelta(days=1)),
                   horizon=dt.timedelta(hours=2))
    dead = app_client.get("/v1/outbox?status=dead&limit=2", headers=coordinator).json()
    assert dead["total"] == 3 and [e["id"] for e in dead["items"]] == [ids[3], ids[2]]
    assert all(e["status"] == "dead" and "ConnectError" in e["last_error"]
               for e in dead["items"])
    second = app_client.get("/v1/outbox?status=dead&limit=2&offset=2", headers=coordinator)
    assert [e["id"] for e in second.json()["items"]] == [ids[1]]
    delivered = app_client.get("/v1/outbox?status=delivered", headers=coordinator).json()
    assert [e["id"] for e in delivered["items"]] == [ids[0]]
    assert app_client.get("/v1/outbox?status=lost", headers=coordinator).status_code == 422
    volunteer = make_user(app_client, "vol", "volunteer")
    assert app_client.get("/v1/outbox", headers=volunteer).status_code == 403
    assert app_client.post(f"/v1/outbox/{ids[1]}/redeliver",
                           headers=volunteer).status_code == 403
    # One dead letter, then all the others; a delivered or unknown event is refused.
    one = app_client.post(f"/v1/outbox/{ids[1]}/redeliver", headers=coordinator)
    assert one.status_code == 200 and one.json()["status"] == "pending"
    assert app_client.post(f"/v1/outbox/{ids[0]}/redeliver",
                           headers=coordinator).status_code == 409
    assert app_client.post("/v1/outbox/999999/redeliver", headers=coordinator).status_code \
        == 404
    assert app_client.post("/v1/outbox/redeliver", headers=coordinator).json() == {
        "redelivered": 2}
    assert statuses(db) == Counter({"pending": 3, "delivered": 1})
    back = Receiver(utcnow(), up_at=utcnow())
    run_simulation(db, settings, back, horizon=dt.timedelta(minutes=1))
    assert back.received == Counter(ids[1:])
    assert statuses(db) == Counter({"delivered": 4})
    log = app_client.get("/v1/audit?action=redeliver", headers=coordinator).json()
    assert {e["target"] for e in log["items"]} == {f"outbox:{ids[1]}", "outbox:dead"}
