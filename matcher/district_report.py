"""The district report (街道报表): each community's week, and each of its grid units', side by side.

For every community and every grid unit of it: occurrences and covered by priority, unmet
occurrences by reason code, the volunteers' planned hours and how many volunteers serve there,
and the ledger's figures (points issued and redeemed, charity units given, time-bank minutes),
which only the API knows (the CLI leaves them empty). A grid unit's figures are those of the
needs lying in it (:func:`matcher.grids.locate`); the hours and volunteers of a unit are those
serving its needs, wherever they live.

Each community also gets an area for the choropleth: the union of its grid units when it has
some, otherwise the convex hull of its needs' and volunteers' places, coarsened to about 100 m
and widened by :data:`HULL_BUFFER_M` (so one or two places still make an area and no corner
points at a door). The map's legend says which communities are drawn which way.

Outputs: :data:`REPORT_FILE` (UTF-8 with a byte-order mark; headers ``中文/code``, Chinese for
the reader, the code for programs) and :data:`MAP_FILE` (one offline page: Leaflet inline,
coverage of red, yellow or blue chosen on the map, figures on hover). Nothing here speaks HTTP
or SQL: the console builds the same :class:`DistrictReport` from its own tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPoint, mapping
from shapely.geometry.base import BaseGeometry

from matcher.district import District, DistrictResult
from matcher.domain import Priority, Problem, Schedule, UnmetReason, Week
from matcher.grids import GridUnit, locate
from matcher.i18n import _, current, use
from matcher.mapview import (
    ATTRIBUTION,
    _Projector,
    coarse,
    offline_page,
    priority_label,
    reason_label,
    tile_layers,
)
from matcher.settings import Settings

REPORT_FILE = "district_report.csv"
MAP_FILE = "district_map.html"
HULL_BUFFER_M = 150.0
AreaSource = Literal["grids", "hull"]
# A community's status when nothing of its week is planned: its part failed, or (in the
# service) no plan of the week is published yet. Its covered figures are then unknown, not 0.
FAILED = "failed"
UNPUBLISHED = "unpublished"
NOT_PLANNED = frozenset({FAILED, UNPUBLISHED})
# Coverage classes of the choropleth, lowest first: (at least this share, colour). A colour-blind
# safe diverging scale (ColorBrewer RdYlBu), so red never reads as the red priority.
CLASSES: tuple[tuple[float, str], ...] = (
    (0.0, "#d73027"), (50.0, "#fc8d59"), (70.0, "#fee090"), (85.0, "#91bfdb"), (95.0, "#4575b4"))
NO_VISITS = "#d9d9d9"


@dataclass(frozen=True)
class Ledger:
    """What the community's ledger says for the week (the API fills it; None: not known)."""

    points_issued: int | None = None
    points_redeemed: int | None = None
    charity_units: int | None = None
    timebank_minutes: int | None = None


@dataclass(frozen=True)
class AreaFigures:
    """One row of the report: a whole community (``unit_id`` None), one of its grid units, or
    its places in no unit (``unit_id`` "")."""

    community: str
    unit_id: str | None
    unit_name: str
    occurrences: Mapping[Priority, int]
    covered: Mapping[Priority, int]
    unmet: Mapping[UnmetReason, int]
    volunteer_hours: float
    volunteers_active: int
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def total_occurrences(self) -> int:
        return sum(self.occurrences.values())

    @property
    def total_covered(self) -> int:
        return sum(self.covered.values())

    def coverage(self, priority: Priority | None = None) -> float | None:
        """Covered share in per cent (of one priority, or of all); None with nothing to cover."""
        whole = self.total_occurrences if priority is None else self.occurrences[priority]
        part = self.total_covered if priority is None else self.covered[priority]
        return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True)
class CommunityReport:
    """A community's figures, its units' figures and its area on the map (WGS84 lon/lat).

    ``status`` is the schedule's status, ``failed`` when its part was never solved (then
    nothing is covered and ``error`` says why), or ``unpublished`` when the service has no
    published plan of the week for it."""

    figures: AreaFigures
    units: tuple[AreaFigures, ...]
    area: BaseGeometry | None
    area_source: AreaSource
    unit_areas: Mapping[str, BaseGeometry]
    status: str
    error: str = ""

    @property
    def name(self) -> str:
        return self.figures.community

    @property
    def planned(self) -> bool:
        """Whether the week has a plan to count covered visits from."""
        return self.status not in NOT_PLANNED


