"""Residents' benchmark: the nearby lookup and the accessibility layer on the shipped Futian
network; prints figures, asserts nothing.

    python benchmarks/bench_nearby.py [--lookups 2000] [--resources 400] [--osm FILE]

Resources are the sample community's partner merchants, the public places of ``--osm`` when
given, and ``--resources`` synthetic places of every category spread over the network (the
shipped GraphML holds streets only, so the lookup would otherwise have few places to find). Each
lookup is one ``NearbyIndex.lookup`` from a random street point with routes and Chinese
directions for everything within the circle (what ``GET /v1/nearby`` computes, without HTTP).
The accessibility figure is every street node x every category, then k=2 nearest volunteers of
each skill. Run it only on a quiet machine (load below the core count).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from matcher.accessibility import category_layer, skill_layer
from matcher.domain import Location, Week
from matcher.nearby import NearbyIndex
from matcher.resources import CATEGORIES, Resource, merchant_resources, read_osm_resources
from matcher.settings import Settings
from matcher.spreadsheets import read_community
from matcher.travel import WalkingNetwork

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "data" / "shenzhen-futian" / "shenzhen_futian_walk.graphml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--resources", type=int, default=400)
    parser.add_argument("--osm", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    network = WalkingNetwork.from_file(NETWORK)
    settings = Settings()
    problem = read_community(ROOT / "data" / "sample", Week(2026, 48)).problem
    rng = np.random.default_rng(args.seed)
    resources: list[Resource] = merchant_resources(problem.merchants)
    if args.osm is not None:
        resources += read_osm_resources(args.osm)
    picks = rng.integers(0, len(network.nodes), size=args.resources)
    resources += [Resource(f"synthetic:{k}", CATEGORIES[k % len(CATEGORIES)], f"点{k}",
                           Location(float(network.lat[p]) + 1e-4, float(network.lon[p])))
                  for k, p in enumerate(picks.tolist())]
    began = time.perf_counter()
    index = NearbyIndex(network, resources, settings)
    print(f"{len(network.nodes)} street nodes, {len(resources)} resources, index built in "
          f"{(time.perf_counter() - began) * 1000:.1f} ms")
    starts = rng.integers(0, len(network.nodes), size=args.lookups)
    times, found = [], 0
    for p in starts.tolist():
        here = Location(float(network.lat[p]) - 2e-4, float(network.lon[p]) + 2e-4)
        t0 = time.perf_counter()
        answer = index.lookup(here, None, 20)
        times.append(time.perf_counter() - t0)
        found += len(answer)
    ms = np.array(times) * 1000
    print(f"lookup (20 nearest, routes and directions): p50 {np.percentile(ms, 50):.2f} ms, "
          f"p95 {np.percentile(ms, 95):.2f} ms, max {ms.max():.2f} ms over {args.lookups}; "
          f"{found / args.lookups:.1f} places per answer")
    for _ in range(2):  # the first run warms caches
        t0 = time.perf_counter()
        category_layer(network, resources, settings)
        layer_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    skills = skill_layer(network, problem.volunteers, 2, settings)
    skill_s = time.perf_counter() - t0
    print(f"accessibility: {len(network.nodes)} nodes x {len(CATEGORIES)} categories in "
          f"{layer_s:.3f} s; k=2 nearest volunteers for {len(skills)} skills in {skill_s:.3f} s")


if __name__ == "__main__":
    main()
