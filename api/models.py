"""The database tables (SQLAlchemy 2 ORM). Schema changes go through Alembic migrations.

Community resources keep the SCHEMA.md columns in their normal form, lists (skills, services,
days, availability windows) as JSON arrays (JSONB on PostgreSQL, with GIN indexes where routes
filter by an item): the importer validated them, and the domain types check their invariants
again when :mod:`api.community` builds them from rows. Points and the time bank's minutes live in
one double-entry ledger (an account holds one currency): every transfer is two entries that sum
to zero, and a balance is the sum of an account's entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    SessionTransaction,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

# A list column: JSON text on SQLite, JSONB on PostgreSQL (indexable with GIN, ``@>``).
JSONList = JSON().with_variant(JSONB(), "postgresql")


class json_has(FunctionElement[bool]):  # noqa: N801 - reads as a SQL function
    """``json_has(column, value)``: the JSON array in ``column`` holds the string ``value``.
    PostgreSQL asks ``column @> '["value"]'`` (a GIN index answers it); SQLite looks through
    ``json_each``."""

    type = Boolean()
    name = "json_has"
    inherit_cache = True


@compiles(json_has, "postgresql")
def _json_has_postgresql(element: json_has, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = list(element.clauses)
    return (f"({compiler.process(column, **kw)} @> "
            f"jsonb_build_array(CAST({compiler.process(value, **kw)} AS TEXT)))")


@compiles(json_has)
def _json_has_default(element: json_has, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = list(element.clauses)
    return (f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) "
            f"WHERE json_each.value = {compiler.process(value, **kw)})")


def has_item(column: Any, value: str) -> ColumnElement[bool]:
    """A filter: the list in ``column`` (a :data:`JSONList` column) holds ``value``."""
    return json_has(column, value)


def _no_items() -> list[Any]:
    return []


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp on every database: SQLite keeps no zone, so values are stored
    as UTC and read back as UTC (PostgreSQL's timestamptz does this itself)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect
                           ) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect
                             ) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    """Metadata shared by every table (Alembic's target)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Stamped:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now,
                                                    server_default=func.now())


class District(Stamped, Base):
    """A district (区): street offices below it."""

    __tablename__ = "districts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(128))


class StreetOffice(Stamped, Base):
    """A street office (街道) of a district: communities below it."""

    __tablename__ = "street_offices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)


class Community(Stamped, Base):
    """A community (社区) of a street office: the owner of every resource, need, schedule,
    allocation, account and audit entry (:class:`Owned`)."""

    __tablename__ = "communities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    street_office_id: Mapped[int] = mapped_column(ForeignKey("street_offices.id"), index=True)
    # Where the outbox POSTs this community's events (its own mini program's backend); none:
    # the deployment's webhook (api.outbox).
    webhook_url: Mapped[str | None] = mapped_column(String(500))


class Owned:
    """A row that belongs to one community. A session scoped to a community
    (:func:`scope_session`) reads only its rows and gives new rows its id."""

    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)