@dataclass(frozen=True)
class DistrictReport:
    """The district's week, community by community, in the district's order."""

    week: Week
    communities: tuple[CommunityReport, ...]

    def rows(self) -> list[AreaFigures]:
        """Each community followed by its units."""
        return [row for c in self.communities for row in (c.figures, *c.units)]


def area_figures(community: str, problem: Problem, schedule: Schedule | None,
                 need_ids: set[str] | None = None, *, unit_id: str | None = None,
                 unit_name: str = "", ledger: Ledger | None = None) -> AreaFigures:
    """The figures of the needs ``need_ids`` of ``problem`` (all of them with None) in
    ``schedule`` (None: not planned, nothing covered). An occurrence is covered or unmet, never
    both; hours are those of every task on these needs."""
    mine = {n.id for n in problem.needs} if need_ids is None else need_ids
    occurrences = {p: 0 for p in Priority}
    covered = {p: 0 for p in Priority}
    keys = set()
    if schedule is not None:
        # A task kept as agreed although it breaks a rule is among the assignments and its
        # occurrence among the unmet (held_by_pinned_task): unmet, as the schedule's levels
        # count it; its hours are still planned.
        keys = schedule.covered_keys() - {(u.need_id, u.day) for u in schedule.unmet}
    for o in problem.occurrences:
        if o.need.id in mine:
            occurrences[o.need.priority] += 1
            covered[o.need.priority] += o.key in keys
    unmet: dict[UnmetReason, int] = {}
    minutes = 0
    volunteers: set[str] = set()
    if schedule is not None:
        for u in schedule.unmet:
            if u.need_id in mine:
                unmet[u.reason] = unmet.get(u.reason, 0) + 1
        for a in schedule.assignments:
            if a.need_id in mine:
                minutes += a.end - a.start
                volunteers.add(a.volunteer_id)
    return AreaFigures(community, unit_id, unit_name, occurrences, covered, unmet,
                       round(minutes / 60, 2), len(volunteers), ledger or Ledger())


def community_report(name: str, problem: Problem, schedule: Schedule | None,
                     units: Sequence[GridUnit] = (), *, status: str | None = None,
                     error: str = "", ledger: Ledger | None = None,
                     unit_ledgers: Mapping[str, Ledger] | None = None) -> CommunityReport:
    """One community's part of the report (what the console calls per community, with the
    ledger's figures of the week)."""
    figures = area_figures(name, problem, schedule, ledger=ledger)
    rows: list[AreaFigures] = []
    if units:
        where = dict(zip([n.id for n in problem.needs],
                         locate(units, [n.location for n in problem.needs]), strict=True))
        ledgers = unit_ledgers or {}
        for unit in units:
            rows.append(area_figures(name, problem, schedule,
                                     {n for n, u in where.items() if u == unit.id},
                                     unit_id=unit.id, unit_name=unit.name,
                                     ledger=ledgers.get(unit.id)))
        outside = {n for n, u in where.items() if u is None}
        if outside:
            rows.append(area_figures(name, problem, schedule, outside, unit_id="",
                                     unit_name=_("outside every grid unit")))
    if units:
        area: BaseGeometry | None = shapely.union_all([u.geometry for u in units])
        source: AreaSource = "grids"
    else:
        area, source = hull_area(problem), "hull"
    if status is None:
        status = schedule.status.value if schedule is not None else "failed"
    return CommunityReport(figures, tuple(rows), area, source,
                           {u.id: u.geometry for u in units}, status, error)


