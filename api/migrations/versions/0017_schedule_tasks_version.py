"""schedules.tasks_version: raised with every change of a schedule's tasks, so a process may keep
the week pinned with them (declines and "who could take this") until it moves

Revision ID: 0017
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("tasks_version", sa.BigInteger(), server_default="0",
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("tasks_version")
