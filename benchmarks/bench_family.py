"""The benchmark family: many communities, not two seeds. Prints figures, asserts no times.

    python benchmarks/bench_family.py [--seeds 2] [--first-seed 1] [--streets 4]
        [--first-street 7] [--time-limit S] [--street-time-limit S] [--wall-clock]
        [--regimes a,b,...] [--quick]

Communities: every regime of :data:`matcher.generate.REGIMES` (hours caps tight or loose, rare
skills, wide or narrow windows, more double staffing, scarce merchant capacity, dense and sparse
streets) times ``--seeds`` seeds, at the community benchmark's size (300 volunteers, 400 needs,
20 merchants on the western-Futian network). Street scale: ``--streets`` weeks of 1,500
volunteers, 2,000 needs and 80 merchants, seeds 7, 8, ... Every plan is checked by the
independent validator (``tests/validator.py``, its own Dijkstra on the street graph), and the
greedy baseline (``matcher/greedy.py``) is solved beside it.

Per instance and level: the value, the bound, whether it is proven, the gap, the time to proof
(when the solve's progress first showed the week's value at its bound; wall-clock seconds and
the deterministic time spent) and greedy's value. Then, per level: the share proven, the gap
distribution, the times to proof, and the gain over greedy; per regime, the levels unproven.

``--quick`` is a tiny run of the same code (every regime on a small community without the
street network, one small "street" week sent down the street-scale path by a pair budget of 2,
short limits): it checks the family runs end to end, not how it performs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.validator, when run as a script

from matcher.circles import ServiceCircle, build_candidates  # noqa: E402
from matcher.domain import Location, Priority, Problem, Schedule, Week  # noqa: E402
from matcher.generate import REGIMES, Regime, generate_community  # noqa: E402
from matcher.greedy import greedy_plan  # noqa: E402
from matcher.params import SolveParams  # noqa: E402
from matcher.progress import SolveProgress  # noqa: E402
from matcher.settings import Settings  # noqa: E402
from matcher.solver import solve  # noqa: E402
from matcher.timeline import covered_count  # noqa: E402
from matcher.travel import TravelTimes, WalkingNetwork  # noqa: E402
from tests.validator import Walk, geodesic_walk, network_walk, validate  # noqa: E402

NETWORK = ROOT / "data" / "shenzhen-futian" / "shenzhen_futian_walk.graphml"
WEEK = Week(2026, 48)
COMMUNITY = dict(n_volunteers=300, n_needs=400, n_merchants=20, radius_m=1500,
                 centre=Location(22.53407, 114.01766))
STREET = dict(n_volunteers=1500, n_needs=2000, n_merchants=80, radius_m=2300,
              centre=Location(22.5340, 114.0185))
QUICK_COMMUNITY = dict(n_volunteers=25, n_needs=35, n_merchants=3, radius_m=700,
                       centre=Location(22.53407, 114.01766))
QUICK_STREET = dict(n_volunteers=40, n_needs=60, n_merchants=4, radius_m=900,
                    centre=Location(22.5340, 114.0185))


@dataclass(frozen=True)
class Instance:
    """One week to solve: its name, how to make it, and how to solve it."""

    name: str
    regime: Regime
    scale: str  # "community" or "street"
    seed: int
    size: dict[str, object]
    params: SolveParams


@dataclass
class LevelFigures:
    occurrences: int
    value: int
    bound: int
    proven: bool
    greedy: int
    proof_s: float | None  # wall-clock seconds into the solve when the bound was met
    proof_work: float | None  # the budget's share then, times the budget (solve clock units)

    @property
    def gap(self) -> float:
        return (self.bound - self.value) / self.bound * 100 if self.bound else 0.0


@dataclass
class Result:
    instance: Instance
    occurrences: int
    seconds: float
    errors: list[str]
    levels: dict[Priority, LevelFigures] = field(default_factory=dict)


def instances(seeds: int, streets: int, regimes: list[Regime], quick: bool,
              limit: float | None, street_limit: float | None,
              wall_clock: bool, first_seed: int = 1, first_street: int = 7) -> list[Instance]:
    out = []
    community_params = SolveParams(time_limit_s=limit or (2 if quick else 60),
                                   wall_clock=wall_clock)
    for regime in regimes:
        for seed in range(first_seed, first_seed + seeds):
            out.append(Instance(f"{regime.name}/{seed}", regime, "community", seed,
                                QUICK_COMMUNITY if quick else COMMUNITY, community_params))
    street_params = SolveParams(time_limit_s=street_limit or (3 if quick else 300),
                                wall_clock=wall_clock,
                                # a small week down the street-scale path, as in the tests
                                pair_budget=2 if quick else SolveParams().pair_budget)
    for k in range(streets):
        out.append(Instance(f"street/{first_street + k}", REGIMES["default"], "street",
                            first_street + k,
                            QUICK_STREET if quick else STREET, street_params))
    return out


def run(instance: Instance, network: WalkingNetwork | None, walk: Walk) -> Result:
    problem: Problem = generate_community(network=network, week=WEEK, seed=instance.seed,
                                          regime=instance.regime,
                                          **instance.size)  # type: ignore[arg-type]
    travel = TravelTimes.build(problem, Settings(), network)
    cand = build_candidates(problem, travel, ServiceCircle())
    greedy = greedy_plan(cand)
    proof: dict[Priority, tuple[float, float]] = {}
    began = time.monotonic()
    budget = instance.params.budget

    def watch(event: SolveProgress) -> None:
        if event.stage in {p.value for p in Priority} and event.bound is not None \
                and event.covered == event.bound:
            proof.setdefault(Priority(event.stage),
                             (time.monotonic() - began, event.spent * budget))

    schedule: Schedule = solve(problem, instance.params, travel=travel, on_progress=watch)
    result = Result(instance, len(problem.occurrences), time.monotonic() - began,
                    validate(problem, schedule.assignments, walk))
    for p in Priority:
        level = schedule.levels[p]
        seen = proof.get(p) if level.optimal else None
        result.levels[p] = LevelFigures(
            level.occurrences, level.covered, level.bound, level.optimal,
            covered_count(cand, greedy, p), seen[0] if seen else None,
            seen[1] if seen else None)
    return result


def _fmt_time(figures: LevelFigures) -> str:
    if figures.proof_s is None:
        return "-"
    return f"{figures.proof_s:.1f}s/{figures.proof_work:.2f}"


def print_instance(result: Result) -> None:
    cells = []
    for p, f in result.levels.items():
        proven = "proven" if f.proven else f"gap {f.gap:.1f}%"
        cells.append(f"{p.value} {f.value}/{f.bound} {proven} t {_fmt_time(f)} "
                     f"greedy {f.greedy}")
    check = "valid" if not result.errors else f"{len(result.errors)} ERRORS"
    print(f"{result.instance.name:22} {result.occurrences:5} occ {result.seconds:6.0f}s "
          f"{check:8} | " + " | ".join(cells), flush=True)
    for error in result.errors[:5]:
        print(f"    {error}")


def _quantiles(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    q = statistics.quantiles(values, n=4, method="inclusive")
    return f"min {min(values):.1f} / q1 {q[0]:.1f} / median {q[1]:.1f} / q3 {q[2]:.1f} / " \
           f"max {max(values):.1f}"


def print_summary(results: list[Result]) -> None:
    for scale in ("community", "street"):
        mine = [r for r in results if r.instance.scale == scale]
        if not mine:
            continue
        print(f"\n== {scale}: {len(mine)} instances, "
              f"{sum(1 for r in mine if not r.errors)} valid plans")
        print(f"{'level':8}{'proven':>10}  gap % (unproven and proven)")
        for p in Priority:
            figures = [r.levels[p] for r in mine]
            proven = sum(1 for f in figures if f.proven)
            gaps = _quantiles([f.gap for f in figures])
            print(f"{p.value:8}{proven:>5}/{len(figures):<4}  {gaps}")
            times = [f.proof_s for f in figures if f.proof_s is not None]
            print(f"{'':8}{'':>10}  time to proof, s: {_quantiles(times)}")
            gains = [float(f.value - f.greedy) for f in figures]
            print(f"{'':8}{'':>10}  gain over greedy: {_quantiles(gains)}")
    unproven: dict[str, list[str]] = {}
    for r in results:
        for p, f in r.levels.items():
            if not f.proven:
                unproven.setdefault(r.instance.regime.name if r.instance.scale == "community"
                                    else "street", []).append(
                    f"{r.instance.name} {p.value} {f.value}/{f.bound}")
    print("\n== unproven levels, per regime")
    if not unproven:
        print("none")
    for regime, items in unproven.items():
        print(f"{regime}: " + "; ".join(items))


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="communities per regime")
    parser.add_argument("--first-seed", type=int, default=1,
                        help="the communities' first seed (to run a family in pieces)")
    parser.add_argument("--streets", type=int, default=4, help="street-scale weeks")
    parser.add_argument("--first-street", type=int, default=7,
                        help="the street-scale weeks' first seed")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="per community (default 60, --quick 2)")
    parser.add_argument("--street-time-limit", type=float, default=None,
                        help="per street-scale week (default 300, --quick 3)")
    parser.add_argument("--wall-clock", action="store_true",
                        help="count the limits in seconds, not CP-SAT's deterministic time")
    parser.add_argument("--regimes", default="",
                        help=f"comma-separated, of {', '.join(REGIMES)} (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run: small communities, one seed, one small street week")
    args = parser.parse_args(argv)
    names = [n for n in args.regimes.split(",") if n] or list(REGIMES)
    unknown = [n for n in names if n not in REGIMES]
    if unknown:
        parser.error(f"unknown regime(s) {', '.join(unknown)}")
    seeds = 1 if args.quick and args.seeds == 2 else args.seeds
    streets = 1 if args.quick and args.streets == 4 else args.streets
    todo = instances(seeds, streets, [REGIMES[n] for n in names], args.quick,
                     args.time_limit, args.street_time_limit, args.wall_clock,
                     args.first_seed, args.first_street)
    network = None if args.quick else WalkingNetwork.from_file(NETWORK)
    walk: Walk = geodesic_walk() if network is None else _cached(network_walk(network))
    results = []
    for instance in todo:
        result = run(instance, network, walk)
        print_instance(result)
        results.append(result)
    print_summary(results)
    return results


def _cached(walk: Walk) -> Walk:
    return cache(walk)  # the validator asks for the same pairs many times


if __name__ == "__main__":
    outcome = main()
    sys.exit(1 if any(r.errors for r in outcome) else 0)
