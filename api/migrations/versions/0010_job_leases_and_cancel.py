"""jobs claimed from the database: leases, attempts, the worker, cancel requests

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {"schedules": "ck_schedule_status", "allocations": "ck_allocation_status"}
OLD = "'queued', 'running', 'solved', 'failed', 'published', 'superseded'"


def upgrade() -> None:
    for table, check in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0",
                                          nullable=False))
            batch_op.add_column(sa.Column("worker", sa.String(length=128), nullable=True))
            batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True),
                                          nullable=True))
            batch_op.add_column(sa.Column("cancel_requested", sa.Boolean(),
                                          server_default=sa.false(), nullable=False))
            batch_op.drop_constraint(check, type_="check")
            batch_op.create_check_constraint(check, f"status in ({OLD}, 'cancelled')")


def downgrade() -> None:
    for table, check in TABLES.items():
        # A cancelled job was stopped on purpose: the old schema calls that failed.
        op.execute(f"UPDATE {table} SET status = 'failed' WHERE status = 'cancelled'")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(check, type_="check")
            batch_op.create_check_constraint(check, f"status in ({OLD})")
            batch_op.drop_column("cancel_requested")
            batch_op.drop_column("claimed_until")
            batch_op.drop_column("worker")
            batch_op.drop_column("attempts")