def hull_area(problem: Problem, buffer_m: float = HULL_BUFFER_M) -> BaseGeometry | None:
    """The convex hull of the needs' and volunteers' places (coarsened to about 100 m), widened
    by ``buffer_m`` metres; None without places."""
    places = [coarse(n.location) for n in problem.needs] + [
        coarse(v.location) for v in problem.volunteers]
    if not places:
        return None
    lat0 = sum(lat for lat, _lon in places) / len(places)
    kx = math.cos(math.radians(lat0)) * 111_320.0  # metres per degree of longitude here
    ky = 110_540.0
    # Flat-earth metres are exact enough at a community's size; the buffer is in metres.
    hull = MultiPoint([(lon * kx, lat * ky) for lat, lon in places]).convex_hull
    widened = hull.buffer(buffer_m, quad_segs=4)
    return shapely.transform(widened, lambda xy: xy / [kx, ky])


def district_report(district: District, result: DistrictResult,
                    ledgers: Mapping[str, Ledger] | None = None) -> DistrictReport:
    """The report of a solved district (:class:`matcher.district.District` and its
    :class:`~matcher.district.DistrictResult`); communities whose part failed are listed as
    ``failed`` with nothing covered."""
    shares = {c.name: c for c in result.communities}
    out = []
    for c in district.communities:
        share = shares.get(c.name)
        out.append(community_report(
            c.name, c.problem, share.schedule if share is not None else None, c.units,
            error=result.failed.get(c.name, "") if share is None else "",
            ledger=(ledgers or {}).get(c.name)))
    return DistrictReport(district.week, tuple(out))


# -- district_report.csv ---------------------------------------------------------------------

def _columns() -> list[tuple[str, str]]:
    """``(code, English label)`` of every column, in order."""
    columns = [("community", "community"), ("unit_id", "grid unit id"),
               ("unit_name", "grid unit"), ("area_source", "area drawn from"),
               ("status", "plan status"), ("occurrences", "visits"),
               ("covered", "visits covered"), ("coverage_pct", "coverage %")]
    for p in Priority:
        columns += [(f"{p.value}_occurrences", f"{p.value} visits"),
                    (f"{p.value}_covered", f"{p.value} visits covered"),
                    (f"{p.value}_pct", f"{p.value} coverage %")]
    columns += [(f"unmet_{r.value}", "") for r in UnmetReason]
    columns += [("volunteer_hours", "volunteer hours planned"),
                ("volunteers_active", "volunteers serving"),
                ("points_issued", "points issued"), ("points_redeemed", "points redeemed"),
                ("charity_units", "charity units given"),
                ("timebank_minutes", "time bank minutes"), ("error", "error")]
    return columns


def _header(code: str, label: str) -> str:
    """``中文/code``: the Chinese for a person first, the code for programs after the slash."""
    with use("zh_CN"):
        if code.startswith("unmet_"):
            words = _("not covered: {reason}").format(
                reason=reason_label(UnmetReason(code.removeprefix("unmet_"))))
        else:
            words = _header_words()[label]
    return f"{words}/{code}"


def _header_words() -> dict[str, str]:
    """The column labels in the current language (every one marked for the catalog)."""
    words = {
        "community": _("community"), "grid unit id": _("grid unit id"),
        "grid unit": _("grid unit"), "area drawn from": _("area drawn from"),
        "plan status": _("plan status"), "visits": _("visits"),
        "visits covered": _("visits covered"), "coverage %": _("coverage %"),
        "volunteer hours planned": _("volunteer hours planned"),
        "volunteers serving": _("volunteers serving"), "points issued": _("points issued"),
        "points redeemed": _("points redeemed"),
        "charity units given": _("charity units given"),
        "time bank minutes": _("time bank minutes"), "error": _("error"),
    }
    for p, word in ((Priority.RED, _("red")), (Priority.YELLOW, _("yellow")),
                    (Priority.BLUE, _("blue"))):
        words[f"{p.value} visits"] = _("{priority} visits").format(priority=word)
        words[f"{p.value} visits covered"] = _("{priority} visits covered").format(
            priority=word)
        words[f"{p.value} coverage %"] = _("{priority} coverage %").format(priority=word)
    return words


