"""task lifecycle: the at-risk mark on tasks, and paid occurrence seats

Revision ID: 0004
Revises: 0005
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("at_risk", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("at_risk_since", sa.DateTime(timezone=True),
                                      nullable=True))
    op.create_table(
        "paid_seats",
        sa.Column("need_id", sa.String(length=64), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("transfer", sa.String(length=64), nullable=False),
        sa.CheckConstraint("seat >= 0", name="ck_paid_seat_not_negative"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("need_id", "date", "seat"),
        sa.UniqueConstraint("task_id"),
    )


def downgrade() -> None:
    op.drop_table("paid_seats")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("at_risk_since")
        batch_op.drop_column("at_risk")
