"""A street office's week as one job (api/district_runs.py, api/routers/district_runs.py): three
hand-built communities of the default street office, run through the job worker on the district
path. A ("default") has a Monday need its own volunteer cannot serve; B's volunteer BV1 lives
within its circle, so A and B are solved together and BV1 serves A's need; C is far away, a part
of its own. Each community gets its own draft schedule, which passes the independent validator."""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import district_runs
from api.community import load_problem
from api.jobs import claim_job, execute, utcnow
from api.models import Community, DistrictRunRow, ScheduleRow, TaskRow
from api.settings import ApiSettings
from api.tenancy import find_street_office
from matcher.district import Crashes, solve_district
from matcher.domain import Assignment, Day, Problem
from tests.api.conftest import make_user
from tests.conftest import WEEK
from tests.validator import geodesic_walk, validate

pytestmark = pytest.mark.usefixtures("cheap_hashes")  # they log in many times

EN = {"Accept-Language": "en"}


@pytest.fixture
def settings(database_url: str) -> ApiSettings:
    return ApiSettings(database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                       run_workers=False, webhook_url=None, solve_time_limit_s=2,
                       job_worker=True)


def _volunteer(vid: str, lat: float, lon: float, days: str) -> dict[str, Any]:
    return {"volunteer_id": vid, "name": f"志愿者{vid}", "lat": lat, "lon": lon,
            "skills": "meal_delivery",
            "availability": ";".join(f"{d} 08:00-12:00" for d in days.split(";")),
            "max_hours_week": 6}


def _need(nid: str, lat: float, lon: float, days: str) -> dict[str, Any]:
    return {"need_id": nid, "kind": "elderly", "service": "meal_delivery",
            "beneficiary": f"老人{nid}", "phone": "13800000000", "address": "3 栋",
            "lat": lat, "lon": lon, "days": days, "window": "09:00-11:00",
            "duration_min": 30, "priority": "red"}


def _post(client: TestClient, headers: dict[str, str], kind: str, body: dict[str, Any]) -> None:
    response = client.post(f"/v1/{kind}", json=body, headers=headers)
    assert response.status_code == 201, response.text


Street = dict[str, dict[str, str]]


@pytest.fixture
def street(client: TestClient) -> Street:
    """The street office's admin, each community's coordinator, and an admin of another street
    office (of another district)."""
    admin = make_user(client, "street", "street_admin", street_office_id=1)
    for code, name in (("b", "乙社区"), ("c", "丙社区")):
        created = client.post("/v1/communities", json={"code": code, "name": name},
                              headers=admin)
        assert created.status_code == 201, created.text
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        other = find_street_office(session, "bei", name="北街道", district="other", create=True)
        assert other is not None
        session.commit()
        ids: dict[str, int] = {code: ident for code, ident in session.execute(
            select(Community.code, Community.id))}
        other_id = other.id
    headers = {"admin": admin,
               "other": make_user(client, "other", "street_admin", street_office_id=other_id)}
    for code in ("default", "b", "c"):
        headers[code] = make_user(client, f"coord-{code}", "coordinator",
                                  community_id=ids[code])
    a, b, c = headers["default"], headers["b"], headers["c"]
    # A: AN1 on Monday, which AV1 (free on Tuesdays only) cannot serve; AN2 on Tuesday.
    _post(client, a, "volunteers", _volunteer("AV1", 22.536, 114.011, "tue"))
    _post(client, a, "needs", _need("AN1", 22.535, 114.010, "mon"))
    _post(client, a, "needs", _need("AN2", 22.535, 114.010, "tue"))
    # B: BV1 lives a few hundred metres from AN1; BN1 is two kilometres away, BV2's.
    _post(client, b, "volunteers", _volunteer("BV1", 22.537, 114.012, "mon"))
    _post(client, b, "volunteers", _volunteer("BV2", 22.545, 114.031, "mon"))
    _post(client, b, "needs", _need("BN1", 22.545, 114.030, "mon"))
    # C: far from both.
    _post(client, c, "volunteers", _volunteer("CV1", 22.600, 114.100, "wed"))
    _post(client, c, "needs", _need("CN1", 22.601, 114.100, "wed"))
    return headers


