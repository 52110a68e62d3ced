"""Service settings (``LINLI_`` environment variables), beside the matcher's own settings."""

from __future__ import annotations

import secrets

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Where the data lives, how tokens are signed, how points are earned and who is told."""

    model_config = SettingsConfigDict(env_prefix="LINLI_", extra="ignore")

    database_url: str = Field("sqlite:///linli.db",
                              description="SQLAlchemy URL; postgresql+psycopg://... for servers")
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32),
                            description="signs access tokens; set it, or tokens die on restart")
    token_minutes: int = Field(12 * 60, gt=0, description="access token lifetime")
    points_per_minute: int = Field(1, ge=0, description="points credited per minute of service")
    webhook_url: str | None = Field(None, description="where outbox events are POSTed")
    webhook_retry_hours: float = Field(
        48.0, gt=0, description="how long a failing event is retried before it is a dead "
        "letter (kept; a coordinator can redeliver it)")
    webhook_max_backoff_s: float = Field(
        900.0, gt=0, description="longest wait between two tries of one event")
    webhook_timeout_s: float = Field(5.0, gt=0, description="time a receiver has to answer")
    solve_time_limit_s: float = Field(30.0, gt=0, description="time limit of a schedule job")
    network_path: str | None = Field(None, description="street network for walking times")
    threads: int = Field(6, ge=1, description="threads per process running sync routes")
    password_threads: int = Field(2, ge=1, description="threads per process hashing passwords "
                                  "at login (apart from the routes' threads)")
    login_failures_per_user: int = Field(5, ge=1, description="failed logins of one username "
                                         "in login_window_s before 429")
    login_failures_per_address: int = Field(20, ge=1, description="failed logins from one "
                                            "client address in login_window_s before 429")
    login_window_s: float = Field(300, gt=0, description="the login throttling window")
    nearby_per_address: int = Field(60, ge=1, description="lookups of GET /v1/nearby from one "
                                    "client address in nearby_window_s before 429")
    nearby_window_s: float = Field(60, gt=0, description="the lookup throttling window")
    places_path: str | None = Field(
        None, description="an OSM extract (.osm, .osm.pbf) whose public places (clinics, "
        "schools, bus stops ...) the lookup finds; the network file's own are used when it is "
        "one")
    run_workers: bool = Field(True, description="run schedule jobs and webhooks in-process")
    community: str = Field("邻里社区", description="the community's name on public reports")
    public_url: str | None = Field(
        None, description="base of calendar feed links (https://linli.example.org); unset, "
        "links are built from the request, so set it when a proxy hides the public address")