def report_frame(report: DistrictReport) -> pd.DataFrame:
    """district_report.csv as a DataFrame: a row per community, then one per grid unit of it.
    Columns are ``中文/code`` (:func:`_header`); figures of a community never planned, and
    ledger figures nobody gave, are empty."""
    columns = _columns()
    records = []
    for c in report.communities:
        for row in (c.figures, *c.units):
            records.append(_record(c, row))
    frame = pd.DataFrame(records, columns=[code for code, _label in columns])
    frame.columns = pd.Index([_header(code, label) for code, label in columns])
    return frame


def _record(c: CommunityReport, row: AreaFigures) -> dict[str, object]:
    planned = c.planned

    def figure(value: object) -> object:
        return value if planned else ""

    def pct(value: float | None) -> object:
        return "" if value is None or not planned else value

    record: dict[str, object] = {
        "community": row.community, "unit_id": row.unit_id or "",
        "unit_name": row.unit_name, "area_source": c.area_source if row.unit_id is None else "",
        "status": c.status, "occurrences": row.total_occurrences,
        "covered": figure(row.total_covered), "coverage_pct": pct(row.coverage())}
    for p in Priority:
        record[f"{p.value}_occurrences"] = row.occurrences[p]
        record[f"{p.value}_covered"] = figure(row.covered[p])
        record[f"{p.value}_pct"] = pct(row.coverage(p))
    for r in UnmetReason:
        record[f"unmet_{r.value}"] = figure(row.unmet.get(r, 0))
    record.update(volunteer_hours=figure(row.volunteer_hours),
                  volunteers_active=figure(row.volunteers_active))
    for name in ("points_issued", "points_redeemed", "charity_units", "timebank_minutes"):
        value = getattr(row.ledger, name)
        record[name] = "" if value is None else value
    record["error"] = c.error if row.unit_id is None else ""
    return record


# -- district_map.html -----------------------------------------------------------------------

def coverage_colour(value: float | None) -> str:
    """The choropleth colour of a coverage share (grey with nothing to cover)."""
    if value is None:
        return NO_VISITS
    return next(colour for floor, colour in reversed(CLASSES) if value >= floor)


def _label(row: AreaFigures, status: str, source: AreaSource | None) -> list[str]:
    """The hover lines of an area: what it is, coverage by priority, why visits are unmet,
    hours, and the ledger's figures when known."""
    title = row.community if row.unit_id is None else f"{row.community} · {row.unit_name}"
    lines = [title]
    if status == FAILED:
        return [*lines, _("not planned: its part failed")]
    if status == UNPUBLISHED:
        return [*lines, _("no plan of this week is published yet")]
    lines.append(_("{covered} of {total} visits covered").format(
        covered=row.total_covered, total=row.total_occurrences))
    for p in Priority:
        if row.occurrences[p]:
            lines.append(_("{priority}: {covered} of {total} ({pct}%)").format(
                priority=priority_label(p), covered=row.covered[p], total=row.occurrences[p],
                pct=row.coverage(p)))
    for reason, n in sorted(row.unmet.items(), key=lambda kv: -kv[1]):
        lines.append(_("not covered, {reason}: {n}").format(reason=reason_label(reason), n=n))
    lines.append(_("{hours:g} volunteer hours planned, {n} volunteers serving").format(
        hours=row.volunteer_hours, n=row.volunteers_active))
    ledger = row.ledger
    for value, words in ((ledger.points_issued, _("points issued: {n}")),
                         (ledger.points_redeemed, _("points redeemed: {n}")),
                         (ledger.charity_units, _("charity units given: {n}")),
                         (ledger.timebank_minutes, _("time bank minutes: {n}"))):
        if value is not None:
            lines.append(words.format(n=value))
    if source == "hull":
        lines.append(_("area: around its needs and volunteers (no grid units given)"))
    return lines


def _feature(geometry: BaseGeometry, row: AreaFigures, status: str,
             source: AreaSource | None, project: _Projector) -> dict[str, Any]:
    planned = status not in NOT_PLANNED
    coverage = {p.value: row.coverage(p) if planned else None for p in Priority}
    coverage["all"] = row.coverage() if planned else None
    shape = shapely.transform(geometry, lambda xy: np.array(
        [project(lat, lon) for lon, lat in xy.tolist()], dtype=float).reshape(-1, 2))
    return {"type": "Feature", "geometry": mapping(shape), "properties": {
        "community": row.community, "unit_id": row.unit_id, "name": row.unit_name or
        row.community, "source": source, "status": status, "coverage": coverage,
        "colour": {key: coverage_colour(value) for key, value in coverage.items()},
        "label": _label(row, status, source)}}


