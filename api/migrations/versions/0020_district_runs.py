"""district_runs: a street office's (or district's) week solved as one job, and the schedules it
stored (schedules.district_run_id)

Revision ID: 0020
Revises: 0017
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "district_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("street_office_id", sa.Integer(), sa.ForeignKey("street_offices.id"),
                  nullable=True),
        sa.Column("district_id", sa.Integer(), sa.ForeignKey("districts.id"), nullable=False),
        sa.Column("time_limit_s", sa.Float(), nullable=True),
        sa.Column("communities", sa.JSON(), nullable=False),
        sa.CheckConstraint("status in ('queued', 'running', 'solved', 'failed', 'cancelled')",
                           name="ck_district_run_status"),
    )
    op.create_index("ix_district_runs_week", "district_runs", ["week"])
    op.create_index("ix_district_runs_street_office_id", "district_runs", ["street_office_id"])
    op.create_index("ix_district_runs_district_id", "district_runs", ["district_id"])
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("district_run_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_schedules_district_run_id", "district_runs",
                                 ["district_run_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_schedules_district_run_id", ["district_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_index("ix_schedules_district_run_id")
        batch.drop_constraint("fk_schedules_district_run_id", type_="foreignkey")
        batch.drop_column("district_run_id")
    op.drop_table("district_runs")
