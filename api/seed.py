"""Fill a database with the sample community and demo accounts (``linli serve --demo``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from api.calendar import new_token
from api.community import save_tables
from api.db import Database
from api.models import MerchantRow, User, VolunteerRow
from api.security import hash_password
from matcher.spreadsheets import RESOURCE_COLUMNS, read_tables

DEMO_PASSWORD = "linli-demo-2026"


def seed_demo(db: Database, sample: Path, volunteers_with_login: int = 5
              ) -> list[tuple[str, str, str]]:
    """Load ``sample`` (a SCHEMA.md folder) unless the database has data; create demo users.

    Returns ``(username, password, role)`` for every demo account.
    """
    with db.session() as session:
        if session.scalar(select(func.count()).select_from(VolunteerRow)):
            users = session.scalars(select(User).order_by(User.id)).all()
            return [(u.username, DEMO_PASSWORD, u.role) for u in users]
        tables, _ = read_tables(sample, tuple(RESOURCE_COLUMNS))
        save_tables(session, tables)  # the same path as an upload to /v1/imports
        session.flush()
        volunteers = session.scalars(select(VolunteerRow.volunteer_id).order_by(
            VolunteerRow.volunteer_id).limit(volunteers_with_login)).all()
        merchants = session.scalars(select(MerchantRow.merchant_id).order_by(
            MerchantRow.merchant_id).limit(3)).all()
        hashed = hash_password(DEMO_PASSWORD)
        accounts = [User(username="coordinator", role="coordinator"),
                    User(username="organiser", role="organiser")]
        accounts += [User(username=v.lower(), role="volunteer", volunteer_id=v)
                     for v in volunteers]
        accounts += [User(username=m.lower(), role="merchant", merchant_id=m)
                     for m in merchants]
        for user in accounts:
            user.password_hash = hashed
            user.calendar_token = new_token()
        session.add_all(accounts)
        session.commit()
        return [(u.username, DEMO_PASSWORD, u.role) for u in accounts]
