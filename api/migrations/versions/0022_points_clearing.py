"""points across communities: clearing accounts (``points_clearing``) may go below zero

Revision ID: 0022
Revises: 0023

A volunteer registered in one community who serves a neighbouring one is paid by the
community served (its issuer) into her account in her own community, through a points clearing
account in each of the two, as minutes already cross (``time_clearing``); one of the two is
always below zero (what the other community owes), so the CHECK on balances lets
``points_clearing`` go lower too. Downgrading is refused while such an account exists: the old
CHECK would refuse its balance, and dropping it would unbalance both communities' books.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CHECK = ("kind in ('issuer', 'time_issuer', 'time_subsidy', 'time_clearing') "
             "or balance >= floor")
NEW_CHECK = ("kind in ('issuer', 'time_issuer', 'time_subsidy', 'time_clearing', "
             "'points_clearing') or balance >= floor")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("ck_account_not_negative", type_="check")
        batch_op.create_check_constraint("ck_account_not_negative", NEW_CHECK)


def downgrade() -> None:
    found = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM accounts WHERE kind = 'points_clearing'")).scalar() or 0
    if found:
        raise RuntimeError(
            f"cannot downgrade: {found} clearing accounts hold points paid for work in another "
            "community; the older schema cannot keep them")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("ck_account_not_negative", type_="check")
        batch_op.create_check_constraint("ck_account_not_negative", OLD_CHECK)
