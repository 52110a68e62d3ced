"""list columns as JSON: skills, services, days and availability windows; the community's
version

Revision ID: 0013
Revises: 0015

``;``-joined text becomes JSON arrays (JSONB on PostgreSQL, GIN indexes on the lists routes
filter by); availability windows become ``{"day": "mon", "start": 480, "end": 720}`` (minutes
after midnight, as tasks keep times). Existing rows are converted both ways. The one-row table
``community_version`` counts changes of the community, for processes that keep a built week. The conversion is
written out here, not imported from the application, so this file means the same thing later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0013"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_LIST = sa.JSON().with_variant(JSONB(), "postgresql")
# table -> (id column, [(column, its old type, availability?)])
LISTS: dict[str, tuple[str, list[tuple[str, sa.types.TypeEngine[Any], bool]]]] = {
    "volunteers": ("volunteer_id", [("skills", sa.Text(), False),
                                    ("availability", sa.Text(), True)]),
    "needs": ("need_id", [("days", sa.String(length=64), False), ("skills", sa.Text(), False)]),
    "merchants": ("merchant_id", [("services", sa.Text(), False)]),
    "resources": ("resource_id", [("services", sa.Text(), False)]),
}
INDEXES = (("ix_volunteers_skills", "volunteers", "skills"),
           ("ix_merchants_services", "merchants", "services"))
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^\s*([a-z]{3})\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _items(text: str | None) -> list[str]:
    return [item.strip() for item in re.split(r"[;；、]", text or "") if item.strip()]


def _windows(text: str | None, where: str) -> list[dict[str, Any]]:
    out = []
    for item in _items(text):
        m = _WINDOW.match(item.lower())
        if not m or m.group(1) not in _DAYS:
            raise ValueError(f"{where}: availability {item!r} is not 'day HH:MM-HH:MM'; "
                             "correct it and migrate again")
        start = int(m.group(2)) * 60 + int(m.group(3))
        end = int(m.group(4)) * 60 + int(m.group(5))
        out.append({"day": m.group(1), "start": start, "end": end})
    return out


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _availability_text(items: list[dict[str, Any]] | None, _where: str) -> str:
    return ";".join(f"{a['day']} {_hhmm(a['start'])}-{_hhmm(a['end'])}" for a in items or [])


def _list_text(items: list[Any] | None, _where: str) -> str:
    return ";".join(str(item) for item in items or [])


def _convert(table: str, ident: str, column: str, old: sa.types.TypeEngine[Any],
             new: sa.types.TypeEngine[Any], convert: Callable[[Any, str], Any]) -> None:
    """Copy each row's ``column`` into ``<column>_new``, converted by ``convert(value,
    where)``."""
    t = sa.table(table, sa.column(ident), sa.column(column, old),
                 sa.column(f"{column}_new", new))
    connection = op.get_bind()
    rows = connection.execute(sa.select(t.c[ident], t.c[column])).all()
    if rows:
        update = (t.update().where(t.c[ident] == sa.bindparam("_ident"))
                  .values({f"{column}_new": sa.bindparam("_value")}))
        connection.execute(update, [{"_ident": key, "_value": convert(value, f"{table} {key}")}
                                    for key, value in rows])


def _swap(table: str, columns: list[tuple[str, sa.types.TypeEngine[Any]]]) -> None:
    """Drop each old column and give ``<column>_new`` its name, not null."""
    with op.batch_alter_table(table) as batch:
        for column, kind in columns:
            batch.drop_column(column)
            batch.alter_column(f"{column}_new", new_column_name=column, existing_type=kind,
                               nullable=False)


def upgrade() -> None:
    for table, (ident, columns) in LISTS.items():
        with op.batch_alter_table(table) as batch:
            for column, _old, _ in columns:
                batch.add_column(sa.Column(f"{column}_new", JSON_LIST, nullable=True))
        for column, old_type, availability in columns:
            _convert(table, ident, column, old_type, JSON_LIST,
                     _windows if availability else lambda value, _where: _items(value))
        _swap(table, [(c, JSON_LIST) for c, _, _ in columns])
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], postgresql_using="gin")
    version = op.create_table(
        "community_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("community_version")
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    for table, (ident, columns) in LISTS.items():
        with op.batch_alter_table(table) as batch:
            for column, old_type, _ in columns:
                batch.add_column(sa.Column(f"{column}_new", old_type, nullable=True))
        for column, old_type, availability in columns:
            _convert(table, ident, column, JSON_LIST, old_type,
                     _availability_text if availability else _list_text)
        _swap(table, [(c, t) for c, t, _ in columns])
