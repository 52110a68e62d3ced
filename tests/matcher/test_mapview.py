"""The map: a self-contained page (nothing from outside unless tiles are asked for), the layers
it draws, coarsened places, and the GCJ-02 shift under Amap tiles."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from matcher import i18n
from matcher.coords import CoordSystem, from_wgs84
from matcher.domain import (
    Assignment,
    Day,
    LevelResult,
    Priority,
    Problem,
    Schedule,
    SolveStatus,
    Unmet,
    UnmetReason,
)
from matcher.mapview import (
    CIRCLE_SIDES,
    LEAFLET_DIR,
    coarse,
    map_document,
    map_layers,
    render_map_html,
)
from matcher.settings import Settings
from matcher.travel import GEOD, WalkingNetwork
from tests.conftest import WEEK, merchant, need, volunteer

MONDAY = dt.date(2026, 11, 23)
# The only absolute URLs Leaflet's own code holds: the SVG namespace (a name, never fetched) and
# its home page in the attribution prefix, which the map replaces with plain text.
INERT = {"http://www.w3.org/2000/svg", "https://leafletjs.com"}


def community() -> tuple[Problem, Schedule]:
    """N1 red covered, N2 yellow covered Monday of two days, N3 blue unmet; V1 busy, V2 idle;
    one merchant whose name tries to break out of the page."""
    problem = Problem(WEEK, [volunteer("V1", 120, 80), volunteer("V2", -400, 300)], [
        need("N1", 0, 0, priority=Priority.RED),
        need("N2", 200, -100, days="mon;tue", priority=Priority.YELLOW),
        need("N3", -300, 250),
    ], [merchant("M1", 50, 50)])
    shop = problem.merchants[0]
    problem.merchants[0] = type(shop)(shop.id, "</script><b>饭堂</b>", shop.location,
                                      shop.services, shop.capacity_per_day, shop.open)
    schedule = Schedule(
        WEEK,
        [Assignment("N1", Day.MON, MONDAY, 540, 570, "V1", None, 3.0),
         Assignment("N2", Day.MON, MONDAY, 600, 630, "V1", None, 4.0)],
        [Unmet("N2", Day.TUE, MONDAY + dt.timedelta(days=1), UnmetReason.VOLUNTEERS_BUSY, "busy"),
         Unmet("N3", Day.MON, MONDAY, UnmetReason.NO_SKILLED_VOLUNTEER_IN_CIRCLE, "none")],
        {Priority.RED: LevelResult(1, 1, 1, True), Priority.YELLOW: LevelResult(1, 2, 1, True),
         Priority.BLUE: LevelResult(0, 1, 0, True)},
        SolveStatus.OPTIMAL, 7.0, 0.1)
    return problem, schedule


class _References(HTMLParser):
    """Every src/href attribute and every script's text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [v or "" for k, v in attrs if k in {"src", "href", "srcset", "data"}]
        self._in = tag if tag in {"script", "style"} else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)


def external_references(page: str) -> list[str]:
    """What in ``page`` could load something from another host."""
    refs = _References()
    refs.feed(page)
    found = [a for a in refs.attributes if re.match(r"\s*(https?:)?//", a)]
    for css in refs.styles:
        found += [u for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", css)
                  if not u.startswith(("data:", "#"))]
    for script in refs.scripts:
        found += re.findall(r"(?:fetch|import|importScripts|open)\s*\(\s*['\"`]([^'\"`]+)", script)
        found += re.findall(r"import\s[^;]*?from\s*['\"]([^'\"]+)", script)
        found += re.findall(r"\ssrc\s*=\s*\\?['\"]((?:https?:)?//[^'\"\\]+)", script)
    # Any absolute URL at all, wherever it hides, beyond the inert ones Leaflet carries.
    found += [u for u in re.findall(r"https?://[^\s\"'<>)]+", page) if u not in INERT]
    return found


@pytest.mark.parametrize("with_network", [False, True])
def test_the_page_loads_nothing_from_elsewhere_without_tiles(
        with_network: bool, futian: WalkingNetwork) -> None:
    problem, schedule = community()
    page = render_map_html(problem, schedule, futian if with_network else None, Settings())
    assert external_references(page) == []
    assert "L.tileLayer" in page and '"tiles":[]' in page
    # Leaflet's link to its home page is replaced by plain text in the attribution.
    assert 'setPrefix("Leaflet")' in page
    for inert in INERT:
        assert page.count(inert) == (LEAFLET_DIR / "leaflet.js").read_text().count(inert)


