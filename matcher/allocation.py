"""Charity allocation: donated goods to households, lexicographically optimal and fair.

Why it decomposes into exact steps. A2 keeps categories apart, and a delivery is always possible
(A3), so inside one category any usable donation can serve any request. Expiry does not break
that: a hand-over is dated on or before the goods expire (:meth:`Donation.hand_over`: a
delivery on the Saturday round or on the expiry day if sooner, a pickup by Sunday or by the
expiry day), and usable goods keep at least until Monday, so every usable donation has a day on
which it can be delivered to anyone. The stock is therefore not split by day and the closed
form below stays exact. Hence, per category:

1. **Fulfilment.** Red gets ``min(stock, red requested)``, yellow the minimum of what is left and
   its requests, then blue: this is the lexicographic optimum, and the bound is the same number.
2. **Fairness inside a priority** (leximin of fill ratios ``allocated / requested``). Leximin is
   the limit of maximising the separable concave ``sum -exp(-M * ratio)``, so the greedy that gives
   the next unit to the lowest ratio (ties: the request whose next ratio is higher, i.e. the
   smaller request) is exactly optimal (Gross 1956, greedy for separable concave resource
   allocation). We first jump every request to just below the max-min level, so the greedy only
   places the last few units however large the quantities.
   Requests of equal quantity and ratio at the last step tie; the flow below picks which of them
   get the last units.
3. **Expiry.** Units are taken from donations in expiry order; among donations expiring the same
   day the flow below chooses.
4. **Who collects where.** A min-cost flow (OR-Tools) from the used donations to the requests,
   costing each delivered unit above any total of walking minutes (fewer deliveries, then less
   walking, lexicographically). Deliveries and walking are counted per unit: that is what a flow
   can count exactly, and its vertex solutions split a request over few donations anyway.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from matcher.charity import (
    Allocation,
    AllocationLine,
    CharityProblem,
    Donation,
    FillLevel,
    Leftover,
    Request,
    ShortReason,
    ShortRequest,
)
from matcher.domain import Day, Need, NeedKind, Priority, SolveStatus, TimeWindow, Week
from matcher.i18n import _
from matcher.settings import Settings
from matcher.travel import WalkingNetwork, geodesic_m, walk_minutes

WALK_COST_CAP = 10_000  # tenths of a minute: walking beyond 1,000 min is costed as 1,000
DELIVERY_SERVICE = "goods_delivery"
DELIVERY_WINDOW = TimeWindow(9 * 60, 17 * 60)


@dataclass(frozen=True)
class LeximinSplit:
    """All leximin-optimal splits at once: ``base`` units per request, plus one more unit for
    any ``extra`` of the requests in ``tied`` (they share quantity and fill ratio, so the sorted
    ratios are the same whichever get it). Later objectives choose among them."""

    base: list[int]
    tied: list[int]
    extra: int

    def first(self) -> list[int]:
        """One optimal split: the extra units to the first tied requests."""
        out = list(self.base)
        for i in self.tied[:self.extra]:
            out[i] += 1
        return out


def leximin_split(budget: int, quantities: Sequence[int]) -> LeximinSplit:
    """Split ``budget`` units over requests so the sorted fill ratios are leximin-maximal.

    Parameters
    ----------
    budget
        Units to give, ``0 <= budget <= sum(quantities)``.
    quantities
        What each request asked for (positive integers).
    """
    total = sum(quantities)
    if not 0 <= budget <= total:
        raise ValueError(f"budget {budget} is outside 0..{total}")
    if budget == total:
        return LeximinSplit(list(quantities), [], 0)
    # Jump start: everyone gets floor(t * q) for a t at or below the max-min level t*; every
    # leximin optimum gives at least that (its minimum ratio is t*). Bisection on the real line.
    lo, hi = 0.0, 1.0
    for _step in range(60):
        mid = (lo + hi) / 2
        if sum(math.ceil(mid * q) for q in quantities) <= budget:
            lo = mid
        else:
            hi = mid
    safe = lo * (1 - 1e-9)  # never above t*, whatever the rounding
    given = [min(q, math.floor(safe * q)) for q in quantities]
    # The greedy hands out the remaining units a tie class at a time: requests with the same
    # ratio and quantity. A float ratio orders equal rationals equally (correct rounding) and
    # distinct ones apart for quantities below ~10^7.
    heap = [(g / q, q, i) for i, (g, q) in enumerate(zip(given, quantities, strict=True))
            if g < q]
    heapq.heapify(heap)
    left = budget - sum(given)
    while left > 0:
        key = heap[0][:2]
        tied = []
        while heap and heap[0][:2] == key:
            tied.append(heapq.heappop(heap)[2])
        if len(tied) > left:
            return LeximinSplit(given, sorted(tied), left)
        for i in tied:
            given[i] += 1
            if given[i] < quantities[i]:
                heapq.heappush(heap, (given[i] / quantities[i], quantities[i], i))
        left -= len(tied)
    return LeximinSplit(given, [], 0)


@dataclass
class _Category:
    """One category's usable stock and requests (A2: categories never mix)."""

    name: str
    donations: list[Donation]  # usable (A4), in expiry order
    requests: list[Request]
    expired: list[Donation]

    @property
    def stock(self) -> int:
        return sum(d.quantity for d in self.donations)


