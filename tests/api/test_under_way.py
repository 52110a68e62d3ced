"""A volunteer's week shared by two communities A and B of one street office
(api.under_way.shared_problem): A's solve and "who could take this" plan around her tasks in
B's published week and within her weekly hours, a B volunteer within a circle of A's need
serves it, and a publication that would double-book her is refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.community import need_of, volunteer_of
from api.models import (
    Community,
    District,
    NeedRow,
    ScheduleRow,
    StreetOffice,
    TaskRow,
    VolunteerRow,
)
from api.under_way import busy_clashes
from matcher.domain import Assignment, Day, Problem
from tests.api.conftest import make_user, second_community, wait_for
from tests.conftest import WEEK
from tests.validator import geodesic_walk, validate

HOME = (22.534, 114.017)  # every volunteer's home and need here lies within one circle
MON = WEEK.monday


def _volunteer(vid: str, availability: str = "mon 08:00-12:00", hours: float = 4
               ) -> dict[str, Any]:
    return {"volunteer_id": vid, "name": f"志愿者{vid}", "lat": HOME[0], "lon": HOME[1],
            "skills": "", "availability": availability, "max_hours_week": hours}


def _need(nid: str, window: str = "09:00-12:00", duration: int = 30,
          north_m: float = 200) -> dict[str, Any]:
    return {"need_id": nid, "kind": "elderly", "service": "home_visit",
            "beneficiary": f"{nid}奶奶", "lat": HOME[0] + north_m / 110_540, "lon": HOME[1],
            "days": "mon", "window": window, "duration_min": duration, "priority": "red"}


class Two:
    """Community A (the default one) and B of one street office, each with a coordinator."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        _, b_id = second_community(client)
        self.ids = {"A": 1, "B": b_id}
        self.heads = {"A": make_user(client, "Acoordinator", "coordinator", community_id=1),
                      "B": make_user(client, "Bcoordinator", "coordinator", community_id=b_id)}

    def add(self, side: str, kind: str, body: dict[str, Any]) -> None:
        response = self.client.post(f"/v1/{kind}", json=body, headers=self.heads[side])
        assert response.status_code == 201, response.text

    def published(self, side: str, tasks: list[tuple[str, str, int, int]],
                  state: str = "accepted") -> int:
        """A published schedule of ``side`` with (need, volunteer, start, end) tasks on Monday."""
        db = self.client.app.state.db  # type: ignore[attr-defined]
        with db.session(self.ids[side]) as session:
            schedule = ScheduleRow(week=str(WEEK), status="published", progress="")
            session.add(schedule)
            session.flush()
            session.add_all(TaskRow(schedule_id=schedule.id, need_id=need, day="mon", date=MON,
                                    start=start, end=end, volunteer_id=vid, merchant_id=None,
                                    walk_min=3.0, state=state)
                            for need, vid, start, end in tasks)
            session.commit()
            return schedule.id

    def solve(self, side: str) -> dict[str, Any]:
        job = self.client.post("/v1/schedules", json={"week": str(WEEK)},
                               headers=self.heads[side])
        assert job.status_code == 202, job.text
        body = wait_for(self.client, self.heads[side], job.json()["id"])
        assert body["status"] == "solved", body
        return body

    def tasks(self, side: str, schedule_id: int) -> list[dict[str, Any]]:
        response = self.client.get(f"/v1/schedules/{schedule_id}/tasks",
                                   params={"limit": 500}, headers=self.heads[side])
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def whole_week(self) -> tuple[Problem, list[Assignment]]:
        """Both communities as one problem, and every task of a published or solved schedule
        that holds a volunteer's time (for the validator)."""
        db = self.client.app.state.db  # type: ignore[attr-defined]
        with db.session() as session:
            volunteers = [volunteer_of(r) for r in session.scalars(
                select(VolunteerRow).order_by(VolunteerRow.volunteer_id))]
            needs = [need_of(r) for r in session.scalars(
                select(NeedRow).order_by(NeedRow.need_id))]
            rows = session.scalars(select(TaskRow).where(
                TaskRow.state.in_(("proposed", "offered", "accepted")))).all()
            tasks = [Assignment(t.need_id, Day(t.day), t.date, t.start, t.end, t.volunteer_id,
                                t.merchant_id, t.walk_min) for t in rows]
        return Problem(WEEK, volunteers, needs), tasks


@pytest.fixture
def two(client: TestClient) -> Two:
    return Two(client)


