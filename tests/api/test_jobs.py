"""Jobs claimed from the database (api.jobs): one worker per job at a time, one retry when a
worker dies, cancel, and what a server process does at start-up (nothing to jobs, and nothing
without a shared secret)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.db import Database
from api.jobs import (
    Claim,
    JobContext,
    JobStopped,
    Networks,
    Running,
    claim_job,
    execute,
)
from api.main import create_app
from api.migrate import upgrade
from api.models import AllocationRow, ScheduleRow
from api.settings import ApiSettings, MissingSecretError
from matcher.i18n import _
from tests.api.conftest import make_user, upload
from tests.conftest import WEEK

T0 = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=10)
STOPPED_TWICE = "the worker stopped twice"


@pytest.fixture
def db(database_url: str) -> Any:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def queue(db: Database, cls: type[ScheduleRow] | type[AllocationRow] = ScheduleRow,
          **values: Any) -> int:
    with db.session() as session:
        row = cls()
        row.week, row.status, row.progress = str(WEEK), "queued", "queued"
        for key, value in values.items():
            setattr(row, key, value)
        session.add(row)
        session.commit()
        return row.id


def status(db: Database, job_id: int, cls: type[Any] = ScheduleRow) -> Any:
    with db.session() as session:
        return session.get(cls, job_id)


def test_a_job_is_claimed_by_one_worker_and_retried_once_when_its_worker_stops(
        db: Database) -> None:
    job_id = queue(db)
    first = claim_job(db, "a", T0, LEASE, STOPPED_TWICE)
    assert first == Claim(ScheduleRow, job_id, 1, str(WEEK), 1)
    # Held: nobody else gets it while the lease runs, whatever the job kind.
    assert claim_job(db, "b", T0 + LEASE / 2, LEASE, STOPPED_TWICE) is None
    a = Running(db, first, "a", LEASE, threading.Event())
    a.progress("solving")  # renews the lease
    assert claim_job(db, "b", T0 + LEASE, LEASE, STOPPED_TWICE) is None
    # Worker a stops renewing (it died): after the lease, b takes the job over.
    later = dt.datetime.now(dt.UTC) + LEASE * 2
    second = claim_job(db, "b", later, LEASE, STOPPED_TWICE)
    assert second == Claim(ScheduleRow, job_id, 2, str(WEEK), 1)
    row = status(db, job_id)
    assert (row.status, row.worker, row.attempts) == ("running", "b", 2)
    # a comes back to life: every write of a stale worker is refused, never run twice at once.
    with pytest.raises(JobStopped) as stopped:
        a.progress("still solving")
    assert stopped.value.reason == "lost"
    a.end(status="failed", error="stale")
    assert status(db, job_id).status == "running"
    with db.session() as session, pytest.raises(JobStopped):
        a.row(session)
    # b dies too: the job fails with a reason instead of a third try.
    assert claim_job(db, "c", later + LEASE * 2, LEASE, STOPPED_TWICE) is None
    row = status(db, job_id)
    assert (row.status, row.error, row.attempts) == ("failed", STOPPED_TWICE, 2)
    assert row.finished_at is not None


def test_workers_take_different_jobs_and_both_kinds(db: Database) -> None:
    schedules = [queue(db), queue(db)]
    allocation = queue(db, AllocationRow)
    claims = [claim_job(db, name, T0, LEASE) for name in ("a", "b", "c", "d")]
    assert claims[:3] == [Claim(ScheduleRow, schedules[0], 1, str(WEEK), 1),
                          Claim(ScheduleRow, schedules[1], 1, str(WEEK), 1),
                          Claim(AllocationRow, allocation, 1, str(WEEK), 1)]
    assert claims[3] is None


def test_claims_from_many_threads_never_share_a_job(db: Database) -> None:
    for _n in range(6):
        queue(db)
    got: list[Claim | None] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (claim := claim_job(db, name, T0, LEASE)) is not None:
            with lock:
                got.append(claim)

    threads = [threading.Thread(target=worker, args=(f"w{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(c.id for c in got if c) == sorted(set(c.id for c in got if c))
    assert len(got) == 6


def context(db: Database, settings: ApiSettings) -> JobContext:
    clock = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    return JobContext(db, settings, Networks(None), clock=lambda: clock)


def test_a_stopping_worker_puts_its_job_back_in_line(db: Database,
                                                     settings: ApiSettings) -> None:
    job_id = queue(db)
    claim = claim_job(db, "a", dt.datetime.now(dt.UTC), LEASE)
    assert claim is not None
    stopping = threading.Event()
    stopping.set()  # SIGTERM arrived: the job stops at its first progress report
    assert execute(context(db, settings), claim, "a", stopping) == "released"
    row = status(db, job_id)
    assert (row.status, row.attempts, row.worker, row.claimed_until) == ("queued", 0, None,
                                                                          None)


@pytest.fixture
def quiet_client(settings: ApiSettings) -> Any:
    """The app with no job worker: jobs stay queued until a test claims them."""
    settings.job_worker = False
    with TestClient(create_app(settings)) as client:
        yield client


def test_cancel_a_queued_and_a_running_job(quiet_client: TestClient,
                                           settings: ApiSettings) -> None:
    coordinator = make_user(quiet_client, "coordinator", "coordinator")
    organiser = make_user(quiet_client, "organiser", "organiser")
    db: Database = quiet_client.app.state.db  # type: ignore[attr-defined]
    queued = quiet_client.post("/v1/schedules", json={"week": str(WEEK)},
                               headers=coordinator).json()
    body = quiet_client.post(f"/v1/schedules/{queued['id']}/cancel",
                             headers=coordinator).json()
    assert body["status"] == "cancelled"
    assert claim_job(db, "a", dt.datetime.now(dt.UTC), LEASE) is None  # never runs
    # Running: asked to stop; the worker cancels it at its next progress report.
    running = quiet_client.post("/v1/schedules", json={"week": str(WEEK)},
                                headers=coordinator).json()
    claim = claim_job(db, "a", dt.datetime.now(dt.UTC), LEASE)
    assert claim is not None and claim.id == running["id"]
    body = quiet_client.post(f"/v1/schedules/{running['id']}/cancel",
                             headers=coordinator).json()
    assert (body["status"], body["cancel_requested"]) == ("running", True)
    assert execute(context(db, settings), claim, "a", threading.Event()) == "cancelled"
    body = quiet_client.get(f"/v1/schedules/{running['id']}", headers=coordinator).json()
    assert (body["status"], body["summary"]) == ("cancelled", None)
    # A finished job is not cancelled; an unknown one is not found.
    again = quiet_client.post(f"/v1/schedules/{running['id']}/cancel", headers=coordinator)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    failed = queue(db, status="failed")
    assert quiet_client.post(f"/v1/schedules/{failed}/cancel",
                             headers=coordinator).status_code == 409
    assert quiet_client.post("/v1/schedules/999/cancel", headers=coordinator).status_code == 404
    # Organisers cancel allocations.
    allocation = quiet_client.post("/v1/allocations", json={"week": str(WEEK)},
                                   headers=organiser).json()
    body = quiet_client.post(f"/v1/allocations/{allocation['id']}/cancel",
                             headers=organiser).json()
    assert body["status"] == "cancelled"


def test_a_job_cancelled_while_its_worker_was_away_is_not_retried(db: Database) -> None:
    job_id = queue(db)
    assert claim_job(db, "a", T0, LEASE) is not None
    with db.session() as session:
        session.get(ScheduleRow, job_id).cancel_requested = True  # type: ignore[union-attr]
        session.commit()
    assert claim_job(db, "b", T0 + LEASE * 2, LEASE) is None
    assert status(db, job_id).status == "cancelled"


def test_start_up_leaves_the_jobs_of_other_processes_alone(database_url: str,
                                                           settings: ApiSettings) -> None:
    upgrade(database_url)
    db = Database(database_url)
    held = queue(db, status="running", worker="elsewhere", attempts=1,
                 claimed_until=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    waiting = queue(db)
    settings.job_worker = False
    with TestClient(create_app(settings)):
        pass
    assert (status(db, held).status, status(db, held).worker) == ("running", "elsewhere")
    assert status(db, waiting).status == "queued"  # the API process never solves
    db.dispose()


def test_a_server_refuses_to_start_without_a_shared_secret(database_url: str) -> None:
    settings = ApiSettings(database_url=database_url, secret_key="", job_worker=False)
    with pytest.raises(MissingSecretError, match="LINLI_SECRET_KEY"), \
            TestClient(create_app(settings)):
        pass


def test_the_message_without_a_secret_is_in_chinese(database_url: str) -> None:
    from api.settings import require_secret

    with pytest.raises(MissingSecretError) as refused:
        require_secret(ApiSettings(database_url=database_url, secret_key=""))
    assert "还没有设置 LINLI_SECRET_KEY" in str(refused.value)


def test_an_import_parses_and_saves_off_the_event_loop(
        client: TestClient, coordinator: dict[str, str], community_files: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import api.routers.resources as resources

    seen: list[bool] = []
    read_tables, save_tables = resources.read_tables, resources.save_tables

    def on_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def reading(*args: Any, **kwargs: Any) -> Any:
        seen.append(on_loop())
        return read_tables(*args, **kwargs)

    def saving(*args: Any, **kwargs: Any) -> Any:
        seen.append(on_loop())
        return save_tables(*args, **kwargs)

    monkeypatch.setattr(resources, "read_tables", reading)
    monkeypatch.setattr(resources, "save_tables", saving)
    assert upload(client, coordinator, community_files).status_code == 200
    assert seen == [False, False]


def test_a_worker_says_why_a_job_failed_after_two_stops(db: Database,
                                                         settings: ApiSettings) -> None:
    from api.jobs import JobWorker

    job_id = queue(db, status="running", worker="gone", attempts=2,
                   claimed_until=dt.datetime.now(dt.UTC) - LEASE)
    assert JobWorker(context(db, settings), name="w").run_once() is None
    row = status(db, job_id)
    assert row.status == "failed"
    assert row.error == _("The worker stopped twice while solving this week; nothing was "
                          "saved. Try again, perhaps with a shorter time limit.")
    assert row.error.startswith("排班程序两次中途停止")


def test_a_failed_job_says_so_in_words_and_keeps_the_cause(
        db: Database, settings: ApiSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    from api import jobs
    from api.jobs import JobWorker

    def broken(ctx: JobContext, job: Running) -> None:
        raise ValueError("a planted fault")

    monkeypatch.setitem(jobs.RUNNERS, ScheduleRow, broken)
    job_id = queue(db)
    assert JobWorker(context(db, settings), name="w").run_once() == "failed"
    row = status(db, job_id)
    assert row.status == "failed"
    assert row.error.startswith("这次计算中途出错了")  # the product's language, as the worker's
    assert row.error.endswith("（原因：ValueError: a planted fault）")


def test_linli_worker_once_runs_the_waiting_jobs_and_exits(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    url = f"sqlite:///{tmp_path / 'linli.db'}"
    upgrade(url)
    db = Database(url)
    schedule, allocation = queue(db), queue(db, AllocationRow)
    monkeypatch.setenv("LINLI_DATABASE_URL", url)
    monkeypatch.setenv("LINLI_SOLVE_TIME_LIMIT_S", "1")
    result = CliRunner().invoke(app, ["worker", "--once", "--poll-s", "0.1"])
    assert result.exit_code == 0, result.output
    assert status(db, schedule).status == "solved"
    assert status(db, allocation, AllocationRow).status == "solved"
    db.dispose()
