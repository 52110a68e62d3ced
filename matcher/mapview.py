"""The map of the week: the community's own streets, needs by priority and coverage, volunteers,
partner merchants and each busy volunteer's 15-minute walk, with a legend in the reader's language.

The map needs nothing from outside: the base layer is the street network the matcher already
walks on (drawn as GeoJSON lines), and Leaflet is vendored in ``matcher/static/vendor/leaflet``.
``map.html`` inlines all of it, so the single file works mailed or from a USB stick. Map tiles are
an option (``LINLI_TILES``) and the only thing that ever comes from outside.

Reuse from the web console:

* :func:`map_layers` gives the layers as GeoJSON FeatureCollections (the same the file draws);
* :func:`map_document` adds the legend, titles and tiles: the object ``LinliMap.draw`` takes;
* :data:`STATIC_DIR` holds ``linli-map.js`` (the drawing code) and ``vendor/leaflet/`` (Leaflet
  with its licence), ready to serve at ``/static/``; the page then loads ``leaflet.css``,
  ``leaflet.js`` and ``linli-map.js`` and calls ``LinliMap.draw(element, document)``.

Locations of people and merchants are coarsened to about 100 m (:func:`coarse`) because the map is
shared beyond the volunteers (SCHEMA.md privacy); streets are public OpenStreetMap data.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from matcher.coords import CoordSystem, from_wgs84
from matcher.domain import Location, Priority, Problem, Schedule, UnmetReason
from matcher.i18n import _, current
from matcher.settings import Settings
from matcher.travel import GEOD, WalkingNetwork

STATIC_DIR = Path(__file__).parent / "static"
LEAFLET_DIR = STATIC_DIR / "vendor" / "leaflet"
COLOURS = {Priority.RED: "#d62728", Priority.YELLOW: "#e6a800", Priority.BLUE: "#1f77b4"}
BUSY, IDLE, MERCHANT, CIRCLE, STREET = "#2ca02c", "#8c8c8c", "#7b3fa0", "#2ca02c", "#8a939c"
ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
# Street points are rounded to this many decimals (about 1 m): the file stays small and the
# drawing is as exact as the screen can show.
STREET_DIGITS = 5
CIRCLE_SIDES = 48
GeoJSON = dict[str, Any]


@dataclass(frozen=True)
class TileSource:
    """A tile provider: its URL template and the coordinate system its tiles are drawn in."""

    url: str
    attribution: str
    subdomains: str
    system: CoordSystem
    max_zoom: int = 18


# Tianditu (天地图) draws in CGCS2000, which agrees with WGS84 to centimetres: no shift. Amap
# (高德) draws in GCJ-02: features are shifted to it so they sit on its streets.
TILES: dict[str, TileSource] = {
    "osm": TileSource("https://tile.openstreetmap.org/{z}/{x}/{y}.png", ATTRIBUTION, "",
                      CoordSystem.WGS84, 19),
    "tianditu": TileSource(
        "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
        "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
        "&TILECOL={x}&tk={key}", "© 天地图 Tianditu", "01234567", CoordSystem.WGS84),
    "amap": TileSource(
        "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
        "&x={x}&y={y}&z={z}", "© 高德地图 AutoNavi", "1234", CoordSystem.GCJ02),
}


def coarse(location: Location, digits: int = 3) -> tuple[float, float]:
    """Round to ``digits`` decimals (3 = about 100 m): enough to see where, not which door."""
    return round(location.lat, digits), round(location.lon, digits)


def service_areas(network: WalkingNetwork, homes: list[Location], settings: Settings
                  ) -> list[list[tuple[float, float]]]:
    """The outline of each home's 15-minute circle on the street network: the convex hull of
    the street nodes within ``circle_min`` minutes' walk (one shortest-path run for all homes).
    An outline, not the exact reach: it can bulge over blocks the streets do not enter. A home
    whose reach is too small for an outline gets an empty list."""
    reach_m = settings.circle_min * settings.walk_speed_m_per_min
    areas = []
    for inside in network.reachable_from(homes, reach_m):
        points = np.column_stack([network.lat[inside], network.lon[inside]])
        try:
            hull = ConvexHull(points) if len(points) >= 3 else None
        except QhullError:  # all on one street: no area to draw
            hull = None
        areas.append([] if hull is None else
                     [(float(points[i, 0]), float(points[i, 1])) for i in hull.vertices])
    return areas


def straight_circle(home: Location, radius_m: float) -> list[tuple[float, float]]:
    """A circle of ``radius_m`` metres around ``home`` as a polygon of ``(lat, lon)`` points."""
    azimuths = np.linspace(0.0, 360.0, CIRCLE_SIDES, endpoint=False)
    lon, lat, _back = GEOD.fwd(np.full(CIRCLE_SIDES, home.lon), np.full(CIRCLE_SIDES, home.lat),
                               azimuths, np.full(CIRCLE_SIDES, radius_m))
    return [(float(a), float(b)) for a, b in zip(lat, lon, strict=True)]


class _Projector:
    """WGS84 ``(lat, lon)`` -> GeoJSON ``[lon, lat]`` in the tiles' system, rounded."""

    def __init__(self, system: CoordSystem) -> None:
        self.system = system

    def __call__(self, lat: float, lon: float, digits: int = 6) -> list[float]:
        lat, lon = from_wgs84(lat, lon, self.system)
        return [round(lon, digits), round(lat, digits)]


