"""The task state machine: every (state, action) pair and the time rules on their own, then
through the API: the volunteer's own tasks only, at the right time, declines all or nothing and
telling the decliner nothing about the replacement, and a paid occurrence never paid twice."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from api import lifecycle
from api.community import TZ
from api.lifecycle import RULES, Action, State, refusal
from api.models import Account, LedgerEntry, NeedRow, PaidSeat, TaskRow
from matcher import i18n
from matcher.spreadsheets import read_community
from tests.api.conftest import make_user
from tests.api.test_service import as_assignments
from tests.conftest import WEEK
from tests.validator import geodesic_walk, validate

START = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TZ)
EN = {"Accept-Language": "en"}  # the tests below read the English details
END = START + dt.timedelta(minutes=30)

# The machine as the README states it, written out pair by pair (not read from RULES).
ALLOWED = {
    (State.PROPOSED, Action.PUBLISH),
    (State.OFFERED, Action.ACCEPT), (State.OFFERED, Action.DECLINE),
    (State.OFFERED, Action.CANCEL), (State.ACCEPTED, Action.DECLINE),
    (State.ACCEPTED, Action.CANCEL), (State.ACCEPTED, Action.CHECK_IN),
    (State.CHECKED_IN, Action.COMPLETE), (State.COMPLETED, Action.CONFIRM),
}
# Moments around a task on Wednesday 10:00-10:30, and which actions each allows.
MOMENTS = {
    "two days before": START - dt.timedelta(days=2),
    "the evening before": START - dt.timedelta(hours=12),
    "31 minutes before": START - dt.timedelta(minutes=31),
    "29 minutes before": START - dt.timedelta(minutes=29),
    "at the start": START,
    "during": START + dt.timedelta(minutes=10),
    "that evening": START + dt.timedelta(hours=10),
    "the next day": START + dt.timedelta(days=1),
}
BEFORE = {"two days before", "the evening before", "31 minutes before", "29 minutes before"}
AFTER = {"at the start", "during", "that evening", "the next day"}
IN_TIME = {
    Action.PUBLISH: set(MOMENTS),
    Action.ACCEPT: BEFORE, Action.DECLINE: BEFORE, Action.CANCEL: BEFORE,
    Action.CHECK_IN: {"29 minutes before", "at the start", "during", "that evening"},
    Action.COMPLETE: AFTER, Action.CONFIRM: AFTER,
}


@pytest.mark.parametrize(("state", "action"), list(itertools.product(State, Action)))
def test_every_state_and_action(state: State, action: Action) -> None:
    for moment, now in MOMENTS.items():
        for at_risk in (None, "M1 is not open at 10:00 (open 14:00-20:00) (R8)"):
            with i18n.use("en"):
                why = refusal(action, state, at_risk=at_risk, start=START, end=END, now=now)
            allowed = (state, action) in ALLOWED and moment in IN_TIME[action] and not (
                at_risk and action is Action.ACCEPT)
            assert (why is None) == allowed, (state, action, moment, at_risk, why)
            if (state, action) not in ALLOWED:
                assert why is not None and why.startswith(
                    f"the task is {state.replace('_', ' ')}; only")
                assert why.code == "task_state_conflict"
            elif why is not None and at_risk and action is Action.ACCEPT:
                assert "at risk" in why and "coordinator" in why and why.code == "task_at_risk"
            elif why is not None:
                assert "2026-11-25" in why  # says when the task is


def test_the_clock_may_be_in_any_zone() -> None:
    # 01:40 UTC is 09:40 in Shanghai: within the check-in half hour of the 10:00 task.
    utc = dt.datetime(2026, 11, 25, 1, 40, tzinfo=dt.UTC)
    assert refusal(Action.CHECK_IN, State.ACCEPTED, at_risk=None, start=START, end=END,
                   now=utc) is None
    # 23:00 UTC the day before is already the task's date in Shanghai, but 07:00 is early.
    early = dt.datetime(2026, 11, 24, 23, 0, tzinfo=dt.UTC)
    with i18n.use("en"):
        why = refusal(Action.CHECK_IN, State.ACCEPTED, at_risk=None, start=START, end=END,
                      now=early)
    assert why is not None and "from 09:30" in why


def test_every_state_is_left_only_by_its_rules() -> None:
    targets = {rule.target for rule in RULES.values()}
    assert targets == set(State) - {State.PROPOSED}  # every state but the first is reachable
    assert {(s, a) for a, rule in RULES.items() for s in rule.sources} == ALLOWED


# --- through the API -----------------------------------------------------------------------

def _at(task: dict[str, Any], minutes: int = 0) -> dt.datetime:
    """A moment relative to the task's start, on the community's clock."""
    start = dt.datetime.combine(dt.date.fromisoformat(task["date"]),
                                dt.time.fromisoformat(task["start"]), TZ)
    return start + dt.timedelta(minutes=minutes)


def _set(client: TestClient, task_id: int, **values: Any) -> None:
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        task = session.get(TaskRow, task_id)
        for key, value in values.items():
            setattr(task, key, value)
        session.commit()


def _clock(client: TestClient, now: dt.datetime) -> None:
    client.app.state.clock = lambda: now  # type: ignore[attr-defined]


ROUTES = {Action.ACCEPT: "me/tasks/{id}/accept", Action.CHECK_IN: "me/tasks/{id}/check-in",
          Action.COMPLETE: "me/tasks/{id}/complete", Action.DECLINE: "me/tasks/{id}/decline",
          Action.CONFIRM: "tasks/{id}/confirm", Action.CANCEL: "tasks/{id}/cancel"}
IN_TIME_MINUTES = {Action.ACCEPT: -60, Action.DECLINE: -60, Action.CANCEL: -60,
                   Action.CHECK_IN: -10, Action.COMPLETE: 40, Action.CONFIRM: 120}


def test_every_state_and_action_through_the_api(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    task = published["tasks"][0]
    me = make_user(client, "dora", "volunteer", volunteer_id=task["volunteer_id"]) | EN
    coordinator = coordinator | EN
    for (action, route), state in itertools.product(ROUTES.items(), State):
        _set(client, task["id"], state=state.value)
        _clock(client, _at(task, IN_TIME_MINUTES[action]))
        headers = coordinator if action in (Action.CONFIRM, Action.CANCEL) else me
        key = {"Idempotency-Key": f"confirm-{state}"} if action is Action.CONFIRM else {}
        body = {"reason": "临时有事"} if action is Action.DECLINE else None
        answer = client.post("/v1/" + route.format(id=task["id"]), json=body,
                             headers=headers | key)
        if (state, action) in ALLOWED:
            assert answer.status_code == 200, (state, action, answer.text)
            assert answer.json()["state" if "state" in answer.json() else "outcome"]
        else:
            assert answer.status_code == 409, (state, action, answer.text)
            assert answer.json()["detail"].startswith(
                f"task {task['id']}: the task is {state.replace('_', ' ')}; only"), answer.json()
            assert answer.json()["code"] == "task_state_conflict"


def test_check_in_and_complete_only_on_time_and_only_ones_own(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    task = published["tasks"][0]
    other = next(t for t in published["tasks"] if t["volunteer_id"] != task["volunteer_id"])
    me = make_user(client, "erin", "volunteer", volunteer_id=task["volunteer_id"]) | EN
    coordinator = coordinator | EN
    url = f"/v1/me/tasks/{task['id']}"
    _clock(client, _at(task, -2 * 24 * 60))
    assert client.post(f"{url}/accept", headers=me).status_code == 200
    early = client.post(f"{url}/check-in", headers=me)
    assert early.status_code == 409 and "check in on that day" in early.json()["detail"]
    for step in ("check-in", "complete", "decline", "accept"):  # someone else's task: unknown
        body = {"reason": "不是我的"} if step == "decline" else None
        answer = client.post(f"/v1/me/tasks/{other['id']}/{step}", json=body, headers=me)
        assert answer.status_code == 404, (step, answer.text)
    # Completing a task of next week: refused, before and after checking in.
    _set(client, task["id"], state="checked_in")
    _clock(client, _at(task, -7 * 24 * 60))
    future = client.post(f"{url}/complete", headers=me)
    assert future.status_code == 409 and "before it starts" in future.json()["detail"]
    _set(client, task["id"], state="completed")  # even if it slipped through: never confirmed
    confirm = client.post(f"/v1/tasks/{task['id']}/confirm",
                          headers=coordinator | {"Idempotency-Key": "confirm-too-early"})
    assert confirm.status_code == 409 and "before it starts" in confirm.json()["detail"]
    _set(client, task["id"], state="accepted")
    _clock(client, _at(task, -5))
    assert client.post(f"{url}/check-in", headers=me).json()["state"] == "checked_in"
    assert client.post(f"{url}/complete", headers=me).status_code == 409  # not started yet
    _clock(client, _at(task, 35))
    assert client.post(f"{url}/complete", headers=me).json()["state"] == "completed"


def test_the_decline_answer_names_no_replacement(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    task = published["tasks"][0]
    me = make_user(client, "fay", "volunteer", volunteer_id=task["volunteer_id"])
    _clock(client, _at(task, -24 * 60))
    answer = client.post(f"/v1/me/tasks/{task['id']}/decline", json={"reason": "出差"},
                         headers=me)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"declined", "outcome"}
    assert body["outcome"] in ("offered_to_another_volunteer", "coordinators_told")
    tasks = client.get(f"/v1/schedules/{published['id']}/tasks", params={"limit": 500},
                       headers=coordinator).json()["items"]
    others = {t["volunteer_id"] for t in tasks} - {task["volunteer_id"]}
    assert not any(v in answer.text for v in others)  # nobody else's id anywhere
    assert "walk_min" not in str(body).replace("'walk_min': " + str(task["walk_min"]), "")


def _clashing_declines(client: TestClient, coordinator: dict[str, str],
                       published: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two tasks of different volunteers whose best free replacement is one volunteer at
    overlapping times: declined at once, both would be offered to her."""
    best: dict[int, tuple[str, int]] = {}
    for task in published["tasks"]:
        fits = client.get(f"/v1/schedules/{published['id']}/occurrences/{task['need_id']}/"
                          f"{task['day']}/candidates?replacing={task['volunteer_id']}",
                          headers=coordinator).json()["items"]
        free = [f for f in fits if not f["displaces"]]
        if free:
            hh, mm = map(int, free[0]["start"].split(":"))
            best[task["id"]] = (free[0]["volunteer_id"], hh * 60 + mm)
    tasks = {t["id"]: t for t in published["tasks"]}
    for (a, (va, sa)), (b, (vb, sb)) in itertools.combinations(best.items(), 2):
        ta, tb = tasks[a], tasks[b]
        length = max(_minutes(ta), _minutes(tb))
        if va == vb and ta["date"] == tb["date"] and abs(sa - sb) < length and \
                ta["volunteer_id"] != tb["volunteer_id"] and va not in (
                    ta["volunteer_id"], tb["volunteer_id"]):
            return ta, tb
    raise AssertionError("no two declines compete for one replacement in this community")


