"""The residents' console pages (api/console/residents_views.py): the public lookup page, and
the coordinators' circle page with the accessibility layer and the week's suggestions, found
through its form and shown as sentences and tables; other roles are refused it."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from matcher.spreadsheets import write_community
from tests.api.conftest import make_user, set_clock, upload
from tests.api.test_console import console_login
from tests.conftest import NETWORK, WEEK
from tests.matcher.test_partners import _community


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(database_url=database_url,
                           secret_key="test-secret-key-0123456789abcdef", webhook_url=None,
                           network_path=str(NETWORK), solve_time_limit_s=8, job_worker=True)
    with TestClient(create_app(settings)) as test_client:
        set_clock(test_client, WEEK.monday - dt.timedelta(days=3), "09:00")
        yield test_client


def test_anyone_opens_the_lookup_page_on_the_street_map(client: TestClient) -> None:
    page = client.get("/console/nearby", params={"lat": "22.534", "lon": "114.0177",
                                                 "category": "canteen"})
    assert page.status_code == 200 and "我的15分钟便民服务圈" in page.text
    assert '<option value="canteen" selected>社区食堂</option>' in page.text
    assert '"type":"MultiLineString"' in page.text and "[22.534,114.0177]" in page.text
    assert 'src="/console/map-static/vendor/leaflet/leaflet.js"' in page.text
    assert client.get("/console/map-static/vendor/leaflet/leaflet.js").status_code == 200
    assert client.get("/console/residents-static/nearby.js").status_code == 200
    odd = client.get("/console/nearby", params={"lat": "north", "category": "<x>"})
    assert odd.status_code == 200 and "<x>" not in odd.text  # falls back to the map's middle


def test_coordinators_see_the_holes_and_find_partners(client: TestClient,
                                                      tmp_path: Path) -> None:
    coordinator = make_user(client, "coordinator", "coordinator")
    write_community(_community(), tmp_path)
    assert upload(client, coordinator, tmp_path).status_code == 200
    csrf = console_login(client, "coordinator")
    page = client.get("/console/circle", params={"week": str(WEEK), "category": "canteen"})
    assert page.status_code == 200, page.text[:300]
    assert "步行超过15分钟的服务对象" in page.text and "A1奶奶" in page.text
    assert "本周还没有建议" in page.text
    sent = client.post("/console/circle/suggestions", data={
        "csrf": csrf, "week": str(WEEK), "kind": "partners", "k": "2"}, follow_redirects=False)
    assert sent.status_code == 303
    deadline = time.monotonic() + 120
    while "可多覆盖 3 次服务" not in (page := client.get(
            "/console/circle", params={"week": str(WEEK)})).text:
        assert time.monotonic() < deadline, page.text[-2000:]
        time.sleep(0.3)
    assert "社区食堂" in page.text and re.search(r"<td>1</td><td>[^<]+</td><td>社区食堂", page.text)
    no_skill = client.post("/console/circle/suggestions", data={
        "csrf": csrf, "week": str(WEEK), "kind": "recruits", "skill": ""},
        follow_redirects=False)
    assert no_skill.status_code == 303 and "error=" in no_skill.headers["location"]


def test_the_circle_page_is_for_coordinators_only(client: TestClient) -> None:
    make_user(client, "grid", "grid_worker")
    console_login(client, "grid")
    assert client.get("/console/circle").status_code == 403
    assert client.get("/console/nearby").status_code == 200


def test_a_grid_worker_compares_her_units_and_edits_their_needs(client: TestClient,
                                                                 tmp_path: Path) -> None:
    from tests.api.test_grids import _setup

    coordinator = make_user(client, "coordinator", "coordinator")
    _setup(client, coordinator, tmp_path)
    make_user(client, "grid", "grid_worker", grid_units="G1")
    console_login(client, "grid")
    page = client.get("/console/grids", params={"week": str(WEEK)})
    assert page.status_code == 200, page.text[:300]
    # Her home is the public report (a page without her session), so the token comes from here.
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found is not None
    csrf = found.group(1)
    assert "第G1网格" in page.text and "第G2网格" not in page.text
    assert "H1奶奶" in page.text, page.text[page.text.find("<tbody"):][:900]
    assert "no_merchant_in_circle 4" in page.text, page.text[page.text.find("<tbody"):][:900]
    saved = client.post("/console/grids/G1/needs/H1", data={
        "csrf": csrf, "week": str(WEEK), "days": "thu;fri", "window": "10:00-11:30",
        "priority": "yellow"}, follow_redirects=False)
    assert saved.status_code == 303, saved.text[saved.text.find("<main"):][:400]
    assert "error" not in saved.headers["location"]
    need = client.get("/v1/needs/H1", headers=coordinator).json()
    assert need["days"] == "thu;fri" and need["priority"] == "yellow"
    other = client.post("/console/grids/G2/needs/B1", data={
        "csrf": csrf, "week": str(WEEK), "priority": "red"}, follow_redirects=False)
    assert "error=" in other.headers["location"]
    assert client.get("/v1/needs/B1", headers=coordinator).json()["priority"] == "blue"
    forged = client.post("/console/grids/G1/needs/H1", data={"csrf": "0" * 64,
                                                             "priority": "red"})
    assert forged.status_code == 403