class User(Stamped, Base):
    """Someone who logs in. A volunteer or merchant user is linked to that record."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    volunteer_id: Mapped[str | None] = mapped_column(
        ForeignKey("volunteers.volunteer_id", ondelete="SET NULL"), index=True)
    merchant_id: Mapped[str | None] = mapped_column(
        ForeignKey("merchants.merchant_id", ondelete="SET NULL"), index=True)
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    grid_units: Mapped[str | None] = mapped_column(Text)  # a grid worker's units, ";"-joined
    # The WeChat user (openid of the mini program) who linked this account, if any.
    wechat_openid: Mapped[str | None] = mapped_column(String(128), unique=True)
    # The community a community role works in (a volunteer: where she registered), or the
    # street office or district an admin reads.
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    street_office_id: Mapped[int | None] = mapped_column(ForeignKey("street_offices.id"))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    __table_args__ = (
        CheckConstraint(
            "role in ('coordinator', 'organiser', 'volunteer', 'merchant', 'grid_worker', "
            "'street_admin', 'district_admin')", name="ck_user_role"),
        CheckConstraint(
            "(role = 'street_admin' and street_office_id is not null) or "
            "(role = 'district_admin' and district_id is not null) or "
            "(role not in ('street_admin', 'district_admin') and community_id is not null)",
            name="ck_user_scope"),
    )


class RefreshTokenRow(Base):
    """A refresh token, stored as its SHA-256 digest. Each use replaces it with a new one of
    the same family (one login); a used one presented again means it was copied, and ends
    the whole family."""

    __tablename__ = "refresh_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class VolunteerRow(Owned, Stamped, Base):
    __tablename__ = "volunteers"
    volunteer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    skills: Mapped[list[str]] = mapped_column(JSONList, default=_no_items)
    # [{"day": "mon", "start": 480, "end": 720}, ...]: minutes after midnight, as tasks keep them
    availability: Mapped[list[dict[str, Any]]] = mapped_column(JSONList)
    max_hours_week: Mapped[float] = mapped_column(Float, default=4.0)
    __table_args__ = (Index("ix_volunteers_skills", "skills", postgresql_using="gin"),)


class NeedRow(Owned, Stamped, Base):
    __tablename__ = "needs"
    need_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(64), index=True)
    beneficiary: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    days: Mapped[list[str]] = mapped_column(JSONList)
    window: Mapped[str] = mapped_column(String(16))
    duration_min: Mapped[int] = mapped_column(Integer)
    skills: Mapped[list[str]] = mapped_column(JSONList, default=_no_items)
    volunteers_needed: Mapped[int] = mapped_column(Integer, default=1)
    priority: Mapped[str] = mapped_column(String(8), default="blue", index=True)
    merchant_service: Mapped[str] = mapped_column(String(64), default="")
    # A one-off need (a published allocation's delivery) belongs to this ISO week only.
    only_week: Mapped[str | None] = mapped_column(String(10), index=True)
    allocation_id: Mapped[int | None] = mapped_column(
        ForeignKey("allocations.id", ondelete="CASCADE", name="fk_needs_allocation_id"),
        index=True)


class MerchantRow(Owned, Stamped, Base):
    __tablename__ = "merchants"
    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    services: Mapped[list[str]] = mapped_column(JSONList)
    capacity_per_day: Mapped[int] = mapped_column(Integer)
    open: Mapped[str] = mapped_column(String(16))
    __table_args__ = (Index("ix_merchants_services", "services", postgresql_using="gin"),)


class GridUnitRow(Owned, Stamped, Base):
    """A grid unit (网格): its shape as GeoJSON, kept in the order of the uploaded file (a
    place on a border belongs to the first unit)."""

    __tablename__ = "grid_units"
    unit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    geometry: Mapped[str] = mapped_column(Text)


class ResourceRow(Owned, Stamped, Base):
    """A coordinator's entry in the resource list (资源清单): a place added by hand, or, under
    the id of a place from OpenStreetMap or a merchant (``osm:n123``, ``merchant:M001``), its
    correction (category, name, place, services) or, with ``hidden``, its removal."""

    __tablename__ = "resources"
    resource_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    services: Mapped[list[str]] = mapped_column(JSONList)
    hidden: Mapped[bool] = mapped_column(Boolean)


class JobColumns(Stamped):
    """What every job table has, so a job worker claims, leases, retries and cancels any of them
    the same way (:mod:`api.jobs`): its week, status, progress and the worker's claim."""

    __tablename__: str
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(10), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Claimed from the database by a job worker (api.jobs): the worker holds a lease it renews
    # while it works; a lease that ran out means its worker stopped, and the job is retried.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())