def _collection(features: list[GeoJSON]) -> GeoJSON:
    return {"type": "FeatureCollection", "features": features}


def _point(xy: list[float], properties: dict[str, Any]) -> GeoJSON:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": xy},
            "properties": properties}


def street_lines(network: WalkingNetwork, system: CoordSystem = CoordSystem.WGS84) -> GeoJSON:
    """The walkable streets as one MultiLineString feature (each edge with its bends, points
    rounded to about a metre, repeated points dropped)."""
    project = _Projector(system)
    lines: list[list[list[float]]] = []
    graph = network.graph
    for a, b, data in graph.edges(data=True):
        shape = data.get("shape")
        points = ([(lat, lon) for lon, lat in shape] if shape else
                  [(graph.nodes[n]["y"], graph.nodes[n]["x"]) for n in (a, b)])
        line: list[list[float]] = []
        for lat, lon in points:
            xy = project(lat, lon, STREET_DIGITS)
            if not line or line[-1] != xy:
                line.append(xy)
        if len(line) >= 2:
            lines.append(line)
    feature = {"type": "Feature", "geometry": {"type": "MultiLineString", "coordinates": lines},
               "properties": {"name": network.name, "attribution": ATTRIBUTION}}
    return _collection([feature])


def priority_label(priority: Priority) -> str:
    """红/黄/蓝 with what it means, in the reader's language."""
    return {Priority.RED: _("Red: urgent"), Priority.YELLOW: _("Yellow: health"),
            Priority.BLUE: _("Blue: routine")}[priority]


def reason_label(reason: UnmetReason) -> str:
    """Why a visit is not covered, in a few words for a map's tooltip."""
    return {
        UnmetReason.NO_SKILLED_VOLUNTEER_IN_CIRCLE: _("no volunteer with the skills nearby"),
        UnmetReason.NO_MERCHANT_IN_CIRCLE: _("no partner merchant nearby"),
        UnmetReason.NOT_ENOUGH_VOLUNTEERS: _("not enough volunteers nearby"),
        UnmetReason.NO_AVAILABLE_VOLUNTEER: _("no volunteer free at that time"),
        UnmetReason.VOLUNTEERS_BUSY: _("the volunteers nearby are busy"),
        UnmetReason.OUT_OF_HOURS: _("the volunteers nearby have used their hours"),
        UnmetReason.MERCHANT_CLOSED: _("the merchant is closed then"),
        UnmetReason.MERCHANT_FULL: _("the merchant is fully booked"),
        UnmetReason.SOLVER_LIMIT: _("not planned in the time given"),
        UnmetReason.PASSED: _("the day has passed"),
        UnmetReason.HELD: _("kept for a task already agreed"),
    }[reason]


