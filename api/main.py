"""The FastAPI application: ``create_app(settings)`` wires the database, the background workers,
the error format and the routes. ``uvicorn api.main:app`` or ``linli serve`` runs it."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import matcher
from api import errors
from api.calendar import redact_access_log
from api.console import views as console
from api.db import Database
from api.jobs import JobContext, JobWorker, Networks
from api.lifecycle import system_clock
from api.migrate import upgrade
from api.outbox import OutboxSender
from api.replanning import CandidateCache
from api.routers import (
    accessibility,
    audit,
    auth,
    charity,
    communities,
    district,
    district_runs,
    grids,
    maps,
    nearby,
    outbox,
    points,
    resources,
    schedules,
    suggestions,
    tasks,
    templates,
    timebank,
)
from api.schemas import Health
from api.settings import ApiSettings, cors_origins, require_secret
from api.throttle import LoginGuard, SlidingWindow
from api.wechat import Code2Session, JsCode2Session

DESCRIPTION = """
Linli (邻里) matches a community's volunteers, needs and partner merchants (社区合伙人).

* **Coordinators** (社区书记, 社工) keep volunteers, needs and merchants, solve a week as a job,
  review and publish it, ask who could take any occurrence, and read the audit log of who saw
  residents' details or changed anything.
* **Volunteers** see only their own tasks, accept, decline (re-planned at once), check in and
  complete them, and redeem points (积分) at partner merchants.
* **Organisers** (慈善组织) keep donations and households' requests, allocate them as a job,
  publish (deliveries then join the week's schedule) and the public monthly report follows.
* **Residents**, with no login, ask what is within their 15-minute walk (`GET /v1/nearby`):
  clinics, pharmacies, canteens, bus stops and partner merchants, nearest first, each with its
  route and directions. Lookups are throttled per client address.
* **Merchants** see the orders they serve per day, their rewards and redemptions, and a monthly
  settlement.

Log in with `POST /v1/auth/token` (a JSON body `{"username", "password"}` as a mini program's
`wx.request` sends, or the OAuth2 password form) and send `Authorization: Bearer <token>`, or
send an `X-API-Key`. Trade the refresh token for a new pair at `POST /v1/auth/refresh` (each
works once) and end a login with `POST /v1/auth/logout`. Failed logins are throttled per
username and per client address (429 with `Retry-After`).

**Communities.** One deployment serves the communities (社区) of street offices (街道) and
districts (区). A coordinator, organiser, grid worker, merchant or volunteer works in the
community of her account and sees nothing of the others. Street-office and district admins
(`street_admin`, `district_admin`) read what a coordinator reads, in one community of theirs at
a time: they send its code in the header `X-Linli-Community: <code>` (a code outside their scope
answers 404, as an unknown one does); they add communities (`POST /v1/communities`) and
accounts (`POST /v1/users`) and write nothing else. `GET /v1/communities` lists the caller's.
Ids of volunteers and merchants are the deployment's; a need, donation, request, member or grid
unit id another community uses already is refused (409 `id_taken`): give yours a prefix.

Every error is `application/problem+json` (RFC 9457): `title` and `detail` in the language of
`Accept-Language` (Chinese unless it asks for English), `type` and `code` stable for programs.
`GET /v1/me/tasks` and the calendar feed answer `If-None-Match` with 304 while nothing shown has
changed.
"""


def create_app(settings: ApiSettings | None = None, *, wechat: Code2Session | None = None
               ) -> FastAPI:
    """Build the app. The database is migrated to the current schema on start-up. ``wechat``
    turns on login from a WeChat mini program (:mod:`api.wechat`); without it those routes
    answer 404 ``wechat_login_not_configured``."""
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in AnyIO's thread pool (40 threads by default). The work is mostly
        # Python holding the GIL, so past a few threads they only fight over it: measured on
        # GET /v1/me/tasks, throughput falls as concurrency rises. A few threads per process
        # are enough to overlap database round trips.
        require_secret(settings)  # every process must sign and check tokens alike
        to_thread.current_default_thread_limiter().total_tokens = settings.threads
        # Password hashing (Argon2: slow on purpose) has threads of its own, so a flood of
        # logins waits for them and never takes the threads the other routes run on.
        app.state.password_limiter = CapacityLimiter(settings.password_threads)
        upgrade(settings.database_url)
        db = Database(settings.database_url)
        app.state.db = db
        app.state.networks = Networks(settings.network_path)
        app.state.candidates = CandidateCache(app.state.networks.get)
        # Jobs run in `linli worker` processes; a job worker thread here only for tests (and it
        # claims jobs exactly as those processes do). Nothing here touches existing jobs: other
        # processes may be running them.
        app.state.worker = None
        if settings.job_worker:
            app.state.worker = JobWorker(JobContext(db, settings, app.state.networks,
                                                    clock=lambda: app.state.clock()),
                                         poll_s=0.5)
            app.state.worker.start()
        sender = OutboxSender(db, settings)
        if settings.run_workers:
            sender.start()
        # Everything loaded so far (the matcher's libraries, models, routes) lives as long as
        # the process: take it out of the garbage collector's view, or every full collection
        # walks it again (about 0.1 s each, a latency spike for whichever requests wait).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if app.state.worker is not None:
                app.state.worker.stop()
            if settings.run_workers:
                sender.stop()
            db.dispose()
            await db.dispose_async()

    app = FastAPI(title="Linli 邻里", version=matcher.__version__, description=DESCRIPTION,
                  lifespan=lifespan, responses=errors.ERROR_RESPONSES)
    app.state.settings = settings
    app.state.login_guard = LoginGuard(settings.login_failures_per_user,
                                       settings.login_failures_per_address,
                                       settings.login_window_s)
    app.state.nearby_guard = SlidingWindow(settings.nearby_per_address,
                                           settings.nearby_window_s)
    app.state.places = nearby.Places(settings)
    if wechat is None and settings.wechat_appid and settings.wechat_secret:
        wechat = JsCode2Session(settings.wechat_appid, settings.wechat_secret)
    app.state.wechat = wechat
    app.state.clock = system_clock  # the community's clock for task time rules (tests set it)
    errors.install(app)
    origins = cors_origins(settings)
    if origins:
        # Outermost, so a browser's preflight (OPTIONS) is answered before anything asks for
        # a login. Bearer tokens, not cookies: no credentials mode.
        app.add_middleware(CORSMiddleware, allow_origins=origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key",
                                          "Idempotency-Key", "If-None-Match", "Accept-Language",
                                          "X-Request-ID"],
                           expose_headers=["ETag", "Retry-After", "X-Request-ID", "Link",
                                           "Content-Language"],
                           max_age=600)
    redact_access_log()  # a calendar link is a secret; uvicorn logs every path
    # The volunteers' task routes first: FastAPI tries routes in order, and theirs is the
    # busiest path.
    for module in (tasks, auth, resources, schedules, points, charity, audit, outbox,
                   timebank, nearby, grids, templates, maps, suggestions, accessibility,
                   communities, district, district_runs):
        app.include_router(module.router)

    @app.get("/health", tags=["service"], response_model=Health)
    def health() -> Health:
        """Liveness probe."""
        return Health(status="ok", version=matcher.__version__)

    console.install(app)  # 邻里工作台, the web console, over the routes above

    return app


app = create_app()
