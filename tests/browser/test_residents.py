"""The residents' lookup in Chromium: a resident opens the 15-minute circle page, asks for
canteens and sees the nearest one with its walking route drawn on the community's own streets
and directions in Chinese, with no request leaving the server (the ``console`` fixture fails
the test on any). The printable poster is drawn too.

``LINLI_SCREENSHOTS=docs`` saves the lookup and the poster as PNGs there (README pictures)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect
from typer.testing import CliRunner

from api.main import create_app
from api.settings import ApiSettings
from matcher.cli import app as cli
from tests.browser.conftest import Server, _free_port
from tests.browser.test_journeys import ROOT, shot

pytestmark = pytest.mark.browser
HAIDIAN = ROOT / "data" / "beijing-haidian" / "haidian_xueqing_rd.osm"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The console on the shipped OSM export of 学清路, Haidian: streets and public places."""
    settings = ApiSettings(database_url=f"sqlite:///{tmp_path / 'linli.db'}",
                           secret_key="browser-test-secret-0123456789abcdef",
                           webhook_url=None, run_workers=False, network_path=str(HAIDIAN))
    app = create_app(settings)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                       log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", app)
    uv.should_exit = True
    thread.join(timeout=30)


def test_a_resident_finds_a_canteen_with_its_route_and_directions(console: Page,
                                                                  server: Server) -> None:
    console.set_viewport_size({"width": 1200, "height": 800})
    console.goto(f"{server.url}/console/nearby?lat=39.99900&lon=116.35050")
    expect(console.locator("h1")).to_have_text("我的15分钟便民服务圈")
    console.select_option("#category", "canteen")
    console.get_by_role("button", name="搜索").click()
    first = console.locator("#places li").first
    expect(first.locator(".name")).to_have_text("石科院职工食堂")
    expect(first).to_contain_text("社区食堂 · 步行")
    directions = first.locator(".directions")
    expect(directions).to_contain_text("沿")
    expect(directions).to_contain_text("到达石科院职工食堂")
    expect(console.locator("#status")).to_have_text("步行15分钟内有 1 处，由近到远排列。")
    route = console.locator("path.linli-route")
    expect(route).to_have_count(1)
    assert len(route.get_attribute("d") or "") > 20  # a line of several bends, drawn
    shot(console, "lookup", full_page=False)
    # Everything nearby, from another spot the resident taps on the map.
    console.select_option("#category", "")
    console.locator("#map").click(position={"x": 300, "y": 250})
    expect(console.locator("#places li").nth(2)).to_be_visible()
    expect(console.locator("path.linli-route")).to_have_count(1)


def test_the_poster_is_drawn_with_its_legend_and_qr_code(page: Page, tmp_path: Path) -> None:
    out = tmp_path / "poster.html"
    made = CliRunner().invoke(cli, ["poster", "--network", str(HAIDIAN), "--lat", "40.00396",
                                    "--lon", "116.35332", "--community", "学清路社区", "--url",
                                    "https://linli.example.org/console/nearby",
                                    "--out", str(out)])
    assert made.exit_code == 0, made.output
    page.set_viewport_size({"width": 1100, "height": 1500})
    page.set_content(out.read_text(encoding="utf-8"))
    expect(page.get_by_text("15分钟便民服务圈").first).to_be_visible()
    expect(page.locator("svg").first).to_be_visible()
    shot(page, "poster")
