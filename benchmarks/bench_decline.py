"""Decline and "who could take this" benchmark: prints p50/p95, asserts nothing about time.

    python benchmarks/bench_decline.py [demo|street|all] [--calls 40] [--profile]
    python benchmarks/bench_decline.py tiny          # a small check that it runs end to end
    LINLI_BENCH_TINY=1 python benchmarks/bench_decline.py   # the same

Demo: the sample community (300 volunteers, 400 needs, 24 merchants) on the shipped walking
network. Street: 1,500 volunteers, 2,000 needs, 80 merchants over the whole western-Futian
extract (as ``bench_schedule.py street``). Tiny: 40 volunteers, straight-line walking.

Each scale is written to a fresh SQLite database (or ``LINLI_DATABASE_URL``, emptied first)
with a published week planned by the greedy baseline (a solve would take minutes and is not
what is measured), every task offered. The app runs in this process (FastAPI's TestClient, the
whole route with its database work, no network). After one warm-up call, which builds what the
process keeps between calls, it times ``--calls`` candidate lists of random occurrences (as a
coordinator) and ``--calls`` declines of random offered tasks (each by its volunteer), and
prints p50/p95 of each and the warm-up call, in wall-clock time and in CPU time of the process
(``time.process_time``, which a busy machine's other work does not inflate). ``--profile``
prints where the measured calls spent their time (cProfile, cumulative).

The community's version row (written by the migrations) is kept when the database is emptied:
without it the process cannot keep the week it built and builds it for every call.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi.routing
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, select, text

from api.community import TZ, columns_of
from api.main import create_app
from api.migrate import upgrade
from api.models import (
    Base,
    Community,
    CommunityVersion,
    District,
    ScheduleRow,
    StreetOffice,
    TaskRow,
    User,
)
from api.security import create_token
from api.settings import ApiSettings
from matcher.circles import ServiceCircle, build_candidates
from matcher.domain import Location, Problem, Week
from matcher.generate import generate_community
from matcher.greedy import greedy_plan
from matcher.settings import Settings
from matcher.solver import _assignments
from matcher.spreadsheets import read_community
from matcher.travel import TravelTimes, WalkingNetwork

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "data" / "shenzhen-futian" / "shenzhen_futian_walk.graphml"
WEEK = Week(2026, 48)
SECRET = "bench-secret-0123456789-abcdefghijkl"
STREET = dict(n_volunteers=1500, n_needs=2000, n_merchants=80, radius_m=2300,
              centre=Location(22.5340, 114.0185))
TINY = dict(n_volunteers=40, n_needs=30, n_merchants=4, radius_m=700,
            centre=Location(22.53407, 114.01766))


def community(scale: str, network: WalkingNetwork | None) -> Problem:
    if scale == "demo":
        return read_community(ROOT / "data" / "sample", WEEK).problem
    spec = STREET if scale == "street" else TINY
    return generate_community(network=network, week=WEEK, seed=7, **spec)  # type: ignore[arg-type]


# What the migrations write and a fill keeps: the default community and its version row.
KEPT = {t.__table__ for t in (Community, StreetOffice, District, CommunityVersion)}


def fill(url: str, problem: Problem, network: WalkingNetwork | None) -> int:
    """The community, a published greedy week (every task offered) and a login per volunteer
    with a task; returns the schedule's id."""
    travel = TravelTimes.build(problem, Settings(), network)
    cand = build_candidates(problem, travel, ServiceCircle(Settings().circle_min))
    assignments = _assignments(cand, greedy_plan(cand))
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table not in KEPT:  # the migrations' community and its version row
                conn.execute(table.delete())
        community = conn.execute(select(Community.id)).scalar_one()
        for kind, items in (("merchants", problem.merchants),
                            ("volunteers", problem.volunteers), ("needs", problem.needs)):
            conn.execute(insert(Base.metadata.tables[kind]),
                         [columns_of(kind, item) | {"community_id": community}
                          for item in items])
        schedule = conn.execute(insert(ScheduleRow).values(
            week=str(WEEK), status="published", progress="done", community_id=community
        ).returning(ScheduleRow.id)).scalar_one()
        conn.execute(insert(TaskRow), [
            {"schedule_id": schedule, "need_id": a.need_id, "day": a.day.value,
             "date": a.date, "start": a.start, "end": a.end, "volunteer_id": a.volunteer_id,
             "merchant_id": a.merchant_id, "walk_min": a.walk_min, "state": "offered"}
            for a in assignments])
        conn.execute(insert(User), [
            {"username": f"u-{v}", "password_hash": "-", "role": "volunteer",
             "volunteer_id": v, "community_id": community}
            for v in sorted({a.volunteer_id for a in assignments})])
        conn.execute(insert(User), [{"username": "coordinator", "password_hash": "-",
                                     "role": "coordinator", "community_id": community}])
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return int(schedule)