def _hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def test_a_volunteer_busy_in_bs_published_week_is_not_double_booked_by_as_solve(
        two: Two) -> None:
    # AV1 (registered in A) serves B's need on Monday 09:00-09:30; A's need could take her
    # then, but only from 10:00 (the walk back within her circle) is she free for it.
    two.add("A", "volunteers", _volunteer("AV1"))
    two.add("B", "needs", _need("BN1", "09:00-09:30"))
    two.add("A", "needs", _need("AN1", "09:00-12:00"))
    two.published("B", [("BN1", "AV1", 9 * 60, 9 * 60 + 30)])
    body = two.solve("A")
    [task] = two.tasks("A", body["id"])
    assert task["volunteer_id"] == "AV1"
    assert _hhmm(task["start"]) >= 10 * 60
    problem, tasks = two.whole_week()
    assert validate(problem, tasks, geodesic_walk()) == []


def test_her_weekly_hours_count_her_tasks_elsewhere(two: Two) -> None:
    two.add("A", "volunteers", _volunteer("AV1", hours=1))
    two.add("B", "needs", _need("BN1", "08:00-09:00", duration=60))
    two.add("A", "needs", _need("AN1", "10:00-12:00"))
    two.published("B", [("BN1", "AV1", 8 * 60, 9 * 60)])
    body = two.solve("A")
    assert two.tasks("A", body["id"]) == []
    problem, tasks = two.whole_week()
    assert validate(problem, tasks, geodesic_walk()) == []


def test_a_b_volunteer_within_as_circle_serves_as_need_in_as_own_solve(two: Two) -> None:
    two.add("B", "volunteers", _volunteer("BV1"))
    two.add("B", "needs", _need("BN1", "09:00-09:30"))
    two.add("A", "needs", _need("AN1", "09:00-12:00"))
    two.add("A", "needs", _need("AN2", "09:00-12:00", north_m=5000))  # outside every circle
    two.published("B", [("BN1", "BV1", 9 * 60, 9 * 60 + 30)])
    body = two.solve("A")
    tasks = two.tasks("A", body["id"])
    assert [(t["need_id"], t["volunteer_id"]) for t in tasks] == [("AN1", "BV1")]
    assert _hhmm(tasks[0]["start"]) >= 10 * 60
    problem, assignments = two.whole_week()
    assert validate(problem, assignments, geodesic_walk()) == []


def test_candidates_skip_her_time_busy_elsewhere(two: Two) -> None:
    # A's published week has AN1 served by AV2; "who could take this" must not offer AV1 at
    # 09:00, when she serves B.
    two.add("A", "volunteers", _volunteer("AV1"))
    two.add("A", "volunteers", _volunteer("AV2"))
    two.add("A", "needs", _need("AN1", "09:00-09:40"))
    two.add("B", "needs", _need("BN1", "09:00-09:30"))
    schedule = two.published("A", [("AN1", "AV2", 9 * 60, 9 * 60 + 30)], state="offered")
    ask = f"/v1/schedules/{schedule}/occurrences/AN1/mon/candidates"
    before = two.client.get(ask, headers=two.heads["A"])
    assert before.status_code == 200, before.text
    assert "AV1" in {c["volunteer_id"] for c in before.json()["items"]}
    two.published("B", [("BN1", "AV1", 9 * 60, 9 * 60 + 30)])
    after = two.client.get(ask, headers=two.heads["A"])
    assert after.status_code == 200, after.text
    assert "AV1" not in {c["volunteer_id"] for c in after.json()["items"]}


def test_a_volunteer_holding_as_work_stays_in_as_week_from_another_district(two: Two) -> None:
    # CV1 is registered in a community of another district (never a neighbour of A), her home
    # within A's circle, and holds a task of A's published week: A's week keeps her, so an
    # edit of A does not put her work at risk (she is no longer a volunteer of it, else).
    db = two.client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        district = District(code="er", name="二区")
        session.add(district)
        session.flush()
        office = StreetOffice(code="er-1", name="二街道", district_id=district.id)
        session.add(office)
        session.flush()
        third = Community(code="bing", name="丙社区", street_office_id=office.id)
        session.add(third)
        session.flush()
        session.add(VolunteerRow(community_id=third.id, volunteer_id="CV1", name="丙志愿者",
                                 lat=HOME[0], lon=HOME[1], skills=[], max_hours_week=4,
                                 availability=[{"day": "mon", "start": 480, "end": 720}]))
        session.commit()
    two.add("A", "needs", _need("AN1", "09:00-12:00"))
    two.published("A", [("AN1", "CV1", 9 * 60, 9 * 60 + 30)])
    edit = two.client.put("/v1/needs/AN1", json=_need("AN1", "09:00-12:00") | {
        "beneficiary": "王奶奶"}, headers=two.heads["A"])
    assert edit.status_code == 200, edit.text
    assert edit.json()["at_risk"] == []
    body = two.solve("A")
    assert [(t["volunteer_id"], t["start"]) for t in two.tasks("A", body["id"])] == [
        ("CV1", "09:00")]


