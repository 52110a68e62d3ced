"""Organisers' API: donations and requests, allocation jobs, publication into the week's
schedule, the public monthly report; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.community import load_charity, load_problem
from matcher.charity import AllocationLine
from matcher.domain import Week
from matcher.generate import generate_charity
from matcher.outputs import write_csv
from matcher.spreadsheets import charity_frames
from tests.allocation_check import check_allocation, check_delivery_needs
from tests.api.conftest import make_user
from tests.conftest import CENTRE, WEEK
from tests.validator import geodesic_walk

pytestmark = pytest.mark.usefixtures("client")


@pytest.fixture(scope="module")
def charity_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("charity")
    problem = generate_charity(40, 15, 4, network=None, centre=CENTRE, radius_m=900, week=WEEK,
                               seed=5)
    for name, frame in charity_frames(problem).items():
        write_csv(frame, folder / f"{name}.csv")  # as linli writes for Excel: with a BOM
    assert (folder / "requests.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    return folder


def _upload(client: TestClient, headers: dict[str, str], folder: Path) -> Any:
    files = [("files", (p.name, p.read_bytes(), "text/csv")) for p in sorted(folder.glob("*.csv"))]
    return client.post("/v1/imports", files=files, headers=headers)


def _run(client: TestClient, headers: dict[str, str], week: Week) -> dict[str, Any]:
    job = client.post("/v1/allocations", json={"week": str(week)}, headers=headers)
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/allocations/{job.json()['id']}",
                                          headers=headers).json()
        if body["status"] in ("solved", "failed"):
            assert body["status"] == "solved", body
            return body
        time.sleep(0.1)
    raise AssertionError("allocation still running")


def _lines(client: TestClient, headers: dict[str, str], run: int) -> list[AllocationLine]:
    rows = client.get(f"/v1/allocations/{run}/lines", params={"limit": 500},
                      headers=headers).json()["items"]
    return [AllocationLine(r["donation_id"], r["request_id"], r["quantity"], r["walk_min"],
                           r["delivery"] == "yes",
                           dt.date.fromisoformat(r["deliver_on"] or r["collect_by"]))
            for r in rows]


def test_organiser_allocates_publishes_and_the_report_is_anonymous(
        client: TestClient, charity_files: Path) -> None:
    organiser = make_user(client, "organiser", "organiser")
    volunteer = make_user(client, "someone", "volunteer")
    assert _upload(client, volunteer, charity_files).status_code == 403
    imported = _upload(client, organiser, charity_files)
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == {"donations": 15, "requests": 40}
    # The byte-order mark is no part of the first column, and Chinese names arrive intact.
    listed = client.get("/v1/requests", params={"limit": 100},
                        headers=organiser).json()["items"]
    written = pd.read_csv(charity_files / "requests.csv", dtype=str, encoding="utf-8-sig")
    assert sorted(r["beneficiary"] for r in listed) == sorted(written["beneficiary"])
    assert all("家" in r["beneficiary"] for r in listed)
    assert client.post("/v1/allocations", json={"week": str(WEEK)},
                       headers=volunteer).status_code == 403
    assert client.get("/v1/requests", headers=volunteer).status_code == 403

    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        problem = load_charity(session, WEEK)
    first = _run(client, organiser, WEEK)
    lines = _lines(client, organiser, first["id"])
    assert lines and check_allocation(problem, lines, geodesic_walk()) == []
    assert first["summary"]["lines"] == len(lines)
    # Timestamps carry their zone on every database (SQLite stores none).
    assert dt.datetime.fromisoformat(first["created_at"]).utcoffset() == dt.timedelta(0)
    deliveries = [line for line in lines if line.delivery]
    assert deliveries, "the generated community has households out of reach of every pickup"

    # Deliveries join the week's schedule only once published, and only that week.
    def delivery_needs(week: Week) -> set[str]:
        with db.session() as session:
            return {n.id for n in load_problem(session, week).needs if n.id.startswith("A")}

    assert delivery_needs(WEEK) == set()
    published = client.post(f"/v1/allocations/{first['id']}/publish", json={},
                            headers=organiser)
    assert published.status_code == 200, published.text
    expected = {f"A{first['id']}-GD-{d.donation_id}-{d.request_id}" for d in deliveries}
    assert delivery_needs(WEEK) == expected
    # Each delivery is scheduled at the household on its line's day, never after expiry.
    with db.session() as session:
        week_needs = [n for n in load_problem(session, WEEK).needs if n.id.startswith("A")]
    assert check_delivery_needs(problem, lines, week_needs, f"A{first['id']}-") == []
    assert delivery_needs(Week(2026, 49)) == set()

    # A second run of the week cannot silently replace the first; superseding swaps deliveries.
    second = _run(client, organiser, WEEK)
    again = client.post(f"/v1/allocations/{second['id']}/publish", json={}, headers=organiser)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert client.post(f"/v1/allocations/{second['id']}/publish", json={"supersede": True},
                       headers=organiser).status_code == 200
    assert delivery_needs(WEEK) == {n.replace(f"A{first['id']}-", f"A{second['id']}-")
                                    for n in expected}

    # What a published run gave out is gone for the next week's run.
    given = sum(line.quantity for line in lines)
    with db.session() as session:
        later = load_charity(session, Week(2026, 49))
    assert sum(r.quantity for r in later.requests) == \
        sum(r.quantity for r in problem.requests) - given

    # The public report: no login, no names, no ids, the month's totals.
    report = client.get("/v1/reports/allocations/2026-11.csv?table=households")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    households = pd.read_csv(pd.io.common.BytesIO(report.content), encoding="utf-8-sig")
    text = report.content.decode("utf-8-sig")
    for r in problem.requests:
        assert r.beneficiary not in text and r.id not in text
    assert households["allocated"].sum() == given
    assert len(households) == len(problem.requests)
    assert (households["allocated"] <= households["requested"]).all()
    assert households["area"].str.fullmatch(r"\d+\.\d{2},\d+\.\d{2}").all()
    categories = pd.read_csv(pd.io.common.BytesIO(
        client.get("/v1/reports/allocations/2026-11.csv").content), encoding="utf-8-sig")
    assert categories["allocated"].sum() == given
    assert categories["households"].sum() == len(problem.requests)
    page = client.get("/v1/reports/allocations/2026-11")
    assert page.status_code == 200 and "慈善物资分配公示" in page.text
    assert all(r.beneficiary not in page.text for r in problem.requests)
    empty = pd.read_csv(pd.io.common.BytesIO(
        client.get("/v1/reports/allocations/2026-12.csv").content), encoding="utf-8-sig")
    assert empty.empty
    assert client.get("/v1/reports/allocations/2026-13.csv").status_code == 422


def test_request_validation_names_the_json_path(client: TestClient) -> None:
    organiser = make_user(client, "organiser", "organiser")
    body = {"request_id": "R1", "beneficiary": "王奶奶", "category": "rice", "quantity": 0,
            "lat": 22.53, "lon": 114.02, "priority": "red"}
    response = client.post("/v1/requests", json=body, headers=organiser)
    assert response.status_code == 422
    assert any("quantity" in str(e) for e in response.json()["errors"]), response.json()
    body["quantity"] = 2
    assert client.post("/v1/requests", json=body, headers=organiser).status_code == 201
    body["priority"] = "yellow"
    assert client.put("/v1/requests/R1", json=body, headers=organiser).json()["priority"] == \
        "yellow"
    listed = client.get("/v1/requests?category=rice&priority=yellow", headers=organiser).json()
    assert [r["request_id"] for r in listed["items"]] == ["R1"]


def test_goods_expiring_midweek_are_delivered_by_their_expiry(client: TestClient) -> None:
    """The API path: a delivery of milk that expires on Wednesday is a need of Wednesday, and
    its line says so; a pickup of it may be collected until Wednesday."""
    organiser = make_user(client, "organiser", "organiser")
    wednesday = WEEK.monday + dt.timedelta(days=2)
    far = CENTRE.lat + 3000 / 110_540
    milk = {"donation_id": "D1", "donor": "华润万家", "category": "牛奶", "quantity": 2,
            "lat": CENTRE.lat, "lon": CENTRE.lon, "expires": wednesday.isoformat()}
    assert client.post("/v1/donations", json=milk, headers=organiser).status_code == 201
    for rid, lat in (("R1", far), ("R2", CENTRE.lat)):
        body = {"request_id": rid, "beneficiary": f"{rid}王家", "category": "牛奶",
                "quantity": 1, "lat": lat, "lon": CENTRE.lon, "priority": "red"}
        assert client.post("/v1/requests", json=body, headers=organiser).status_code == 201
    run = _run(client, organiser, WEEK)
    rows = client.get(f"/v1/allocations/{run['id']}/lines",
                      headers=organiser).json()["items"]
    dates = {r["request_id"]: (r["delivery"], r["deliver_on"], r["collect_by"]) for r in rows}
    assert dates == {"R1": ("yes", wednesday.isoformat(), None),
                     "R2": ("no", None, wednesday.isoformat())}
    assert client.post(f"/v1/allocations/{run['id']}/publish", json={},
                       headers=organiser).status_code == 200
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        problem = load_charity(session, WEEK)
        needs = [n for n in load_problem(session, WEEK).needs if n.id.startswith("A")]
    assert [(n.id, [d.value for d in n.days]) for n in needs] == \
        [(f"A{run['id']}-GD-D1-R1", ["wed"])]
    assert check_delivery_needs(problem, _lines(client, organiser, run["id"]), needs,
                                f"A{run['id']}-") == []
