"""outbox statuses, leases and dead letters; the tasks' calendar sequence

Revision ID: 0005
Revises: 0008
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The sender used to give up for good after this many failures (the default of the removed
# LINLI_WEBHOOK_ATTEMPTS): such events become dead letters, which a coordinator can redeliver.
OLD_ATTEMPTS = 6


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="pending",
                                      nullable=False))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_check_constraint("ck_outbox_status",
                                         "status in ('pending', 'delivered', 'dead')")
    op.execute("UPDATE outbox SET status = 'delivered' WHERE delivered_at IS NOT NULL")
    op.execute("UPDATE outbox SET status = 'dead', failing_since = created_at "
               f"WHERE delivered_at IS NULL AND attempts >= {OLD_ATTEMPTS}")
    op.execute("UPDATE outbox SET failing_since = created_at "
               "WHERE delivered_at IS NULL AND attempts > 0 AND failing_since IS NULL")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), server_default="0",
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("sequence")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint("ck_outbox_status", type_="check")
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("status")
