"""Grid units through the API: the report by unit (needs, coverage by priority from the week's
plan, unmet by reason, the unit's volunteers and their hours), scoped to a grid worker's own
units, and a grid worker changing when a need of her unit is served, and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from matcher.spreadsheets import write_community
from tests.api.conftest import make_user, upload, wait_for
from tests.conftest import WEEK
from tests.matcher.test_partners import _community


def _square(unit: str, west: float, east: float) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"unit_id": unit, "name": f"第{unit}网格"},
            "geometry": {"type": "Polygon", "coordinates": [[
                [west, 22.50], [east, 22.50], [east, 22.56], [west, 22.56], [west, 22.50]]]}}


def _setup(client: TestClient, coordinator: dict[str, str], folder: Path) -> None:
    """The partner test's community (A*, H1 and V1 near the centre; B1 and V2 2 km east) in
    two units, its week solved."""
    write_community(_community(), folder)
    assert upload(client, coordinator, folder).status_code == 200
    units = {"type": "FeatureCollection", "features": [_square("G1", 114.00, 114.03),
                                                       _square("G2", 114.03, 114.06)]}
    assert client.put("/v1/grids", json=units, headers=coordinator).status_code == 200
    job = client.post("/v1/schedules", json={"week": str(WEEK)}, headers=coordinator).json()
    assert wait_for(client, coordinator, job["id"])["status"] == "solved"


def test_the_report_by_unit_and_a_grid_workers_scope(client: TestClient,
                                                     coordinator: dict[str, str],
                                                     tmp_path: Path) -> None:
    _setup(client, coordinator, tmp_path)
    report = {r["unit_id"]: r for r in client.get(
        "/v1/grids/report", params={"week": str(WEEK)}, headers=coordinator).json()["items"]}
    g1, g2 = report["G1"], report["G2"]
    assert g1["occurrences_by_priority"] == {"red": 2, "yellow": 0, "blue": 3}
    assert g1["covered_by_priority"] == {"red": 0, "yellow": 0, "blue": 1}  # H1's visit
    assert g1["unmet_by_reason"] == {"no_merchant_in_circle": 4}
    assert g1["volunteers_with_tasks"] == 1 and g1["volunteer_hours"] == 0.5
    assert g2["occurrences_by_priority"]["blue"] == 1 and g2["covered_by_priority"]["blue"] == 0
    assert g2["unmet_by_reason"] == {"no_merchant_in_circle": 1}
    assert g2["volunteers"] == 1 and g2["volunteers_with_tasks"] == 0
    assert g1["schedule_id"] == g2["schedule_id"] is not None
    worker = make_user(client, "grid", "grid_worker", grid_units="G1")
    mine = client.get("/v1/grids/report", params={"week": str(WEEK)}, headers=worker).json()
    assert [r["unit_id"] for r in mine["items"]] == ["G1"] and mine["total"] == 1


def test_a_grid_worker_changes_when_her_units_needs_are_served(client: TestClient,
                                                               coordinator: dict[str, str],
                                                               tmp_path: Path) -> None:
    _setup(client, coordinator, tmp_path)
    worker = make_user(client, "grid", "grid_worker", grid_units="G1")
    changed = client.patch("/v1/grids/G1/needs/H1", json={"window": "10:00-11:30",
                                                          "priority": "yellow"},
                           headers=worker)
    assert changed.status_code == 200, changed.text
    assert changed.json()["window"] == "10:00-11:30" and changed.json()["priority"] == "yellow"
    need = client.get("/v1/needs/H1", headers=coordinator).json()
    assert need["window"] == "10:00-11:30" and need["beneficiary"] == "H1奶奶"
    assert need["days"] == "thu"  # what she did not send stays
    assert client.patch("/v1/grids/G2/needs/B1", json={"priority": "red"},
                        headers=worker).status_code == 403
    assert client.patch("/v1/grids/G1/needs/B1", json={"priority": "red"},
                        headers=worker).status_code == 404  # B1 is in G2
    bad = client.patch("/v1/grids/G1/needs/H1", json={"window": "25:00-26:00"},
                       headers=worker)
    assert bad.status_code == 422 and "window" in bad.text
    moved = client.patch("/v1/grids/G1/needs/H1", json={"lat": 22.6}, headers=worker)
    assert moved.status_code == 422  # the place is the coordinators' to change
    assert client.patch("/v1/grids/G2/needs/B1", json={"priority": "red"},
                        headers=coordinator).status_code == 200
    entries = client.get("/v1/audit", params={"target": "need:H1", "action": "update"},
                         headers=coordinator).json()["items"]
    assert len(entries) == 1  # the refused changes left nothing