class WeeklyJob(Owned, JobColumns):
    """Work on one week of one community that runs in the background and is then published: a
    schedule solve or an allocation run (queued, running, solved, failed or cancelled,
    published or superseded)."""

    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DistrictRunRow(JobColumns, Base):
    """The week of every community of a street office (or a district) solved as one job
    (:mod:`api.district_runs`); it stores an ordinary draft schedule per community solved.
    Not a community's row: the admin who queued it reads it, by her street office or
    district."""

    __tablename__ = "district_runs"
    __table_args__ = (
        CheckConstraint("status in ('queued', 'running', 'solved', 'failed', 'cancelled')",
                        name="ck_district_run_status"),
    )
    # A street admin's run has her office; a district admin's only its district.
    street_office_id: Mapped[int | None] = mapped_column(ForeignKey("street_offices.id"),
                                                         index=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    # Each community's limit (deterministic seconds); None: the service's solve_time_limit_s.
    time_limit_s: Mapped[float | None] = mapped_column(Float)
    # Per community, by code: state (queued, solving, solved, failed, skipped), covered,
    # occurrences, schedule_id and why (a failure's or a skip's reason in words).
    communities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ScheduleRow(WeeklyJob, Base):
    """A solve of one week, from queued to published (or superseded)."""

    __tablename__ = "schedules"
    __table_args__ = (
        # At most one published schedule per community and week, enforced by the database.
        Index("uq_schedules_published_week", "community_id", "week", unique=True,
              postgresql_where=text("status = 'published'"),
              sqlite_where=text("status = 'published'")),
        CheckConstraint("status in ('queued', 'running', 'solved', 'failed', 'published', "
                        "'superseded', 'cancelled')", name="ck_schedule_status"),
    )
    # Raised in the same transaction as every change of the schedule's tasks, so a process
    # may keep the week pinned with them until the number moves (api.replanning).
    tasks_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The district run that solved it (with the other communities of its street office).
    district_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("district_runs.id", ondelete="SET NULL"), index=True)


class SuggestionRow(WeeklyJob, Base):
    """Where to recruit or whom to partner with for one week, each suggestion checked by
    re-solving (``kind`` ``recruits`` with its ``skill``, or ``partners``); the suggestions are
    the summary. Never published: a coordinator reads them."""

    __tablename__ = "suggestions"
    __table_args__ = (
        CheckConstraint("status in ('queued', 'running', 'solved', 'failed', 'cancelled')",
                        name="ck_suggestion_status"),
        CheckConstraint("kind in ('recruits', 'partners')", name="ck_suggestion_kind"),
    )
    kind: Mapped[str] = mapped_column(String(16))
    skill: Mapped[str | None] = mapped_column(String(40))
    k: Mapped[int] = mapped_column(Integer)


class TaskRow(Base):
    """One volunteer on one occurrence of a schedule, and where the volunteer is with it."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    need_id: Mapped[str] = mapped_column(ForeignKey("needs.need_id"))
    day: Mapped[str] = mapped_column(String(3))
    date: Mapped[dt.date]
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    volunteer_id: Mapped[str] = mapped_column(ForeignKey("volunteers.volunteer_id"))
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.merchant_id"))
    walk_min: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), default="proposed")
    decline_reason: Mapped[str | None] = mapped_column(Text)
    # A mark, not a state: the rule an edit of the community broke (None: the task keeps every
    # rule), and since when; the task keeps its state until a coordinator resolves it.
    at_risk: Mapped[str | None] = mapped_column(Text)
    at_risk_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now,
                                                    onupdate=_now)
    # The calendar's SEQUENCE: raised by api.calendar.task_changed whenever the state or the
    # time changes, so subscribed calendars replace their copy.
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (
        Index("ix_tasks_volunteer_date", "volunteer_id", "date"),
        Index("ix_tasks_schedule", "schedule_id", "need_id", "day"),
        CheckConstraint("state in ('proposed', 'offered', 'accepted', 'declined', "
                        "'checked_in', 'completed', 'confirmed', 'cancelled')",
                        name="ck_task_state"),
    )


class PaidSeat(Base):
    """One paid place of one occurrence, written with the ledger credit: an occurrence is paid
    at most once per volunteer it needs, and a task at most once, enforced by the database (the
    code picks the seat, below the need's ``volunteers_needed``)."""

    __tablename__ = "paid_seats"
    need_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    date: Mapped[dt.date] = mapped_column(primary_key=True)
    seat: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), unique=True)
    transfer: Mapped[str] = mapped_column(String(64))
    __table_args__ = (CheckConstraint("seat >= 0", name="ck_paid_seat_not_negative"),)


class UnmetRow(Base):
    __tablename__ = "unmet"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"),
                                             index=True)
    need_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(3))
    date: Mapped[dt.date]
    reason_code: Mapped[str] = mapped_column(String(48))
    reason: Mapped[str] = mapped_column(Text)
    fix: Mapped[str] = mapped_column(Text, default="")


