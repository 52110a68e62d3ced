"""Service settings (``LINLI_`` environment variables), beside the matcher's own settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from matcher.params import DEFAULT_TIME_LIMIT_S


class ApiSettings(BaseSettings):
    """Where the data lives, how tokens are signed, how points are earned and who is told."""

    model_config = SettingsConfigDict(env_prefix="LINLI_", extra="ignore")

    database_url: str = Field("sqlite:///linli.db",
                              description="SQLAlchemy URL; postgresql+psycopg://... for servers")
    secret_key: str = Field("", description="signs access tokens; required (every server "
                            "process must share it), except that `linli serve --demo` makes one")
    token_minutes: int = Field(12 * 60, gt=0, description="access token lifetime")
    points_per_minute: int = Field(1, ge=0, description="points credited per minute of service")
    time_overdraft_min: int = Field(
        0, ge=0, description="time bank: minutes a member's time account may go below zero "
        "(the community's limit; never for points)")
    time_night_multiplier: float = Field(
        1.0, ge=1, description="time bank: minutes credited per minute served before 06:00 or "
        "after 20:00")
    time_red_multiplier: float = Field(
        1.0, ge=1, description="time bank: minutes credited per minute served on a red need")
    time_skill_multiplier: float = Field(
        1.0, ge=1, description="time bank: minutes credited per minute served on a need that "
        "asks for a certified skill")
    webhook_url: str | None = Field(None, description="where outbox events are POSTed")
    webhook_retry_hours: float = Field(
        48.0, gt=0, description="how long a failing event is retried before it is a dead "
        "letter (kept; a coordinator can redeliver it)")
    webhook_max_backoff_s: float = Field(
        900.0, gt=0, description="longest wait between two tries of one event")
    webhook_timeout_s: float = Field(5.0, gt=0, description="time a receiver has to answer")
    solve_time_limit_s: float = Field(DEFAULT_TIME_LIMIT_S, gt=0, description="time limit of a "
                                      "schedule job (deterministic time unless "
                                      "solve_wall_clock; the default is SolveParams')")
    solve_wall_clock: bool = Field(False, description="count a schedule job's limit in "
                                   "wall-clock seconds (re-solving may then differ)")
    solve_engine: Literal["local", "ray"] = Field(
        "local", description="where a district run's parts are solved: local (one after the "
        "other in the worker) or ray (each part a Ray task; see ray_address)")
    ray_address: str | None = Field(
        None, description="the Ray cluster of solve_engine=ray: auto (the cluster this machine "
        "belongs to), ray://host:10001 (a cluster's client port); unset, the worker starts Ray "
        "on its own machine")
    network_path: str | None = Field(None, description="street network for walking times")
    threads: int = Field(6, ge=1, description="threads per process running sync routes")
    password_threads: int = Field(2, ge=1, description="threads per process hashing passwords "
                                  "at login (apart from the routes' threads)")
    login_failures_per_user: int = Field(5, ge=1, description="failed logins of one username "
                                         "in login_window_s before 429")
    login_failures_per_address: int = Field(20, ge=1, description="failed logins from one "
                                            "client address in login_window_s before 429")
    login_window_s: float = Field(300, gt=0, description="the login throttling window")
    run_workers: bool = Field(True, description="deliver webhooks from the API process")
    job_worker: bool = Field(False, description="also run one job worker thread in the API "
                             "process (tests; `linli serve --demo` starts its own); otherwise "
                             "`linli worker` processes run the jobs")
    job_lease_s: float = Field(30.0, gt=0, description="how long a worker's claim on a job "
                               "lasts unless renewed (it renews it while it works): a job whose "
                               "worker stopped is retried this long after")
    nearby_per_address: int = Field(60, ge=1, description="lookups of GET /v1/nearby from one "
                                    "client address in nearby_window_s before 429")
    nearby_window_s: float = Field(60, gt=0, description="the lookup throttling window")
    places_path: str | None = Field(
        None, description="an OSM extract (.osm, .osm.pbf) whose public places (clinics, "
        "schools, bus stops ...) the lookup finds; the network file's own are used when it is "
        "one")
    community: str = Field("邻里社区", description="the community's name on public reports")
    cors_origins: str = Field(
        "", description="browser origins allowed to call the API from their pages (CORS), "
        "comma-separated (https://app.example.org,https://servicewechat.com); none by default")
    refresh_days: int = Field(30, gt=0, description="refresh token lifetime: how long an app "
                              "stays logged in without its password")
    wechat_appid: str | None = Field(None, description="the mini program's AppID; with "
                                     "wechat_secret, turns on login with WeChat")
    wechat_secret: str | None = Field(None, description="the mini program's AppSecret (the "
                                      "server asks WeChat's code2session with it)")
    public_url: str | None = Field(
        None, description="base of calendar feed links (https://linli.example.org); unset, "
        "links are built from the request, so set it when a proxy hides the public address")


def cors_origins(settings: ApiSettings) -> list[str]:
    """The origins of ``LINLI_CORS_ORIGINS``, each without a trailing slash (a browser's
    ``Origin`` header never has one)."""
    return [o.strip().rstrip("/") for o in settings.cors_origins.split(",") if o.strip()]


class MissingSecretError(RuntimeError):
    """The service was started without ``LINLI_SECRET_KEY``."""


def require_secret(settings: ApiSettings) -> None:
    """Refuse to serve without a shared secret: a key made up per process would sign tokens the
    other processes (and the next restart) reject.

    Raises
    ------
    MissingSecretError
        when ``LINLI_SECRET_KEY`` is empty.
    """
    from matcher.i18n import _

    if not settings.secret_key:
        raise MissingSecretError(_(
            "LINLI_SECRET_KEY is not set. Every server process signs logins with it, so set the "
            "same long random value for all of them (for example: python -c \"import secrets; "
            "print(secrets.token_urlsafe(32))\"), or try Linli with `linli serve --demo`."))
