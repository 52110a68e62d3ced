"""The lookup: resources within the circle, nearest first, each with its route on the streets
and directions in Chinese built from street names and turns."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from matcher import i18n
from matcher.domain import Location
from matcher.nearby import NearbyIndex, bearing_deg, compass, turn
from matcher.resources import Category, Resource
from matcher.settings import Settings
from matcher.travel import WalkingNetwork, walk_minutes
from tests.conftest import CENTRE, offset


def _street_graph() -> WalkingNetwork:
    """景田路 runs 300 m north from A to B; 红荔路 runs 200 m east from B to C, then on to a
    far end E 1,200 m east; an unnamed path goes 100 m west of A."""
    graph = nx.Graph()
    points = {"A": offset(0, 0), "B": offset(300, 0), "C": offset(300, 200),
              "E": offset(300, 1400), "W": offset(0, -100)}
    for node, p in points.items():
        graph.add_node(node, y=p.lat, x=p.lon)
    graph.add_edge("A", "B", length=300.0, name="景田路")
    graph.add_edge("B", "C", length=200.0, name="红荔路")
    graph.add_edge("C", "E", length=1200.0, name="红荔路")
    graph.add_edge("A", "W", length=100.0, name="")
    return WalkingNetwork(graph, "hand-built")


def _resources() -> list[Resource]:
    return [Resource("r-clinic", Category.CLINIC, "景田社康", offset(300, 200)),
            Resource("r-stop", Category.BUS_STOP, "", offset(0, -100)),
            Resource("r-far", Category.CLINIC, "远处诊所", offset(300, 1400))]


def test_nearest_first_with_route_and_chinese_directions() -> None:
    index = NearbyIndex(_street_graph(), _resources(), Settings())
    found = index.lookup(CENTRE)
    assert [f.resource.id for f in found] == ["r-stop", "r-clinic"]  # r-far is 23 min away
    clinic = found[1]
    assert clinic.minutes == pytest.approx(500 / 75, abs=0.05)
    assert clinic.text == "沿景田路向北走300米，右转进入红荔路，走200米，到达景田社康"
    assert clinic.geojson()["type"] == "LineString"
    coordinates = clinic.geojson()["coordinates"]
    assert isinstance(coordinates, list) and len(coordinates) == 5  # origin, A, B, C, place
    assert coordinates[0] == [CENTRE.lon, CENTRE.lat]
    assert found[0].text == "沿小路向西走100米，到达公交站"
    with i18n.use("en"):
        assert index.lookup(CENTRE)[1].text == ("Walk north along 景田路 for 300 m, turn right "
                                                "onto 红荔路 and walk 200 m, arrive at 景田社康")


def test_category_and_limit_filter() -> None:
    index = NearbyIndex(_street_graph(), _resources(), Settings())
    assert [f.resource.id for f in index.lookup(CENTRE, Category.CLINIC)] == ["r-clinic"]
    assert index.lookup(CENTRE, Category.PARK) == []
    assert len(index.lookup(CENTRE, limit=1)) == 1
    wide = NearbyIndex(_street_graph(), _resources(), Settings(circle_min=30))
    assert [f.resource.id for f in wide.lookup(CENTRE, Category.CLINIC)] == ["r-clinic", "r-far"]
    # From the far end, walking back west along the same street.
    back = wide.lookup(offset(300, 1400), Category.CLINIC)
    assert [f.resource.id for f in back] == ["r-far", "r-clinic"]
    assert back[1].text == "沿红荔路向西走1200米，到达景田社康"


def test_a_resident_beyond_the_circle_from_any_street_finds_nothing() -> None:
    index = NearbyIndex(_street_graph(), _resources(), Settings())
    assert index.lookup(offset(-3000, 0)) == []
    assert NearbyIndex(_street_graph(), [], Settings()).lookup(CENTRE) == []


@pytest.mark.parametrize(("change", "word"), [(0, None), (20, None), (45, "向右前方"),
                                              (-45, "向左前方"), (90, "右转"), (-100, "左转"),
                                              (170, "掉头")])
def test_turns(change: float, word: str | None) -> None:
    assert turn(change) == word


def test_compass() -> None:
    assert [compass(b) for b in (0, 20, 46, 90, 180, 270, 350)] == [
        "北", "北", "东北", "东", "南", "西", "北"]
    assert bearing_deg(offset(0, 0), offset(100, 0)) == pytest.approx(0, abs=0.5)
    assert bearing_deg(offset(0, 0), offset(0, 100)) == pytest.approx(90, abs=0.5)


def test_on_futian_minutes_match_the_walking_table_and_routes_follow_streets(futian) -> None:
    rng = np.random.default_rng(3)
    places = [Location(CENTRE.lat + float(a), CENTRE.lon + float(b))
              for a, b in rng.uniform(-0.006, 0.006, size=(40, 2))]
    resources = [Resource(f"r{k}", Category.CANTEEN, f"食堂{k}", p)
                 for k, p in enumerate(places)]
    index = NearbyIndex(futian, resources, Settings())
    origin = Location(22.5345, 114.0180)
    found = index.lookup(origin)
    assert found
    table = walk_minutes([origin], [r.location for r in resources], Settings(), futian)[0]
    assert {f.resource.id for f in found} == {f"r{k}" for k in np.flatnonzero(np.isfinite(table))}
    for f in found:
        assert f.minutes == pytest.approx(table[int(f.resource.id[1:])], abs=1e-6)
        nodes = [futian.graph.nodes[n] for n in futian.nodes]
        path = f.route[1:-1]
        by_xy = {(d["x"], d["y"]): n for n, d in zip(futian.nodes, nodes, strict=True)}
        for a, b in itertools.pairwise(path):
            assert futian.graph.has_edge(by_xy[a], by_xy[b])
        assert f.steps[-1] == f"到达{f.resource.name}"
        assert f.text.startswith("沿")
    assert [f.minutes for f in found] == sorted(f.minutes for f in found)
