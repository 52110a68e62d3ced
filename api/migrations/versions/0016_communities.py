"""communities: districts, street offices and communities; every owned row names its community

Revision ID: 0016
Revises: 0013

A deployment serves many communities (社区) of street offices (街道) of districts (区). Ids stay
deployment-wide (one primary key per table, no composite keys): a volunteer or merchant is one
person or shop for the whole deployment, a need, donation, request, member or grid unit belongs
to one community.

Upgrading puts the existing data into one default community (code ``default``, named 邻里社区,
the settings' default name, in a default street office and district): ``community_id`` (NOT
NULL) on the rows a community owns: volunteers (where she registered), needs, merchants, grid
units, resources, schedules, suggestions, donations, requests, allocations, accounts, members,
audit entries and outbox events. Users of a community role carry it too; the new roles
``street_admin`` and ``district_admin`` carry their street office or district instead.

Rows reached only through an owned parent keep no column of their own, and a scoped session
reaches them through it (``api.models._criteria``): tasks and unmet occurrences (their
schedule), allocation lines and short requests (their allocation), ledger entries (their
account), paid seats and time requests (their need), family links (their member), rewards and
redemptions (their merchant), refresh tokens and idempotency keys (their user).

One published schedule (and allocation) per community and week; ``community_version`` becomes
one row per community. Downgrading is possible only while a single community exists and no
street or district admin does: the old schema has no place for the others, so it refuses,
saying so, rather than lose them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNED = ("volunteers", "needs", "merchants", "grid_units", "resources", "schedules",
         "suggestions", "donations", "requests", "allocations", "accounts", "members",
         "audit_log", "outbox")
OLD_ROLES = "('coordinator', 'organiser', 'volunteer', 'merchant', 'grid_worker')"
NEW_ROLES = ("('coordinator', 'organiser', 'volunteer', 'merchant', 'grid_worker', "
             "'street_admin', 'district_admin')")
USER_SCOPE = ("(role = 'street_admin' and street_office_id is not null) or "
              "(role = 'district_admin' and district_id is not null) or "
              "(role not in ('street_admin', 'district_admin') and community_id is not null)")
PUBLISHED = (("schedules", "uq_schedules_published_week"),
             ("allocations", "uq_allocations_published_week"))
# The accounts' old unique (kind, owner) had no name: PostgreSQL named it itself; SQLite's
# batch copy gets this one from the convention.
UQ_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
OLD_UQ = {"postgresql": "accounts_kind_owner_key", "sqlite": "uq_accounts_kind_owner"}


def _stamp() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True),
                     server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "districts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        _stamp(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "street_offices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        _stamp(),
        sa.ForeignKeyConstraint(["district_id"], ["districts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_street_offices_district_id", "street_offices", ["district_id"])
    op.create_table(
        "communities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("street_office_id", sa.Integer(), nullable=False),
        _stamp(),
        sa.ForeignKeyConstraint(["street_office_id"], ["street_offices.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_communities_street_office_id", "communities", ["street_office_id"])
    op.execute("INSERT INTO districts (id, code, name) VALUES (1, 'default', '默认区')")
    op.execute("INSERT INTO street_offices (id, code, name, district_id) "
               "VALUES (1, 'default', '默认街道', 1)")
    op.execute("INSERT INTO communities (id, code, name, street_office_id) "
               "VALUES (1, 'default', '邻里社区', 1)")
    if op.get_bind().dialect.name == "postgresql":
        for table in ("districts", "street_offices", "communities"):  # ids go on from 2
            op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1)")

    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("community_id", sa.Integer(), nullable=True))
        op.execute(f"UPDATE {table} SET community_id = 1")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("community_id", existing_type=sa.Integer(), nullable=False)
            batch.create_foreign_key(f"fk_{table}_community_id", "communities",
                                     ["community_id"], ["id"])
            batch.create_index(f"ix_{table}_community_id", ["community_id"])

    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("community_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("street_office_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("district_id", sa.Integer(), nullable=True))
    op.execute("UPDATE users SET community_id = 1")
    with op.batch_alter_table("users") as batch:
        batch.create_foreign_key("fk_users_community_id", "communities", ["community_id"], ["id"])
        batch.create_foreign_key("fk_users_street_office_id", "street_offices",
                                 ["street_office_id"], ["id"])
        batch.create_foreign_key("fk_users_district_id", "districts", ["district_id"], ["id"])
        batch.create_index("ix_users_community_id", ["community_id"])
        batch.drop_constraint("ck_user_role", type_="check")
        batch.create_check_constraint("ck_user_role", f"role in {NEW_ROLES}")
        batch.create_check_constraint("ck_user_scope", USER_SCOPE)

    for table, name in PUBLISHED:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(name)
            batch.create_index(name, ["community_id", "week"], unique=True,
                               postgresql_where=sa.text("status = 'published'"),
                               sqlite_where=sa.text("status = 'published'"))

    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("accounts", naming_convention=UQ_CONVENTION) as batch:
        batch.drop_constraint(OLD_UQ.get(dialect, OLD_UQ["postgresql"]), type_="unique")
        batch.create_unique_constraint("uq_accounts_community_kind_owner",
                                       ["community_id", "kind", "owner"])

    version = op.get_bind().execute(sa.text("SELECT max(version) FROM community_version")
                                    ).scalar()
    op.drop_table("community_version")
    versions = op.create_table(
        "community_version",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("community_id"),
    )
    op.bulk_insert(versions, [{"community_id": 1, "version": version or 0}])


def downgrade() -> None:
    bind = op.get_bind()
    communities = bind.execute(sa.text("SELECT count(*) FROM communities")).scalar() or 0
    admins = bind.execute(sa.text("SELECT count(*) FROM users WHERE role IN "
                                  "('street_admin', 'district_admin')")).scalar() or 0
    if communities > 1 or admins:
        raise RuntimeError(
            f"cannot go back to one community per database: this one holds {communities} "
            f"communities and {admins} street or district admins; move the other communities "
            "to databases of their own (and remove the admins) first")
    version = bind.execute(sa.text("SELECT max(version) FROM community_version")).scalar()
    op.drop_table("community_version")
    old = op.create_table(
        "community_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(old, [{"id": 1, "version": version or 0}])

    dialect = bind.dialect.name
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint("uq_accounts_community_kind_owner", type_="unique")
        batch.create_unique_constraint(OLD_UQ.get(dialect, OLD_UQ["postgresql"]),
                                       ["kind", "owner"])

    for table_name, name in PUBLISHED:
        with op.batch_alter_table(table_name) as batch:
            batch.drop_index(name)
            batch.create_index(name, ["week"], unique=True,
                               postgresql_where=sa.text("status = 'published'"),
                               sqlite_where=sa.text("status = 'published'"))

    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("ck_user_scope", type_="check")
        batch.drop_constraint("ck_user_role", type_="check")
        batch.create_check_constraint("ck_user_role", f"role in {OLD_ROLES}")
        batch.drop_index("ix_users_community_id")
        batch.drop_constraint("fk_users_district_id", type_="foreignkey")
        batch.drop_constraint("fk_users_street_office_id", type_="foreignkey")
        batch.drop_constraint("fk_users_community_id", type_="foreignkey")
        batch.drop_column("district_id")
        batch.drop_column("street_office_id")
        batch.drop_column("community_id")

    for table_name in reversed(OWNED):
        with op.batch_alter_table(table_name) as batch:
            batch.drop_index(f"ix_{table_name}_community_id")
            batch.drop_constraint(f"fk_{table_name}_community_id", type_="foreignkey")
            batch.drop_column("community_id")

    op.drop_index("ix_communities_street_office_id", table_name="communities")
    op.drop_table("communities")
    op.drop_index("ix_street_offices_district_id", table_name="street_offices")
    op.drop_table("street_offices")
    op.drop_table("districts")