def map_legend() -> dict[str, Any]:
    """The legend's classes, the grey of nothing to cover and the two kinds of outline."""
    bounds = [floor for floor, _colour in CLASSES]
    classes = []
    for k, (floor, colour) in enumerate(CLASSES):
        label = (_("{low:g}% and more").format(low=floor) if k == len(CLASSES) - 1 else
                 _("{low:g}% to under {high:g}%").format(low=floor, high=bounds[k + 1]))
        classes.append({"colour": colour, "label": label})
    return {
        "classes": classes,
        "none": {"colour": NO_VISITS, "label": _("no visits of this kind, or not planned")},
        "outlines": [
            {"style": "grids", "label": _("Solid outline: the community's grid units")},
            {"style": "hull", "label": _(
                "Dashed outline: around the community's needs and volunteers (no grid units "
                "given)")}],
    }


def district_map_document(report: DistrictReport, settings: Settings | None = None
                          ) -> dict[str, Any]:
    """Everything ``LinliDistrictMap.draw`` needs: the communities' and units' areas (in the
    tiles' system) with their figures, the choices of priority, legend and words, in the
    current language."""
    settings = settings or Settings()
    tiles, system = tile_layers(settings)
    project = _Projector(system)
    communities, units = [], []
    for c in report.communities:
        if c.area is not None:
            communities.append(_feature(c.area, c.figures, c.status, c.area_source, project))
        for row in c.units:
            if row.unit_id:
                units.append(_feature(c.unit_areas[row.unit_id], row, c.status, None, project))
    covered = sum(c.figures.total_covered for c in report.communities if c.planned)
    total = sum(c.figures.total_occurrences for c in report.communities)
    choices = [{"key": p.value, "label": priority_label(p)} for p in Priority]
    choices.append({"key": "all", "label": _("All visits")})
    return {
        "lang": "zh-CN" if current() == "zh_CN" else "en",
        "title": _("Linli · district · week {week}").format(week=report.week),
        "summary": _("{covered} of {total} visits covered in {n} communities").format(
            covered=covered, total=total, n=len(report.communities)),
        "note": _("Areas without grid units are drawn around places rounded to about 100 m."),
        "choose": _("Colour by coverage of"),
        "choices": choices,
        "selected": Priority.RED.value,
        "layers": {"communities": {"type": "FeatureCollection", "features": communities},
                   "units": {"type": "FeatureCollection", "features": units}},
        "names": {"communities": _("Communities"), "units": _("Grid units")},
        "legend": map_legend(),
        "legend_title": _("Share of visits covered"),
        "tiles": tiles,
        "attribution": ATTRIBUTION,
    }


def render_district_map(report: DistrictReport, settings: Settings | None = None) -> str:
    """``district_map.html``: one self-contained page; nothing is loaded from outside unless
    tiles are configured."""
    document = district_map_document(report, settings)
    return offline_page(document, "LinliDistrictMap", "linli-district-data",
                        ["linli-map.js", "linli-district-map.js"],
                        ["linli-map.css", "linli-district-map.css"])


def write_district_report(report: DistrictReport, out: Path, *,
                          settings: Settings | None = None, map_html: bool = True
                          ) -> list[Path]:
    """Write :data:`REPORT_FILE` and (unless ``map_html`` is False) :data:`MAP_FILE` into
    ``out``; returns the files written."""
    from matcher.outputs import write_csv

    out.mkdir(parents=True, exist_ok=True)
    write_csv(report_frame(report), out / REPORT_FILE)
    written = [out / REPORT_FILE]
    if map_html:
        (out / MAP_FILE).write_text(render_district_map(report, settings), encoding="utf-8")
        written.append(out / MAP_FILE)
    return written
