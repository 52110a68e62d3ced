"""time bank: minutes beside points in the ledger (currency and floor on accounts, purpose on
entries), members without a login, family links with consent, time-bank requests

Revision ID: 0011
Revises: 0004
Create Date: 2026-12-01 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CHECK = "kind = 'issuer' or balance >= 0"
NEW_CHECK = "kind in ('issuer', 'time_issuer', 'time_subsidy') or balance >= floor"


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("currency", sa.String(length=8), nullable=False,
                                      server_default="points"))
        batch_op.add_column(sa.Column("floor", sa.BigInteger(), nullable=False,
                                      server_default="0"))
        batch_op.drop_constraint("ck_account_not_negative", type_="check")
        batch_op.create_check_constraint("ck_account_not_negative", NEW_CHECK)
        batch_op.create_check_constraint("ck_account_currency",
                                         "currency in ('points', 'minutes')")
        batch_op.create_check_constraint(
            "ck_account_floor", "floor <= 0 and (currency = 'minutes' or floor = 0)")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=16), nullable=False,
                                      server_default=""))
    op.create_table(
        "members",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"),
                  nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_table(
        "family_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("volunteer_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("relation", sa.String(length=32), nullable=False),
        sa.Column("consent_note", sa.Text(), nullable=True),
        sa.Column("consent_by", sa.Integer(), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"),
                  nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["volunteer_id"], ["volunteers.volunteer_id"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("volunteer_id", "member_id"),
    )
    with op.batch_alter_table("family_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_family_links_member_id"), ["member_id"])
        batch_op.create_index(batch_op.f("ix_family_links_volunteer_id"), ["volunteer_id"])
    op.create_table(
        "time_requests",
        sa.Column("need_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("payer_kind", sa.String(length=16), nullable=False),
        sa.Column("payer_owner", sa.String(length=64), nullable=False),
        sa.Column("filed_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"),
                  nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"]),
        sa.ForeignKeyConstraint(["need_id"], ["needs.need_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("need_id"),
    )
    with op.batch_alter_table("time_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_time_requests_member_id"), ["member_id"])


def downgrade() -> None:
    with op.batch_alter_table("time_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_time_requests_member_id"))
    op.drop_table("time_requests")
    with op.batch_alter_table("family_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_family_links_volunteer_id"))
        batch_op.drop_index(batch_op.f("ix_family_links_member_id"))
    op.drop_table("family_links")
    op.drop_table("members")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_column("purpose")
    # Time accounts cannot be kept in a ledger that knows only points.
    op.execute("DELETE FROM ledger_entries WHERE account_id IN "
               "(SELECT id FROM accounts WHERE currency = 'minutes')")
    op.execute("DELETE FROM accounts WHERE currency = 'minutes'")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("ck_account_floor", type_="check")
        batch_op.drop_constraint("ck_account_currency", type_="check")
        batch_op.drop_constraint("ck_account_not_negative", type_="check")
        batch_op.create_check_constraint("ck_account_not_negative", OLD_CHECK)
        batch_op.drop_column("floor")
        batch_op.drop_column("currency")