class DonationRow(Owned, Stamped, Base):
    """Goods at a pickup place (SCHEMA.md donations.csv)."""

    __tablename__ = "donations"
    donation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    donor: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    expires: Mapped[str] = mapped_column(String(10), default="")


class RequestRow(Owned, Stamped, Base):
    """A household asking for goods (SCHEMA.md requests.csv)."""

    __tablename__ = "requests"
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    beneficiary: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    priority: Mapped[str] = mapped_column(String(8), default="blue")


class AllocationRow(WeeklyJob, Base):
    """An allocation run for one week, from queued to published (or superseded)."""

    __tablename__ = "allocations"
    __table_args__ = (
        Index("uq_allocations_published_week", "community_id", "week", unique=True,
              postgresql_where=text("status = 'published'"),
              sqlite_where=text("status = 'published'")),
        CheckConstraint("status in ('queued', 'running', 'solved', 'failed', 'published', "
                        "'superseded', 'cancelled')", name="ck_allocation_status"),
    )


class AllocationLineRow(Base):
    """Units of one donation for one request (a row of allocations.csv). Ids are kept as text:
    the report of a past month stays readable after a donation or request is deleted."""

    __tablename__ = "allocation_lines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id", ondelete="CASCADE"),
                                               index=True)
    donation_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[int] = mapped_column(Integer)
    walk_min: Mapped[float] = mapped_column(Float)
    delivery: Mapped[bool] = mapped_column(default=False)
    # The day a volunteer delivers, or the last day to collect: never after the goods expire.
    # Empty on lines of runs made before hand-over dates existed.
    date: Mapped[dt.date | None]
    # Where the household is, already coarsened: the public report never needs more.
    area_lat: Mapped[float] = mapped_column(Float)
    area_lon: Mapped[float] = mapped_column(Float)


class ShortRow(Base):
    """A request an allocation could not fill completely, and why."""

    __tablename__ = "allocation_short"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id", ondelete="CASCADE"),
                                               index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8))
    requested: Mapped[int] = mapped_column(Integer)
    allocated: Mapped[int] = mapped_column(Integer)
    reason_code: Mapped[str] = mapped_column(String(48))
    reason: Mapped[str] = mapped_column(Text)
    area_lat: Mapped[float] = mapped_column(Float)
    area_lon: Mapped[float] = mapped_column(Float)


class Account(Owned, Base):
    """A ledger account. Points: a volunteer's points, a merchant's takings, the community's
    issuer. Minutes (the time bank, kinds ``time_*``): a volunteer's or a family member's time
    account, the community's issuer of minutes and its subsidy account that pays red needs.

    The owner of a community's ``time_issuer`` and ``time_subsidy`` is the community
    (``community`` while there is one), so a second community gets accounts of its own. A
    community's ``time_clearing`` account owned by another community's id holds what it owes
    that community (below zero: what that community owes it), see :mod:`api.ledger`;
    ``points_clearing`` does the same for points (a volunteer paid for work in another
    community than her own)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(64))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(8), default="points", server_default="points")
    # The lowest balance allowed: 0 for points, minus the community's overdraft for minutes.
    floor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    __table_args__ = (
        UniqueConstraint("community_id", "kind", "owner", name="uq_accounts_community_kind_owner"),
        # The database refuses a balance below its floor even if the code had a bug; only the
        # issuers, the community's subsidy (which pays red needs as policy) and the clearing
        # accounts (what another community owes) go lower.
        CheckConstraint("kind in ('issuer', 'time_issuer', 'time_subsidy', 'time_clearing', "
                        "'points_clearing') or balance >= floor",
                        name="ck_account_not_negative"),
        CheckConstraint("currency in ('points', 'minutes')", name="ck_account_currency"),
        CheckConstraint("floor <= 0 and (currency = 'minutes' or floor = 0)",
                        name="ck_account_floor"),
    )


class LedgerEntry(Stamped, Base):
    """Half of a transfer; the two halves share ``transfer`` and sum to zero. ``purpose`` names
    a time-bank movement for statements (earned, bonus, transfer, drawn, subsidy)."""

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transfer: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    memo: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(String(16), default="", server_default="")


class MemberRow(Owned, Stamped, Base):
    """A resident with a time account and no login (an elder parent): registered by a
    coordinator, served through requests filed for her."""

    __tablename__ = "members"
    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)


class FamilyLink(Stamped, Base):
    """A volunteer's family member: asked for by the volunteer, usable once a coordinator has
    recorded the member's consent (who, when, how)."""

    __tablename__ = "family_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    volunteer_id: Mapped[str] = mapped_column(ForeignKey("volunteers.volunteer_id",
                                                         ondelete="CASCADE"), index=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.member_id", ondelete="CASCADE"),
                                           index=True)
    relation: Mapped[str] = mapped_column(String(32))
    consent_note: Mapped[str | None] = mapped_column(Text)
    consent_by: Mapped[int | None] = mapped_column(Integer)
    consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("volunteer_id", "member_id"),)


