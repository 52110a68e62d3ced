"""Re-solving and re-publishing a week under way (supersede): work agreed with people keeps its
task rows, nothing is re-offered or offered in the past, declines hold, the preview is what
publish does, and a plan older than the week's state is refused."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.community import TZ
from api.under_way import OFFER_NOTICE
from matcher.domain import parse_hhmm
from matcher.spreadsheets import read_community
from tests.api.conftest import make_user, wait_for
from tests.api.test_service import as_assignments
from tests.conftest import WEEK
from tests.validator import geodesic_walk, validate

STANDING = {"offered", "accepted", "checked_in", "completed", "confirmed"}
UNDER_WAY = {"accepted", "checked_in", "completed", "confirmed"}


def _tasks(client: TestClient, headers: dict[str, str], schedule_id: int) -> dict[int, Any]:
    return {t["id"]: t for t in client.get(f"/v1/schedules/{schedule_id}/tasks",
                                           params={"limit": 500},
                                           headers=headers).json()["items"]}


def _solve(client: TestClient, headers: dict[str, str]) -> int:
    job = client.post("/v1/schedules", json={"week": str(WEEK)}, headers=headers)
    assert job.status_code == 202, job.text
    body = wait_for(client, headers, job.json()["id"])
    assert body["status"] == "solved", body
    return int(body["id"])


def _events(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    from api.models import OutboxEvent

    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        return [(e.recipient, e.kind, e.payload) for e in session.query(OutboxEvent)]


def _credits(client: TestClient) -> Counter[str]:
    """Ledger credits to volunteers, per occurrence ("need date" of the transfer's memo)."""
    from api.models import Account, LedgerEntry

    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        rows = session.query(LedgerEntry.memo).join(Account).filter(
            Account.kind == "volunteer", LedgerEntry.amount > 0).all()
    return Counter(" ".join(memo.split()[2:]) for (memo,) in rows)


def _at(day: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(WEEK.monday + dt.timedelta(days=day), dt.time(hh, mm), TZ)


def _near(client: TestClient, task: dict[str, Any], minutes: int) -> None:
    """Set the community's clock ``minutes`` after the task's start (negative: before)."""
    start = dt.datetime.combine(dt.date.fromisoformat(task["date"]),
                                dt.time.fromisoformat(task["start"]), TZ)
    moment = start + dt.timedelta(minutes=minutes)
    client.app.state.clock = lambda: moment  # type: ignore[attr-defined]


# When each step is taken, in minutes from the task's start (the lifecycle's time rules).
STEP_AT = {"accept": -60, "check-in": -10, "complete": 5, "confirm": 10, "decline": -60}


def test_supersede_keeps_work_under_way_and_the_preview_is_what_publish_does(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any],
        community_files: Path) -> None:
    problem = read_community(community_files, WEEK).problem
    needed = {n.id: n.volunteers_needed for n in problem.needs}
    tasks = sorted(published["tasks"], key=lambda t: (t["date"], t["start"], t["id"]))
    # Five volunteers' first tasks, Monday's first: one confirmed, one completed, one checked
    # in, one accepted, one declined (which offers the place to someone else at once).
    chosen: list[dict[str, Any]] = []
    for t in tasks:
        if t["volunteer_id"] not in {c["volunteer_id"] for c in chosen} and \
                (t["need_id"], t["day"]) not in {(c["need_id"], c["day"]) for c in chosen}:
            chosen.append(t)
        if len(chosen) == 5:
            break
    confirmed, completed, checked_in, accepted, declined = chosen
    users = {t["id"]: make_user(client, f"vol{n}", "volunteer", volunteer_id=t["volunteer_id"])
             for n, t in enumerate(chosen)}
    steps = {confirmed["id"]: ("accept", "check-in", "complete"),
             completed["id"]: ("accept", "check-in", "complete"),
             checked_in["id"]: ("accept", "check-in"), accepted["id"]: ("accept",)}
    for tid, todo in steps.items():
        task = next(t for t in chosen if t["id"] == tid)
        for step in todo:
            _near(client, task, STEP_AT[step])
            response = client.post(f"/v1/me/tasks/{tid}/{step}", headers=users[tid])
            assert response.status_code == 200, response.text
    _near(client, confirmed, STEP_AT["confirm"])
    response = client.post(f"/v1/tasks/{confirmed['id']}/confirm",
                           headers=coordinator | {"Idempotency-Key": "confirm-first-task"})
    assert response.status_code == 200, response.text
    _near(client, declined, STEP_AT["decline"])
    response = client.post(f"/v1/me/tasks/{declined['id']}/decline",
                           json={"reason": "临时有事"}, headers=users[declined["id"]])
    assert response.status_code == 200, response.text

    # Wednesday 10:00 of the week: the organiser re-solves (say, deliveries were added).
    now = _at(2, 10)
    client.app.state.clock = lambda: now  # type: ignore[attr-defined]
    before = _tasks(client, coordinator, published["id"])
    second = _solve(client, coordinator)
    preview = client.get(f"/v1/schedules/{second}/changes", headers=coordinator)
    assert preview.status_code == 200, preview.text
    changes = preview.json()
    assert changes["conflicts"] == []
    response = client.post(f"/v1/schedules/{second}/publish", json={"supersede": True},
                           headers=coordinator)
    assert response.status_code == 200, response.text
    after = _tasks(client, coordinator, second)

    # The work under way: the same rows, ids and states, now in the new schedule.
    for t in (confirmed, completed, checked_in, accepted):
        assert t["id"] in after
        assert {k: v for k, v in after[t["id"]].items() if k != "state"} == \
            {k: v for k, v in before[t["id"]].items() if k != "state"}
        assert after[t["id"]]["state"] == before[t["id"]]["state"]
    assert {after[t["id"]]["state"] for t in chosen[:4]} == \
        {"confirmed", "completed", "checked_in", "accepted"}
    # Their occurrences are offered to nobody else (a partner of a two-person need at most).
    standing = [t for t in after.values() if t["state"] in STANDING]
    per_occurrence: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in standing:
        per_occurrence[t["need_id"], t["day"]].append(t)
    for key, group in per_occurrence.items():
        assert len(group) <= needed[key[0]], group
        assert len({(t["start"], t["merchant_id"]) for t in group}) == 1, group
    # Every task the plan added starts after now plus the notice.
    old_ids = set(before)
    for t in standing:
        if t["id"] not in old_ids:
            start = dt.datetime.combine(dt.date.fromisoformat(t["date"]), dt.time(0), TZ) \
                + dt.timedelta(minutes=parse_hhmm(t["start"]))
            assert start >= now + OFFER_NOTICE, t
    # The decline holds: that volunteer is not on that occurrence again.
    assert after[declined["id"]]["state"] == "declined"
    assert not [t for t in standing if (t["need_id"], t["day"], t["volunteer_id"]) ==
                (declined["need_id"], declined["day"], declined["volunteer_id"])]
    # The published week is still valid.
    assert validate(problem, as_assignments(standing), geodesic_walk()) == []

    # The preview is what publish did.
    kept = {c["task_id"] for c in changes["kept"]}
    assert {t["id"] for t in chosen[:4]} <= kept
    assert kept | {c["task_id"] for c in changes["moved"]} == \
        {tid for tid in after if tid in old_ids and after[tid]["state"] != "declined"}
    assert {(c["need_id"], c["day"], c["volunteer_id"]) for c in changes["new"]} == \
        {(t["need_id"], t["day"], t["volunteer_id"]) for t in standing if t["id"] not in old_ids}
    old_rows = _tasks(client, coordinator, published["id"])
    assert {c["task_id"] for c in changes["dropped"]} == set(old_rows)
    assert all(t["state"] == "cancelled" for t in old_rows.values())
    for c in changes["dropped"]:
        assert before[c["task_id"]]["state"] == "offered"
    # Kept offers are not offered twice; dropped ones are cancelled with an event.
    events = _events(client)
    offered = Counter(p["task_id"] for _, kind, p in events if kind == "task.offered")
    assert all(n == 1 for n in offered.values())
    cancelled = {p["task_id"] for _, kind, p in events if kind == "task.cancelled"}
    assert cancelled == {c["task_id"] for c in changes["dropped"]}

    # Completed work is confirmed once: no occurrence is ever credited twice.
    response = client.post(f"/v1/tasks/{completed['id']}/confirm",
                           headers=coordinator | {"Idempotency-Key": "confirm-second-task"})
    assert response.status_code == 200, response.text
    again = client.post(f"/v1/tasks/{confirmed['id']}/confirm",
                        headers=coordinator | {"Idempotency-Key": "confirm-first-again"})
    assert again.status_code == 409
    credits = _credits(client)
    assert credits and all(n == 1 for n in credits.values()), credits


def test_a_plan_older_than_the_weeks_state_is_refused(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    # Half an hour before the week's first task, a re-solve drops some offers it would rather
    # make otherwise (new offers need an hour's notice; offers already made may stay).
    first = min(published["tasks"], key=lambda t: (t["date"], t["start"], t["id"]))
    _near(client, first, -30)
    now = client.app.state.clock()  # type: ignore[attr-defined]
    second = _solve(client, coordinator)
    changes = client.get(f"/v1/schedules/{second}/changes", headers=coordinator).json()
    assert changes["conflicts"] == []
    ahead = [c for c in changes["dropped"] if dt.datetime.combine(
        dt.date.fromisoformat(c["date"]), dt.time.fromisoformat(c["start"]), TZ) > now]
    assert ahead, changes["dropped"]
    # After the solve, a volunteer accepts one of them (still before its start).
    late = ahead[0]
    me = make_user(client, "late", "volunteer", volunteer_id=late["volunteer_id"])
    assert client.post(f"/v1/me/tasks/{late['task_id']}/accept", headers=me).status_code == 200
    before = _tasks(client, coordinator, published["id"])
    preview = client.get(f"/v1/schedules/{second}/changes", headers=coordinator).json()
    assert [c["task_id"] for c in preview["conflicts"]] == [late["task_id"]]
    refused = client.post(f"/v1/schedules/{second}/publish", json={"supersede": True},
                          headers=coordinator | {"Accept-Language": "en"})
    assert refused.status_code == 409 and refused.json()["code"] == "plan_stale"
    assert "re-solve" in refused.json()["detail"]
    assert [e["task_id"] for e in refused.json()["errors"]] == [late["task_id"]]
    # Nothing changed: the old schedule still published with the same tasks.
    assert client.get(f"/v1/schedules/{published['id']}",
                      headers=coordinator).json()["status"] == "published"
    assert _tasks(client, coordinator, published["id"]) == before
    # A fresh solve keeps the accepted task, and publishes.
    third = _solve(client, coordinator)
    response = client.post(f"/v1/schedules/{third}/publish", json={"supersede": True},
                           headers=coordinator)
    assert response.status_code == 200, response.text
    assert _tasks(client, coordinator, third)[late["task_id"]]["state"] == "accepted"


def test_a_first_solve_of_a_week_under_way_offers_nothing_in_the_past(
        client: TestClient, coordinator: dict[str, str], community_files: Path) -> None:
    from tests.api.conftest import upload

    assert upload(client, coordinator, community_files).status_code == 200
    client.app.state.clock = lambda: _at(3, 9)  # type: ignore[attr-defined]
    schedule = _solve(client, coordinator)
    tasks = _tasks(client, coordinator, schedule)
    assert tasks and min(t["date"] for t in tasks.values()) >= str(_at(3, 9).date())
    unmet = client.get(f"/v1/schedules/{schedule}/unmet", params={"limit": 500},
                       headers=coordinator).json()["items"]
    passed = {u["day"] for u in unmet if u["reason_code"] == "occurrence_passed"}
    assert {"mon", "tue", "wed"} <= passed


def test_work_under_way_that_an_edit_broke_is_held_not_lost(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    task = published["tasks"][0]
    me = make_user(client, "edited", "volunteer", volunteer_id=task["volunteer_id"])
    assert client.post(f"/v1/me/tasks/{task['id']}/accept", headers=me).status_code == 200
    # After publishing, the volunteer's availability is edited away from the task's day.
    record = client.get(f"/v1/volunteers/{task['volunteer_id']}", headers=coordinator).json()
    other = "sun" if task["day"] != "sun" else "sat"
    fields = ("volunteer_id", "name", "lat", "lon", "skills", "max_hours_week")
    edited = {k: record[k] for k in fields} | {"availability": f"{other} 08:00-09:00"}
    response = client.put(f"/v1/volunteers/{task['volunteer_id']}", json=edited,
                          headers=coordinator)
    assert response.status_code == 200, response.text
    second = _solve(client, coordinator)  # the solve tolerates it rather than failing
    unmet = client.get(f"/v1/schedules/{second}/unmet", params={"limit": 500},
                       headers=coordinator).json()["items"]
    held = [u for u in unmet if (u["need_id"], u["day"]) == (task["need_id"], task["day"])]
    assert [u["reason_code"] for u in held] == ["held_by_pinned_task"]
    response = client.post(f"/v1/schedules/{second}/publish", json={"supersede": True},
                           headers=coordinator)
    assert response.status_code == 200, response.text
    after = _tasks(client, coordinator, second)
    assert after[task["id"]]["state"] == "accepted"
    assert [t for t in after.values() if (t["need_id"], t["day"]) ==
            (task["need_id"], task["day"]) and t["state"] != "cancelled"] == [after[task["id"]]]


def test_a_plan_the_community_changed_under_is_refused(
        client: TestClient, coordinator: dict[str, str], community_files: Path) -> None:
    """An edit between a solve and its publication can break a task of the plan (found by the
    lifecycle state machine): publishing would offer a task outside its volunteer's hours."""
    from tests.api.conftest import upload

    assert upload(client, coordinator, community_files).status_code == 200
    plan = _solve(client, coordinator)
    task = min(_tasks(client, coordinator, plan).values(), key=lambda t: t["id"])
    person = client.get(f"/v1/volunteers/{task['volunteer_id']}", headers=coordinator).json()
    elsewhere = "sun" if task["day"] != "sun" else "sat"
    edited = client.put(f"/v1/volunteers/{task['volunteer_id']}", headers=coordinator,
                        json=person | {"availability": f"{elsewhere} 06:00-07:00"})
    assert edited.status_code == 200, edited.text
    preview = client.get(f"/v1/schedules/{plan}/changes", headers=coordinator).json()
    assert task["id"] in {c["task_id"] for c in preview["conflicts"]}
    refused = client.post(f"/v1/schedules/{plan}/publish", json={},
                          headers=coordinator | {"Accept-Language": "en"})
    assert refused.status_code == 409 and "re-solve" in refused.json()["detail"]
    assert task["id"] in {e["task_id"] for e in refused.json()["errors"]}
    assert client.get(f"/v1/schedules/{plan}", headers=coordinator).json()["status"] == "solved"
    fresh = _solve(client, coordinator)
    published = client.post(f"/v1/schedules/{fresh}/publish", json={}, headers=coordinator)
    assert published.status_code == 200, published.text