@dataclass
class _Demand:
    """What the requests of a category receive: fixed units, plus tie classes (request ids and
    how many of them get one more unit) that the flow settles."""

    base: dict[str, int]
    tied: list[tuple[list[str], int]]

    @property
    def units(self) -> int:
        return sum(self.base.values()) + sum(extra for _key, extra in self.tied)


def _expiry_key(d: Donation) -> tuple[int, str]:
    return (d.expires.toordinal() if d.expires else 10**9, d.id)


def _demand(cat: _Category) -> _Demand:
    """Priorities in order (lexicographic), leximin inside each."""
    left = cat.stock
    demand = _Demand({}, [])
    for p in Priority:
        group = [r for r in cat.requests if r.priority is p]
        budget = min(left, sum(r.quantity for r in group))
        split = leximin_split(budget, [r.quantity for r in group])
        demand.base.update({r.id: units for r, units in zip(group, split.base, strict=True)})
        if split.extra:
            demand.tied.append(([group[i].id for i in split.tied], split.extra))
        left -= budget
    return demand


def _supplies(cat: _Category, units: int) -> tuple[dict[str, int], list[Donation], int]:
    """Take ``units`` from the soonest-expiring donations.

    Returns the donations used in full, the tier of same-day donations the last units come from
    (the flow chooses among them) and how many units that tier gives.
    """
    full: dict[str, int] = {}
    left = units
    by_day: dict[object, list[Donation]] = {}
    for d in cat.donations:
        by_day.setdefault(d.expires, []).append(d)
    for tier in by_day.values():  # dicts keep the expiry order of cat.donations
        if left <= 0:
            break
        size = sum(d.quantity for d in tier)
        if size <= left:
            full.update({d.id: d.quantity for d in tier})
            left -= size
        else:
            return full, tier, left
    return full, [], 0