def test_the_check_catches_a_page_that_loads_from_a_cdn() -> None:
    page = ('<link rel="stylesheet" href="https://cdn.example.com/leaflet.css">'
            '<script src="//cdn.example.com/leaflet.js"></script>'
            '<style>.x { background: url(https://a.example.com/i.png) }</style>'
            '<script>fetch("https://api.example.com/x")</script>')
    assert len(external_references(page)) >= 4


def page_document(page: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="linli-map-data">(.*?)</script>',
                      page, re.S)
    assert match is not None
    document: dict[str, object] = json.loads(match.group(1))
    return document


def test_names_cannot_break_out_of_the_page() -> None:
    problem, schedule = community()
    page = render_map_html(problem, schedule)
    assert "<b>饭堂" not in page and page.count("</script>") == 4
    layers = page_document(page)["layers"]
    assert isinstance(layers, dict)
    assert layers["merchants"]["features"][0]["properties"]["name"] == "</script><b>饭堂</b>"


def _by_id(collection: dict[str, object]) -> dict[str, dict[str, object]]:
    features = collection["features"]
    assert isinstance(features, list)
    return {f["properties"].get("id") or f["properties"]["volunteer_id"]: f for f in features}


def test_layers_show_coverage_people_merchants_and_straight_circles() -> None:
    problem, schedule = community()
    settings = Settings()
    layers = map_layers(problem, schedule, settings=settings)
    needs = _by_id(layers["needs"])
    states = {k: f["properties"]["state"] for k, f in needs.items()}  # type: ignore[index]
    assert states == {"N1": "covered", "N2": "partial", "N3": "unmet"}
    assert needs["N3"]["properties"]["reasons"] == [  # type: ignore[index]
        "no_skilled_volunteer_in_circle"]
    assert needs["N1"]["properties"]["priority"] == "red"  # type: ignore[index]
    volunteers = _by_id(layers["volunteers"])
    assert {k: f["properties"]["busy"]  # type: ignore[index]
            for k, f in volunteers.items()} == {"V1": True, "V2": False}
    assert list(_by_id(layers["merchants"])) == ["M1"]
    assert layers["streets"]["features"] == []
    # Without a network: the busy volunteer's circle is the straight radius around her
    # coarsened home, closed.
    circles = layers["circles"]["features"]
    assert [c["properties"]["volunteer_id"] for c in circles] == ["V1"]
    ring = np.array(circles[0]["geometry"]["coordinates"][0])
    assert len(ring) == CIRCLE_SIDES + 1 and (ring[0] == ring[-1]).all()
    home_lat, home_lon = coarse(problem.volunteers[0].location)
    _, _, metres = GEOD.inv(np.full(len(ring), home_lon), np.full(len(ring), home_lat),
                            ring[:, 0], ring[:, 1])
    assert np.allclose(metres, settings.circle_straight_m, atol=1.0)


