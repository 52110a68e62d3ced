"""Weekly-schedule benchmark: prints figures, asserts nothing about time.

    python benchmarks/bench_schedule.py [community|street|all] [--time-limit S] [--wall-clock]

Community scale: 300 volunteers, 400 needs, 20 merchants (~900 occurrences) around 车公庙.
Street scale: 1,500 volunteers, 2,000 needs, 80 merchants (~4,500 occurrences) over the whole
western-Futian extract. Both on the shipped OSM walking network; the greedy baseline beside.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from matcher.circles import ServiceCircle, build_candidates
from matcher.domain import Location, Priority, Week
from matcher.generate import generate_community
from matcher.greedy import greedy_plan
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.solver import solve
from matcher.travel import TravelTimes, WalkingNetwork

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "data" / "shenzhen-futian" / "shenzhen_futian_walk.graphml"
SCALES = {
    "community": dict(n_volunteers=300, n_needs=400, n_merchants=20, radius_m=1500,
                      centre=Location(22.53407, 114.01766), limit=60),
    "street": dict(n_volunteers=1500, n_needs=2000, n_merchants=80, radius_m=2300,
                   centre=Location(22.5340, 114.0185), limit=300),
}


def run(name: str, time_limit: float | None, seed: int, workers: int = 0,
        wall_clock: bool = False) -> None:
    spec = dict(SCALES[name])
    limit = time_limit or float(spec.pop("limit"))
    spec.pop("limit", None)
    network = WalkingNetwork.from_file(NETWORK)
    problem = generate_community(network=network, week=Week(2026, 48), seed=seed, **spec)
    began = time.monotonic()
    travel = TravelTimes.build(problem, Settings(), network)
    travel_s = time.monotonic() - began
    cand = build_candidates(problem, travel, ServiceCircle())
    began = time.monotonic()
    greedy = greedy_plan(cand)
    greedy_s = time.monotonic() - began
    began = time.monotonic()
    params = SolveParams(time_limit_s=limit, workers=workers, wall_clock=wall_clock)
    schedule = solve(problem, params, travel=travel,
                     progress=lambda msg: print(f"  {time.monotonic() - began:6.1f} s  {msg}",
                                                flush=True))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n== {name} scale: {len(problem.volunteers)} volunteers, {len(problem.needs)} needs, "
          f"{len(problem.merchants)} merchants, {len(problem.occurrences)} occurrences, "
          f"{len(cand.options)} options, seed {seed}, limit {limit:g} "
          f"({params.limit_kind}; {schedule.deterministic_time:.1f} deterministic units spent)")
    print(f"travel times {travel_s:.1f} s; greedy {greedy_s:.1f} s; solve "
          f"{schedule.solve_seconds:.1f} s; status {schedule.status.value}; "
          f"peak memory {rss_mib:.0f} MiB")
    print(f"{'level':8}{'occ':>6}{'greedy':>8}{'cp-sat':>8}{'bound':>7}{'gap':>7}"
          f"{'proven':>8}{'stage s':>9}")
    for p in Priority:
        level = schedule.levels[p]
        g = sum(1 for o in greedy.covered if problem.occurrences[o].need.priority is p)
        gap = (level.bound - level.covered) / level.bound * 100 if level.bound else 0.0
        print(f"{p.value:8}{level.occurrences:>6}{g:>8}{level.covered:>8}{level.bound:>7}"
              f"{gap:>6.1f}%{'yes' if level.optimal else 'no':>8}"
              f"{float(schedule.stats.get(f'{p.value}_seconds', 0)):>9.1f}")
    greedy_walk = sum(min(cand.options[i].walks) for _, _, opts in greedy.covered.values()
                      for i in opts)
    print(f"walking: cp-sat {schedule.total_walk_min:.0f} min, greedy {greedy_walk:.0f} min; "
          f"components {schedule.stats['components']}")
    print("solver statistics: " + ", ".join(f"{k} {v}" for k, v in sorted(schedule.stats.items())))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scale", nargs="?", default="all", choices=["community", "street", "all"])
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=0,
                        help="CP-SAT search workers (0: the solver's default)")
    parser.add_argument("--wall-clock", action="store_true",
                        help="count the limit in seconds, not CP-SAT's deterministic time")
    args = parser.parse_args()
    for name in (["community", "street"] if args.scale == "all" else [args.scale]):
        run(name, args.time_limit, args.seed, args.workers, args.wall_clock)


if __name__ == "__main__":
    main()