def _route(cat: _Category, demand: _Demand, walk: np.ndarray, circle_min: float,
           week: Week) -> list[AllocationLine]:
    """Min-cost flow from the used donations to the requests; ``walk`` is donations x requests.

    Nodes: used donations (supply: what they give), the same-expiry tier they share (supply: its
    units), requests (demand: their fixed units) and one node per fairness tie class (demand: its
    extra units, one at most from each member).
    """
    units = demand.units
    if units == 0:
        return []
    full, tier, tier_units = _supplies(cat, units)
    d_index = {d.id: i for i, d in enumerate(cat.donations)}
    r_index = {r.id: j for j, r in enumerate(cat.requests)}
    quantity = {r.id: r.quantity for r in cat.requests}
    used = [d for d in cat.donations if d.id in full] + tier
    served = [r.id for r in cat.requests
              if demand.base[r.id] > 0 or any(r.id in ids for ids, _ in demand.tied)]
    delivery_cost = units * WALK_COST_CAP + 1  # dearer than any total walking: lexicographic
    flow = min_cost_flow.SimpleMinCostFlow()
    node = {d.id: k for k, d in enumerate(used)}
    r_node = {rid: len(used) + k for k, rid in enumerate(served)}
    next_node = len(used) + len(served)
    arcs: list[tuple[Donation, str, float, bool]] = []
    for d in used:
        for rid in served:
            minutes = float(walk[d_index[d.id], r_index[rid]])
            delivery = not minutes <= circle_min
            cost = min(round(minutes * 10), WALK_COST_CAP) + (delivery_cost if delivery else 0)
            flow.add_arc_with_capacity_and_unit_cost(node[d.id], r_node[rid],
                                                     min(d.quantity, quantity[rid]), cost)
            arcs.append((d, rid, minutes, delivery))
        flow.set_node_supply(node[d.id], full.get(d.id, 0))
    if tier:
        for d in tier:
            flow.add_arc_with_capacity_and_unit_cost(next_node, node[d.id], d.quantity, 0)
        flow.set_node_supply(next_node, tier_units)
        next_node += 1
    for rid in served:
        flow.set_node_supply(r_node[rid], -demand.base[rid])
    for ids, extra in demand.tied:
        for rid in ids:
            flow.add_arc_with_capacity_and_unit_cost(r_node[rid], next_node, 1, 0)
        flow.set_node_supply(next_node, -extra)
        next_node += 1
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"category {cat.name}: min-cost flow ended with status {status}")
    return [
        AllocationLine(d.id, rid, int(flow.flow(a)), round(minutes, 1), delivery,
                       d.hand_over(week, delivery))
        for a, (d, rid, minutes, delivery) in enumerate(arcs) if flow.flow(a) > 0
    ]


def _walk_matrix(donations: Sequence[Donation], requests: Sequence[Request], settings: Settings,
                 network: WalkingNetwork | None) -> np.ndarray:
    """Donations x requests walking minutes (of one category: the only pairs an allocation
    weighs): exact up to two circles, an estimate beyond.

    Beyond two circles the pair is a delivery whatever the exact figure; its ``walk_min`` is the
    straight line x detour factor (at least two circles), to tell the volunteer what to expect.
    """
    origins = [d.location for d in donations]
    targets = [r.location for r in requests]
    far = 2 * settings.circle_min
    minutes = walk_minutes(origins, targets, settings, network, cutoff_min=far)
    beyond = ~np.isfinite(minutes)
    if beyond.any():
        i, j = np.nonzero(beyond)
        lat1 = np.array([p.lat for p in origins])[i]
        lon1 = np.array([p.lon for p in origins])[i]
        lat2 = np.array([p.lat for p in targets])[j]
        lon2 = np.array([p.lon for p in targets])[j]
        estimate = geodesic_m(lat1, lon1, lat2, lon2) * settings.detour_factor
        minutes[i, j] = np.maximum(estimate / settings.walk_speed_m_per_min, far)
    return minutes


def allocate(problem: CharityProblem, settings: Settings | None = None,
             network: WalkingNetwork | None = None) -> Allocation:
    """Allocate donations to requests (SCHEMA.md rules A1-A4 and objective order).

    Parameters
    ----------
    problem
        Donations and requests; the week decides which donations have expired (A4).
    settings
        Walking speed, detour factor and circle (the reach of a pickup, A3).
    network
        Street network for walking times; geodesic x detour without one.
    """
    settings = settings or Settings()
    problem.check_size()
    began = time.monotonic()
    week = problem.week
    lines: list[AllocationLine] = []
    short: list[ShortRequest] = []
    leftovers: list[Leftover] = []
    fill: dict[str, int] = {}
    for name in problem.categories:
        cat = _Category(
            name,
            sorted((d for d in problem.donations if d.category == name and d.usable_in(week)),
                   key=_expiry_key),
            [r for r in problem.requests if r.category == name],
            [d for d in problem.donations if d.category == name and not d.usable_in(week)],
        )
        walk = _walk_matrix(cat.donations, cat.requests, settings, network)
        cat_lines = _route(cat, _demand(cat), walk, settings.circle_min, week)
        cat_fill = {r.id: 0 for r in cat.requests}
        for line in cat_lines:
            cat_fill[line.request_id] += line.quantity
        fill.update(cat_fill)
        lines.extend(cat_lines)
        short.extend(_short(cat, cat_fill))
        leftovers.extend(_leftovers(cat, cat_lines))
    levels = _levels(problem.requests, fill)
    return Allocation(
        week=week, lines=lines, short=short, leftovers=leftovers, levels=levels,
        status=SolveStatus.OPTIMAL,  # every step is exact (module docstring); flows are checked
        solve_seconds=time.monotonic() - began,
        method=f"street network {network.name}" if network else
        f"geodesic x {settings.detour_factor:g}",
        stats={"categories": len(problem.categories)},
    )


