"""Accessibility and service blind spots (服务盲区): for every street node, the walking minutes
to the nearest resource of each category and to the k-th nearest volunteer with each skill, and
the households (needs) beyond the circle of a category.

Each category is one multi-source shortest-path search in C (scipy csgraph Dijkstra with
``min_only``) on the street graph extended by one extra node per resource, tied to its street
node by its straight access leg: so the minutes count that leg exactly as a lookup does, and no
per-resource loop is needed. The k-th nearest volunteer needs every volunteer's distances (a
minimum is not enough): one search from all of them at once, in chunks, keeping the k smallest
per node as it goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from matcher.domain import Location, Need, Volunteer
from matcher.resources import CATEGORIES, Category, Resource
from matcher.settings import Settings
from matcher.travel import WalkingNetwork

# Rows of distances held at once when finding the k-th nearest (memory stays near 200 MB).
CHUNK_CELLS = 25_000_000


def _extended(network: WalkingNetwork, locations: Sequence[Location]) -> csr_matrix:
    """The street graph plus one node per location (numbered after the streets), joined to its
    nearest street node by the straight access leg."""
    n, m = len(network.nodes), len(locations)
    graph = network.csr.tocoo()
    nodes, access = network.snap(locations) if m else (np.zeros(0, np.int64), np.zeros(0))
    rows = np.concatenate([graph.row, np.arange(n, n + m)])
    cols = np.concatenate([graph.col, nodes])
    weights = np.concatenate([graph.data, np.maximum(access, 1e-3)])
    return csr_matrix((weights, (rows, cols)), shape=(n + m, n + m))


def nearest_minutes(network: WalkingNetwork, places: Sequence[Location], settings: Settings
                    ) -> np.ndarray:
    """Walking minutes from every street node to the nearest of ``places`` (``inf`` when there
    is none), in one multi-source search."""
    n = len(network.nodes)
    if not places:
        return np.full(n, np.inf)
    graph = _extended(network, places)
    dist = dijkstra(graph, directed=False, indices=np.arange(n, n + len(places)),
                    min_only=True)
    return np.asarray(dist[:n]) / settings.walk_speed_m_per_min


def category_layer(network: WalkingNetwork, resources: Sequence[Resource], settings: Settings,
                   categories: Sequence[Category] = CATEGORIES) -> np.ndarray:
    """Nodes x categories: walking minutes from each street node to the nearest resource of
    each category (one search per category; ``inf`` where the category has no resource)."""
    n = len(network.nodes)
    if not resources:
        return np.full((n, len(categories)), np.inf)
    graph = _extended(network, [r.location for r in resources])
    kinds = np.array([r.category.value for r in resources], dtype=object)
    layer = np.full((n, len(categories)), np.inf)
    for c, category in enumerate(categories):
        sources = np.flatnonzero(kinds == category.value)
        if len(sources):
            dist = dijkstra(graph, directed=False, indices=n + sources, min_only=True)
            layer[:, c] = dist[:n] / settings.walk_speed_m_per_min
    return layer


def kth_nearest_minutes(network: WalkingNetwork, places: Sequence[Location], k: int,
                        settings: Settings) -> np.ndarray:
    """Walking minutes from every street node to its ``k``-th nearest of ``places`` (so ``k``
    of them are within that time); ``inf`` when there are fewer than ``k``."""
    n = len(network.nodes)
    if k < 1:
        raise ValueError("k must be at least 1")
    if len(places) < k:
        return np.full(n, np.inf)
    graph = _extended(network, places)
    chunk = max(k, CHUNK_CELLS // max(n + len(places), 1))
    best = np.full((0, n), np.inf)
    for first in range(0, len(places), chunk):
        sources = n + np.arange(first, min(first + chunk, len(places)))
        dist = dijkstra(graph, directed=False, indices=sources)[:, :n]
        stacked = np.vstack([best, dist])
        best = np.partition(stacked, k - 1, axis=0)[:k] if len(stacked) > k else stacked
    return np.asarray(np.sort(best, axis=0)[k - 1]) / settings.walk_speed_m_per_min


def skill_layer(network: WalkingNetwork, volunteers: Sequence[Volunteer], k: int,
                settings: Settings) -> dict[str, np.ndarray]:
    """For each skill the volunteers have: minutes from each node to its k-th nearest
    volunteer with that skill."""
    skills = sorted({s for v in volunteers for s in v.skills})
    return {s: kth_nearest_minutes(network, [v.location for v in volunteers if s in v.skills],
                                   k, settings) for s in skills}


@dataclass(frozen=True)
class BlindSpot:
    """A household (need) farther than the circle from every resource of a category."""

    need_id: str
    category: Category
    minutes: float  # ``inf`` when the category has no resource at all


def blind_spots(network: WalkingNetwork, layer: np.ndarray, needs: Sequence[Need],
                settings: Settings, categories: Sequence[Category] = CATEGORIES
                ) -> list[BlindSpot]:
    """The needs beyond the circle of each category (their walk to their street node
    included), by category then need id."""
    if not needs:
        return []
    nodes, access = network.snap([x.location for x in needs])
    minutes = layer[nodes] + (access / settings.walk_speed_m_per_min)[:, None]
    out = [BlindSpot(needs[i].id, categories[c], float(minutes[i, c]))
           for c in range(len(categories)) for i in range(len(needs))
           if minutes[i, c] > settings.circle_min]
    return sorted(out, key=lambda b: (CATEGORIES.index(b.category), b.need_id))
