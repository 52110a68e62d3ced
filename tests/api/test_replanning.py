"""The re-planning cache: reused while the community is unchanged, rebuilt when it changes;
and edits after publishing: the tasks they break are marked at risk, re-planning goes on."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api import replanning
from api.community import TZ
from api.db import Database
from api.models import OutboxEvent, ScheduleRow, TaskRow
from api.replanning import CandidateCache, active_tasks, assignment_of
from matcher.domain import Day, Problem, Week
from matcher.replan import PinnedWeek
from matcher.spreadsheets import read_community
from tests.api.conftest import make_user, upload
from tests.api.test_service import as_assignments
from tests.conftest import WEEK, need, volunteer
from tests.validator import geodesic_walk, validate


def test_candidates_are_reused_until_the_community_changes() -> None:
    builds = []

    def network() -> None:
        builds.append(1)  # called once per build

    cache = CandidateCache(network, size=2)
    problem = Problem(WEEK, [volunteer("V1")], [need("N1")])
    first = cache.get(problem)
    assert cache.get(Problem(WEEK, [volunteer("V1")], [need("N1")])) is first
    assert len(builds) == 1
    moved = Problem(WEEK, [replace(problem.volunteers[0], max_hours_week=2)], [need("N1")])
    assert cache.get(moved) is not first and len(builds) == 2
    cache.get(Problem(WEEK, [volunteer("V2")], [need("N1")]))
    assert cache.get(problem) is not first  # the oldest of three was evicted (size 2)


def _clock(client: TestClient, now: dt.datetime) -> None:
    client.app.state.clock = lambda: now  # type: ignore[attr-defined]


def _outbox(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        return [(e.recipient, e.kind, e.payload)
                for e in session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]


def test_an_edit_after_publishing_marks_tasks_at_risk_and_replanning_goes_on(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any],
        community_files: Path) -> None:
    schedule = published["id"]
    task = next(t for t in published["tasks"] if t["merchant_id"])
    shop = client.get(f"/v1/merchants/{task['merchant_id']}", headers=coordinator).json()
    _clock(client, dt.datetime.combine(WEEK.monday - dt.timedelta(days=2), dt.time(12), TZ))
    # The canteen itself narrows its hours to the evening: its tasks of the week now break R8.
    owner = make_user(client, "canteen", "merchant", merchant_id=shop["merchant_id"])
    edit = client.put(f"/v1/merchants/{shop['merchant_id']}",
                      json=shop | {"open": "20:00-21:00"}, headers=owner)
    assert edit.status_code == 200, edit.text
    warned = {w["task_id"]: w for w in edit.json()["at_risk"]}
    assert task["id"] in warned and "is not open at" in warned[task["id"]]["reason"]
    assert all(w["volunteer_id"] is None for w in warned.values())  # who: coordinators only
    shops = {t["id"] for t in published["tasks"] if t["merchant_id"] == shop["merchant_id"]}
    assert set(warned) == shops
    listed = client.get(f"/v1/schedules/{schedule}/tasks?at_risk=true", headers=coordinator)
    assert {t["id"] for t in listed.json()["items"]} == shops
    assert {t["volunteer_id"] for t in listed.json()["items"] if t["id"] == task["id"]} == {
        task["volunteer_id"]}
    assert all(t["state"] == "offered" and t["at_risk_since"] for t in listed.json()["items"])
    summary = client.get(f"/v1/schedules/{schedule}", headers=coordinator).json()["summary"]
    assert summary["at_risk"] == len(shops)
    events = _outbox(client)
    assert ("coordinators", "task.at_risk") in {(r, k) for r, k, _ in events}
    assert any(r == f"volunteer:{task['volunteer_id']}" and k == "task.at_risk"
               and p["task_id"] == task["id"] for r, k, p in events)
    # The same edit again puts nothing newly at risk.
    again = client.put(f"/v1/merchants/{shop['merchant_id']}",
                       json=shop | {"open": "20:00-21:00"}, headers=coordinator).json()
    assert again["at_risk"] == []
    # Declines and "who could take this" in that week work (they answered 500 before).
    me = make_user(client, "hana", "volunteer", volunteer_id=task["volunteer_id"])
    refused = client.post(f"/v1/me/tasks/{task['id']}/accept",
                          headers=me | {"Accept-Language": "en"})
    assert refused.status_code == 409 and "at risk" in refused.json()["detail"]
    fits = client.get(f"/v1/schedules/{schedule}/occurrences/{task['need_id']}/{task['day']}"
                      "/candidates", headers=coordinator)
    assert fits.status_code == 200
    other = next(t for t in published["tasks"] if t["id"] not in shops)
    them = make_user(client, "ivan", "volunteer", volunteer_id=other["volunteer_id"])
    for who, declined in ((them, other), (me, task)):
        answer = client.post(f"/v1/me/tasks/{declined['id']}/decline",
                             json={"reason": "家里有事"}, headers=who)
        assert answer.status_code == 200, answer.text
    after = {t["id"]: t for t in client.get(f"/v1/schedules/{schedule}/tasks",
                                            params={"limit": 500},
                                            headers=coordinator).json()["items"]}
    assert after[task["id"]]["state"] == "declined" and after[task["id"]]["at_risk"] is None
    # The week without the at-risk tasks still keeps every rule.
    problem = read_community(community_files, WEEK).problem
    kept = [t for t in after.values() if t["state"] in ("offered", "accepted")
            and not t["at_risk"]]
    assert validate(problem, as_assignments(kept), geodesic_walk()) == []
    # Importing the original files makes the rest valid again: the marks are cleared.
    assert upload(client, coordinator, community_files).json()["at_risk"] == []
    assert client.get(f"/v1/schedules/{schedule}/tasks?at_risk=true",
                      headers=coordinator).json()["items"] == []
    assert any(k == "task.at_risk_cleared" for _, k, _ in _outbox(client))
    # A volunteer narrowing her own availability is warned about through the import too.
    files = {p.name: p.read_text(encoding="utf-8") for p in community_files.glob("*.csv")}
    rows = files["volunteers.csv"].splitlines()
    header = rows[0].split(",")
    mine = next(i for i, r in enumerate(rows) if r.startswith(other["volunteer_id"] + ","))
    cells = rows[mine].split(",")
    cells[header.index("availability")] = "sun 06:00-07:00"
    rows[mine] = ",".join(cells)
    upload_files = [("files", ("volunteers.csv", "\n".join(rows).encode(), "text/csv"))]
    result = client.post("/v1/imports", files=upload_files, headers=coordinator)
    assert result.status_code == 200, result.text
    theirs = {t["id"] for t in after.values() if t["volunteer_id"] == other["volunteer_id"]
              and t["state"] == "offered"}
    assert {w["task_id"] for w in result.json()["at_risk"]} == theirs


def test_the_kept_week_is_rebuilt_after_an_edit_an_import_and_a_publication(
        client: TestClient, coordinator: dict[str, str], community_files: Path,
        tmp_path: Path) -> None:
    """The process keeps a week under the community's version: kept while nothing changes
    (declines and candidates reuse it), built again after any change of what it holds."""
    from sqlalchemy import insert

    from api.community import columns_of
    from api.models import AllocationRow, NeedRow, VolunteerRow

    assert upload(client, coordinator, community_files).status_code == 200
    app = client.app
    cache = app.state.candidates  # type: ignore[attr-defined]

    def week() -> Any:
        with app.state.db.session() as session:  # type: ignore[attr-defined]
            return cache.week(session, WEEK)

    kept = week()
    assert week() is kept  # nothing changed: the same week, not built again
    first = kept.problem.volunteers[0]
    body = client.get(f"/v1/volunteers/{first.id}", headers=coordinator).json()
    response = client.put(f"/v1/volunteers/{first.id}", headers=coordinator,
                          json=body | {"max_hours_week": first.max_hours_week + 1})
    assert response.status_code == 200, response.text
    edited = week()
    assert edited is not kept
    assert edited.problem.volunteer_by_id[first.id].max_hours_week == first.max_hours_week + 1
    assert week() is edited

    folder = tmp_path / "renamed"
    folder.mkdir()
    text = (community_files / "volunteers.csv").read_text(encoding="utf-8-sig")
    (folder / "volunteers.csv").write_text(text.replace(first.name, "新名字", 1),
                                           encoding="utf-8")
    assert upload(client, coordinator, folder).status_code == 200
    imported = week()
    assert imported is not edited and imported.problem.volunteer_by_id[first.id].name == "新名字"

    with app.state.db.session() as session:  # type: ignore[attr-defined]
        allocation = AllocationRow(week=str(WEEK), status="solved", progress="")
        session.add(allocation)
        session.flush()
        delivery = columns_of("needs", replace(kept.problem.needs[0], id="A1-GD-D1-R1"))
        session.add(NeedRow(**delivery, only_week=str(WEEK), allocation_id=allocation.id))
        session.commit()
        allocated = week()
        assert "A1-GD-D1-R1" not in allocated.problem.need_by_id  # not published yet
        allocation.progress = "done"  # a job's progress is not the community
        session.commit()
        assert week() is allocated
        allocation.status = "published"  # its deliveries join the week
        session.commit()
        published = week()
        assert published is not allocated and "A1-GD-D1-R1" in published.problem.need_by_id
        session.execute(insert(VolunteerRow), [{
            "volunteer_id": "V9999", "name": "新志愿者", "lat": first.location.lat,
            "community_id": 1,
            "lon": first.location.lon, "skills": [], "max_hours_week": 4,
            "availability": [{"day": "mon", "start": 480, "end": 720}]}])
        session.commit()
    bulk = week()
    assert bulk is not published and "V9999" in bulk.problem.volunteer_by_id


def _scratch(app: Any, session: Session, schedule: ScheduleRow,
             without: set[int] | None = None) -> PinnedWeek:
    """The schedule's week pinned as if this process kept nothing: a week built afresh and
    the tasks read again."""
    cand = CandidateCache(app.state.networks.get).week(session, Week.parse(schedule.week))
    return PinnedWeek(cand, [assignment_of(t) for t in active_tasks(session, schedule.id)
                             if t.id not in (without or set())])


def _same(kept: PinnedWeek, scratch: PinnedWeek) -> None:
    assert kept.broken == scratch.broken
    assert kept.plan == scratch.plan and kept.held == scratch.held
    for occ in scratch.cand.problem.occurrences[::3]:
        assert kept.recommend(occ.need.id, occ.day) == scratch.recommend(occ.need.id, occ.day)


def test_the_pinned_week_is_kept_until_a_task_changes_even_in_another_process(
        client: TestClient, published: dict[str, Any], database_url: str) -> None:
    """Kept under the schedule's tasks' version, which a change of a task raises in its own
    transaction: a change another server process makes (its own connections) is seen, one
    through the ORM or a bulk statement. An accept changes nothing a pinned week reads."""
    app = client.app
    cache = app.state.candidates  # type: ignore[attr-defined]
    schedule_id = published["id"]

    def pinned() -> PinnedWeek:
        with app.state.db.session() as session:  # type: ignore[attr-defined]
            schedule = session.get(ScheduleRow, schedule_id)
            assert schedule is not None
            week: PinnedWeek = cache.pinned(session, schedule)[0]
            _same(week, _scratch(app, session, schedule))
            return week

    def version(session: Session) -> int:
        return int(session.scalar(select(ScheduleRow.tasks_version)
                                  .where(ScheduleRow.id == schedule_id)) or 0)

    kept = pinned()
    assert pinned() is kept  # nothing changed: neither read nor built again
    first, second = published["tasks"][0]["id"], published["tasks"][1]["id"]
    other = Database(database_url)  # another process's connections to the same database
    try:
        with other.session() as session:  # an accept leaves the pinned week as it was
            before = version(session)
            task = session.get(TaskRow, published["tasks"][3]["id"])
            assert task is not None and task.state == "offered"
            task.state = "accepted"
            session.commit()
            assert version(session) == before
        assert pinned() is kept
        with other.session() as session:
            task = session.get(TaskRow, first)
            assert task is not None
            task.state = "cancelled"
            session.flush()
            assert version(session) == before + 1  # in the change's own transaction
            task.decline_reason = "still the same transaction"
            session.flush()
            assert version(session) == before + 1  # raised once per transaction
            session.commit()
        cancelled = pinned()
        assert cancelled is not kept
        assert pinned() is cancelled
        with other.session() as session:
            session.execute(update(TaskRow).where(TaskRow.id == second)
                            .values(state="cancelled"))
            session.commit()
        bulk = pinned()
        assert bulk is not cancelled
        with other.session() as session:  # a change rolled back leaves the version as it was
            unchanged = version(session)
            task = session.get(TaskRow, published["tasks"][2]["id"])
            assert task is not None
            task.state = "cancelled"
            session.flush()
            session.rollback()
            assert version(session) == unchanged
        assert pinned() is bulk
    finally:
        other.dispose()


def test_a_decline_updates_the_kept_tasks_in_place_and_offers_what_rebuilding_offers(
        client: TestClient, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """After its own decline this process neither reads the tasks again nor offers anything
    else than the week pinned from scratch offers; the week it keeps then is the one pinned
    from scratch."""
    app = client.app
    cache = app.state.candidates  # type: ignore[attr-defined]
    schedule_id = published["id"]
    _clock(client, dt.datetime.combine(WEEK.monday - dt.timedelta(days=1), dt.time(9), TZ))
    reads: list[int] = []
    real = replanning._active_rows

    def counted(session: Session, schedule: int) -> Any:
        reads.append(schedule)
        return real(session, schedule)

    monkeypatch.setattr(replanning, "_active_rows", counted)
    seen: set[tuple[str, str]] = set()
    tasks = []
    for task in published["tasks"]:  # one task of each occurrence: nobody declined it yet
        if (task["need_id"], task["day"]) not in seen:
            seen.add((task["need_id"], task["day"]))
            tasks.append(task)
    offered = 0
    for k, task in enumerate(tasks[:6]):
        with app.state.db.session() as session:  # type: ignore[attr-defined]
            schedule = session.get(ScheduleRow, schedule_id)
            assert schedule is not None
            _same(cache.pinned(session, schedule)[0], _scratch(app, session, schedule))
            scratch = _scratch(app, session, schedule, without={task["id"]})
            fits = scratch.recommend(task["need_id"], Day(task["day"]),
                                     exclude={task["volunteer_id"]}, free_only=True)
            last = session.scalar(select(func.max(TaskRow.id)))
        reads.clear()
        me = make_user(client, f"v{k}", "volunteer", volunteer_id=task["volunteer_id"])
        response = client.post(f"/v1/me/tasks/{task['id']}/decline", json={"reason": "病了"},
                               headers=me)
        assert response.status_code == 200, response.text
        assert reads == []  # the kept tasks, updated in place by the decline before
        with app.state.db.session() as session:  # type: ignore[attr-defined]
            new = session.scalars(select(TaskRow).where(TaskRow.id > (last or 0))).all()
            assert [(t.volunteer_id, t.start, t.merchant_id) for t in new] == [
                (f.volunteer_id, f.start, f.merchant_id) for f in fits[:1]]
            offered += len(new)
            schedule = session.get(ScheduleRow, schedule_id)
            assert schedule is not None
            _same(cache.pinned(session, schedule)[0], _scratch(app, session, schedule))
        assert reads == []
    assert offered  # some decline was offered to another volunteer
