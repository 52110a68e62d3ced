"""The district report (街道报表) in the service: the matcher's
:class:`matcher.district_report.DistrictReport`, filled from the tables of every community the
caller may read, for one week.

Which communities: a street or district admin's whole scope (every community of her street
office or district), or the one community she names with ``X-Linli-Community``; a
coordinator's own community. Each community is read through the session scoped to it
(:func:`api.models.scope_session`), so its figures come only from its own rows.

What each figure is, per community and per grid unit:

* coverage by priority and unmet visits by reason: the community's **published** schedule of
  the week (a week without one is ``unpublished``: its visits are counted, nothing is called
  covered); the tasks that still hold a volunteer cover their visits;
* volunteers' hours and how many volunteers serve: those tasks' planned times;
* grid units: the community's own units (:mod:`api.routers.grids`); a need counts in the unit
  it lies in, the volunteers and hours serving it with it.

The ledger's figures are the community's, for the **week's dates** (Monday 00:00 to the next
Monday 00:00, Asia/Shanghai, by when the ledger recorded them on the community's clock):
points issued (the issuer's credits for confirmed work), points redeemed (what merchants took
for confirmed redemptions), time-bank minutes credited to volunteers for their service (earned,
paid by a requester or the subsidy, and bonuses; not gifts between people), and charity units
given (the lines of the week's published allocation). Grid units leave them empty: the ledger
does not say where.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from shapely.geometry import shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.community import TZ, load_problem
from api.ledger import ISSUER
from api.models import (
    Account,
    AllocationLineRow,
    AllocationRow,
    Community,
    GridUnitRow,
    LedgerEntry,
    in_community,
)
from api.scheduling import stored_schedule
from api.security import Caller
from api.tenancy import NO_COMMUNITY, communities_of
from api.timebank import VOLUNTEER as TIME_VOLUNTEER
from api.under_way import published_schedule
from matcher.district_report import (
    FAILED,
    UNPUBLISHED,
    CommunityReport,
    DistrictReport,
    Ledger,
    community_report,
)
from matcher.domain import Problem, Week
from matcher.errors import InputError
from matcher.grids import GridUnit
from matcher.i18n import _

# Minutes credited to a volunteer for service (a gift between people is a "transfer").
SERVICE_MINUTES = ("earned", "drawn", "subsidy", "bonus")
MERCHANT = "merchant"


@dataclass(frozen=True)
class DistrictView:
    """The report and, in its order, each community's code; the ledger's dates."""

    report: DistrictReport
    codes: tuple[str, ...]
    ledger_from: dt.date
    ledger_to: dt.date  # the last day counted


def week_bounds(week: Week) -> tuple[dt.datetime, dt.datetime]:
    """The week's first moment and the next week's, aware, in Asia/Shanghai."""
    start = dt.datetime.combine(week.monday, dt.time(0, 0), TZ)
    return start, start + dt.timedelta(days=7)


def week_ledger(session: Session, week: Week) -> Ledger:
    """The ledger's figures of the session's community for the week's dates."""
    start, end = week_bounds(week)

    def moved(kind: str, *, credits: bool, purposes: tuple[str, ...] = ()) -> int:
        """Points or minutes into (``credits``) or out of accounts of ``kind`` in the week."""
        where = [Account.kind == kind, LedgerEntry.created_at >= start,
                 LedgerEntry.created_at < end,
                 LedgerEntry.amount > 0 if credits else LedgerEntry.amount < 0]
        if purposes:
            where.append(LedgerEntry.purpose.in_(purposes))
        total = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                               .join(Account, Account.id == LedgerEntry.account_id)
                               .where(*where))
        return abs(int(total or 0))

    charity = session.scalar(
        select(func.coalesce(func.sum(AllocationLineRow.quantity), 0))
        .join(AllocationRow, AllocationRow.id == AllocationLineRow.allocation_id)
        .where(AllocationRow.week == str(week), AllocationRow.status == "published"))
    return Ledger(points_issued=moved(ISSUER[0], credits=False),
                  points_redeemed=moved(MERCHANT, credits=True),
                  charity_units=int(charity or 0),
                  timebank_minutes=moved(TIME_VOLUNTEER, credits=True,
                                         purposes=SERVICE_MINUTES))


def grid_units(session: Session) -> list[GridUnit]:
    """The session's community's grid units, in their order."""
    rows = session.scalars(select(GridUnitRow).order_by(GridUnitRow.position)).all()
    return [GridUnit(r.unit_id, r.name, shape(json.loads(r.geometry))) for r in rows]


def community_part(session: Session, community: Community, week: Week) -> CommunityReport:
    """One community's part of the report (the session is scoped to it meanwhile). A
    community whose stored rows break a rule is listed as ``failed``, saying which rows, and
    the others are still reported."""
    with in_community(session, community.id):
        units = grid_units(session)
        ledger = week_ledger(session, week)
        try:
            problem = load_problem(session, week)
        except InputError as exc:
            error = _("its stored rows break a rule: {issues}").format(
                issues="; ".join(str(i) for i in exc.issues[:5]))
            return community_report(community.name, Problem(week, [], [], []), None, units,
                                    status=FAILED, error=error, ledger=ledger)
        row = published_schedule(session, str(week))
        if row is None:
            return community_report(community.name, problem, None, units,
                                    status=UNPUBLISHED, ledger=ledger)
        return community_report(community.name, problem, stored_schedule(session, row), units,
                                ledger=ledger)


def communities_in_view(session: Session, caller: Caller, community_id: int
                        ) -> list[Community]:
    """The communities a request reports on: the one it works in (a coordinator's own, or the
    one an admin named), else every community of the admin's scope, in code order."""
    if community_id != NO_COMMUNITY:
        community = session.get(Community, community_id)
        return [] if community is None else [community]
    return communities_of(session, caller)


def fill_report(session: Session, caller: Caller, community_id: int, week: Week
                ) -> DistrictView:
    """The district report of ``week`` for the caller's scope (``community_id``: the
    request's community, or :data:`api.tenancy.NO_COMMUNITY` for an admin's whole scope)."""
    communities = communities_in_view(session, caller, community_id)
    parts = tuple(community_part(session, c, week) for c in communities)
    start, end = week_bounds(week)
    return DistrictView(DistrictReport(week, parts), tuple(c.code for c in communities),
                        start.date(), (end - dt.timedelta(days=1)).date())