def map_layers(problem: Problem, schedule: Schedule, network: WalkingNetwork | None = None, *,
               settings: Settings | None = None,
               system: CoordSystem = CoordSystem.WGS84) -> dict[str, GeoJSON]:
    """The layers of the map as GeoJSON FeatureCollections, ``[lon, lat]`` in ``system`` (the
    tiles' system; WGS84 without tiles), labels in the current language:

    ``streets``
        the walkable streets of ``network`` (empty without one);
    ``circles``
        each busy volunteer's 15-minute walk: the outline of the streets she reaches with a
        ``network``, else the straight-line radius the geodesic fallback uses (Polygons,
        ``volunteer_id``);
    ``needs``
        Points with ``id``, ``service``, ``priority`` (red/yellow/blue), ``colour``, ``state``
        (``covered`` every day, ``partial``, ``unmet``), ``covered``/``days`` counts,
        ``reasons`` (codes) and ``label`` (the tooltip's lines);
    ``volunteers``
        Points with ``id``, ``busy`` and ``label``;
    ``merchants``
        Points with ``id``, ``name``, ``services`` and ``label``.

    People and merchants are coarsened to about 100 m, and circles start from the coarsened
    home, so no outline points at a door.
    """
    settings = settings or Settings()
    project = _Projector(system)
    covered = schedule.covered_keys()
    unmet = {(u.need_id, u.day): u for u in schedule.unmet}
    needs = []
    for need in problem.needs:
        days = list(need.days)
        done = sum(1 for d in days if (need.id, d) in covered)
        reasons = sorted({unmet[(need.id, d)].reason for d in days if (need.id, d) in unmet})
        state = "covered" if done == len(days) else "partial" if done else "unmet"
        label = [f"{need.id} · {need.service}", priority_label(need.priority),
                 _("covered {done} of {days} days").format(done=done, days=len(days))]
        label += [reason_label(r) for r in reasons]
        needs.append(_point(project(*coarse(need.location)), {
            "id": need.id, "service": need.service, "priority": need.priority.value,
            "colour": COLOURS[need.priority], "state": state, "covered": done,
            "days": len(days), "reasons": [r.value for r in reasons], "label": label}))
    busy = {a.volunteer_id for a in schedule.assignments}
    volunteers = [
        _point(project(*coarse(v.location)), {
            "id": v.id, "busy": v.id in busy,
            "label": [v.id, _("has tasks this week") if v.id in busy
                      else _("no tasks this week")]})
        for v in problem.volunteers]
    merchants = [
        _point(project(*coarse(m.location)), {
            "id": m.id, "name": m.name, "services": sorted(m.services),
            "label": [f"{m.name} ({m.id})", ", ".join(sorted(m.services))]})
        for m in problem.merchants]
    helpers = [v for v in problem.volunteers if v.id in busy]
    homes = [Location(*coarse(v.location)) for v in helpers]
    if network is not None:
        outlines = service_areas(network, homes, settings)
    else:
        outlines = [straight_circle(home, settings.circle_straight_m) for home in homes]
    circles = []
    for v, outline in zip(helpers, outlines, strict=True):
        if not outline:
            continue
        ring = [project(lat, lon) for lat, lon in outline]
        circles.append({"type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                        "properties": {"volunteer_id": v.id, "label": [
                            _("{id}: 15 minutes on foot").format(id=v.id)]}})
    streets = street_lines(network, system) if network is not None else _collection([])
    return {"streets": streets, "circles": _collection(circles), "needs": _collection(needs),
            "volunteers": _collection(volunteers), "merchants": _collection(merchants)}


def tile_layers(settings: Settings) -> tuple[list[dict[str, Any]], CoordSystem]:
    """The tile layers ``LINLI_TILES`` asks for (none by default) and their coordinate system.

    Raises
    ------
    ValueError
        When Tianditu is asked for without ``LINLI_TIANDITU_KEY``.
    """
    if settings.tiles == "none":
        return [], CoordSystem.WGS84
    source = TILES[settings.tiles]
    url = source.url
    if settings.tiles == "tianditu":
        if not settings.tianditu_key:
            raise ValueError(_("Tianditu tiles need a key: set LINLI_TIANDITU_KEY"))
        url = url.replace("{key}", settings.tianditu_key)
    layers = [{"url": url, "attribution": source.attribution, "subdomains": source.subdomains,
               "maxZoom": source.max_zoom}]
    if settings.tiles == "tianditu":  # the vector map has its place names on a second layer
        layers.append({**layers[0], "url": url.replace("vec", "cva")})
    return layers, source.system


def legend() -> list[dict[str, str]]:
    """The legend's rows: a ``symbol`` the drawing code knows, its ``colour`` and ``label``."""
    rows = [{"symbol": "need", "colour": COLOURS[p], "label": priority_label(p)}
            for p in Priority]
    grey = "#555555"
    rows += [
        {"symbol": "need-covered", "colour": grey, "label": _("Filled: covered every day")},
        {"symbol": "need-partial", "colour": grey, "label": _("Half filled: some days covered")},
        {"symbol": "need-unmet", "colour": grey, "label": _("Hollow: not covered yet")},
        {"symbol": "volunteer", "colour": BUSY, "label": _("Volunteer with tasks this week")},
        {"symbol": "volunteer", "colour": IDLE, "label": _("Volunteer without tasks")},
        {"symbol": "merchant", "colour": MERCHANT, "label": _("Partner merchant")},
        {"symbol": "circle", "colour": CIRCLE,
         "label": _("Where a volunteer with tasks can walk in 15 minutes")},
        {"symbol": "street", "colour": STREET, "label": _("Streets one can walk")},
    ]
    return rows


