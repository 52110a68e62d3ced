"""Where to recruit and whom to partner with, as jobs: the suggestions come back ranked with
the gain a re-solve found, and a coordinator who adds the suggested partner through the API and
solves the week again covers exactly that many more."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from matcher.spreadsheets import write_community
from tests.api.conftest import upload, wait_for
from tests.conftest import WEEK
from tests.matcher.test_partners import _community


def _wait(client: TestClient, headers: dict[str, str], job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/suggestions/{job_id}", headers=headers).json()
        if body["status"] in ("solved", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"suggestions {job_id} still {body['status']}")


def _covered(client: TestClient, headers: dict[str, str]) -> int:
    job = client.post("/v1/schedules", json={"week": str(WEEK)}, headers=headers)
    assert job.status_code == 202, job.text
    body = wait_for(client, headers, job.json()["id"])
    assert body["status"] == "solved", body
    return int(body["summary"]["covered"])


def test_partner_suggestions_gain_what_a_re_solve_finds(client: TestClient,
                                                        coordinator: dict[str, str],
                                                        tmp_path: Path) -> None:
    write_community(_community(), tmp_path)
    assert upload(client, coordinator, tmp_path).status_code == 200
    job = client.post("/v1/suggestions", json={"week": str(WEEK), "kind": "partners", "k": 2},
                      headers=coordinator)
    assert job.status_code == 202, job.text
    assert job.json()["kind"] == "partners" and job.json()["k"] == 2
    body = _wait(client, coordinator, job.json()["id"])
    assert body["status"] == "solved", body
    summary = body["summary"]
    assert summary["unmet"] == 5 and summary["by_service"] == {"meal": 4, "medicine": 1}
    rows = summary["suggestions"]
    assert [(r["category"], r["gain"]) for r in rows] == [("canteen", 3), ("pharmacy", 1)]
    assert rows[0]["sentence"].endswith("可多覆盖 3 次服务")
    listed = client.get("/v1/suggestions", params={"week": str(WEEK), "kind": "partners"},
                        headers=coordinator).json()
    assert [j["id"] for j in listed["items"]] == [job.json()["id"]] and listed["total"] == 1

    before = _covered(client, coordinator)
    assert before == summary["covered_before"]
    first = rows[0]
    shop = {"merchant_id": "P1", "name": "新食堂", "lat": first["lat"], "lon": first["lon"],
            "services": first["service"], "capacity_per_day": first["capacity_per_day"],
            "open": first["open"]}
    assert client.post("/v1/merchants", json=shop, headers=coordinator).status_code == 201
    assert _covered(client, coordinator) == before + first["gain"]


def test_bad_requests_name_the_field(client: TestClient, coordinator: dict[str, str]) -> None:
    no_skill = client.post("/v1/suggestions", json={"week": str(WEEK), "kind": "recruits"},
                           headers=coordinator)
    assert no_skill.status_code == 422 and "skill" in no_skill.text
    too_many = client.post("/v1/suggestions", json={"week": str(WEEK), "kind": "partners",
                                                    "k": 500}, headers=coordinator)
    assert too_many.status_code == 422 and "k" in str(too_many.json())
    assert client.get("/v1/suggestions/999", headers=coordinator).status_code == 404


def test_recruit_suggestions_through_the_api(client: TestClient, coordinator: dict[str, str],
                                             tmp_path: Path) -> None:
    write_community(_community(), tmp_path)
    assert upload(client, coordinator, tmp_path).status_code == 200
    job = client.post("/v1/suggestions", json={"week": str(WEEK), "kind": "recruits",
                                               "skill": "escort_medical", "k": 1},
                      headers=coordinator)
    body = _wait(client, coordinator, job.json()["id"])
    assert body["status"] == "solved", body
    assert body["summary"]["skill"] == "escort_medical"
    assert isinstance(body["summary"]["sentences"], list)