def test_a_publication_that_double_books_her_is_refused(two: Two) -> None:
    """Two coordinators solved at the same time: the second to publish must re-solve."""
    two.add("A", "volunteers", _volunteer("AV1"))
    two.add("A", "needs", _need("AN1", "09:00-09:30"))
    two.add("B", "needs", _need("BN1", "09:00-09:30"))
    plans = {side: two.solve(side)["id"] for side in ("A", "B")}
    assert [t["volunteer_id"] for t in two.tasks("B", plans["B"])] == ["AV1"]
    first = two.client.post(f"/v1/schedules/{plans['A']}/publish", json={},
                            headers=two.heads["A"])
    assert first.status_code == 200, first.text
    second = two.client.post(f"/v1/schedules/{plans['B']}/publish", json={},
                             headers=two.heads["B"] | {"Accept-Language": "en"})
    assert second.status_code == 409, second.text
    body = second.json()
    assert body["code"] == "volunteer_busy_elsewhere"
    assert "re-solve" in body["detail"]
    assert body["errors"] == [{"volunteer_id": "AV1", "day": "mon", "date": str(MON),
                               "start": "09:00", "end": "09:30", "problem": "busy"}]
    chinese = two.client.post(f"/v1/schedules/{plans['B']}/publish", json={},
                              headers=two.heads["B"])
    assert chinese.status_code == 409 and "重新排班" in chinese.json()["detail"]
    # Nothing of B's plan was published; a fresh solve leaves her alone, and publishes.
    db = two.client.app.state.db  # type: ignore[attr-defined]
    with db.session(two.ids["B"]) as session:
        assert session.get(ScheduleRow, plans["B"]).status == "solved"  # type: ignore[union-attr]
    again = two.solve("B")
    assert two.tasks("B", again["id"]) == []
    problem, tasks = two.whole_week()
    assert validate(problem, [t for t in tasks if t.need_id != "BN1"], geodesic_walk()) == []


def test_a_publication_over_her_weekly_hours_across_communities_is_refused(two: Two) -> None:
    two.add("A", "volunteers", _volunteer("AV1", hours=1))
    two.add("A", "needs", _need("AN1", "08:00-09:00", duration=60))
    two.add("B", "needs", _need("BN1", "10:00-11:00", duration=60))
    plans = {side: two.solve(side)["id"] for side in ("A", "B")}
    assert two.client.post(f"/v1/schedules/{plans['A']}/publish", json={},
                           headers=two.heads["A"]).status_code == 200
    second = two.client.post(f"/v1/schedules/{plans['B']}/publish", json={},
                             headers=two.heads["B"] | {"Accept-Language": "en"})
    assert second.status_code == 409, second.text
    assert second.json()["errors"] == [{"volunteer_id": "AV1", "day": "mon", "date": str(MON),
                                        "start": "10:00", "end": "11:00", "problem": "hours"}]




def test_two_publications_sharing_her_cannot_both_pass(two: Two) -> None:
    """While A's publication holds her row (checked, not yet committed), B's waits, then sees
    A's tasks and is refused; without the lock both would pass their checks."""
    two.add("A", "volunteers", _volunteer("AV1"))
    two.add("A", "needs", _need("AN1", "09:00-09:30"))
    two.add("B", "needs", _need("BN1", "09:00-09:30"))
    plans = {side: two.solve(side)["id"] for side in ("A", "B")}
    db = two.client.app.state.db  # type: ignore[attr-defined]
    answers: list[Any] = []

    def publish_b() -> None:
        answers.append(two.client.post(f"/v1/schedules/{plans['B']}/publish", json={},
                                       headers=two.heads["B"]))

    with db.session(two.ids["A"]) as session:
        schedule = session.get(ScheduleRow, plans["A"])
        assert schedule is not None
        assert busy_clashes(session, schedule) == []  # A's check passed; her row is held
        other = threading.Thread(target=publish_b)
        try:
            other.start()
            other.join(1.5)
            assert other.is_alive()  # B waits for A's transaction
            schedule.status = "published"
            for task in session.scalars(select(TaskRow).where(
                    TaskRow.schedule_id == schedule.id)):
                task.state = "offered"
        finally:
            session.commit()
            other.join(60)
    assert not other.is_alive()
    [answer] = answers
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "volunteer_busy_elsewhere"
