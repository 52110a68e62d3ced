"""Walking times on the real street network, or geodesic x detour factor without one.

The walking graph is an undirected networkx graph whose edges carry ``length`` in metres. It is
built from an OSM extract (``.osm`` XML or ``.osm.pbf``, read with pyosmium) or from an osmnx
GraphML file. Shortest paths run in C (scipy.sparse.csgraph Dijkstra with a cutoff), one call for
all sources, never a Python loop per pair.

A place's walking distance to another is: the geodesic from the place to its nearest street node,
plus the network distance between the two nodes, plus the second place's distance to its node.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pyproj
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from matcher.domain import Location, Problem
from matcher.errors import NetworkError
from matcher.settings import Settings

log = logging.getLogger(__name__)

GEOD = pyproj.Geod(ellps="WGS84")

# Highway classes a pedestrian cannot use (OSM wiki "Key:highway"); trunks stay walkable because
# Chinese trunk roads usually have sidewalks.
NON_WALKABLE = frozenset({
    "motorway", "motorway_link", "cycleway", "construction", "proposed", "planned",
    "bus_guideway", "busway", "raceway", "escape", "abandoned", "disused", "razed", "no",
})
_FOOT_OK = frozenset({"yes", "designated", "permissive"})


def is_walkable(tags: Mapping[str, object]) -> bool:
    """Whether an OSM way (or osmnx edge) with these tags can be walked.

    A list-valued ``highway`` (osmnx merges edges) is walkable when any class in it is.
    """
    highway = tags.get("highway")
    if not highway:
        return False
    classes = highway if isinstance(highway, list) else [highway]
    if all(str(c) in NON_WALKABLE for c in classes):
        return False
    foot = str(tags.get("foot", ""))
    if foot == "no":
        return False
    access = str(tags.get("access", ""))
    return not (access in {"no", "private"} and foot not in _FOOT_OK)


def geodesic_m(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray,
               lon2: np.ndarray) -> np.ndarray:
    """Vectorised WGS84 geodesic distance in metres (Karney's algorithm, as geopy uses)."""
    _, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=np.float64)