def _queue(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/district/schedules",
                           json={"week": str(WEEK), "time_limit_s": 1} | body, headers=headers)
    assert response.status_code == 202, response.text
    queued: dict[str, Any] = response.json()
    return queued


def _wait(client: TestClient, headers: dict[str, str], run_id: int,
          timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/v1/district/schedules/{run_id}", headers=headers | EN)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in ("solved", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"district run {run_id} still {body.get('status')}")


def _tasks(client: TestClient, street: Street, run: dict[str, Any]) -> dict[str, list[Any]]:
    """Each solved community's tasks, read by its own coordinator, as comparable tuples."""
    out: dict[str, list[Any]] = {}
    for code, entry in run["communities"].items():
        if entry["state"] != "solved":
            continue
        schedule = client.get(f"/v1/schedules/{entry['schedule_id']}", headers=street[code])
        assert schedule.status_code == 200, schedule.text
        assert schedule.json()["status"] in ("solved", "published")
        tasks = client.get(f"/v1/schedules/{entry['schedule_id']}/tasks",
                           params={"limit": 500}, headers=street[code])
        assert tasks.status_code == 200, tasks.text
        out[code] = [(t["need_id"], t["day"], t["start"], t["volunteer_id"], t["walk_min"])
                     for t in tasks.json()["items"]]
    return out


def _validate(client: TestClient, run: dict[str, Any]) -> None:
    """Every stored schedule keeps every rule, checked independently: its community's needs,
    every volunteer of the street office (a volunteer of B may serve A)."""
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:  # the deployment's own: every community
        everything = load_problem(session, WEEK)
        for code, entry in run["communities"].items():
            if entry["state"] != "solved":
                continue
            row = session.get(ScheduleRow, entry["schedule_id"])
            community = session.scalar(select(Community.id).where(Community.code == code))
            assert row is not None and row.community_id == community
            assert row.district_run_id == run["id"] and row.week == str(WEEK)
            tasks = session.scalars(select(TaskRow).where(TaskRow.schedule_id == row.id)).all()
            mine = session.scalars(select(TaskRow.need_id).where(
                TaskRow.schedule_id == row.id)).all()
            needs = [n for n in everything.needs
                     if n.id.startswith({"default": "A", "b": "B", "c": "C"}[code])]
            assert set(mine) <= {n.id for n in needs}
            problem = Problem(WEEK, everything.volunteers, needs, everything.merchants)
            assignments = [Assignment(t.need_id, Day(t.day), t.date, t.start, t.end,
                                      t.volunteer_id, t.merchant_id, t.walk_min)
                           for t in tasks]
            assert validate(problem, assignments, geodesic_walk()) == []
            assert entry["covered"] == len({(a.need_id, a.day) for a in assignments})


def test_a_street_office_week_is_solved_and_stored_per_community(
        client: TestClient, street: Street) -> None:
    queued = _queue(client, street["admin"])
    assert queued["status"] == "queued"
    assert sorted(queued["communities"]) == ["b", "c", "default"]
    run = _wait(client, street["admin"], queued["id"])
    assert run["status"] == "solved", run
    entries = run["communities"]
    assert {code: e["state"] for code, e in entries.items()} == {
        "b": "solved", "c": "solved", "default": "solved"}
    assert entries["default"]["group"] == ["b", "default"] and entries["c"]["group"] == ["c"]
    assert {code: (e["covered"], e["occurrences"]) for code, e in entries.items()} == {
        "b": (1, 1), "c": (1, 1), "default": (2, 2)}
    assert entries["default"]["state_label"] == "solved"
    assert run["summary"]["solved"] == 3 and run["summary"]["groups"] == 2
    tasks = _tasks(client, street, run)
    # B's volunteer serves A's Monday need, in A's schedule; A's own serves Tuesday's.
    assert {(t[0], t[3]) for t in tasks["default"]} == {("AN1", "BV1"), ("AN2", "AV1")}
    assert {(t[0], t[3]) for t in tasks["b"]} == {("BN1", "BV2")}
    assert {(t[0], t[3]) for t in tasks["c"]} == {("CN1", "CV1")}
    _validate(client, run)
    # The run is listed for its week; each coordinator sees only her own schedule.
    listed = client.get("/v1/district/schedules", params={"week": str(WEEK)},
                        headers=street["admin"])
    assert [r["id"] for r in listed.json()["items"]] == [run["id"]]
    other = entries["b"]["schedule_id"]
    assert client.get(f"/v1/schedules/{other}", headers=street["default"]).status_code == 404
    # Chinese by default: the state's words for a person.
    chinese = client.get(f"/v1/district/schedules/{run['id']}", headers=street["admin"]).json()
    assert chinese["communities"]["b"]["state_label"] == "已完成，待发布"
    # Each coordinator publishes her own schedule with the usual route, A's with B's BV1 in it
    # (A's week knows the neighbours within its circles: api.under_way.shared_problem).
    for code in ("b", "default"):
        published = client.post(f"/v1/schedules/{entries[code]['schedule_id']}/publish",
                                json={}, headers=street[code] | EN)
        assert published.status_code == 200, published.text
    mine = client.get("/v1/me/tasks", params={"week": str(WEEK)},
                      headers=make_user(client, "bv1", "volunteer", volunteer_id="BV1",
                                        community_id=_ids(client)["b"]))
    assert [t["need_id"] for t in mine.json()] == ["AN1"], mine.text


def _ids(client: TestClient) -> dict[str, int]:
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        return {code: ident for code, ident in session.execute(
            select(Community.code, Community.id))}


def test_a_run_plans_around_a_volunteers_published_work_elsewhere(
        client: TestClient, street: Street) -> None:
    # A's week is published with BV1 serving AN1 on Monday; then B gets a Monday need beside
    # her that only she can serve. The next run skips A and must leave BV1 time to walk
    # between the two: B's task starts after A's ends, at least the circle's margin later.
    first = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    published = client.post(
        f"/v1/schedules/{first['communities']['default']['schedule_id']}/publish", json={},
        headers=street["default"] | EN)
    assert published.status_code == 200, published.text
    _post(client, street["b"], "needs", _need("BN3", 22.5372, 114.0122, "mon") | {
        "window": "09:00-11:30"})
    second = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    assert second["communities"]["default"]["state"] == "skipped"
    tasks = _tasks(client, street, first)["default"]
    an1 = next(t for t in tasks if t[0] == "AN1")
    assert an1[3] == "BV1"
    b_tasks = _tasks(client, street, second)["b"]
    bn3 = [t for t in b_tasks if t[0] == "BN3"]
    end_of_an1 = _minutes(an1[2]) + 30
    assert all(t[3] != "BV1" or _minutes(t[2]) >= end_of_an1 + 30 for t in bn3), (an1, bn3)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def test_a_published_community_is_left_out_and_said_why(client: TestClient,
                                                        street: Street) -> None:
    first = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    schedule_id = first["communities"]["c"]["schedule_id"]
    published = client.post(f"/v1/schedules/{schedule_id}/publish", json={},
                            headers=street["c"])
    assert published.status_code == 200, published.text
    second = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    entries = second["communities"]
    assert entries["c"]["state"] == "skipped" and "已经发布" in entries["c"]["why"]
    assert "schedule_id" not in entries["c"] or entries["c"]["schedule_id"] is None
    assert entries["b"]["state"] == entries["default"]["state"] == "solved"
    assert second["summary"]["skipped"] == 1 and second["summary"]["solved"] == 2
    assert _tasks(client, street, second) == {
        code: tasks for code, tasks in _tasks(client, street, first).items() if code != "c"}


def test_a_community_whose_part_keeps_failing_is_reported_and_the_others_are_stored(
        client: TestClient, street: Street, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    # C's part fails on every try (an error in this process: the local engine).
    monkeypatch.setattr(district_runs, "solve_district", functools.partial(
        solve_district, crashes=Crashes({"c": 99}, tmp_path)))
    run = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    assert run["status"] == "solved" and run["summary"]["failed"] == 1
    entries = run["communities"]
    assert entries["c"]["state"] == "failed"
    # Written by the worker in the product's language, the cause kept for whoever runs it.
    assert "试了 3 次" in entries["c"]["error"] and "injected failure" in entries["c"]["error"]
    assert len(list(tmp_path.glob("part1-*"))) == 3  # tried, then retried twice
    assert entries["b"]["state"] == entries["default"]["state"] == "solved"
    assert set(_tasks(client, street, run)) == {"b", "default"}
    _validate(client, run)
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        stored = session.scalars(select(ScheduleRow.community_id).where(
            ScheduleRow.district_run_id == run["id"])).all()
    assert len(stored) == 2


def test_a_community_whose_records_break_a_rule_fails_alone(client: TestClient,
                                                           street: Street) -> None:
    from api.models import NeedRow

    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:  # written around the importer, as an old row might be
        need = session.get(NeedRow, "CN1")
        assert need is not None
        need.window = "25:00-26:00"
        session.commit()
    run = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    entries = run["communities"]
    assert entries["c"]["state"] == "failed" and "CN1" in entries["c"]["error"]
    assert entries["b"]["state"] == entries["default"]["state"] == "solved"


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024 ** 2)
    yield
    ray.shutdown()


@pytest.mark.usefixtures("ray_local")
def test_the_ray_engine_stores_the_same_tasks_and_retries_a_killed_worker(
        client: TestClient, street: Street, settings: ApiSettings,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    monkeypatch.setattr(settings, "solve_engine", "ray")
    # C's Ray worker is killed on its first try; Ray runs the task again.
    monkeypatch.setattr(district_runs, "solve_district", functools.partial(
        solve_district, crashes=Crashes({"c": 1}, tmp_path)))
    on_ray = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    assert on_ray["status"] == "solved" and on_ray["summary"]["engine"] == "ray"
    assert len(list(tmp_path.glob("part1-*"))) == 1
    assert {e["state"] for e in on_ray["communities"].values()} == {"solved"}
    assert _tasks(client, street, on_ray) == _tasks(client, street, local)
    _validate(client, on_ray)


def test_only_admins_queue_and_each_sees_only_her_runs(client: TestClient,
                                                       street: Street) -> None:
    refused = client.post("/v1/district/schedules", json={"week": str(WEEK)},
                          headers=street["default"])
    assert refused.status_code == 403
    run = _wait(client, street["admin"], _queue(client, street["admin"])["id"])
    other = street["other"]
    assert client.get(f"/v1/district/schedules/{run['id']}", headers=other).status_code == 404
    assert client.post(f"/v1/district/schedules/{run['id']}/cancel",
                       headers=other).status_code == 404
    assert client.get("/v1/district/schedules", headers=other).json()["total"] == 0
    # Her own street office has no community: nothing to run.
    empty = client.post("/v1/district/schedules", json={"week": str(WEEK)}, headers=other)
    assert empty.status_code == 409 and empty.json()["code"] == "no_communities"
    # A district admin of the default district sees the street office's run.
    district = make_user(client, "district", "district_admin", district_id=1)
    assert client.get(f"/v1/district/schedules/{run['id']}",
                      headers=district).status_code == 200
    bad = client.post("/v1/district/schedules", json={"week": "2026-53"},
                      headers=street["admin"])
    assert bad.status_code == 422


def test_cancel_a_queued_run_and_a_running_one(client: TestClient, street: Street) -> None:
    app: Any = client.app
    app.state.worker.stop()  # runs stay queued until this test runs the worker's steps
    admin = street["admin"]
    queued = _queue(client, admin)
    cancelled = client.post(f"/v1/district/schedules/{queued['id']}/cancel", headers=admin)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    running = _queue(client, admin)
    worker = app.state.worker
    claim = claim_job(app.state.db, worker.name, utcnow(), dt.timedelta(seconds=30))
    assert claim is not None and claim.id == running["id"] and claim.community_id is None
    asked = client.post(f"/v1/district/schedules/{running['id']}/cancel", headers=admin)
    assert asked.status_code == 200 and asked.json()["cancel_requested"] is True
    assert execute(worker.ctx, claim, worker.name, threading.Event()) == "cancelled"
    done = client.get(f"/v1/district/schedules/{running['id']}", headers=admin | EN).json()
    assert done["status"] == "cancelled"
    with app.state.db.session() as session:
        assert session.scalars(select(ScheduleRow).where(
            ScheduleRow.district_run_id == running["id"])).all() == []
        assert session.get(DistrictRunRow, running["id"]) is not None
    again = client.post(f"/v1/district/schedules/{running['id']}/cancel", headers=admin)
    assert again.status_code == 200  # cancelling a cancelled run changes nothing
    app.state.worker.stopping.clear()
    app.state.worker.start()
    solved = _wait(client, admin, _queue(client, admin)["id"])
    late = client.post(f"/v1/district/schedules/{solved['id']}/cancel", headers=admin | EN)
    assert late.status_code == 409 and "district run" in late.json()["detail"]


def test_a_retried_run_keeps_what_its_first_worker_stored(client: TestClient,
                                                          street: Street) -> None:
    """A worker stopped after storing C's schedule: the run's second attempt solves the week
    again but stores C's schedule only once."""
    app: Any = client.app
    app.state.worker.stop()
    admin = street["admin"]
    first = _queue(client, admin)
    worker = app.state.worker
    lease = dt.timedelta(seconds=30)
    assert claim_job(app.state.db, "gone", utcnow(), lease) is not None
    # Run as the first worker would have, up to C's schedule: the run's map says so.
    with app.state.db.session() as session:
        row = session.get(DistrictRunRow, first["id"])
        assert row is not None
        c_id = session.scalar(select(Community.id).where(Community.code == "c"))
    with app.state.db.session(c_id) as session:
        earlier = ScheduleRow(week=str(WEEK), status="solved", progress="done",
                              district_run_id=first["id"], summary={"status": "optimal"})
        session.add(earlier)
        session.commit()
        earlier_id = earlier.id
    with app.state.db.session() as session:
        row = session.get(DistrictRunRow, first["id"])
        assert row is not None
        row.communities = row.communities | {"c": {
            "state": "solved", "name": "丙社区", "schedule_id": earlier_id, "covered": 1,
            "occurrences": 1, "group": ["c"]}}
        row.claimed_until = utcnow() - dt.timedelta(seconds=1)  # its lease ran out
        session.commit()
    claim = claim_job(app.state.db, worker.name, utcnow(), lease)
    assert claim is not None and claim.attempt == 2
    assert execute(worker.ctx, claim, worker.name, threading.Event()) == "solved"
    run = client.get(f"/v1/district/schedules/{first['id']}", headers=admin).json()
    assert run["status"] == "solved" and run["attempts"] == 2
    assert run["communities"]["c"]["schedule_id"] == earlier_id
    assert {e["state"] for e in run["communities"].values()} == {"solved"}
    with app.state.db.session() as session:
        stored = session.scalars(select(ScheduleRow.community_id).where(
            ScheduleRow.district_run_id == first["id"])).all()
    assert sorted(stored) == sorted(set(stored)) and len(stored) == 3
