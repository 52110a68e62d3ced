"""Grid units (网格): the community divided into the units its grid workers (网格员) look after,
read from a GeoJSON file of polygons; every volunteer, need, merchant and resource gets the unit
it lies in, and the week is reported unit by unit.

A place on the border of two units belongs to the first in the file (units are read in order);
a place in no unit gets none (reported as such, never dropped).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from matcher.domain import Location, Problem
from matcher.errors import DataIssue, InputError
from matcher.i18n import N_
from matcher.resources import Resource

UNIT_ID_MAX = 64


@dataclass(frozen=True)
class GridUnit:
    """One unit: its id (the feature's ``id`` or ``properties.unit_id``), name and shape."""

    id: str
    name: str
    geometry: BaseGeometry


def read_grids(path: Path | str) -> list[GridUnit]:
    """The units of a GeoJSON FeatureCollection of Polygons/MultiPolygons (WGS84).

    Raises
    ------
    InputError
        Every problem at once, each naming the file and the feature (``features[3]``).
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError([DataIssue.of(path.name, None, None, None,
                                       N_("is not a readable GeoJSON file ({error})"),
                                       error=str(exc))]) from exc
    return parse_grids(document, path.name)


def parse_grids(document: object, name: str) -> list[GridUnit]:
    """The units of a parsed GeoJSON document (see :func:`read_grids`); ``name`` names it in
    errors."""
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list) or not features:
        raise InputError([DataIssue.of(name, None, "features", None, N_(
            "a FeatureCollection with at least one polygon is needed"))])
    issues: list[DataIssue] = []
    units: list[GridUnit] = []
    seen: set[str] = set()
    for k, feature in enumerate(features):
        where = f"features[{k}]"
        props = feature.get("properties") or {} if isinstance(feature, dict) else {}
        ident = str(props.get("unit_id") or (feature.get("id") if isinstance(feature, dict)
                                             else "") or "").strip()
        if not ident or len(ident) > UNIT_ID_MAX:
            issues.append(DataIssue.of(name, None, f"{where}.properties.unit_id", ident or None,
                                       N_("needs a unit id of 1-{n} characters"),
                                       n=UNIT_ID_MAX))
            continue
        if ident in seen:
            issues.append(DataIssue.of(name, None, f"{where}.properties.unit_id", ident,
                                       N_("is used by an earlier unit")))
            continue
        seen.add(ident)
        try:
            geometry = shape(feature.get("geometry") or {})
        except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
            issues.append(DataIssue.of(name, None, f"{where}.geometry", None,
                                       N_("is not a valid GeoJSON geometry ({error})"),
                                       error=str(exc)))
            continue
        if geometry.geom_type not in ("Polygon", "MultiPolygon") or geometry.is_empty:
            issues.append(DataIssue.of(name, None, f"{where}.geometry", geometry.geom_type,
                                       N_("must be a Polygon or MultiPolygon")))
            continue
        lon0, lat0, lon1, lat1 = geometry.bounds
        if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
            issues.append(DataIssue.of(name, None, f"{where}.geometry", None,
                                       N_("coordinates must be [lon, lat] in WGS84")))
            continue
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        units.append(GridUnit(ident, str(props.get("name") or ident), geometry))
    if issues:
        raise InputError(issues)
    return units


def grids_geojson(units: Sequence[GridUnit]) -> dict[str, object]:
    """The units as the GeoJSON FeatureCollection :func:`parse_grids` reads back."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"unit_id": u.id, "name": u.name},
         "geometry": mapping(u.geometry)} for u in units]}


def locate(units: Sequence[GridUnit], places: Sequence[Location]) -> list[str | None]:
    """The id of the unit each place lies in (borders included; the first unit wins), or
    None."""
    if not places:
        return []
    points = shapely.points(np.array([p.lon for p in places]), np.array([p.lat for p in places]))
    tree = shapely.STRtree([u.geometry for u in units])
    point_index, unit_index = tree.query(points, predicate="intersects")
    out: list[str | None] = [None] * len(places)
    best = np.full(len(places), len(units))
    for p, u in zip(point_index.tolist(), unit_index.tolist(), strict=True):
        if u < best[p]:
            best[p] = u
            out[p] = units[u].id
    return out


@dataclass(frozen=True)
class UnitReport:
    """One unit's figures: who and what lies in it."""

    unit_id: str
    name: str
    volunteers: int
    needs: int
    occurrences: int
    red_occurrences: int
    merchants: int
    resources: int


def assign(units: Sequence[GridUnit], problem: Problem, resources: Sequence[Resource] = ()
           ) -> dict[str, dict[str, str | None]]:
    """The unit of every volunteer, need, merchant and resource, by kind then id."""
    kinds: dict[str, list[tuple[str, Location]]] = {
        "volunteers": [(v.id, v.location) for v in problem.volunteers],
        "needs": [(n.id, n.location) for n in problem.needs],
        "merchants": [(m.id, m.location) for m in problem.merchants],
        "resources": [(r.id, r.location) for r in resources],
    }
    return {kind: dict(zip([i for i, _ in rows], locate(units, [p for _, p in rows]),
                           strict=True))
            for kind, rows in kinds.items()}


def unit_reports(units: Sequence[GridUnit], problem: Problem,
                 resources: Sequence[Resource] = ()) -> list[UnitReport]:
    """One report per unit, in file order, and a last one (id "") for places in no unit when
    there are any."""
    where = assign(units, problem, resources)
    occurrences = problem.occurrences
    rows = [(u.id, u.name) for u in units]
    out: list[UnitReport] = []
    for ident, name in [*rows, ("", "")]:
        key: str | None = ident or None

        def count(kind: str, key: str | None = key) -> int:
            return sum(1 for unit in where[kind].values() if unit == key)

        mine = [o for o in occurrences if where["needs"][o.need.id] == key]
        report = UnitReport(ident, name, count("volunteers"), count("needs"), len(mine),
                            sum(1 for o in mine if o.need.priority.value == "red"),
                            count("merchants"), count("resources"))
        if ident or any((report.volunteers, report.needs, report.merchants, report.resources)):
            out.append(report)
    return out
