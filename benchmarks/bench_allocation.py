"""Charity-allocation benchmark: prints figures, asserts nothing about time.

    python benchmarks/bench_allocation.py [--requests 5000] [--donations 1000] [--categories 30]

A month of requests and donations spread over western Futian, walking on the shipped OSM network.
The bound per priority is recomputed here from the raw data (per category, priorities in order
take min(stock left, requested)), so "gap" checks the solver rather than trusting it.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from matcher.allocation import allocate
from matcher.charity import CharityProblem
from matcher.domain import Location, Priority, Week
from matcher.generate import generate_charity
from matcher.travel import WalkingNetwork

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "data" / "shenzhen-futian" / "shenzhen_futian_walk.graphml"


def independent_bound(problem: CharityProblem, p: Priority) -> int:
    monday = problem.week.monday
    total = 0
    for cat in problem.categories:
        stock = sum(d.quantity for d in problem.donations
                    if d.category == cat and (d.expires is None or d.expires >= monday))
        for q in Priority:
            take = min(stock, sum(r.quantity for r in problem.requests
                                  if r.category == cat and r.priority is q))
            stock -= take
            total += take if q is p else 0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--donations", type=int, default=1000)
    parser.add_argument("--categories", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    network = WalkingNetwork.from_file(NETWORK)
    problem = generate_charity(args.requests, args.donations, args.categories, network=network,
                               centre=Location(22.5340, 114.0185), radius_m=2300,
                               week=Week(2026, 48), seed=args.seed)
    for label, net in (("street network", network), ("geodesic x 1.3", None)):
        began = time.monotonic()
        result = allocate(problem, network=net)
        seconds = time.monotonic() - began
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n== {len(problem.requests)} requests, {len(problem.donations)} donations, "
              f"{len(problem.categories)} categories; {label}")
        print(f"solve {seconds:.2f} s; status {result.status.value}; peak memory {rss:.0f} MiB")
        print(f"{'level':8}{'requests':>9}{'asked':>8}{'given':>8}{'bound':>8}{'gap':>6}"
              f"{'min fill':>9}")
        for p in Priority:
            lv = result.levels[p]
            bound = independent_bound(problem, p)
            gap = (bound - lv.allocated) / bound * 100 if bound else 0.0
            print(f"{p.value:8}{lv.requests:>9}{lv.requested:>8}{lv.allocated:>8}{bound:>8}"
                  f"{gap:>5.1f}%{lv.min_fill_ratio:>9.2f}")
        summary = result.summary()
        print(f"lines {summary['lines']}, deliveries {summary['deliveries']} "
              f"({summary['units_delivered']} units), pickup walking {summary['walk_min']} min, "
              f"leftover {summary['leftover_units']} units")


if __name__ == "__main__":
    main()
