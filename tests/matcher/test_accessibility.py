"""Accessibility layer: minutes from every street node to the nearest resource of each category
and to the k-th nearest volunteer with a skill, checked against one search per resource; and
the households beyond the circle of each category."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from matcher.accessibility import (
    blind_spots,
    category_layer,
    kth_nearest_minutes,
    nearest_minutes,
    skill_layer,
)
from matcher.domain import Location
from matcher.resources import CATEGORIES, Category, Resource
from matcher.settings import Settings
from matcher.travel import WalkingNetwork
from tests.conftest import CENTRE, need, offset, volunteer
from tests.matcher.test_nearby import _resources, _street_graph


def _one_by_one(network: WalkingNetwork, places: list[Location]) -> np.ndarray:
    """Places x nodes minutes, one plain search per place (the slow, obvious way)."""
    nodes, access = network.snap(places)
    rows = [dijkstra(network.csr, directed=False, indices=int(node)) + a
            for node, a in zip(nodes, access, strict=True)]
    return np.array(rows) / Settings().walk_speed_m_per_min


def test_layer_on_a_hand_built_street() -> None:
    net = _street_graph()
    layer = category_layer(net, _resources(), Settings())
    position = {name: net.nodes.index(name) for name in ("A", "B", "C", "E", "W")}
    clinic, stop = CATEGORIES.index(Category.CLINIC), CATEGORIES.index(Category.BUS_STOP)
    # A to the clinic at C: 300 + 200 m; E has the far clinic on its own node.
    assert layer[position["A"], clinic] == pytest.approx(500 / 75, abs=0.01)
    assert layer[position["E"], clinic] == pytest.approx(0, abs=0.01)
    assert layer[position["C"], stop] == pytest.approx(600 / 75, abs=0.01)
    assert np.isinf(layer[:, CATEGORIES.index(Category.PARK)]).all()


def test_layer_matches_one_search_per_resource_on_futian(futian: WalkingNetwork) -> None:
    rng = np.random.default_rng(11)
    resources = [Resource(f"r{k}", CATEGORIES[k % 3],
                          "", Location(CENTRE.lat + float(a), CENTRE.lon + float(b)))
                 for k, (a, b) in enumerate(rng.uniform(-0.012, 0.012, size=(30, 2)))]
    layer = category_layer(futian, resources, Settings(), CATEGORIES[:3])
    each = _one_by_one(futian, [r.location for r in resources])
    for c in range(3):
        mine = [k for k, r in enumerate(resources) if r.category is CATEGORIES[c]]
        np.testing.assert_allclose(layer[:, c], each[mine].min(axis=0), rtol=1e-9, atol=1e-6)
    places = [r.location for r in resources]
    np.testing.assert_allclose(nearest_minutes(futian, places, Settings()), each.min(axis=0),
                               rtol=1e-9, atol=1e-6)
    for k in (1, 3, 30):
        np.testing.assert_allclose(kth_nearest_minutes(futian, places, k, Settings()),
                                   np.sort(each, axis=0)[k - 1], rtol=1e-9, atol=1e-6)
    assert np.isinf(kth_nearest_minutes(futian, places, 31, Settings())).all()


def test_kth_nearest_in_chunks(futian: WalkingNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    import matcher.accessibility as accessibility

    places = [offset(100 * k, -50 * k) for k in range(9)]
    whole = kth_nearest_minutes(futian, places, 2, Settings())
    monkeypatch.setattr(accessibility, "CHUNK_CELLS", 1)  # one source per search
    np.testing.assert_allclose(kth_nearest_minutes(futian, places, 2, Settings()), whole)


def test_skills_and_blind_spots() -> None:
    net = _street_graph()
    people = [volunteer("V1", 0, 0, ("meal_delivery",)), volunteer("V2", 300, 200,
                                                                   ("meal_delivery",)),
              volunteer("V3", 300, 1400, ("escort_medical",))]
    skills = skill_layer(net, people, 2, Settings())
    assert set(skills) == {"meal_delivery", "escort_medical"}
    assert skills["meal_delivery"][net.nodes.index("A")] == pytest.approx(500 / 75, abs=0.01)
    assert np.isinf(skills["escort_medical"]).all()  # one such volunteer, two asked for
    layer = category_layer(net, _resources(), Settings())
    homes = [need("N-near", 0, 0), need("N-far", 300, 1400)]
    spots = blind_spots(net, layer, homes, Settings())
    by = {(s.need_id, s.category) for s in spots}
    assert ("N-far", Category.BUS_STOP) in by and ("N-near", Category.BUS_STOP) not in by
    assert ("N-far", Category.CLINIC) not in by  # the far clinic is on its street
    assert ("N-near", Category.PARK) in by and all(
        np.isinf(s.minutes) for s in spots if s.category is Category.PARK)


def test_cli_writes_the_layer_and_the_blind_spots(tmp_path: Path) -> None:
    import pandas as pd
    from typer.testing import CliRunner

    from matcher.cli import app
    from tests.conftest import NETWORK

    out = tmp_path / "access"
    result = CliRunner().invoke(app, ["access", "--network", str(NETWORK), "--data",
                                      str(NETWORK.parents[1] / "sample"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "社区食堂" in result.output and "12 类场所 × 1693 个路口" in result.output
    nodes = pd.read_csv(out / "access_nodes.csv")
    assert len(nodes) == 1693 and "canteen_min" in nodes and "2x_meal_delivery_min" in nodes
    spots = pd.read_csv(out / "blind_spots.csv")
    canteen = spots[spots["category"] == "canteen"]
    assert (canteen["minutes"] > 15).all() and 0 < len(canteen) < 400
