"""The district report page in Chromium: a street admin opens it from her home and reads the
table and the choropleth of her two communities, drawn with the vendored Leaflet and nothing
from outside (the fixture fails the test on any request to another host)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from api.models import ScheduleRow, UnmetRow
from tests.browser.conftest import SOLVE_WAIT_MS, Server, log_in
from tests.conftest import WEEK

pytestmark = pytest.mark.browser


def _square(unit_id: str, name: str, west: float) -> dict[str, object]:
    return {"type": "Feature", "properties": {"unit_id": unit_id, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [[
                [west, 22.52], [west + 0.01, 22.52], [west + 0.01, 22.54], [west, 22.54],
                [west, 22.52]]]}}


def _need(nid: str, lon: float) -> dict[str, object]:
    return {"need_id": nid, "kind": "elderly", "service": "meal_delivery",
            "beneficiary": "张奶奶", "phone": "", "address": "", "lat": 22.53, "lon": lon,
            "days": "mon", "window": "09:00-11:00", "duration_min": 30, "priority": "red"}


def test_a_street_admin_reads_the_district_on_the_offline_map(console: Page,
                                                               server: Server) -> None:
    server.user("street", "street_admin", street_office_id=1)  # type: ignore[arg-type]
    with server.api("street") as api:
        assert api.post("/v1/communities", json={"code": "yi", "name": "乙社区"}
                        ).status_code == 201
    server.user("coordinator", "coordinator", community_id=1)  # type: ignore[arg-type]
    server.user("yi-coordinator", "coordinator", community_id=2)  # type: ignore[arg-type]
    with server.api("coordinator") as api:
        assert api.post("/v1/needs", json=_need("AN1", 114.005)).status_code == 201
        grids = {"type": "FeatureCollection", "features": [
            _square("AG1", "甲西网格", 114.0), _square("AG2", "甲东网格", 114.01)]}
        assert api.put("/v1/grids", json=grids).status_code == 200
    with server.api("yi-coordinator") as api:
        assert api.post("/v1/needs", json=_need("BN1", 114.05)).status_code == 201
    for community, need in ((1, "AN1"), (2, "BN1")):
        with server.app.state.db.session(community) as session:
            schedule = ScheduleRow(week=str(WEEK), status="published", progress="",
                                   summary={"status": "optimal"})
            session.add(schedule)
            session.flush()
            session.add(UnmetRow(schedule_id=schedule.id, need_id=need, day="mon",
                                 date=WEEK.monday, reason_code="volunteers_busy",
                                 reason="busy"))
            session.commit()
    page = console
    log_in(page, server, "street")
    expect(page.get_by_role("heading", name="社区")).to_be_visible()
    page.get_by_test_id("district-link").click()
    page.goto(f"{server.url}/console/district?week={WEEK}")
    expect(page.get_by_role("heading", name=re.compile("街道报表"))).to_be_visible()
    table = page.get_by_test_id("district-table")
    expect(table.get_by_test_id("district-default")).to_contain_text("邻里社区")
    expect(table.get_by_test_id("district-yi")).to_contain_text("乙社区")
    expect(table).to_contain_text("附近的志愿者都排满了: 1")
    district_map = page.get_by_test_id("district-map")
    expect(district_map).to_be_visible()
    legend = district_map.locator(".linli-legend").last
    expect(legend).to_contain_text("服务已安排的比例")
    # Two communities drawn as areas and named on the map; A's two grid units on asking.
    areas = district_map.locator("path.leaflet-interactive")
    expect(areas).to_have_count(2)
    overlays = district_map.locator(".leaflet-control-layers-overlays")
    expect(overlays).to_contain_text("网格")
    overlays.locator("input").nth(1).check()
    expect(areas).to_have_count(4)
    expect(district_map.locator(".linli-area-name")).to_have_count(2)
    expect(district_map.locator(".linli-area-name").first).to_contain_text("邻里社区")
    expect(district_map.locator(".leaflet-tile")).to_have_count(0)
    # Colouring by all visits changes nothing here (every visit is red) but must not fail.
    district_map.get_by_label("全部服务").check()
    expect(areas).to_have_count(4)


def test_a_street_admin_solves_the_week_of_every_community(console: Page,
                                                           server: Server) -> None:
    server.user("street", "street_admin", street_office_id=1)  # type: ignore[arg-type]
    with server.api("street") as api:
        assert api.post("/v1/communities", json={"code": "yi", "name": "乙社区"}
                        ).status_code == 201
    server.user("coordinator", "coordinator", community_id=1)  # type: ignore[arg-type]
    server.user("yi-coordinator", "coordinator", community_id=2)  # type: ignore[arg-type]
    for user, prefix, lon in (("coordinator", "A", 114.005), ("yi-coordinator", "B", 114.05)):
        with server.api(user) as api:
            assert api.post("/v1/needs", json=_need(f"{prefix}N1", lon)).status_code == 201
            assert api.post("/v1/volunteers", json={
                "volunteer_id": f"{prefix}V1", "name": "王阿姨", "lat": 22.531, "lon": lon,
                "skills": "", "availability": "mon 08:00-12:00", "max_hours_week": 4}
                ).status_code == 201
    page = console
    log_in(page, server, "street")
    page.goto(f"{server.url}/console/district?week={WEEK}")
    panel = page.get_by_test_id("district-solve")
    expect(panel.get_by_role("heading", name="为每个社区排这一周的班")).to_be_visible()
    panel.get_by_test_id("district-solve-button").click()
    # The page follows the run community by community, then shows where it ended.
    run = page.get_by_test_id("district-run")
    expect(run.get_by_test_id("district-run-default")).to_contain_text("邻里社区")
    expect(run.get_by_test_id("district-run-default")).to_contain_text("已完成，待发布",
                                                                        timeout=SOLVE_WAIT_MS)
    expect(run.get_by_test_id("district-run-yi")).to_contain_text("已完成，待发布",
                                                                   timeout=SOLVE_WAIT_MS)
    expect(run.get_by_test_id("district-run-yi")).to_contain_text("1 / 1")
    expect(run).to_contain_text("草稿已排好")
    expect(page.get_by_role("button", name="停止")).to_have_count(0)
