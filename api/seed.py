"""Fill a database with the sample community and demo accounts (``linli serve --demo``)."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import func, select

from api.db import Database
from api.models import MerchantRow, NeedRow, User, VolunteerRow
from api.security import hash_password
from matcher.domain import Week
from matcher.spreadsheets import read_community

DEMO_PASSWORD = "linli-demo-2026"


def seed_demo(db: Database, sample: Path, week: Week, volunteers_with_login: int = 5
              ) -> list[tuple[str, str, str]]:
    """Load ``sample`` (a SCHEMA.md folder) unless the database has data; create demo users.

    Returns ``(username, password, role)`` for every demo account.
    """
    with db.session() as session:
        if session.scalar(select(func.count()).select_from(VolunteerRow)):
            users = session.scalars(select(User).order_by(User.id)).all()
            return [(u.username, DEMO_PASSWORD, u.role) for u in users]
        problem = read_community(sample, week).problem
        for m in problem.merchants:
            session.add(MerchantRow(
                merchant_id=m.id, name=m.name, lat=m.location.lat, lon=m.location.lon,
                services=";".join(sorted(m.services)), capacity_per_day=m.capacity_per_day,
                open=str(m.open)))
        for v in problem.volunteers:
            session.add(VolunteerRow(
                volunteer_id=v.id, name=v.name, lat=v.location.lat, lon=v.location.lon,
                skills=";".join(sorted(v.skills)),
                availability=";".join(str(a) for a in v.availability),
                max_hours_week=v.max_hours_week))
        for n in problem.needs:
            session.add(NeedRow(
                need_id=n.id, kind=n.kind.value, service=n.service, beneficiary=n.beneficiary,
                lat=n.location.lat, lon=n.location.lon,
                days=";".join(d.value for d in n.days), window=str(n.window),
                duration_min=n.duration_min, skills=";".join(sorted(n.skills)),
                volunteers_needed=n.volunteers_needed, priority=n.priority.value,
                merchant_service=n.merchant_service or ""))
        session.flush()
        hashed = hash_password(DEMO_PASSWORD)
        accounts = [User(username="coordinator", role="coordinator"),
                    User(username="organiser", role="organiser")]
        accounts += [User(username=v.id.lower(), role="volunteer", volunteer_id=v.id)
                     for v in problem.volunteers[:volunteers_with_login]]
        accounts += [User(username=m.id.lower(), role="merchant", merchant_id=m.id)
                     for m in problem.merchants[:3]]
        for user in accounts:
            user.password_hash = hashed
            user.calendar_token = secrets.token_urlsafe(24)
        session.add_all(accounts)
        session.commit()
        return [(u.username, DEMO_PASSWORD, u.role) for u in accounts]
