"""The console in a real browser: Chromium from the system packages (no browser downloads
here), driven by Playwright against the app under a real uvicorn on a loopback port, with the
in-process job worker so solves finish. Every request the page makes to any other host is
blocked and fails the test: the console must work with no internet at all."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Page, Route

from api.community import TZ
from api.main import create_app
from api.models import User
from api.security import hash_password
from api.settings import ApiSettings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "password-123"
# How long a journey waits for a solve (milliseconds): long enough for a loaded CI machine.
# The journeys test what people see, not the solver's speed (benchmarks/ measures that).
SOLVE_WAIT_MS = 300_000


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return browser_type_launch_args | {"executable_path": CHROMIUM,
                                       "args": ["--no-sandbox", "--disable-dev-shm-usage"]}


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    # A browser set up in China: the console answers in Chinese (its default as well).
    return browser_context_args | {"locale": "zh-CN"}


@dataclass
class Server:
    """The console under test: its address, its app (for the clock and accounts)."""

    url: str
    app: FastAPI
    outside: list[str] = field(default_factory=list)

    def set_clock(self, day: dt.date, hhmm: str) -> None:
        moment = dt.datetime.combine(day, dt.time.fromisoformat(hhmm), TZ)
        self.app.state.clock = lambda: moment

    def user(self, username: str, role: str, **links: str) -> None:
        with self.app.state.db.session() as session:
            session.add(User(username=username, password_hash=hash_password(PASSWORD),
                             role=role, calendar_token=f"cal-{username}-token-0123456789",
                             **links))
            session.commit()

    def api(self, username: str) -> httpx.Client:
        """An API client logged in as ``username`` (to set the scene quickly)."""
        token = httpx.post(f"{self.url}/v1/auth/token",
                           data={"username": username, "password": PASSWORD}).json()
        return httpx.Client(base_url=self.url, timeout=60, headers={
            "Authorization": f"Bearer {token['access_token']}"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def network_path() -> str | None:
    """The street network the server walks on: none (straight lines x 1.3) unless a test
    parametrizes this fixture with a GraphML file."""
    return None


@pytest.fixture
def server(tmp_path: Path, network_path: str | None) -> Iterator[Server]:
    settings = ApiSettings(database_url=f"sqlite:///{tmp_path / 'linli.db'}",
                           network_path=network_path,
                           secret_key="browser-test-secret-0123456789abcdef",
                           solve_time_limit_s=4, webhook_url=None, points_per_minute=1,
                           job_worker=True,
                           password_threads=2)
    app = create_app(settings)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", app)
    uv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def console(page: Page, server: Server) -> Iterator[Page]:
    """The browser page, with every request to another host blocked and recorded."""
    here = urlsplit(server.url).netloc

    def guard(route: Route) -> None:
        if urlsplit(route.request.url).netloc == here:
            route.continue_()
        else:
            server.outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", guard)
    page.set_default_timeout(30_000)
    yield page
    assert server.outside == [], f"the console asked another server: {server.outside}"


def log_in(page: Page, server: Server, username: str) -> None:
    page.goto(f"{server.url}/console/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