class TimeRequest(Stamped, Base):
    """A service request paid from a time account: its need, for whom, and who pays."""

    __tablename__ = "time_requests"
    need_id: Mapped[str] = mapped_column(ForeignKey("needs.need_id", ondelete="CASCADE"),
                                         primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.member_id"), index=True)
    payer_kind: Mapped[str] = mapped_column(String(16))
    payer_owner: Mapped[str] = mapped_column(String(64))
    filed_by: Mapped[int] = mapped_column(Integer)


class IdempotencyKey(Stamped, Base):
    """A request that moved points, by its key, scoped by who sent it to which operation: a
    retry of the same request gets the first answer back; the key on another request is
    refused (``fingerprint`` tells them apart)."""

    __tablename__ = "idempotency_keys"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(8), primary_key=True)
    route: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)


class Reward(Stamped, Base):
    __tablename__ = "rewards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.merchant_id",
                                                        ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    points: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
    __table_args__ = (CheckConstraint("points > 0", name="ck_reward_points_positive"),)


class Redemption(Stamped, Base):
    """Points a volunteer spends at a merchant: held at once, settled when the merchant
    confirms, returned when it refuses."""

    __tablename__ = "redemptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    volunteer_id: Mapped[str] = mapped_column(ForeignKey("volunteers.volunteer_id"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.merchant_id"), index=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    points: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Owned, Base):
    """Who read personal data or changed anything, when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text, default="")


class OutboxEvent(Owned, Stamped, Base):
    """A change someone must hear about, delivered to the webhook with retries (api.outbox).

    ``pending`` until the receiver takes it (``delivered``); after failing for the whole retry
    window it is ``dead``: kept, listed for coordinators and delivered again on request.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(80), index=True)  # volunteer:V1 / merchant:M1
    kind: Mapped[str] = mapped_column(String(48))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending",
                                        server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=_now)
    # A sender owns the event until then (it is POSTing it); after a crash the lease runs out
    # and another sender takes it.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Since when deliveries have failed without a success; the retry window counts from here.
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        CheckConstraint("status in ('pending', 'delivered', 'dead')", name="ck_outbox_status"),
    )


class CommunityVersion(Base):
    """One row per community: a number raised in the same transaction as every change of the
    community as a week sees it (volunteers, needs, merchants, an allocation's status), so a
    process may keep the week it built until the number moves (:mod:`api.replanning`)."""

    __tablename__ = "community_version"
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"),
                                              primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


# What a week is built from: a change to any of these raises the community's version.
COMMUNITY_ROWS = (VolunteerRow, NeedRow, MerchantRow)

# The session's community: an id, or a function giving it (a request's, known once the
# caller is); absent or None, the session is the deployment's own (jobs' claims, the CLI,
# logins) and reads every community.
SCOPE = "linli_community"


class NoCommunityError(RuntimeError):
    """A row was written for no community in a deployment with several."""


def scope_session(session: Session, community_id: int | None) -> Session:
    """Let ``session`` read and write only the community ``community_id``'s rows."""
    session.info[SCOPE] = community_id
    return session


@contextmanager
def in_community(session: Session, community_id: int) -> Iterator[Session]:
    """``session`` reads only ``community_id``'s rows inside the block (a read of another
    community than the request's own), then its own scope again."""
    before = session.info.get(SCOPE)
    session.info[SCOPE] = community_id
    try:
        yield session
    finally:
        session.info[SCOPE] = before


def session_community(session: Session) -> int | None:
    """The community ``session`` is scoped to (None: unscoped)."""
    scope = session.info.get(SCOPE)
    if callable(scope):
        scope = scope()
    return scope if isinstance(scope, int) else None


