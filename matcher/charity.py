"""Domain types of charity allocation: donated goods, households' requests, and the allocation.

Plain immutable data like :mod:`matcher.domain`; the solver is :mod:`matcher.allocation`.
Quantities are whole units of a category (bags of rice, bottles of oil, coats).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from matcher.domain import (
    Day,
    Location,
    Priority,
    SolveStatus,
    Week,
    check_id,
    check_text,
    check_token,
)
from matcher.errors import Invalid
from matcher.i18n import N_

DELIVERY_DAY = Day.SAT  # the weekly delivery round, unless the goods expire before it
# Every donation-request pair of a category is an arc of the allocation's flow; beyond this
# many the tables and the flow no longer fit in memory, so a problem is refused first.
MAX_PAIRS = 20_000_000


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise Invalid(N_("quantity {n!r} is not a whole number of at least 1"), n=quantity)


@dataclass(frozen=True, slots=True)
class Donation:
    """Goods waiting at a pickup place (a donor, a canteen, the community centre)."""

    id: str
    donor: str
    category: str
    quantity: int
    location: Location
    expires: dt.date | None = None

    def __post_init__(self) -> None:
        check_id(self.id)
        check_text(self.donor)
        check_token(self.category, "a category")
        _check_quantity(self.quantity)
        if self.expires is not None and not isinstance(self.expires, dt.date):
            raise TypeError(f"expires {self.expires!r} is not a date")

    def usable_in(self, week: Week) -> bool:
        """A4: goods that expire before the week's Monday are never allocated."""
        return self.expires is None or self.expires >= week.monday

    def hand_over(self, week: Week, delivery: bool) -> dt.date:
        """The date of a hand-over in ``week``, never after the goods expire.

        A delivery goes out on the delivery round (Saturday), or on the day the goods expire
        when that comes first; a pickup may be collected until Sunday, or until the expiry
        day. Usable goods (:meth:`usable_in`) keep at least until Monday, so both dates exist:
        every usable donation can be delivered, which the exact allocation relies on.
        """
        last = week.date_of(DELIVERY_DAY if delivery else Day.SUN)
        return last if self.expires is None else min(last, self.expires)


@dataclass(frozen=True, slots=True)
class Request:
    """A household asking for units of one category."""

    id: str
    beneficiary: str
    category: str
    quantity: int
    location: Location
    priority: Priority = Priority.BLUE

    def __post_init__(self) -> None:
        check_id(self.id)
        check_text(self.beneficiary)
        check_token(self.category, "a category")
        _check_quantity(self.quantity)
        Priority(self.priority)


@dataclass
class CharityProblem:
    """Donations and requests for one allocation run (the week fixes the expiry date, A4)."""

    week: Week
    donations: list[Donation]
    requests: list[Request]

    def __post_init__(self) -> None:
        for kind, ids in (("donation", [d.id for d in self.donations]),
                          ("request", [r.id for r in self.requests])):
            if len(set(ids)) != len(ids):
                raise ValueError(f"{kind} ids are not unique")

    @property
    def pairs(self) -> int:
        """Pairs of a donation and a request of the same category, over all categories: what an
        allocation weighs (each is an arc of its flow)."""
        donations: dict[str, int] = {}
        for d in self.donations:
            donations[d.category] = donations.get(d.category, 0) + 1
        return sum(donations.get(r.category, 0) for r in self.requests)

    def check_size(self) -> None:
        """Refuse a problem too large to allocate at once (``MAX_PAIRS``).

        Raises
        ------
        ValueError
            Saying how many pairs there are and what to do.
        """
        if self.pairs > MAX_PAIRS:
            raise ValueError(f"{len(self.donations):,} donations and {len(self.requests):,} "
                             f"requests make {self.pairs:,} donation-request pairs in the same "
                             f"categories: at most {MAX_PAIRS:,} are weighed at once; allocate "
                             "a smaller area at a time")

    @property
    def categories(self) -> list[str]:
        return sorted({d.category for d in self.donations} | {r.category for r in self.requests})


class ShortReason(StrEnum):
    """Why a request got less than it asked for."""

    NO_DONATION = "no_donation_in_category"
    EXPIRED = "donations_expired"
    STOCK_SHORT = "stock_short"


@dataclass(frozen=True, slots=True)
class AllocationLine:
    """Units of one donation for one request (a row of ``allocations.csv``). ``date`` is the
    day a volunteer delivers (``delivery``) or the last day the household may collect."""

    donation_id: str
    request_id: str
    quantity: int
    walk_min: float
    delivery: bool
    date: dt.date


@dataclass(frozen=True, slots=True)
class ShortRequest:
    """A request not filled completely, with the reason and what would fill it."""

    request_id: str
    category: str
    priority: Priority
    requested: int
    allocated: int
    reason: ShortReason
    detail: str


@dataclass(frozen=True, slots=True)
class Leftover:
    """Stock not allocated: expired (A4) or more than was requested."""

    donation_id: str
    category: str
    quantity: int
    expires: dt.date | None
    expired: bool


@dataclass(frozen=True, slots=True)
class FillLevel:
    """Fulfilment of one priority: units requested, allocated and the upper bound."""

    priority: Priority
    requests: int
    requested: int
    allocated: int
    bound: int
    min_fill_ratio: float


@dataclass
class Allocation:
    """The result of :func:`matcher.allocation.allocate`."""

    week: Week
    lines: list[AllocationLine]
    short: list[ShortRequest]
    leftovers: list[Leftover]
    levels: dict[Priority, FillLevel]
    status: SolveStatus
    solve_seconds: float
    method: str
    stats: dict[str, float] = field(default_factory=dict)

    def allocated_to(self) -> dict[str, int]:
        """Units allocated per request id."""
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.request_id] = out.get(line.request_id, 0) + line.quantity
        return out

    @property
    def deliveries(self) -> list[AllocationLine]:
        return [line for line in self.lines if line.delivery]

    def summary(self) -> dict[str, object]:
        """The allocation's ``summary.json`` content."""
        return {
            "week": str(self.week),
            "status": self.status.value,
            "allocated_by_priority": {p.value: lv.allocated for p, lv in self.levels.items()},
            "requested_by_priority": {p.value: lv.requested for p, lv in self.levels.items()},
            "bound_by_priority": {p.value: lv.bound for p, lv in self.levels.items()},
            "min_fill_ratio_by_priority": {p.value: round(lv.min_fill_ratio, 4)
                                           for p, lv in self.levels.items()},
            "lines": len(self.lines),
            "deliveries": len(self.deliveries),
            "units_delivered": sum(line.quantity for line in self.deliveries),
            "deliveries_by_date": {day.isoformat(): sum(1 for x in self.deliveries
                                                         if x.date == day)
                                   for day in sorted({x.date for x in self.deliveries})},
            "leftover_units": sum(left.quantity for left in self.leftovers),
            "walk_min": round(sum(line.walk_min for line in self.lines if not line.delivery), 1),
            "travel": self.method,
            "solve_seconds": round(self.solve_seconds, 3),
        }