def percentiles(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms"


def run(scale: str, calls: int, profile: bool) -> None:
    network = None if scale == "tiny" else WalkingNetwork.from_file(NETWORK)
    problem = community(scale, network)
    with tempfile.TemporaryDirectory() as folder:
        url = os.environ.get("LINLI_DATABASE_URL") or f"sqlite:///{folder}/bench.db"
        upgrade(url)
        began = time.monotonic()
        schedule = fill(url, problem, network)
        print(f"\n== {scale}: {len(problem.volunteers)} volunteers, {len(problem.needs)} needs, "
              f"{len(problem.merchants)} merchants, {len(problem.occurrences)} occurrences "
              f"(filled in {time.monotonic() - began:.1f} s, {url.split('@')[-1]})")
        settings = ApiSettings(database_url=url, secret_key=SECRET, webhook_url=None,
                               network_path=None if network is None else str(NETWORK),
                               job_worker=False, run_workers=False)
        with TestClient(create_app(settings)) as client:
            app = client.app
            friday = dt.datetime.combine(WEEK.monday - dt.timedelta(days=3), dt.time(9), TZ)
            app.state.clock = lambda: friday  # type: ignore[attr-defined]
            db = app.state.db  # type: ignore[attr-defined]
            with db.session() as session:
                users = {u.volunteer_id: u for u in session.query(User)}
                coordinator = {"Authorization": "Bearer " + create_token(users[None],
                                                                           settings)}
                offered = [(t.id, t.volunteer_id) for t in session.query(TaskRow)]
            rng = random.Random(1)
            occurrences = [(o.need.id, o.day.value) for o in problem.occurrences]

            def candidates() -> None:
                need, day = rng.choice(occurrences)
                response = client.get(f"/v1/schedules/{schedule}/occurrences/{need}/{day}/"
                                      "candidates", headers=coordinator)
                assert response.status_code == 200, response.text

            rng.shuffle(offered)
            tokens = {v: create_token(u, settings) for v, u in users.items() if v}

            def decline() -> None:
                task, volunteer = offered.pop()
                response = client.post(f"/v1/me/tasks/{task}/decline",
                                       json={"reason": "bench"},
                                       headers={"Authorization": f"Bearer {tokens[volunteer]}"})
                assert response.status_code == 200, response.text

            for name, call in (("candidates", candidates), ("decline", decline)):
                began = time.perf_counter()
                call()  # warm-up: what the process keeps between calls is built here
                warm = time.perf_counter() - began
                seconds, cpu = measure(call, min(calls, len(offered)), profile, name)
                print(f"{name:11}{percentiles(seconds)} (n={len(seconds)}); first call "
                      f"{1000 * warm:.0f} ms; CPU of this process {percentiles(cpu)}")


def measure(call: Callable[[], None], calls: int, profile: bool, name: str
            ) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (``time.process_time``: what a busy machine's other work does
    not inflate) of each call."""
    profiler = cProfile.Profile() if profile else None
    restore = fastapi.routing.run_in_threadpool  # type: ignore[attr-defined]
    if profiler is not None:  # the routes run on the thread pool: profile them there
        async def profiled(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            def inside(*a: Any, **k: Any) -> Any:
                profiler.enable()
                try:
                    return func(*a, **k)
                finally:
                    profiler.disable()
            return await restore(inside, *args, **kwargs)
        setattr(fastapi.routing, "run_in_threadpool", profiled)  # noqa: B010
    seconds, cpu = [], []
    try:
        for _ in range(calls):
            began, began_cpu = time.perf_counter(), time.process_time()
            call()
            seconds.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
    finally:
        setattr(fastapi.routing, "run_in_threadpool", restore)  # noqa: B010
    if profiler is not None:
        print(f"-- where {name} spends its time (cumulative, in the route):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scale", nargs="?", default="all",
                        choices=["demo", "street", "all", "tiny"])
    parser.add_argument("--calls", type=int, default=40, help="timed calls of each kind")
    parser.add_argument("--profile", action="store_true", help="print cProfile statistics")
    args = parser.parse_args()
    tiny = args.scale == "tiny" or os.environ.get("LINLI_BENCH_TINY") == "1"
    if tiny:
        run("tiny", min(args.calls, 5), args.profile)
        return
    for scale in (["demo", "street"] if args.scale == "all" else [args.scale]):
        run(scale, args.calls, args.profile)


if __name__ == "__main__":
    main()
