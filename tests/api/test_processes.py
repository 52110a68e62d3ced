"""The deployed process model on PostgreSQL: two `linli serve` processes and `linli worker`
processes, real processes on loopback ports. Tokens from one server work on the other, the
servers never solve, a worker killed mid-solve leaves its job to the next worker (attempt two),
and a worker stops cleanly on SIGTERM."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.db import Database
from api.migrate import upgrade
from api.models import User
from api.security import hash_password
from matcher.domain import Week
from matcher.generate import generate_community
from matcher.spreadsheets import write_community
from tests.api.conftest import _fresh_postgres
from tests.conftest import CENTRE, NETWORK

pytestmark = pytest.mark.postgres
LINLI = str(Path(sys.executable).parent / "linli")
SECRET = "process-test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Started processes, all ended when the test ends (whatever happened)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []  # type: list[subprocess.Popen[bytes]]

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            process = subprocess.Popen([LINLI, *args], env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[Processes, str]]:
    url = _fresh_postgres()
    upgrade(url)
    db = Database(url)
    with db.session() as session:
        session.add(User(username="coordinator", password_hash=hash_password("password-123"),
                         role="coordinator"))
        session.commit()
    db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_")}
    env.update(LINLI_DATABASE_URL=url, LINLI_SECRET_KEY=SECRET, LINLI_SOLVE_TIME_LIMIT_S="6",
               LINLI_JOB_LEASE_S="2", LINLI_RUN_WORKERS="false", PYTHONUNBUFFERED="1",
               # Street walking times: a job then takes seconds (the network to load, walks to
               # route, the solve), so the worker is surely killed with the job in hand.
               LINLI_NETWORK_PATH=str(NETWORK))
    running = Processes(env, tmp_path)
    try:
        yield running, url
    finally:
        running.close()


def wait_until(check: Any, what: str, timeout_s: float = 90, every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_servers_and_a_worker_that_is_killed_mid_solve(
        processes: tuple[Processes, str], tmp_path: Path) -> None:
    running, _url = processes
    bases = []
    for n in (1, 2):
        port = free_port()
        running.start(f"serve{n}", "serve", "--host", "127.0.0.1", "--port", str(port))
        bases.append(f"http://127.0.0.1:{port}")
    for base in bases:
        wait_until(lambda base=base: healthy(base), f"{base} to start", every_s=0.3)
    with httpx.Client(base_url=bases[0], timeout=30) as one, \
            httpx.Client(base_url=bases[1], timeout=30) as two:
        drive(one, two, tmp_path, running)


def drive(one: httpx.Client, two: httpx.Client, tmp_path: Path, running: Processes) -> None:
    """A solve and publish through both servers, its first worker killed mid-solve."""
    # A token from one server is good on the other: the secret is shared, not made up.
    token = one.post("/v1/auth/token", data={"username": "coordinator",
                                             "password": "password-123"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert two.get("/v1/me", headers=headers).status_code == 200
    # A week ahead on the real clock (the worker's), so it is all still to plan.
    week = Week.containing(dt.date.today() + dt.timedelta(days=14))
    # A community big enough that the solve takes its time limit.
    folder = tmp_path / "community"
    folder.mkdir()
    write_community(generate_community(80, 60, 4, network=None, centre=CENTRE, radius_m=900,
                                       week=week, seed=5), folder)
    files = [("files", (p.name, p.read_bytes(), "text/csv")) for p in sorted(folder.glob("*.csv"))]
    assert one.post("/v1/imports", files=files, headers=headers).status_code == 200
    job = two.post("/v1/schedules", json={"week": str(week)}, headers=headers).json()

    def read(client: httpx.Client) -> dict[str, Any]:
        body: dict[str, Any] = client.get(f"/v1/schedules/{job['id']}", headers=headers).json()
        return body

    time.sleep(1.0)
    assert read(one)["status"] == "queued"  # no server solves
    first = running.start("worker1", "worker", "--poll-s", "0.2")
    wait_until(lambda: read(two)["status"] == "running", "the first worker to claim the job")
    first.send_signal(signal.SIGKILL)  # dies mid-solve: no chance to release the job
    first.wait(10)
    body = read(one)
    assert (body["status"], body["attempts"]) == ("running", 1), body
    second = running.start("worker2", "worker", "--poll-s", "0.2")
    body = wait_until(lambda: (b := read(two))["status"] in ("solved", "failed") and b,
                      "the second worker to solve the job")
    assert (body["status"], body["attempts"]) == ("solved", 2), body
    # Publish through one server, read it through the other.
    published = one.post(f"/v1/schedules/{job['id']}/publish", json={}, headers=headers)
    assert published.status_code == 200, published.text
    assert read(two)["status"] == "published"
    assert two.get(f"/v1/schedules/{job['id']}/tasks", headers=headers).json()["items"]
    # A worker stops cleanly on SIGTERM.
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
    # Cancel through a server while no worker runs: the queued job never runs.
    queued = one.post("/v1/schedules", json={"week": str(week)}, headers=headers).json()
    cancelled = two.post(f"/v1/schedules/{queued['id']}/cancel", headers=headers).json()
    assert cancelled["status"] == "cancelled"