def _minutes(task: dict[str, Any]) -> int:
    start, end = (dt.datetime.strptime(task[k], "%H:%M") for k in ("start", "end"))
    return int((end - start).total_seconds() // 60)


def test_declines_at_once_never_give_one_volunteer_two_places(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any],
        community_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _clashing_declines(client, coordinator, published)
    users = [make_user(client, f"vol{i}", "volunteer", volunteer_id=t["volunteer_id"])
             for i, t in enumerate(pair)]
    _clock(client, dt.datetime.combine(WEEK.monday - dt.timedelta(days=1), dt.time(9), TZ))
    # Let both re-plan at the same moment if nothing serialises them (the first waits a
    # little for the second after reading the week).
    meet = threading.Barrier(2)
    real = lifecycle.pinned_with_versions

    def pinned_then_wait(*args: Any, **kwargs: Any) -> Any:
        week = real(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait(timeout=3)
        return week

    monkeypatch.setattr("api.lifecycle.pinned_with_versions", pinned_then_wait)

    def decline(task: dict[str, Any], headers: dict[str, str]) -> int:
        return client.post(f"/v1/me/tasks/{task['id']}/decline", json={"reason": "同时请假"},
                           headers=headers).status_code

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(decline, pair, users)) == [200, 200]
    tasks = client.get(f"/v1/schedules/{published['id']}/tasks", params={"limit": 500},
                       headers=coordinator).json()["items"]
    active = [t for t in tasks if t["state"] in ("offered", "accepted")]
    problem = read_community(community_files, WEEK).problem
    errors = validate(problem, as_assignments(active), geodesic_walk())
    assert [e for e in errors if "needed (R7)" not in e] == []


def test_a_decline_that_cannot_be_replanned_records_nothing(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    task = published["tasks"][0]
    me = make_user(client, "gus", "volunteer", volunteer_id=task["volunteer_id"]) | EN
    _clock(client, _at(task, -24 * 60))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("the walking network could not be loaded")

    monkeypatch.setattr("api.lifecycle.pinned_with_versions", broken)
    answer = client.post(f"/v1/me/tasks/{task['id']}/decline", json={"reason": "出差"},
                         headers=me)
    assert answer.status_code == 409 and "nothing was recorded" in answer.json()["detail"]
    tasks = client.get(f"/v1/schedules/{published['id']}/tasks", params={"limit": 500},
                       headers=coordinator).json()["items"]
    assert tasks == published["tasks"]  # not declined, no replacement
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        from api.models import OutboxEvent

        kinds = {e.kind for e in session.scalars(select(OutboxEvent))}
    assert "occurrence.uncovered" not in kinds


def test_an_occurrence_is_paid_at_most_once(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        singles = set(session.scalars(select(NeedRow.need_id).where(
            NeedRow.volunteers_needed == 1)))
    task = next(t for t in published["tasks"] if t["need_id"] in singles)
    other = next(t for t in published["tasks"] if t["volunteer_id"] != task["volunteer_id"])
    # The same single-person occurrence done twice (say, once in a schedule that was then
    # superseded): two completed tasks, two confirmations at once.
    with db.session() as session:
        first = session.get(TaskRow, task["id"])
        first.state = "completed"
        twin = TaskRow(schedule_id=first.schedule_id, need_id=first.need_id, day=first.day,
                       date=first.date, start=first.start, end=first.end,
                       volunteer_id=other["volunteer_id"], merchant_id=first.merchant_id,
                       walk_min=1.0, state="completed")
        session.add(twin)
        session.commit()
        ids = [first.id, twin.id]
    _clock(client, _at(task, 120))

    def confirm(task_id: int) -> int:
        return client.post(f"/v1/tasks/{task_id}/confirm", headers=coordinator | {
            "Idempotency-Key": f"confirm-{task_id}"}).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(confirm, ids))
    assert codes == [200, 409]
    log = client.get("/v1/audit?target=task:", headers=coordinator).json()["items"]
    assert [e["action"] for e in log] == ["confirm"]  # once, with its points
    with db.session() as session:
        seats = session.scalars(select(PaidSeat)).all()
        assert [(s.need_id, s.date, s.seat) for s in seats] == [
            (task["need_id"], dt.date.fromisoformat(task["date"]), 0)]
        credits = dict(session.execute(select(Account.currency, func.count()).join(
            LedgerEntry, LedgerEntry.account_id == Account.id).where(
            LedgerEntry.amount > 0).group_by(Account.currency)).all())
        assert credits == {"points": 1, "minutes": 1}  # its points and its time-bank minutes
        seat = (task["need_id"], dt.date.fromisoformat(task["date"]))
    # The database itself refuses a second payment of the seat, whatever the code does, and
    # a second payment of one task.
    for values in ({"seat": 0, "task_id": ids[1]}, {"seat": 1, "task_id": seats[0].task_id}):
        with db.session() as session, pytest.raises(IntegrityError):
            session.execute(insert(PaidSeat).values(
                need_id=seat[0], date=seat[1], transfer="x", **values))
