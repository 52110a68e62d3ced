"""API benchmark: GET /v1/me/tasks under concurrent clients; prints figures, asserts nothing.

    LINLI_DATABASE_URL=postgresql+psycopg://... python benchmarks/bench_api.py \\
        [--volunteers 20000] [--clients 100] [--seconds 60] [--no-solve]
    python benchmarks/bench_api.py --tiny      # a small check that it runs end to end

Fills the database with a district: N volunteers, a published week with 3 tasks each (written
directly, no solve), one login per sampled volunteer; starts uvicorn in a subprocess and has
``--clients`` asyncio clients call ``/v1/me/tasks`` in a loop (after ``--warmup`` seconds of the
same load). Reports throughput, p50/p95/p99 latency, errors, and the CPU time per request of
the server, the load generator and PostgreSQL (all share the machine's cores).

Then the same again while a ``linli worker`` process solves a week (unless ``--no-solve``):
the worker solves the sample community on the shipped street network in a SQLite database of
its own (the district above has every volunteer at one point, which no solver should be given),
with a time limit longer than the measurement, so the figures show what a solve in another
process costs the servers on the same machine. The worker is stopped (SIGTERM) afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import psutil
from sqlalchemy import delete, func, insert, select

from api.db import Database
from api.migrate import upgrade
from api.models import Community, NeedRow, ScheduleRow, TaskRow, User, VolunteerRow
from api.security import create_token, hash_password
from api.seed import seed_demo
from api.settings import ApiSettings
from matcher.domain import Week

WEEK = Week(2026, 48)
ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "data" / "shenzhen-futian" / "shenzhen_futian_walk.graphml"


def fill(db: Database, n: int, logins: int, settings: ApiSettings, reuse: bool = False
         ) -> list[str]:
    with db.session() as s:
        if reuse:  # the same district from an earlier run: only fresh tokens
            users = s.scalars(select(User).where(User.role == "volunteer").limit(logins)).all()
            tasks = s.scalar(select(func.count()).select_from(TaskRow))
            if len(users) == logins and tasks == 3 * n:
                return [create_token(u, settings) for u in users]
        for table in (TaskRow, ScheduleRow, User, NeedRow, VolunteerRow):
            s.execute(delete(table))
        community = s.scalars(select(Community.id)).one()  # the migrations' default
        s.execute(insert(VolunteerRow), [
            {"volunteer_id": f"V{i:05d}", "name": "志愿者", "lat": 22.53, "lon": 114.01,
             "skills": [], "availability": [{"day": "mon", "start": 480, "end": 1200}],
             "max_hours_week": 4, "community_id": community}
            for i in range(n)])
        s.execute(insert(NeedRow), [
            {"need_id": f"N{i:05d}", "kind": "elderly", "service": "home_visit",
             "beneficiary": "张奶奶", "phone": "", "address": "", "lat": 22.53, "lon": 114.01,
             "days": ["mon", "wed", "fri"], "window": "09:00-12:00", "duration_min": 30,
             "skills": [],
             "volunteers_needed": 1, "priority": "blue", "merchant_service": "",
             "community_id": community}
            for i in range(n)])
        schedule = ScheduleRow(week=str(WEEK), status="published", progress="done")
        s.add(schedule)
        s.flush()
        rows = []
        for i in range(n):
            for k, day in enumerate(("mon", "wed", "fri")):
                rows.append({"schedule_id": schedule.id, "need_id": f"N{i:05d}", "day": day,
                             "date": WEEK.monday + dt.timedelta(days=2 * k), "start": 600,
                             "end": 630, "volunteer_id": f"V{i:05d}", "merchant_id": None,
                             "walk_min": 5.0, "state": "offered"})
        s.execute(insert(TaskRow), rows)
        hashed = hash_password("bench-password")
        users = [User(username=f"v{i:05d}", password_hash=hashed, role="volunteer",
                      volunteer_id=f"V{i:05d}", calendar_token=secrets.token_hex(8))
                 for i in random.Random(1).sample(range(n), logins)]
        s.add_all(users)
        s.commit()
    if db.engine.dialect.name == "postgresql":
        # Fresh statistics, as autovacuum would gather a little later: without them the first
        # minute measures the planner's guesses about empty tables (p99 above a second).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    return [create_token(u, settings) for u in users]


async def load(base: str, tokens: list[str], clients: int, seconds: float, rate: float | None
               ) -> tuple[list[float], int]:
    """``clients`` keep-alive connections calling in a loop; with ``rate``, together they send
    that many requests per second on a fixed schedule (an open load, as from many phones),
    else each sends its next request as soon as the last returns. aiohttp, not httpx: httpx's
    async pool tops out near 110 requests/s at 100 connections even on ``/health``, so it
    measured itself, not the server."""
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:
        async def client(k: int) -> None:
            nonlocal errors
            headers = {"Authorization": f"Bearer {tokens[k % len(tokens)]}"}
            period = clients / rate if rate else 0.0
            due = time.monotonic() + period * k / clients  # spread the clients' first calls
            while time.monotonic() < stop:
                if period:
                    await asyncio.sleep(max(due - time.monotonic(), 0.0))
                    due += period
                began = time.perf_counter()
                try:
                    async with http.get(f"/v1/me/tasks?week={WEEK}", headers=headers) as response:
                        body = await response.json()
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - began)
                if response.status != 200 or len(body) != 3:
                    errors += 1
        await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument("--rate", type=float, default=300,
                        help="requests per second all clients send together; 0: as fast as "
                        "they can (closed loop)")
    parser.add_argument("--warmup", type=float, default=5,
                        help="seconds of the same load before measuring")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the district an earlier run wrote if it is the same size")
    parser.add_argument("--no-solve", dest="solve", action="store_false",
                        help="skip the measurement with a solve running in a worker")
    parser.add_argument("--tiny", action="store_true",
                        help="a small run that checks the script works, not for figures")
    args = parser.parse_args()
    if args.tiny:
        args.volunteers, args.clients, args.seconds, args.warmup, args.rate = 200, 4, 2, 0.5, 20
    secret = os.environ.get("LINLI_SECRET_KEY", "bench-secret-0123456789-abcdefghijkl")
    settings = ApiSettings(secret_key=secret)
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    began = time.monotonic()
    tokens = fill(db, args.volunteers, min(args.clients, args.volunteers), settings,
                  args.reuse)
    db.dispose()
    print(f"filled {args.volunteers} volunteers, {3 * args.volunteers} tasks in "
          f"{time.monotonic() - began:.1f} s ({settings.database_url.split('@')[-1]})")
    base = f"http://127.0.0.1:{args.port}"
    try:  # a server left on the port would answer instead of ours and skew every figure
        httpx.get(f"{base}/health")
        sys.exit(f"port {args.port} is taken by another server; stop it or pass --port")
    except httpx.HTTPError:
        pass
    env = dict(os.environ, LINLI_SECRET_KEY=settings.secret_key, LINLI_RUN_WORKERS="false")
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--port",
                               str(args.port), "--workers", str(args.workers),
                               "--log-level", "warning"], env=env)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        if server.poll() is not None:
            sys.exit(f"the server exited with status {server.returncode}")
        if args.warmup:  # connections, pools and prepared statements settle first
            asyncio.run(load(base, tokens, args.clients, args.warmup, args.rate or None))
        measure("no solve running", server.pid, base, tokens, args)
        if args.solve:
            with tempfile.TemporaryDirectory() as folder, solving(
                    Path(folder), env, args.seconds + args.warmup + 600) as worker:
                measure(f"a solve running in linli worker (pid {worker.pid})", server.pid,
                        base, tokens, args)
                if worker.poll() is not None:
                    print("  (the worker stopped before the end: the figures are not all "
                          "under a solve)")
    finally:
        server.terminate()
        server.wait()


def measure(label: str, server_pid: int, base: str, tokens: list[str],
            args: argparse.Namespace) -> None:
    before = _cpu_seconds(server_pid)
    latencies, errors = asyncio.run(load(base, tokens, args.clients, args.seconds,
                                         args.rate or None))
    used = {k: v - before[k] for k, v in _cpu_seconds(server_pid).items()}
    latencies.sort()
    n = len(latencies)
    offered = f"offered {args.rate:g} req/s" if args.rate else "closed loop"

    def p(q: float) -> str:
        return f"{1000 * latencies[min(n - 1, int(n * q))]:.1f} ms" if n else "-"

    print(f"== GET /v1/me/tasks, {label}: {args.clients} clients ({offered}), {args.workers} "
          f"server processes, {args.seconds:g} s: {n} requests, {n / args.seconds:.0f} req/s, "
          f"p50 {p(0.5)}, p95 {p(0.95)}, p99 {p(0.99)}, errors {errors}")
    print("CPU per request: " + ", ".join(f"{k} {1000 * v / max(n, 1):.2f} ms"
                                         for k, v in used.items())
          + f" (2 cores: {2000 * args.seconds / max(n, 1):.2f} ms available)")


@contextmanager
def solving(folder: Path, env: dict[str, str], limit_s: float
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A `linli worker` process solving the sample community's week (a database of its own),
    from when its solve has begun until the block ends."""
    url = f"sqlite:///{folder / 'solve.db'}"
    upgrade(url)
    db = Database(url)
    seed_demo(db, ROOT / "data" / "sample")
    with db.session() as s:
        job = ScheduleRow(week=str(WEEK), status="queued", progress="")
        s.add(job)
        s.commit()
        job_id = job.id
    worker = subprocess.Popen(
        [str(Path(sys.executable).with_name("linli")), "worker", "--poll-s", "0.2"],
        env=env | {"LINLI_DATABASE_URL": url, "LINLI_NETWORK_PATH": str(NETWORK),
                   "LINLI_SOLVE_TIME_LIMIT_S": str(limit_s),
                   "LINLI_SOLVE_WALL_CLOCK": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # the solver proper starts after the walking times
            with db.session() as s:
                progress = s.get(ScheduleRow, job_id)
                if progress is not None and progress.status == "running" \
                        and progress.progress not in ("", "reading the data", "walking times"):
                    break
            if worker.poll() is not None:
                sys.exit(f"linli worker exited with status {worker.returncode}")
            time.sleep(0.5)
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=120)
        db.dispose()


def _cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU time so far of the server's processes, this load generator and PostgreSQL's."""
    def total(processes: list[psutil.Process]) -> float:
        seconds = 0.0
        for p in processes:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            seconds += t.user + t.system
        return seconds
    server = psutil.Process(server_pid)
    postgres = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
    return {"server": total([server, *server.children(recursive=True)]),
            "client": total([psutil.Process()]), "postgres": total(postgres)}


if __name__ == "__main__":
    main()
