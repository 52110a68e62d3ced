"""GET /v1/accessibility: walking minutes from every street node to the nearest place of a
category, and the week's needs beyond the circle of it (coordinators only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from matcher.spreadsheets import write_community
from tests.api.conftest import make_user, upload
from tests.conftest import CENTRE, NETWORK, WEEK
from tests.matcher.test_partners import _community


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(database_url=database_url,
                           secret_key="test-secret-key-0123456789abcdef", run_workers=False,
                           webhook_url=None, network_path=str(NETWORK))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_minutes_per_node_and_the_needs_beyond_the_circle(client: TestClient,
                                                          tmp_path: Path) -> None:
    coordinator = make_user(client, "coordinator", "coordinator")
    write_community(_community(), tmp_path)
    assert upload(client, coordinator, tmp_path).status_code == 200
    body = client.get("/v1/accessibility", params={"category": "canteen", "week": str(WEEK)},
                      headers=coordinator).json()
    assert body["places"] == 1 and body["circle_min"] == 15  # the canteen M1, 2.5 km south
    minutes = [n["minutes"] for n in body["nodes"] if n["minutes"] is not None]
    assert len(body["nodes"]) > 1000 and min(minutes) > 15
    # Every need is 2.5 km or more from the canteen: all beyond the circle.
    assert sorted(b["need_id"] for b in body["beyond"]) == ["A1", "A2", "A3", "B1", "H1"]
    assert all(b["minutes"] > 15 for b in body["beyond"])
    # A coordinator adds the community's own canteen at the centre: only B1, 2 km east, stays
    # beyond the circle.
    added = client.put("/v1/resources/canteen-1", json={
        "category": "canteen", "name": "长者食堂", "lat": CENTRE.lat, "lon": CENTRE.lon},
        headers=coordinator)
    assert added.status_code == 200, added.text
    body = client.get("/v1/accessibility", params={"category": "canteen", "week": str(WEEK)},
                      headers=coordinator).json()
    minutes = [n["minutes"] for n in body["nodes"] if n["minutes"] is not None]
    assert body["places"] == 2 and min(minutes) < 2
    assert [b["need_id"] for b in body["beyond"]] == ["B1"]
    none = client.get("/v1/accessibility", params={"category": "library"},
                      headers=coordinator).json()
    assert none["places"] == 0 and {n["minutes"] for n in none["nodes"]} == {None}
    assert all(b["minutes"] is None for b in none["beyond"])
    bad = client.get("/v1/accessibility", params={"category": "casino"}, headers=coordinator)
    assert bad.status_code == 422 and "category" in bad.text
    assert client.get("/v1/accessibility", params={"category": "canteen"}).status_code == 401
