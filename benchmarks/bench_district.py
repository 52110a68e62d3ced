"""District benchmark: a district's week on Ray against the sum of its parts; prints figures,
asserts nothing about time.

    python benchmarks/bench_district.py [--quick] [--cpus 2] [--time-limit S] [--seed 7]
                                        [--address ADDR] [--check]

The district: 20 communities, 6,000 volunteers, 8,000 needs and 400 partner merchants generated
on the streets of central Shanghai (`linli generate-district`'s defaults; the shipped network,
data/shanghai-center). `--quick`: 4 small communities and a 1 s limit, to see that the script
runs end to end. The limit is per community and deterministic (one CP-SAT worker), so every
part does the same work however many run at once.

Prints: the parts (communities, occurrences); the wall time on Ray against the sum of the parts'
times (each measured in its worker: walking times and the solve) and the ideal sum / cores;
parallel efficiency; the parts' times scheduled on 8, 32 and 128 cores (longest first, LPT) with
the critical path (the slowest part), for this district and for one ten times its size; peak
memory per worker; what went through Ray's object store. `--check` also solves the district in
one process and checks that the schedules are the same.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

from matcher.district import (
    SHANGHAI_NETWORK,
    DistrictEvent,
    DistrictResult,
    components,
    generate_district,
    lpt_makespan,
    parts,
    solve_district,
)
from matcher.domain import Week
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.travel import WalkingNetwork

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "data" / SHANGHAI_NETWORK
FULL = dict(communities=20, volunteers=6000, needs=8000, merchants=400, radius_m=500.0)
QUICK = dict(communities=4, volunteers=160, needs=200, merchants=12, radius_m=300.0)


def _mib(n: float) -> str:
    return f"{n / 2 ** 20:.1f} MiB"


def _warm_up(cpus: int) -> float:
    """Start every worker and import the solver in it, so worker start-up is not counted."""
    import ray as ray_module

    @ray_module.remote(num_cpus=1)
    def ready() -> int:
        import matcher.solver  # noqa: F401  (the import is the work)

        time.sleep(0.5)  # hold the CPU so each call lands on its own worker
        return 0

    began = time.monotonic()
    ray_module.get([ready.remote() for _ in range(cpus)])
    return time.monotonic() - began


def _same(a: DistrictResult, b: DistrictResult) -> bool:
    return all(x.schedule.assignments == y.schedule.assignments
               and x.schedule.unmet == y.schedule.unmet
               and x.schedule.levels == y.schedule.levels
               for x, y in zip(a.communities, b.communities, strict=True)) \
        and len(a.communities) == len(b.communities)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small district, to check the script")
    ap.add_argument("--cpus", type=int, default=2, help="Ray CPUs on this machine")
    ap.add_argument("--time-limit", type=float, help="per community, seconds (deterministic)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--address", help="a running Ray cluster (auto, ray://head:10001)")
    ap.add_argument("--check", action="store_true",
                    help="also solve in one process and compare (always with --quick)")
    args = ap.parse_args(argv)
    import ray

    spec = QUICK if args.quick else FULL
    limit = args.time_limit or (1.0 if args.quick else Settings().time_limit_s)
    params = SolveParams(time_limit_s=limit)
    settings = Settings()
    began = time.monotonic()
    network = WalkingNetwork.from_file(NETWORK)
    district = generate_district(network, week=Week(2026, 48), seed=args.seed,
                                 **spec)  # type: ignore[arg-type]
    todo = parts(district, params, settings)
    print(f"district: {len(district.communities)} communities, "
          f"{sum(len(c.problem.needs) for c in district.communities)} needs, "
          f"{sum(len(c.problem.occurrences) for c in district.communities)} occurrences; "
          f"generated in {time.monotonic() - began:.1f} s on {network.name}; limit {limit:g} s "
          f"per community ({params.limit_kind})")
    print(f"parts: {len(todo)} (largest first)")
    for part in sorted(todo, key=lambda p: -p.size):
        print(f"  part {part.index:2d}: {len(part.communities):2d} communities "
              f"({', '.join(part.communities)}), {part.size} occurrences")
    assert len(components(district)) == len(todo)

    if args.address:
        ray.init(address=args.address, include_dashboard=False)
        cpus = int(ray.cluster_resources().get("CPU", args.cpus))  # type: ignore[no-untyped-call]
    else:
        ray.init(num_cpus=args.cpus, include_dashboard=False)
        cpus = args.cpus
    try:
        warm = _warm_up(cpus)
        print(f"\nRay: {cpus} CPUs; workers started and the solver imported in {warm:.1f} s "
              "(not counted below)")
        result = solve_district(district, params, settings, network=network, engine="ray",
                                on_part=_show)
        memory = _object_store_summary()
    finally:
        ray.shutdown()
    if result.failed:
        print(f"FAILED communities: {sorted(result.failed)}")
    times = [p.seconds for p in result.parts if p.schedule is not None]
    total = sum(times)
    wall = result.seconds
    print(f"\nwall time on Ray:            {wall:8.1f} s")
    print(f"sum of the parts' times:     {total:8.1f} s (one process would take about this)")
    print(f"ideal on {cpus} cores (sum / {cpus}): {total / cpus:8.1f} s")
    print(f"LPT schedule of these parts: {lpt_makespan(times, cpus):8.1f} s "
          "(the best order can do with these parts)")
    print(f"parallel efficiency:         {100 * total / (cpus * wall):7.0f} % "
          "(sum / (cores x wall))")
    print(f"critical path (slowest part):{max(times, default=0):8.1f} s")
    print("\npredicted wall time (LPT on the measured parts' times; no Ray overhead):")
    print("  cores   this district   ten times its size (200 communities like these)")
    for cores in (cpus, 8, 32, 128):
        print(f"  {cores:5d}   {lpt_makespan(times, cores):11.1f} s   "
              f"{lpt_makespan(times * 10, cores):11.1f} s")
    print(f"  the critical path bounds both from below: {max(times, default=0):.1f} s")
    peaks: dict[str, float] = defaultdict(float)
    for p in result.parts:
        if p.worker:
            peaks[p.worker] = max(peaks[p.worker], p.peak_rss_mb)
    print("\npeak memory per worker (resident, the worker's life so far):")
    for worker, peak in sorted(peaks.items()):
        print(f"  {worker}: {peak:.0f} MiB")
    print(f"driver: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    sent = [len(pickle.dumps(p)) for p in todo]
    back = [len(pickle.dumps(p)) for p in result.parts]
    print("\nobject store traffic (pickled sizes; the network is put once and read by every "
          "task):")
    print(f"  street network: {_mib(len(pickle.dumps(network)))} once")
    print(f"  parts sent:     {_mib(sum(sent))} in {len(sent)} tasks "
          f"(largest {_mib(max(sent, default=0))})")
    print(f"  results back:   {_mib(sum(back))} (largest {_mib(max(back, default=0))})")
    if memory:
        print("  Ray's own summary:\n    " + "\n    ".join(memory))
    if args.check or args.quick:
        local = solve_district(district, params, settings, network=network)
        same = _same(local, result)
        print(f"\none process: {local.seconds:.1f} s; same schedules as on Ray: {same}")
        if not same:
            return 1
    return 0 if not result.failed else 1


def _show(event: DistrictEvent) -> None:
    r = event.result
    what = f"failed: {r.error}" if r.error else f"{r.seconds:.1f} s on {r.worker}"
    print(f"  [{event.done}/{event.total}] part {r.index}: {what}", flush=True)


def _object_store_summary() -> list[str]:
    """The object store's own statistics, where this Ray version offers them."""
    try:
        from ray._private.internal_api import memory_summary

        text = memory_summary(stats_only=True)  # type: ignore[no-untyped-call]
    except Exception:  # an internal API that needs ray[default]; absent or changed in some
        return ["(not available: Ray's memory summary needs pip install 'ray[default]')"]
    return [line.strip() for line in str(text).splitlines()
            if line.strip() and not line.startswith("---")][:12]


if __name__ == "__main__":
    sys.exit(main())
