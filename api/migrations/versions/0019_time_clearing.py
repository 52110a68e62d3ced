"""time bank across communities: clearing accounts (``time_clearing``) may go below zero

Revision ID: 0019
Revises: 0016

Minutes that move from one community to another pass through two clearing accounts, one in
each community, named after the other; one of the two is always below zero (what the other
community owes), so the CHECK on balances lets ``time_clearing`` go lower, as it does the
issuers. Downgrading is refused while a clearing account exists: the old CHECK would refuse
its balance, and dropping it would unbalance both communities' books.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CHECK = "kind in ('issuer', 'time_issuer', 'time_subsidy') or balance >= floor"
NEW_CHECK = ("kind in ('issuer', 'time_issuer', 'time_subsidy', 'time_clearing') "
             "or balance >= floor")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("ck_account_not_negative", type_="check")
        batch_op.create_check_constraint("ck_account_not_negative", NEW_CHECK)


def downgrade() -> None:
    found = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM accounts WHERE kind = 'time_clearing'")).scalar() or 0
    if found:
        raise RuntimeError(
            f"cannot downgrade: {found} clearing accounts hold minutes that crossed between "
            "communities; the older schema cannot keep them")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("ck_account_not_negative", type_="check")
        batch_op.create_check_constraint("ck_account_not_negative", OLD_CHECK)