def street_name(value: object) -> str:
    """The street name of an edge: osmnx gives a list where simplification merged ways of
    different names (the first is kept, as a walker reads the first sign), NaN or nothing where
    the way has none ("")."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _read_osm(path: Path) -> nx.Graph:
    """Walkable ways of an OSM XML or PBF file as an undirected graph (C-speed parsing)."""
    graph = nx.Graph()
    coords: dict[int, tuple[float, float]] = {}
    edges: list[tuple[int, int]] = []
    names: list[str] = []
    try:
        entities = osmium.osm.NODE | osmium.osm.WAY
        processor = osmium.FileProcessor(str(path), entities).with_locations()
        for way in processor:
            if not isinstance(way, osmium.osm.Way) or not is_walkable(dict(way.tags)):
                continue
            previous: int | None = None
            street = str(way.tags.get("name", ""))
            for ref in way.nodes:
                if not ref.location.valid():
                    previous = None  # clipped extracts lose nodes: split the way there
                    continue
                coords[ref.ref] = (ref.location.lat, ref.location.lon)
                if previous is not None and previous != ref.ref:
                    edges.append((previous, ref.ref))
                    names.append(street)
                previous = ref.ref
    except RuntimeError as exc:
        raise NetworkError(f"{path.name}: not a readable OSM file ({exc})") from exc
    if not edges:
        raise NetworkError(f"{path.name}: no walkable streets found")
    u = np.array([e[0] for e in edges])
    v = np.array([e[1] for e in edges])
    lat_u = np.array([coords[n][0] for n in u])
    lon_u = np.array([coords[n][1] for n in u])
    lat_v = np.array([coords[n][0] for n in v])
    lon_v = np.array([coords[n][1] for n in v])
    lengths = geodesic_m(lat_u, lon_u, lat_v, lon_v)
    for node, (lat, lon) in coords.items():
        graph.add_node(node, y=lat, x=lon)
    for a, b, length, street in zip(u.tolist(), v.tolist(), lengths.tolist(), names,
                                    strict=True):
        if not graph.has_edge(a, b) or graph.edges[a, b]["length"] > length:
            graph.add_edge(a, b, length=length, name=street)
    return graph


def _read_graphml(path: Path) -> nx.Graph:
    """An osmnx GraphML graph, unwalkable edges dropped, as an undirected simple graph."""
    import osmnx  # imported lazily: it pulls in geopandas, which costs a second at start-up

    try:
        multi = osmnx.load_graphml(path)
    except Exception as exc:  # osmnx raises several types for a broken file
        raise NetworkError(f"{path.name}: not a readable osmnx GraphML file ({exc})") from exc
    graph = nx.Graph()
    for node, data in multi.nodes(data=True):
        graph.add_node(node, y=float(data["y"]), x=float(data["x"]))
    for a, b, data in multi.edges(data=True):
        if not is_walkable(data):
            continue
        length = float(data["length"])
        if a != b and (not graph.has_edge(a, b) or graph.edges[a, b]["length"] > length):
            # The street's own bends, for the map (osmnx keeps them on simplified edges).
            shape = data.get("geometry")
            graph.add_edge(a, b, length=length, name=street_name(data.get("name")),
                           shape=tuple(shape.coords) if shape is not None else None)
    return graph


def _local_xy(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    """Equirectangular metres around (lat0, lon0): good enough to find the nearest node."""
    x = (lon - lon0) * math.cos(math.radians(lat0)) * 111_320.0
    y = (lat - lat0) * 110_540.0
    return np.column_stack([x, y])


class WalkingNetwork:
    """A walking graph ready for snapping and many-to-many shortest paths.

    Only the largest connected component is kept, so every two snapped places are connected.

    Parameters
    ----------
    graph
        Undirected graph; nodes carry ``x`` (lon) and ``y`` (lat), edges ``length`` in metres
        and optionally ``shape``, the street's ``(lon, lat)`` points (drawn by the map).
    name
        Where it came from, for messages and attribution.
    """

    def __init__(self, graph: nx.Graph, name: str = "network") -> None:
        if graph.number_of_edges() == 0:
            raise NetworkError(f"{name}: the street network has no walkable edges")
        for a, b, data in graph.edges(data=True):
            length = data.get("length")
            if length is None or not (float(length) >= 0):
                raise NetworkError(f"{name}: edge {a}-{b} has no valid 'length' in metres")
        largest = max(nx.connected_components(graph), key=len)
        self.graph: nx.Graph = graph.subgraph(largest).copy()
        self.name = name
        self.nodes: list[Hashable] = list(self.graph.nodes)
        self.lat = np.array([self.graph.nodes[n]["y"] for n in self.nodes], dtype=np.float64)
        self.lon = np.array([self.graph.nodes[n]["x"] for n in self.nodes], dtype=np.float64)
        self._lat0, self._lon0 = float(self.lat.mean()), float(self.lon.mean())
        self._tree = cKDTree(_local_xy(self.lat, self.lon, self._lat0, self._lon0))
        index = {n: i for i, n in enumerate(self.nodes)}
        rows, cols, lengths = [], [], []
        for a, b, data in self.graph.edges(data=True):
            rows.append(index[a])
            cols.append(index[b])
            lengths.append(max(float(data["length"]), 1e-3))  # csgraph drops explicit zeros
        n = len(self.nodes)
        self.csr = csr_matrix((lengths, (rows, cols)), shape=(n, n))

    @classmethod
    def from_file(cls, path: Path | str) -> WalkingNetwork:
        """Load ``.osm``, ``.osm.pbf``/``.pbf`` or osmnx ``.graphml``.

        Raises
        ------
        NetworkError
            When the file is missing, unreadable or has no walkable streets.
        """
        path = Path(path)
        if not path.exists():
            raise NetworkError(f"{path}: no such network file")
        name = path.name.lower()
        if name.endswith(".graphml"):
            graph = _read_graphml(path)
        elif name.endswith((".osm", ".pbf", ".osm.xml", ".xml")):
            graph = _read_osm(path)
        else:
            raise NetworkError(f"{path.name}: use an .osm, .osm.pbf or osmnx .graphml file")
        return cls(graph, path.name)

    @property
    def total_length_km(self) -> float:
        return float(self.csr.sum()) / 1000.0

    def snap(self, locations: Sequence[Location]) -> tuple[np.ndarray, np.ndarray]:
        """Nearest street node of each location and the geodesic metres to reach it.

        Returns
        -------
        (node positions into :attr:`nodes`, access distances in metres)
        """
        lat = np.array([p.lat for p in locations], dtype=np.float64)
        lon = np.array([p.lon for p in locations], dtype=np.float64)
        _, nearest = self._tree.query(_local_xy(lat, lon, self._lat0, self._lon0))
        nearest = np.asarray(nearest, dtype=np.int64)
        access = geodesic_m(lat, lon, self.lat[nearest], self.lon[nearest])
        return nearest, access

    def node_distances_m(self, sources: np.ndarray, cutoff_m: float) -> np.ndarray:
        """Network metres from each source node to every node (``inf`` beyond ``cutoff_m``).

        Runs in chunks so memory stays near 200 MB however many sources there are.
        """
        n = len(self.nodes)
        chunk = max(1, 25_000_000 // max(n, 1))
        parts = [
            dijkstra(self.csr, directed=False, indices=sources[i:i + chunk], limit=cutoff_m)
            for i in range(0, len(sources), chunk)
        ]
        return np.vstack(parts) if parts else np.zeros((0, n))

    def reachable_nodes(self, location: Location, cutoff_m: float) -> np.ndarray:
        """Positions of the nodes within ``cutoff_m`` walking metres of ``location``."""
        return self.reachable_from([location], cutoff_m)[0]

    def reachable_from(self, locations: Sequence[Location], cutoff_m: float
                       ) -> list[np.ndarray]:
        """:meth:`reachable_nodes` of each location, with one shortest-path run for all (the
        walk to the nearest street node counts against the cutoff)."""
        if not locations:
            return []
        nodes, access = self.snap(locations)
        dist = self.node_distances_m(nodes, cutoff_m)
        return [np.flatnonzero(dist[k] <= max(cutoff_m - float(access[k]), 0.0))
                for k in range(len(locations))]


# Up to this many places the table is also kept dense, for the fastest lookups in the solver's
# inner loops; beyond it only the pairs within the cutoff are stored.
DENSE_MAX_PLACES = 6_000


class TravelTimes:
    """Walking minutes between the places of a problem that lie within the cutoff.

    Places are keyed ``("V", volunteer_id)``, ``("N", need_id)`` and ``("M", merchant_id)``. The
    cutoff is twice the circle: two places a volunteer could visit in one day are each within one
    circle of home, so never farther apart than that (triangle inequality). Only the pairs
    within it are stored (found by a KD-tree or a shortest-path search with a cutoff, never a
    table of all pairs), as a compressed sparse row table; every other pair is ``inf``.

    Parameters
    ----------
    keys
        The places, in the table's order.
    pairs
        ``(i, j, minutes)`` arrays of the stored ordered pairs (both directions, the diagonal
        included).
    method, snap_m
        How the minutes were computed; each place's metres to its street node.
    """

    def __init__(self, keys: list[tuple[str, str]], pairs: tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray],
                 method: str, snap_m: np.ndarray) -> None:
        self.keys = keys
        self.method = method
        self.snap_m = snap_m
        self.index = {k: i for i, k in enumerate(keys)}
        n = len(keys)
        rows, cols, minutes = pairs
        order = np.lexsort((cols, rows))
        self.indices = np.asarray(cols, dtype=np.int64)[order]
        self.values = np.asarray(minutes, dtype=np.float64)[order]
        counts = np.bincount(np.asarray(rows, dtype=np.int64), minlength=n)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._dense: np.ndarray | None = None
        self._rows: dict[int, dict[int, float]] = {}
        if n <= DENSE_MAX_PLACES:
            self._dense = np.full((n, n), np.inf)
            row_of = np.repeat(np.arange(n), counts)
            self._dense[row_of, self.indices] = self.values

    @property
    def pairs(self) -> int:
        """How many ordered pairs are stored."""
        return len(self.values)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The places within the cutoff of place ``i`` (sorted positions) and their minutes."""
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.indices[lo:hi], self.values[lo:hi]

    def at(self, i: int, j: int) -> float:
        """Walking minutes from place ``i`` to place ``j`` (positions); ``inf`` beyond the
        cutoff."""
        if self._dense is not None:
            return float(self._dense[i, j])
        row = self._rows.get(i)
        if row is None:
            cols, minutes = self.row(i)
            row = self._rows[i] = dict(zip(cols.tolist(), minutes.tolist(), strict=True))
        return row.get(j, math.inf)

    def between(self, a: tuple[str, str], b: tuple[str, str]) -> float:
        """Walking minutes from place ``a`` to place ``b``; ``inf`` when beyond the cutoff."""
        return self.at(self.index[a], self.index[b])

    @classmethod
    def build(cls, problem: Problem, settings: Settings,
              network: WalkingNetwork | None = None) -> TravelTimes:
        """Compute the place-to-place walking minutes the solver needs.

        Parameters
        ----------
        problem
            The community; its volunteers' homes, needs and merchants are the places.
        settings
            Walking speed (metres per minute), detour factor and circle radius (minutes).
        network
            The street network; without one, geodesic metres x ``detour_factor`` are used.
        """
        keys: list[tuple[str, str]] = (
            [("V", v.id) for v in problem.volunteers]
            + [("N", n.id) for n in problem.needs]
            + [("M", m.id) for m in problem.merchants]
        )
        locations = (
            [v.location for v in problem.volunteers]
            + [n.location for n in problem.needs]
            + [m.location for m in problem.merchants]
        )
        cutoff_m = 2 * settings.circle_min * settings.walk_speed_m_per_min
        if network is None:
            i, j, metres = _geodesic_pairs(locations, cutoff_m, settings.detour_factor)
            snap = np.zeros(len(keys))
            method = f"geodesic x {settings.detour_factor:g}"
        else:
            (i, j, metres), snap = _network_pairs(network, locations, cutoff_m,
                                                  settings.snap_warn_m)
            method = f"street network {network.name}"
        return cls(keys, (i, j, metres / settings.walk_speed_m_per_min), method, snap)


