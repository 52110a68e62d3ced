"""What each person does in the console, in Chromium, asserting what they see: the coordinator
imports the sample workbook (one bad row first), plans the week, watches it, asks who could
take an unmet visit and publishes; a volunteer on a phone accepts one task and declines
another; a merchant confirms a redemption; an organiser runs and publishes an allocation.

``LINLI_SCREENSHOTS=docs`` saves the main pages as PNGs there (README pictures)."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from api.ledger import ISSUER, transfer
from matcher.generate import generate_community
from matcher.spreadsheets import write_community
from tests.browser.conftest import PASSWORD, SOLVE_WAIT_MS, Server, log_in
from tests.conftest import CENTRE, WEEK

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
SHOTS = os.environ.get("LINLI_SCREENSHOTS")
FRIDAY_BEFORE = WEEK.monday - dt.timedelta(days=3)


def shot(page: Page, name: str, full_page: bool = True) -> None:
    if SHOTS:
        page.screenshot(path=str(ROOT / SHOTS / f"{name}.png"), full_page=full_page)


def sample_workbook(folder: Path, bad: bool) -> Path:
    """The sample community (data/sample) as one workbook; ``bad`` spoils one latitude."""
    path = folder / ("sample-bad.xlsx" if bad else "sample.xlsx")
    with pd.ExcelWriter(path) as book:
        for kind in ("volunteers", "needs", "merchants"):
            table = pd.read_csv(ROOT / "data" / "sample" / f"{kind}.csv", dtype=str,
                                keep_default_na=False)
            if bad and kind == "volunteers":
                table.loc[1, "lat"] = "北边"
            table.to_excel(book, sheet_name=kind, index=False)
    return path


def solve_and_publish(server: Server, folder: Path) -> dict[str, Any]:
    """A small community imported, its week solved and published, through the API."""
    problem = generate_community(40, 30, 4, network=None, centre=CENTRE, radius_m=700,
                                 week=WEEK, seed=11)
    write_community(problem, folder)
    server.user("coordinator", "coordinator")
    server.set_clock(FRIDAY_BEFORE, "09:00")
    files = [("files", (p.name, p.read_bytes(), "text/csv")) for p in sorted(folder.glob("*.csv"))]
    with server.api("coordinator") as api:
        assert api.post("/v1/imports", files=files).status_code == 200
        job = api.post("/v1/schedules", json={"week": str(WEEK)}).json()
        deadline = time.monotonic() + SOLVE_WAIT_MS / 1000
        while (job := api.get(f"/v1/schedules/{job['id']}").json())["status"] not in (
                "solved", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert api.post(f"/v1/schedules/{job['id']}/publish", json={}).status_code == 200
        tasks: list[dict[str, Any]] = api.get(f"/v1/schedules/{job['id']}/tasks",
                                              params={"limit": 500}).json()["items"]
    return {"schedule": job, "tasks": tasks}


def test_coordinator_imports_plans_and_publishes(console: Page, server: Server,
                                                 tmp_path: Path) -> None:
    server.user("coordinator", "coordinator")
    server.set_clock(FRIDAY_BEFORE, "09:00")
    page = console
    log_in(page, server, "coordinator")
    expect(page.get_by_role("heading", name=re.compile("本周概览"))).to_be_visible()

    page.get_by_role("link", name="导入").click()
    page.get_by_test_id("files").set_input_files(sample_workbook(tmp_path, bad=True))
    page.get_by_role("button", name="检查并导入").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("导入没有保存")
    expect(alert).to_contain_text("有 1 处要改")
    row = alert.locator("table.problems tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("volunteers")
    expect(row).to_contain_text("3")
    expect(row).to_contain_text("lat")
    expect(row).to_contain_text("北边")
    expect(row).to_contain_text("不是数字")

    page.get_by_test_id("files").set_input_files(sample_workbook(tmp_path, bad=False))
    page.get_by_role("button", name="检查并导入").click()
    expect(page.get_by_role("status")).to_contain_text("导入成功")

    page.goto(f"{server.url}/console/schedules?week={WEEK}")
    page.get_by_role("button", name=f"给 {WEEK} 排班").click()
    expect(page.locator("#progress")).to_be_visible()
    expect(page.locator("table.coverage")).to_be_visible(timeout=SOLVE_WAIT_MS)
    expect(page.locator("table.coverage")).to_contain_text("红")
    shot(page, "console-schedule", full_page=False)

    page.get_by_role("button", name="谁能接").first.click()
    expect(page.locator(".candidates").first).to_be_visible()
    expect(page.locator(".candidates").first).to_contain_text(
        re.compile("步行|暂时没有人能接"))

    expect(page.get_by_text("发布后，志愿者这边会有这些变化")).to_be_visible()
    page.get_by_role("button", name="发布给志愿者").click()
    expect(page.locator("#progress")).to_contain_text("已发布")

    page.get_by_role("link", name="本周概览").click()
    expect(page.locator("table.coverage")).to_contain_text("最多还能覆盖")
    expect(page.get_by_text("次服务还没人接")).to_be_visible()
    shot(page, "console-overview")


def test_volunteer_on_a_phone_accepts_one_task_and_declines_another(
        server: Server, browser: Browser, tmp_path: Path) -> None:
    world = solve_and_publish(server, tmp_path)
    by_volunteer: dict[str, list[dict[str, Any]]] = {}
    for task in world["tasks"]:
        by_volunteer.setdefault(task["volunteer_id"], []).append(task)
    volunteer, tasks = max(by_volunteer.items(), key=lambda kv: len(kv[1]))
    assert len(tasks) >= 2
    server.user("wangfang", "volunteer", volunteer_id=volunteer)
    server.set_clock(WEEK.monday, "00:05")

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, locale="zh-CN")
    outside: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        server.url) else (outside.append(route.request.url), route.abort()))
    page = context.new_page()
    page.set_default_timeout(30_000)
    log_in(page, server, "wangfang")
    expect(page.get_by_role("heading", name="我这周的任务")).to_be_visible()
    cards = page.locator("article.task")
    expect(cards).to_have_count(len(tasks))
    expect(page.locator(".qr svg")).to_be_visible()
    shot(page, "console-volunteer")

    first, second = tasks[0]["id"], tasks[1]["id"]
    page.get_by_test_id(f"task-{first}").get_by_role("button", name="接受").click()
    expect(page.get_by_test_id(f"task-{first}")).to_contain_text("已接受")

    card = page.get_by_test_id(f"task-{second}")
    card.get_by_text("我去不了").click()
    card.get_by_label("原因（社工会看到）").fill("孩子生病，这周来不了")
    card.get_by_role("button", name="婉拒").click()
    expect(page.get_by_test_id(f"task-{second}")).to_have_count(0)
    expect(page.get_by_test_id(f"task-{first}")).to_contain_text("已接受")
    context.close()
    assert outside == []


def test_merchant_confirms_a_redemption(console: Page, server: Server, tmp_path: Path) -> None:
    world = solve_and_publish(server, tmp_path)
    volunteer = world["tasks"][0]["volunteer_id"]
    server.user("xiao", "volunteer", volunteer_id=volunteer)
    server.user("shop", "merchant", merchant_id="M001")
    with server.app.state.db.session() as session:
        transfer(session, ISSUER, ("volunteer", volunteer), 50, "test: earned")
        session.commit()
    with server.api("shop") as shop, server.api("xiao") as volunteer_api:
        reward = shop.post("/v1/rewards", json={"name": "免费理发一次", "points": 20}).json()
        redemption = volunteer_api.post("/v1/redemptions", json={"reward_id": reward["id"]},
                                        headers={"Idempotency-Key": "redeem-0001"}).json()
    page = console
    log_in(page, server, "shop")
    item = page.get_by_test_id(f"redemption-{redemption['id']}")
    expect(item).to_contain_text(f"志愿者 {volunteer} 兑换 20 积分")
    item.get_by_role("button", name="已服务，收下积分").click()
    expect(page.get_by_test_id(f"redemption-{redemption['id']}")).to_have_count(0)
    expect(page.get_by_text(f"#{redemption['id']} {volunteer} · 20 · 已确认")).to_be_visible()
    shot(page, "console-merchant")


def test_organiser_runs_and_publishes_an_allocation(console: Page, server: Server,
                                                    tmp_path: Path) -> None:
    server.user("organiser", "organiser")
    server.set_clock(FRIDAY_BEFORE, "09:00")
    donations = ("donation_id,donor,category,quantity,lat,lon,expires\n"
                 "D1,华润万家,rice_5kg,4,22.5336,114.0191,\n")
    requests = ("request_id,beneficiary,category,quantity,lat,lon,priority\n"
                "R1,李伯伯家,rice_5kg,2,22.5349,114.0172,red\n"
                "R2,陈阿姨家,rice_5kg,5,22.5352,114.0181,yellow\n")
    with server.api("organiser") as api:
        response = api.post("/v1/imports", files=[
            ("files", ("donations.csv", donations.encode(), "text/csv")),
            ("files", ("requests.csv", requests.encode(), "text/csv"))])
    assert response.status_code == 200, response.text
    page = console
    log_in(page, server, "organiser")
    page.goto(f"{server.url}/console/charity?week={WEEK}")
    expect(page.get_by_text("华润万家")).to_be_visible()
    page.get_by_role("button", name=f"为 {WEEK} 分配物资").click()
    expect(page.get_by_role("button", name="公布分配结果")).to_be_visible(timeout=SOLVE_WAIT_MS)
    expect(page.get_by_text("没有完全满足的求助")).to_be_visible()
    page.get_by_role("button", name="公布分配结果").click()
    expect(page.get_by_text("已公布，送货任务会排进这一周的安排。")).to_be_visible()
    page.get_by_role("link", name="信息公开月报").last.click()
    page.get_by_role("link", name=re.compile("查看 .* 的月报")).click()
    expect(page.locator("body")).to_contain_text("rice_5kg")
    assert PASSWORD  # the accounts' password, shared with the fixtures


def test_a_request_to_another_host_is_blocked_and_recorded(console: Page,
                                                           server: Server) -> None:
    """The guard the journeys rely on: a page asking any other server is caught."""
    console.goto(f"{server.url}/console/login")
    console.evaluate("fetch('http://example.invalid/tile.png').catch(() => null)")
    console.wait_for_timeout(300)
    assert server.outside == ["http://example.invalid/tile.png"]
    server.outside.clear()  # seen; the fixture's own check would fail the test otherwise


STREET_PIXELS = """() => {
  // Pixels of the street colour (#8a939c) on the map's canvases: the streets were drawn.
  let count = 0;
  for (const canvas of document.querySelectorAll("#plan-map canvas")) {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      // Bluish grey: the idle volunteers' neutral grey (#8c8c8c) does not count.
      if (data[i + 3] > 100 && Math.abs(data[i] - 138) < 20 && Math.abs(data[i + 1] - 147) < 20
          && Math.abs(data[i + 2] - 156) < 20 && data[i + 2] - data[i] > 8) { count += 1; }
    }
  }
  return count;
}"""


@pytest.mark.parametrize("network_path", [str(ROOT / "data" / "shenzhen-futian"
                                              / "shenzhen_futian_walk.graphml")])
def test_coordinator_stops_a_plan_then_sees_the_plan_on_a_street_map(
        console: Page, server: Server, tmp_path: Path) -> None:
    """Stop a plan waiting in line and see it stopped; plan again and read the result on the
    map: the community's own streets drawn with the vendored Leaflet, a legend in Chinese, and
    no request to any other server (the fixture fails the test on one). (A small week solves
    in moments, so a plan left to run may be done before the click: the worker is held while
    the plan is stopped. Stopping a running solve is tests/api/test_jobs.py's.)"""
    problem = generate_community(40, 30, 4, network=None, centre=CENTRE, radius_m=700,
                                 week=WEEK, seed=11)
    write_community(problem, tmp_path)
    server.user("coordinator", "coordinator")
    server.set_clock(FRIDAY_BEFORE, "09:00")
    files = [("files", (p.name, p.read_bytes(), "text/csv"))
             for p in sorted(tmp_path.glob("*.csv"))]
    with server.api("coordinator") as api:
        assert api.post("/v1/imports", files=files).status_code == 200
    page = console
    log_in(page, server, "coordinator")

    worker = server.app.state.worker
    worker.stop()  # busy elsewhere: the plan waits in line
    page.goto(f"{server.url}/console/schedules?week={WEEK}")
    page.get_by_role("button", name=f"给 {WEEK} 排班").click()
    page.get_by_role("button", name="停止").click()
    expect(page.locator("#progress")).to_contain_text("已停止", timeout=60_000)
    expect(page.get_by_role("button", name="停止")).to_have_count(0)
    worker.stopping.clear()
    worker.start()

    page.goto(f"{server.url}/console/schedules?week={WEEK}")
    page.get_by_role("button", name=f"给 {WEEK} 排班").click()
    expect(page.locator("table.coverage")).to_be_visible(timeout=SOLVE_WAIT_MS)
    plan_map = page.get_by_test_id("plan-map")
    expect(plan_map).to_be_visible()
    legend = plan_map.locator(".linli-legend")
    expect(legend).to_contain_text("图例")
    expect(legend).to_contain_text("可步行的街道")
    expect(legend).to_contain_text("红色：紧急")
    expect(plan_map.locator(".leaflet-control-layers")).to_contain_text("街道")
    expect(plan_map.locator(".leaflet-tile")).to_have_count(0)  # no tiles: streets are the base
    page.wait_for_function(f"({STREET_PIXELS})() > 500")
    plan_map.scroll_into_view_if_needed()
    shot(page, "console-map", full_page=False)
