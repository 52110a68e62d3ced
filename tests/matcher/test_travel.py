"""Travel and circles on the shipped OSM extract and the other real extracts."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from geopy.distance import geodesic
from scipy.spatial import Delaunay

from matcher.circles import ServiceCircle
from matcher.domain import Problem
from matcher.errors import NetworkError
from matcher.mapview import service_areas
from matcher.settings import Settings
from matcher.travel import TravelTimes, WalkingNetwork, is_walkable
from tests.conftest import CENTRE, WEEK, need, offset, volunteer
from tests.validator import network_walk

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_shipped_network_matches_its_provenance(futian: WalkingNetwork) -> None:
    # PROVENANCE.md: largest walkable component 1,693 nodes and about 212 km of street.
    assert len(futian.nodes) == 1693
    assert futian.total_length_km == pytest.approx(212.2, rel=0.01)


def test_network_times_equal_networkx_dijkstra(futian: WalkingNetwork) -> None:
    vols = [volunteer(f"V{i}", 300 * i - 600, 200 * (i % 3)) for i in range(5)]
    needs = [need(f"N{i}", -250 * i + 400, 300 - 150 * i) for i in range(5)]
    problem = Problem(WEEK, vols, needs)
    settings = Settings()
    travel = TravelTimes.build(problem, settings, futian)
    walk = network_walk(futian)
    for v in vols:
        for n in needs:
            expected = walk(v.location, n.location)
            got = travel.between(("V", v.id), ("N", n.id))
            if expected <= 2 * settings.circle_min:
                assert got == pytest.approx(expected, rel=1e-9)
            else:
                assert got == np.inf


def test_circle_on_real_streets_is_smaller_than_the_crow_flies(futian: WalkingNetwork) -> None:
    # The 15-minute circle is ~1,125 m of walking: fewer nodes than an 1,125 m straight disc.
    within = futian.reachable_nodes(CENTRE, 1125)
    lat, lon = futian.lat, futian.lon
    straight = [i for i in range(len(lat))
                if geodesic((CENTRE.lat, CENTRE.lon), (lat[i], lon[i])).meters <= 1125]
    assert 50 < len(within) < len(straight)
    assert set(within.tolist()) <= set(straight)


def test_map_outline_of_a_circle_holds_exactly_the_reachable_streets(
        futian: WalkingNetwork) -> None:
    # The outline the map draws (matcher.mapview) is the hull of the nodes within 15 minutes'
    # walk: every reachable node lies inside it and on no account outside the straight disc.
    settings = Settings()
    far = offset(300, -200)
    outlines = service_areas(futian, [CENTRE, far], settings)
    reach = settings.circle_min * settings.walk_speed_m_per_min
    for home, outline in zip([CENTRE, far], outlines, strict=True):
        assert len(outline) >= 3
        inside = futian.reachable_nodes(home, reach)
        polygon = Delaunay(np.array(outline))  # the outline is convex: its triangulation
        points = np.column_stack([futian.lat[inside], futian.lon[inside]])
        assert (polygon.find_simplex(points, tol=1e-12) >= 0).all()
        corners = [geodesic((home.lat, home.lon), corner).meters for corner in outline]
        assert max(corners) <= reach + 1  # network metres are never shorter than straight ones
        assert polygon.find_simplex(np.array([[home.lat, home.lon]]))[0] >= 0
    assert outlines[0] != outlines[1]


def test_geodesic_fallback_matches_geopy() -> None:
    problem = Problem(WEEK, [volunteer("V", 0, 0)], [need("N", 500, 300), need("F", 3000, 0)])
    travel = TravelTimes.build(problem, Settings())
    a, b = problem.volunteers[0].location, problem.needs[0].location
    expected = geodesic((a.lat, a.lon), (b.lat, b.lon)).meters * 1.3 / 75
    assert travel.between(("V", "V"), ("N", "N")) == pytest.approx(expected, rel=1e-9)
    assert travel.between(("V", "V"), ("N", "F")) == np.inf  # beyond twice the circle
    assert ServiceCircle(15).contains(travel.between(("V", "V"), ("N", "N")))


def test_settings_change_the_circle() -> None:
    problem = Problem(WEEK, [volunteer("V")], [need("N", 700, 0)])
    slow = TravelTimes.build(problem, Settings(walk_speed_m_per_min=50))
    fast = TravelTimes.build(problem, Settings())
    assert slow.between(("V", "V"), ("N", "N")) == pytest.approx(
        1.5 * fast.between(("V", "V"), ("N", "N")))


@pytest.mark.skipif(not SHARED.exists(), reason="shared data not beside the checkout")
@pytest.mark.parametrize(("name", "min_nodes"), [
    ("helsinki-osm/Helsinki.osm.pbf", 1000),
    ("beijing-haidian-osm/haidian_xueqing_rd.osm", 300),
])
def test_osm_xml_and_pbf_load(name: str, min_nodes: int) -> None:
    network = WalkingNetwork.from_file(SHARED / name)
    assert len(network.nodes) >= min_nodes
    assert nx.is_connected(network.graph)


def test_walkable_filter() -> None:
    assert is_walkable({"highway": "footway"})
    assert is_walkable({"highway": ["motorway", "residential"]})
    assert not is_walkable({"highway": "motorway"})
    assert not is_walkable({"highway": "service", "access": "private"})
    assert is_walkable({"highway": "service", "access": "private", "foot": "yes"})
    assert not is_walkable({"highway": "residential", "foot": "no"})
    assert not is_walkable({"building": "yes"})


def test_bad_network_files(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="no such network file"):
        WalkingNetwork.from_file(tmp_path / "missing.osm")
    bad = tmp_path / "streets.osm"
    bad.write_text("<osm version='0.6'></osm>")
    with pytest.raises(NetworkError, match="no walkable streets"):
        WalkingNetwork.from_file(bad)
    other = tmp_path / "streets.shp"
    other.write_text("x")
    with pytest.raises(NetworkError, match=r"use an \.osm"):
        WalkingNetwork.from_file(other)


def test_offset_helper_is_metric() -> None:
    p = offset(1000, 0)
    metres = geodesic((CENTRE.lat, CENTRE.lon), (p.lat, p.lon)).meters
    assert metres == pytest.approx(1000, rel=0.01)


def _all_pairs_reference(travel: TravelTimes, problem: Problem, settings: Settings,
                         network: WalkingNetwork | None) -> np.ndarray:
    """The full table of every pair, computed the direct way (what TravelTimes stored before it
    kept only the pairs within the cutoff)."""
    from matcher.travel import geodesic_m

    places = ([v.location for v in problem.volunteers] + [n.location for n in problem.needs]
              + [m.location for m in problem.merchants])
    lat = np.array([p.lat for p in places])
    lon = np.array([p.lon for p in places])
    n = len(places)
    cutoff_m = 2 * settings.circle_min * settings.walk_speed_m_per_min
    if network is None:
        a, b = np.triu_indices(n, 1)
        metres = np.zeros((n, n))
        d = geodesic_m(lat[a], lon[a], lat[b], lon[b]) * settings.detour_factor
        metres[a, b] = d
        metres[b, a] = d
    else:
        nodes, access = network.snap(places)
        dist = network.node_distances_m(nodes, cutoff_m)[:, nodes]
        metres = access[:, None] + dist + access[None, :]
    metres[metres > cutoff_m] = np.inf
    np.fill_diagonal(metres, 0.0)
    return metres / settings.walk_speed_m_per_min


@pytest.mark.parametrize("on_streets", [False, True])
@pytest.mark.parametrize("dense_max", [0, 10_000])
def test_only_pairs_within_the_cutoff_are_kept_and_they_are_exact(
        futian: WalkingNetwork, monkeypatch: pytest.MonkeyPatch, on_streets: bool,
        dense_max: int) -> None:
    """Sparse (beyond DENSE_MAX_PLACES) or dense, every pair equals the direct all-pairs table:
    the same minutes within the cutoff, ``inf`` beyond it; and the circles' options too."""
    import matcher.travel as travel_module
    from matcher.circles import build_candidates

    monkeypatch.setattr(travel_module, "DENSE_MAX_PLACES", dense_max)
    rng = np.random.default_rng(5)
    vols = [volunteer(f"V{i}", *rng.uniform(-2500, 2500, 2), windows="mon 08:00-18:00")
            for i in range(60)]
    needs = [need(f"N{i}", *rng.uniform(-2500, 2500, 2)) for i in range(60)]
    needs += [need("Same", 0, 0), need("Twin", 0, 0)]  # two places on one spot
    problem = Problem(WEEK, vols, needs)
    settings = Settings()
    network = futian if on_streets else None
    travel = TravelTimes.build(problem, settings, network)
    expected = _all_pairs_reference(travel, problem, settings, network)
    got = np.array([[travel.at(i, j) for j in range(len(travel.keys))]
                    for i in range(len(travel.keys))])
    assert np.array_equal(got, expected)
    assert 0 < travel.pairs < len(travel.keys) ** 2  # far pairs are not stored
    assert (travel._dense is None) == (dense_max == 0)
    options = build_candidates(problem, travel, ServiceCircle()).options
    assert options  # the same options whichever way the table is kept
    monkeypatch.setattr(travel_module, "DENSE_MAX_PLACES", 10_000 - dense_max)
    other = TravelTimes.build(problem, settings, network)
    assert build_candidates(problem, other, ServiceCircle()).options == options


def test_a_large_community_never_builds_an_all_pairs_table() -> None:
    """20,000 homes and needs over 100 km: the table holds the near pairs only, so
    memory follows them, not the square of the places (3.2 GB here)."""
    import tracemalloc

    rng = np.random.default_rng(3)
    spots = rng.uniform(-50_000, 50_000, (20_000, 2))
    vols = [volunteer(f"V{i}", *spots[i]) for i in range(10_000)]
    needs = [need(f"N{i}", *spots[10_000 + i]) for i in range(10_000)]
    problem = Problem(WEEK, vols, needs)
    tracemalloc.start()
    travel = TravelTimes.build(problem, Settings())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200 * 1024 * 1024
    assert travel.pairs < 50 * len(travel.keys)
    v, n = travel.index[("V", "V0")], travel.index[("N", "N0")]
    assert travel.at(v, v) == 0.0 and travel.at(v, n) in (np.inf, travel.between(("N", "N0"),
                                                                                ("V", "V0")))