def _with_diagonal(n: int, i: np.ndarray, j: np.ndarray, metres: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both directions of each unordered pair, plus every place to itself at zero."""
    own = np.arange(n, dtype=np.int64)
    return (np.concatenate([i, j, own]), np.concatenate([j, i, own]),
            np.concatenate([metres, metres, np.zeros(n)]))


def _geodesic_pairs(locations: Sequence[Location], cutoff_m: float, detour: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geodesic x detour metres for the pairs within the cutoff, found with a KD-tree first."""
    n = len(locations)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return empty, empty, np.zeros(0)
    lat = np.array([p.lat for p in locations])
    lon = np.array([p.lon for p in locations])
    tree = cKDTree(_local_xy(lat, lon, float(lat.mean()), float(lon.mean())))
    # 2% slack: the equirectangular pre-filter must never drop a pair the geodesic keeps.
    found = tree.query_pairs(cutoff_m / detour * 1.02, output_type="ndarray")
    i, j = (found[:, 0], found[:, 1]) if len(found) else (empty, empty)
    metres = geodesic_m(lat[i], lon[i], lat[j], lon[j]) * detour if len(i) else np.zeros(0)
    keep = metres <= cutoff_m
    return _with_diagonal(n, i[keep].astype(np.int64), j[keep].astype(np.int64), metres[keep])


def walk_minutes(origins: Sequence[Location], destinations: Sequence[Location],
                 settings: Settings, network: WalkingNetwork | None = None,
                 cutoff_min: float | None = None) -> np.ndarray:
    """Walking minutes from each origin to each destination (``inf`` beyond ``cutoff_min``).

    On the street network when one is given (snapped ends, access legs included), else geodesic
    x ``detour_factor``. The cutoff defaults to one service circle.
    """
    speed = settings.walk_speed_m_per_min
    cutoff_m = (settings.circle_min if cutoff_min is None else cutoff_min) * speed
    out = np.full((len(origins), len(destinations)), np.inf)
    if not len(origins) or not len(destinations):
        return out
    if network is None:
        la1 = np.array([p.lat for p in origins])[:, None]
        lo1 = np.array([p.lon for p in origins])[:, None]
        la2 = np.array([p.lat for p in destinations])[None, :]
        lo2 = np.array([p.lon for p in destinations])[None, :]
        shape = (len(origins), len(destinations))
        metres = geodesic_m(np.broadcast_to(la1, shape).ravel(),
                            np.broadcast_to(lo1, shape).ravel(),
                            np.broadcast_to(la2, shape).ravel(),
                            np.broadcast_to(lo2, shape).ravel()).reshape(shape)
        metres = metres * settings.detour_factor
    else:
        o_nodes, o_access = network.snap(origins)
        d_nodes, d_access = network.snap(destinations)
        unique, inverse = np.unique(o_nodes, return_inverse=True)
        between = network.node_distances_m(unique, cutoff_m)[:, d_nodes][inverse]
        metres = o_access[:, None] + between + d_access[None, :]
    keep = metres <= cutoff_m
    out[keep] = metres[keep] / speed
    return out


def _network_pairs(network: WalkingNetwork, locations: Sequence[Location], cutoff_m: float,
                   warn_m: float) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Network metres (access legs included) for the pairs of places within the cutoff, with
    one cutoff Dijkstra per chunk of distinct street nodes: memory stays bounded by the chunk,
    never a table of all places by all places."""
    n = len(locations)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return (empty, empty, np.zeros(0)), np.zeros(0)
    nodes, access = network.snap(locations)
    far = np.flatnonzero(access > warn_m)
    if len(far):
        log.warning("%d place(s) lie more than %.0f m from any street of %s; their walking "
                    "times include that straight-line distance", len(far), warn_m, network.name)
    unique, inverse = np.unique(nodes, return_inverse=True)
    by_node = np.argsort(inverse, kind="stable")  # places grouped by their street node
    starts = np.searchsorted(inverse[by_node], np.arange(len(unique) + 1))
    chunk = max(1, 25_000_000 // max(len(network.nodes), n))
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    dist: list[np.ndarray] = []
    for first in range(0, len(unique), chunk):
        last = min(first + chunk, len(unique))
        block = dijkstra(network.csr, directed=False, indices=unique[first:last], limit=cutoff_m)
        sources = by_node[starts[first]:starts[last]]  # the places on this chunk's nodes
        total = (access[sources][:, None] + block[np.ix_(inverse[sources] - first, nodes)]
                 + access[None, :])  # (places of the chunk) x (all places), bounded by chunk
        a, b = np.nonzero(total <= cutoff_m)
        rows.append(sources[a])
        cols.append(b)
        dist.append(total[a, b])
    i = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    j = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    metres_all = np.concatenate(dist) if dist else np.zeros(0)
    off = i != j  # every place is at zero from itself, whatever its access leg
    own = np.arange(n, dtype=np.int64)
    return ((np.concatenate([i[off], own]), np.concatenate([j[off], own]),
             np.concatenate([metres_all[off], np.zeros(n)])), access)