def map_document(problem: Problem, schedule: Schedule, network: WalkingNetwork | None = None,
                 settings: Settings | None = None) -> dict[str, Any]:
    """Everything ``LinliMap.draw`` needs: layers (in the tiles' system), tiles, legend, and the
    words of the page in the current language."""
    settings = settings or Settings()
    tiles, system = tile_layers(settings)
    summary = _("{covered} of {total} visits covered").format(
        covered=schedule.covered, total=schedule.occurrences)
    return {
        "lang": "zh-CN" if current() == "zh_CN" else "en",
        "title": _("Linli · week {week}").format(week=schedule.week),
        "summary": summary,
        "note": _("Places are rounded to about 100 m."),
        "layers": map_layers(problem, schedule, network, settings=settings, system=system),
        "names": {"streets": _("Streets"), "circles": _("15-minute walks"),
                  "needs": _("Needs"), "volunteers": _("Volunteers"),
                  "merchants": _("Partner merchants")},
        "legend": legend(),
        "legend_title": _("Legend"),
        "tiles": tiles,
        "attribution": ATTRIBUTION,
    }


def _inline_css(css: str) -> str:
    """Leaflet's stylesheet with its images as data: URLs (the file must stand alone) and
    without comments."""
    def data_url(match: re.Match[str]) -> str:
        png = (LEAFLET_DIR / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(png).decode()})"
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # notes for Leaflet's developers
    return re.sub(r"url\((images/[\w.-]+\.png)\)", data_url, css)


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element: no ``<``, ``>`` or ``&`` can end or open a tag."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


PAGE = """<!DOCTYPE html>
<html lang="@LANG@">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>@LEAFLET_CSS@</style>
<style>@MAP_CSS@</style>
</head>
<body>
<div id="map"></div>
<script type="application/json" id="@DATA_ID@">@DATA@</script>
<script>@LEAFLET_JS@</script>
<script>@MAP_JS@</script>
<script>
@DRAWER@.draw(document.getElementById("map"),
              JSON.parse(document.getElementById("@DATA_ID@").textContent));
</script>
</body>
</html>
"""


def offline_page(document: dict[str, Any], drawer: str, data_id: str, scripts: Sequence[str],
                 styles: Sequence[str]) -> str:
    """One self-contained map page: Leaflet, the named static ``styles`` and ``scripts`` and
    ``document`` (in the script element ``data_id``) inline, drawn by ``drawer``
    (``LinliMap``, ``LinliDistrictMap``)."""
    parts = {
        "@LEAFLET_CSS@": _inline_css((LEAFLET_DIR / "leaflet.css").read_text("utf-8")),
        "@MAP_CSS@": "".join((STATIC_DIR / name).read_text("utf-8") for name in styles),
        "@LEAFLET_JS@": (LEAFLET_DIR / "leaflet.js").read_text("utf-8"),
        "@MAP_JS@": "".join((STATIC_DIR / name).read_text("utf-8") for name in scripts),
        "@DATA@": _script_json(document),
        "@DRAWER@": drawer,
        "@DATA_ID@": data_id,
    }
    page = PAGE.replace("@LANG@", document["lang"]).replace(
        "@TITLE@", document["title"].replace("&", "&amp;").replace("<", "&lt;"))
    return re.sub("|".join(parts), lambda m: parts[m.group(0)], page)


def render_map_html(problem: Problem, schedule: Schedule, network: WalkingNetwork | None = None,
                    settings: Settings | None = None) -> str:
    """``map.html``: one self-contained page (Leaflet, styles and data inline). Nothing is
    loaded from outside unless tiles are configured."""
    document = map_document(problem, schedule, network, settings)
    return offline_page(document, "LinliMap", "linli-map-data", ["linli-map.js"],
                        ["linli-map.css"])


def write_map(path: Path, problem: Problem, schedule: Schedule,
              network: WalkingNetwork | None = None, settings: Settings | None = None) -> None:
    """Write :func:`render_map_html` to ``path`` (UTF-8)."""
    path.write_text(render_map_html(problem, schedule, network, settings), encoding="utf-8")