def test_on_a_network_the_streets_are_drawn_and_circles_follow_them(
        futian: WalkingNetwork) -> None:
    problem, schedule = community()
    layers = map_layers(problem, schedule, futian)
    streets = layers["streets"]["features"]
    assert len(streets) == 1 and streets[0]["geometry"]["type"] == "MultiLineString"
    lines = streets[0]["geometry"]["coordinates"]
    assert len(lines) == futian.graph.number_of_edges()
    assert sum(len(line) for line in lines) > 2 * len(lines)  # the streets' bends are kept
    assert "OpenStreetMap" in streets[0]["properties"]["attribution"]
    ring = layers["circles"]["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) >= 4 and ring[0] == ring[-1] and len(ring) != CIRCLE_SIDES + 1


def test_places_are_coarsened_to_about_100_m() -> None:
    problem, schedule = community()
    layers = map_layers(problem, schedule)
    for name in ("needs", "volunteers", "merchants"):
        for feature in layers[name]["features"]:
            lon, lat = feature["geometry"]["coordinates"]
            assert (round(lon, 3), round(lat, 3)) == (lon, lat)
    exact = problem.needs[0].location
    lon, lat = _by_id(layers["needs"])["N1"]["geometry"]["coordinates"]  # type: ignore[index]
    assert (lat, lon) != (exact.lat, exact.lon)


def test_amap_tiles_shift_every_feature_to_gcj02(futian: WalkingNetwork) -> None:
    problem, schedule = community()
    plain = map_document(problem, schedule, futian, Settings())
    amap = map_document(problem, schedule, futian, Settings(tiles="amap"))
    tiles = amap["tiles"]
    assert isinstance(tiles, list) and "autonavi.com" in tiles[0]["url"]
    for name in ("needs", "volunteers", "merchants"):
        for before, after in zip(plain["layers"][name]["features"],  # type: ignore[index]
                                 amap["layers"][name]["features"], strict=True):
            lon, lat = before["geometry"]["coordinates"]
            expected = from_wgs84(lat, lon, CoordSystem.GCJ02)
            got_lon, got_lat = after["geometry"]["coordinates"]
            assert (got_lat, got_lon) == pytest.approx(expected, abs=1e-6)
            _, _, metres = GEOD.inv(lon, lat, got_lon, got_lat)
            assert 200 < metres < 1000  # the GCJ-02 offset in Shenzhen
    street = np.array(plain["layers"]["streets"]["features"][0]  # type: ignore[index]
                      ["geometry"]["coordinates"][0][0])
    shifted = amap["layers"]["streets"]["features"][0]["geometry"][  # type: ignore[index]
        "coordinates"][0][0]
    lat, lon = from_wgs84(street[1], street[0], CoordSystem.GCJ02)
    assert shifted == pytest.approx([lon, lat], abs=2e-5)
    circle = amap["layers"]["circles"]["features"][0]  # type: ignore[index]
    plain_circle = plain["layers"]["circles"]["features"][0]  # type: ignore[index]
    assert circle["geometry"] != plain_circle["geometry"]


def test_wgs84_tiles_need_no_shift_and_tianditu_needs_a_key() -> None:
    problem, schedule = community()
    plain = map_document(problem, schedule)
    osm = map_document(problem, schedule, settings=Settings(tiles="osm"))
    assert osm["layers"] == plain["layers"]
    assert "tile.openstreetmap.org" in osm["tiles"][0]["url"]  # type: ignore[index]
    with pytest.raises(ValueError, match="LINLI_TIANDITU_KEY"):
        map_document(problem, schedule, settings=Settings(tiles="tianditu"))
    tianditu = map_document(problem, schedule,
                            settings=Settings(tiles="tianditu", tianditu_key="k123"))
    assert tianditu["layers"] == plain["layers"]  # CGCS2000 agrees with WGS84
    assert all("tk=k123" in t["url"] for t in tianditu["tiles"])  # type: ignore[attr-defined]
    page = render_map_html(problem, schedule, settings=Settings(tiles="osm"))
    assert "https://tile.openstreetmap.org" in page


def test_the_legend_is_chinese_first_and_english_on_request() -> None:
    problem, schedule = community()
    page = render_map_html(problem, schedule)
    assert '<html lang="zh-CN">' in page
    for words in ("红色：紧急", "空心：还没安排上", "图例", "志愿者", "本周有任务的志愿者"):
        assert words in page
    with i18n.use("en"):
        english = render_map_html(problem, schedule)
    assert '<html lang="en">' in english and "Hollow: not covered yet" in english


def test_the_shipped_network_keeps_the_file_small(futian: WalkingNetwork) -> None:
    problem, schedule = community()
    page = render_map_html(problem, schedule, futian)
    assert len(page.encode()) < 2_000_000


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_chromium_draws_the_map_offline(tmp_path: Path, futian: WalkingNetwork) -> None:
    problem, schedule = community()
    path = tmp_path / "map.html"
    path.write_text(render_map_html(problem, schedule, futian), encoding="utf-8")
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,800",
         "--virtual-time-budget=5000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    dom = result.stdout
    # The script ran: Leaflet's controls, the legend rows, the scale bar and a canvas exist.
    assert "leaflet-container" in dom and "<canvas" in dom
    assert dom.count('class="linli-legend-row"') == 11
    assert "leaflet-control-scale-line" in dom and "红色：紧急" in dom
