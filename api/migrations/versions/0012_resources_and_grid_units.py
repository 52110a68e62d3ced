"""resources and grid units: coordinators' edits of the resource list, grid units, grid workers

Revision ID: 0012
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("resource_id", sa.String(length=80), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("services", sa.Text(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("resource_id"),
    )
    op.create_table(
        "grid_units",
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("unit_id"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grid_units", sa.Text(), nullable=True))
        batch_op.drop_constraint("ck_user_role", type_="check")
        batch_op.create_check_constraint("ck_user_role", NEW_ROLES)


OLD_ROLES = "role in ('coordinator', 'organiser', 'volunteer', 'merchant')"
NEW_ROLES = "role in ('coordinator', 'organiser', 'volunteer', 'merchant', 'grid_worker')"


def downgrade() -> None:
    op.execute("DELETE FROM users WHERE role = 'grid_worker'")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("ck_user_role", type_="check")
        batch_op.create_check_constraint("ck_user_role", OLD_ROLES)
        batch_op.drop_column("grid_units")
    op.drop_table("grid_units")
    op.drop_table("resources")