def sole_community(session: Session) -> int:
    """The deployment's only community, for writes of an unscoped session (the CLI's seed, a
    single community's tests); refused when there are several, because then the writer must
    say which."""
    ids = session.scalars(select(Community.id).order_by(Community.id).limit(2)).all()
    if len(ids) != 1:
        raise NoCommunityError(
            "this deployment has several communities (or none): say which one the rows "
            "belong to")
    return ids[0]


def _changed_communities(session: Session) -> set[int | None]:
    changed: set[int | None] = set()
    for item in (*session.new, *session.dirty, *session.deleted):
        if isinstance(item, COMMUNITY_ROWS) or (isinstance(item, AllocationRow) and (
                item in session.new or item in session.deleted
                or inspect(item).attrs.status.history.has_changes())):
            # publishing (or superseding) an allocation brings or takes one-off needs
            changed.add(item.community_id)
    return changed


def bump_version(session: Session, community_id: int | None = None) -> None:
    """Raise the version of ``community_id`` (every community's when None) in ``session``'s
    transaction."""
    statement = update(CommunityVersion).values(version=CommunityVersion.version + 1)
    if community_id is not None:
        statement = statement.where(CommunityVersion.community_id == community_id)
    session.execute(statement, execution_options={"linli_unscoped": True})


def _fill_community(session: Session) -> None:
    """New rows of a community get the session's community (or the deployment's only one)."""
    fallback: int | None = None
    for item in session.new:
        wants = (isinstance(item, Owned)
                 or (isinstance(item, User) and item.role not in ADMIN_ROLES))
        if wants and item.community_id is None:
            if fallback is None:
                fallback = session_community(session) or sole_community(session)
            item.community_id = fallback


ADMIN_ROLES = frozenset({"street_admin", "district_admin"})


def bump_tasks_version(session: Session, schedule_ids: set[int] | None) -> None:
    """Raise the tasks' version of ``schedule_ids`` (None: of every schedule) in ``session``'s
    transaction, once per transaction: a process that changed the tasks knows then that the
    version it reads after its change is the one before plus one unless another transaction
    changed them too (:meth:`api.replanning.CandidateCache.declined`)."""
    raised: set[int] | None = session.info.setdefault(TASKS_RAISED, set())
    if raised is None or (schedule_ids is not None and schedule_ids <= raised):
        return  # every schedule (None), or these, raised already in this transaction
    statement = update(ScheduleRow).values(tasks_version=ScheduleRow.tasks_version + 1)
    if schedule_ids is not None:
        statement = statement.where(ScheduleRow.id.in_(sorted(schedule_ids - raised)))
        raised |= schedule_ids
    session.execute(statement, execution_options={"synchronize_session": False})
    if schedule_ids is None:
        session.info[TASKS_RAISED] = None


TASKS_RAISED = "linli.tasks_version_raised"


@event.listens_for(Session, "after_transaction_end")
def _forget_raised(session: Session, transaction: SessionTransaction) -> None:
    """The end of the transaction or of a savepoint (whose rollback undoes its raise), not of
    a flush's inner step: the next change raises again."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(TASKS_RAISED, None)


# What of a task the week pinned with its schedule's active tasks reads (with the state).
PINNED_COLUMNS = ("schedule_id", "need_id", "day", "date", "start", "end", "volunteer_id",
                  "merchant_id", "walk_min")


def _pins_change(session: Session, task: TaskRow) -> bool:
    """Whether this flush's change of ``task`` can change the week pinned with its schedule's
    active tasks: not an accept or a check-in (active before and after), nor a reason or a
    mark."""
    from api.replanning import ACTIVE  # the states that hold a volunteer's time

    if task in session.new or task in session.deleted:
        return True
    attrs = inspect(task).attrs
    if any(attrs[column].history.has_changes() for column in PINNED_COLUMNS):
        return True
    state = attrs.state.history
    if not state.has_changes():
        return False
    if not state.deleted:  # the state before was not loaded: assume the worst
        return True
    return any((old in ACTIVE) != (task.state in ACTIVE) for old in state.deleted)


def _changed_schedules(session: Session) -> set[int] | None:
    """The schedules whose pinned week this flush's changes of tasks may change (None: a task
    without its schedule's id yet, so any)."""
    ids: set[int] | None = set()
    for item in (*session.new, *session.dirty, *session.deleted):
        if isinstance(item, TaskRow) and _pins_change(session, item):
            if item.schedule_id is None:
                return None
            assert ids is not None
            ids.add(item.schedule_id)
            history = inspect(item).attrs.schedule_id.history
            ids.update(i for i in history.deleted if i is not None)
    return ids


