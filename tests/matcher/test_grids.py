"""Grid units (网格): units from GeoJSON polygons, every place given its unit (borders to the
first unit, outside to none), bad files refused with the feature named, reports by unit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matcher.domain import Priority, Problem
from matcher.errors import InputError
from matcher.grids import assign, locate, read_grids, unit_reports
from matcher.resources import Category, Resource
from tests.conftest import CENTRE, WEEK, merchant, need, offset, volunteer


def _square(west: float, south: float, east: float, north: float) -> list[list[list[float]]]:
    """A ring of [lon, lat] from metres around the centre."""
    a, b = offset(south, west), offset(north, east)
    return [[[a.lon, a.lat], [b.lon, a.lat], [b.lon, b.lat], [a.lon, b.lat], [a.lon, a.lat]]]


def _write(tmp_path: Path, features: list[dict[str, object]]) -> Path:
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


def _units(tmp_path: Path) -> Path:
    """Two units side by side: 第一网格 west of the centre line, 第二网格 east of it."""
    return _write(tmp_path, [
        {"type": "Feature", "properties": {"unit_id": "G1", "name": "第一网格"},
         "geometry": {"type": "Polygon", "coordinates": _square(-500, -500, 0, 500)}},
        {"type": "Feature", "id": "G2", "properties": {"name": "第二网格"},
         "geometry": {"type": "Polygon", "coordinates": _square(0, -500, 500, 500)}}])


def test_places_get_their_unit(tmp_path: Path) -> None:
    units = read_grids(_units(tmp_path))
    assert [(u.id, u.name) for u in units] == [("G1", "第一网格"), ("G2", "第二网格")]
    places = [offset(0, -200), offset(100, 200), CENTRE, offset(0, 900)]
    # The centre lies on the shared border: the first unit in the file takes it.
    assert locate(units, places) == ["G1", "G2", "G1", None]


def test_every_kind_is_assigned_and_reported_by_unit(tmp_path: Path) -> None:
    units = read_grids(_units(tmp_path))
    problem = Problem(WEEK, [volunteer("V1", 0, -100), volunteer("V2", 0, 300),
                             volunteer("V3", 0, 2000)],
                      [need("N1", 0, -100, "mon;tue", priority=Priority.RED),
                       need("N2", 0, 300)], [merchant("M1", 0, 200)])
    places = [Resource("osm:n1", Category.PARK, "荔园", offset(0, -300))]
    where = assign(units, problem, places)
    assert where == {"volunteers": {"V1": "G1", "V2": "G2", "V3": None},
                     "needs": {"N1": "G1", "N2": "G2"}, "merchants": {"M1": "G2"},
                     "resources": {"osm:n1": "G1"}}
    reports = {r.unit_id: r for r in unit_reports(units, problem, places)}
    assert (reports["G1"].volunteers, reports["G1"].needs, reports["G1"].occurrences,
            reports["G1"].red_occurrences, reports["G1"].resources) == (1, 1, 2, 2, 1)
    assert (reports["G2"].volunteers, reports["G2"].merchants) == (1, 1)
    assert reports[""].volunteers == 1  # V3 lies in no unit: counted, not dropped


@pytest.mark.parametrize(("features", "expected"), [
    ([{"type": "Feature", "properties": {},
       "geometry": {"type": "Polygon", "coordinates": _square(0, 0, 10, 10)}}],
     "features[0].properties.unit_id"),
    ([{"type": "Feature", "properties": {"unit_id": "G1"},
       "geometry": {"type": "Point", "coordinates": [114.0, 22.5]}}],
     "features[0].geometry: 'Point' must be a Polygon"),
    ([{"type": "Feature", "properties": {"unit_id": "G1"},
       "geometry": {"type": "Polygon", "coordinates": [[[22.5, 114.0], [22.6, 114.0],
                                                         [22.6, 114.1], [22.5, 114.0]]]}}],
     "[lon, lat]"),
    ([{"type": "Feature", "properties": {"unit_id": "G1"},
       "geometry": {"type": "Polygon", "coordinates": "nonsense"}}], "features[0].geometry"),
])
def test_bad_units_are_refused_naming_the_feature(tmp_path: Path,
                                                  features: list[dict[str, object]],
                                                  expected: str) -> None:
    with pytest.raises(InputError) as caught:
        read_grids(_write(tmp_path, features))
    assert expected in str(caught.value)


def test_a_file_that_is_not_geojson(tmp_path: Path) -> None:
    bad = tmp_path / "grids.geojson"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"grids\.geojson"):
        read_grids(bad)
    with pytest.raises(InputError, match="features"):
        read_grids(_write(tmp_path, []))


def test_cli_reports_by_unit(tmp_path: Path) -> None:
    import pandas as pd
    from typer.testing import CliRunner

    from matcher.cli import app
    from tests.conftest import NETWORK

    # One unit around the whole sample, one empty unit far away.
    path = _write(tmp_path, [
        {"type": "Feature", "properties": {"unit_id": "ALL", "name": "全社区"},
         "geometry": {"type": "Polygon", "coordinates": _square(-9000, -9000, 9000, 9000)}},
        {"type": "Feature", "properties": {"unit_id": "FAR", "name": "远处"},
         "geometry": {"type": "Polygon", "coordinates": _square(20000, 0, 21000, 1000)}}])
    out = tmp_path / "units.csv"
    result = CliRunner().invoke(app, ["grids", "--units", str(path), "--data",
                                      str(NETWORK.parents[1] / "sample"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "全社区" in result.output and "远处" in result.output
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 300 + 400 + 24 + 24 and set(table["unit_id"]) == {"ALL"}
    bad = CliRunner().invoke(app, ["grids", "--units", str(tmp_path / "none.geojson"),
                                   "--data", str(NETWORK.parents[1] / "sample")])
    assert bad.exit_code == 2 and "none.geojson" in bad.output