def _short(cat: _Category, fill: dict[str, int]) -> Iterable[ShortRequest]:
    wanted = {p: sum(r.quantity for r in cat.requests if r.priority is p) for p in Priority}
    mix = ", ".join(f"{p.value} {wanted[p]}" for p in Priority if wanted[p])
    for r in cat.requests:
        got = fill[r.id]
        if got >= r.quantity:
            continue
        if not cat.donations and not cat.expired:
            reason, detail = ShortReason.NO_DONATION, _("nobody donated {category}").format(
                category=cat.name)
        elif not cat.donations:
            last = max(d.expires for d in cat.expired if d.expires)
            reason, detail = (ShortReason.EXPIRED,
                              _("all {category} donations expired (latest {date})").format(
                                  category=cat.name, date=last.isoformat()))
        else:
            reason, detail = ShortReason.STOCK_SHORT, _(
                "{stock} usable units of {category} for {requested} requested ({mix}); higher "
                "priorities first, then the fairest split").format(
                    stock=cat.stock, category=cat.name, requested=sum(wanted.values()), mix=mix)
        yield ShortRequest(r.id, cat.name, r.priority, r.quantity, got, reason,
                           detail + _("; {n} more unit(s) would fill it").format(
                               n=r.quantity - got))


def _leftovers(cat: _Category, lines: list[AllocationLine]) -> Iterable[Leftover]:
    used: dict[str, int] = {}
    for line in lines:
        used[line.donation_id] = used.get(line.donation_id, 0) + line.quantity
    for d in cat.expired:
        yield Leftover(d.id, cat.name, d.quantity, d.expires, expired=True)
    for d in cat.donations:
        if d.quantity > used.get(d.id, 0):
            yield Leftover(d.id, cat.name, d.quantity - used.get(d.id, 0), d.expires,
                           expired=False)


def _levels(requests: list[Request], fill: dict[str, int]) -> dict[Priority, FillLevel]:
    out: dict[Priority, FillLevel] = {}
    for p in Priority:
        group = [r for r in requests if r.priority is p]
        allocated = sum(fill[r.id] for r in group)
        out[p] = FillLevel(
            priority=p, requests=len(group), requested=sum(r.quantity for r in group),
            allocated=allocated,
            bound=allocated,  # min(stock left, requested) per category is both optimum and bound
            min_fill_ratio=min((fill[r.id] / r.quantity for r in group), default=1.0),
        )
    return out


def delivery_needs(problem: CharityProblem, allocation: Allocation,
                   window: TimeWindow = DELIVERY_WINDOW) -> list[Need]:
    """Each delivery as a ``goods_delivery`` need for the weekly schedule.

    Decisions: one need per (donation, request) line, id ``GD-<donation>-<request>``, at the
    household, with the request's priority, on the line's date (the Saturday round, or the day
    the goods expire if sooner: never after they expire); the volunteer fetches the goods
    first, so the duration is a 15-minute hand-over plus the round trip to the pickup place (at
    least 30 min, at most the window). The window defaults to 09:00-17:00.
    """
    requests = {r.id: r for r in problem.requests}
    needs = []
    for line in allocation.deliveries:
        r = requests[line.request_id]
        duration = min(max(30, 15 + 2 * math.ceil(line.walk_min)), window.minutes)
        needs.append(Need(
            id=f"GD-{line.donation_id}-{line.request_id}", kind=NeedKind.CHARITY,
            service=DELIVERY_SERVICE, beneficiary=r.beneficiary, location=r.location,
            days=(list(Day)[line.date.weekday()],), window=window, duration_min=duration,
            priority=r.priority,
        ))
    return needs