@event.listens_for(Session, "before_flush")
def _community_flushed(session: Session, _context: Any, _instances: Any) -> None:
    _fill_community(session)
    for community_id in _changed_communities(session):
        bump_version(session, community_id)
    schedules = _changed_schedules(session)
    if schedules is None or schedules:
        bump_tasks_version(session, schedules)


@event.listens_for(Session, "do_orm_execute")
def _community_statement(state: ORMExecuteState) -> None:
    """Bulk statements (``insert(VolunteerRow)``, ``delete(NeedRow)``) skip the flush; a scoped
    session's statements see only its community's rows."""
    if state.execution_options.get("linli_unscoped"):
        return
    community_id = session_community(state.session)
    if (state.is_insert or state.is_update or state.is_delete) and any(
            mapper.class_ in (*COMMUNITY_ROWS, AllocationRow)
            for mapper in state.all_mappers):
        bump_version(state.session, community_id)
    if (state.is_insert or state.is_update or state.is_delete) and any(
            mapper.class_ is TaskRow for mapper in state.all_mappers):
        bump_tasks_version(state.session, None)
    if community_id is not None and (state.is_select or state.is_update or state.is_delete
                                     ) and not state.is_relationship_load:
        state.statement = state.statement.options(*_criteria(community_id))


def _criteria(community_id: int) -> tuple[Any, ...]:
    """Where a scoped session's statements look: owned rows of its community, and the rows
    reached only through them (a schedule's tasks, an account's entries ...)."""
    cid = community_id
    return (
        with_loader_criteria(Owned, lambda cls: cls.community_id == cid, include_aliases=True),
        with_loader_criteria(TaskRow, lambda cls: cls.schedule_id.in_(
            select(ScheduleRow.id).where(ScheduleRow.community_id == cid)),
            include_aliases=True),
        with_loader_criteria(UnmetRow, lambda cls: cls.schedule_id.in_(
            select(ScheduleRow.id).where(ScheduleRow.community_id == cid)),
            include_aliases=True),
        with_loader_criteria(AllocationLineRow, lambda cls: cls.allocation_id.in_(
            select(AllocationRow.id).where(AllocationRow.community_id == cid)),
            include_aliases=True),
        with_loader_criteria(ShortRow, lambda cls: cls.allocation_id.in_(
            select(AllocationRow.id).where(AllocationRow.community_id == cid)),
            include_aliases=True),
        with_loader_criteria(LedgerEntry, lambda cls: cls.account_id.in_(
            select(Account.id).where(Account.community_id == cid)), include_aliases=True),
        with_loader_criteria(PaidSeat, lambda cls: cls.need_id.in_(
            select(NeedRow.need_id).where(NeedRow.community_id == cid)), include_aliases=True),
        with_loader_criteria(TimeRequest, lambda cls: cls.need_id.in_(
            select(NeedRow.need_id).where(NeedRow.community_id == cid)), include_aliases=True),
        # A link may join a volunteer and a member of two communities (of one district): both
        # see it.
        with_loader_criteria(FamilyLink, lambda cls: or_(cls.member_id.in_(
            select(MemberRow.member_id).where(MemberRow.community_id == cid)),
            cls.volunteer_id.in_(
                select(VolunteerRow.volunteer_id).where(VolunteerRow.community_id == cid))),
            include_aliases=True),
        with_loader_criteria(Reward, lambda cls: cls.merchant_id.in_(
            select(MerchantRow.merchant_id).where(MerchantRow.community_id == cid)),
            include_aliases=True),
        with_loader_criteria(Redemption, lambda cls: cls.merchant_id.in_(
            select(MerchantRow.merchant_id).where(MerchantRow.community_id == cid)),
            include_aliases=True),
    )
