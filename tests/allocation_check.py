"""Independent checks of a charity allocation (SCHEMA.md A1-A4) and a brute-force optimum.

Written from the schema, not from ``matcher.allocation``: it walks with its own oracle and
enumerates every allocation of tiny problems to find the lexicographic optimum.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Sequence

from geopy.distance import geodesic

from matcher.charity import AllocationLine, CharityProblem
from matcher.domain import Need, Priority
from tests.validator import Walk

TOL = 0.051  # walk_min is written with one decimal


def check_allocation(problem: CharityProblem, lines: Sequence[AllocationLine], walk: Walk,
                     circle_min: float = 15.0) -> list[str]:
    """Every violation of A1-A4 as a sentence; empty when the allocation is valid."""
    errors: list[str] = []
    donations = {d.id: d for d in problem.donations}
    requests = {r.id: r for r in problem.requests}
    given: dict[str, int] = defaultdict(int)
    received: dict[str, int] = defaultdict(int)
    pairs: set[tuple[str, str]] = set()
    for line in lines:
        d, r = donations.get(line.donation_id), requests.get(line.request_id)
        if d is None or r is None:
            errors.append(f"{line}: unknown donation or request")
            continue
        if (d.id, r.id) in pairs:
            errors.append(f"{d.id}->{r.id} listed twice")
        pairs.add((d.id, r.id))
        if not isinstance(line.quantity, int) or line.quantity <= 0:
            errors.append(f"A1 {d.id}->{r.id}: quantity {line.quantity} is not positive")
        given[d.id] += line.quantity
        received[r.id] += line.quantity
        if d.category != r.category:
            errors.append(f"A2 {d.id} ({d.category}) -> {r.id} ({r.category})")
        minutes = walk(d.location, r.location)
        if not line.delivery and minutes > circle_min + TOL:
            errors.append(f"A3 {d.id}->{r.id}: {minutes:.1f} min walk and not a delivery")
        if not line.delivery and abs(minutes - line.walk_min) > TOL + 0.01 * minutes:
            errors.append(f"{d.id}->{r.id}: walk_min {line.walk_min} but {minutes:.2f}")
        if d.expires is not None and d.expires < problem.week.monday:
            errors.append(f"A4 {d.id} expired {d.expires} before {problem.week.monday}")
        errors += _date_errors(problem, line, d.expires)
    errors += [f"A1 {k} gives {v} > {donations[k].quantity}" for k, v in given.items()
               if v > donations[k].quantity]
    errors += [f"A1 {k} receives {v} > {requests[k].quantity}" for k, v in received.items()
               if v > requests[k].quantity]
    return errors


def _date_errors(problem: CharityProblem, line: AllocationLine,
                 expires: dt.date | None) -> list[str]:
    """A4 on the day of the hand-over: inside the week, and no delivery or pickup after the
    goods expire."""
    monday = problem.week.monday
    what = "delivery" if line.delivery else "pickup"
    pair = f"{line.donation_id}->{line.request_id}"
    if not monday <= line.date <= monday + dt.timedelta(days=6):
        return [f"A4 {pair}: {what} on {line.date}, outside the week {problem.week}"]
    if expires is not None and line.date > expires:
        return [f"A4 {pair}: {what} on {line.date}, after the goods expire on {expires}"]
    return []


def check_delivery_needs(problem: CharityProblem, lines: Sequence[AllocationLine],
                         needs: Sequence[Need], id_prefix: str = "") -> list[str]:
    """Each delivery line is exactly one need at the household (within a metre), on the
    line's day, which is on or before the goods expire; no need without a delivery."""
    errors: list[str] = []
    donations = {d.id: d for d in problem.donations}
    requests = {r.id: r for r in problem.requests}
    by_id = {n.id: n for n in needs}
    expected = set()
    for line in lines:
        if not line.delivery:
            continue
        nid = f"{id_prefix}GD-{line.donation_id}-{line.request_id}"
        expected.add(nid)
        need = by_id.get(nid)
        if need is None:
            errors.append(f"delivery {nid} has no need")
            continue
        home = requests[line.request_id].location
        off = geodesic((need.location.lat, need.location.lon), (home.lat, home.lon)).meters
        if off > 1.0:
            errors.append(f"{nid} is {off:.0f} m from the household")
        dates = [problem.week.date_of(day) for day in need.days]
        if dates != [line.date]:
            errors.append(f"{nid} is on {dates}, the line on {line.date}")
        expires = donations[line.donation_id].expires
        if expires is not None and any(day > expires for day in dates):
            errors.append(f"A4 {nid}: delivered on {dates} after the goods expire on {expires}")
    errors += [f"need {nid} is no delivery" for nid in sorted(set(by_id) - expected)]
    return errors


def objective(problem: CharityProblem, x: dict[tuple[str, str], int], walk: Walk,
              circle_min: float = 15.0) -> tuple[object, ...]:
    """The SCHEMA.md order as one tuple where larger is better.

    Fulfilment per priority; then per priority the sorted fill ratios (leximin); then units used
    per expiry date, soonest first; then fewer delivered units; then less walking (tenths of a
    minute per unit, as the solver counts).
    """
    got: dict[str, int] = defaultdict(int)
    used_by_day: dict[int, int] = defaultdict(int)
    delivered = walked = 0
    donations = {d.id: d for d in problem.donations}
    requests = {r.id: r for r in problem.requests}
    for (did, rid), units in x.items():
        if not units:
            continue
        got[rid] += units
        expires = donations[did].expires
        used_by_day[expires.toordinal() if expires else 10**9] += units
        minutes = walk(donations[did].location, requests[rid].location)
        delivered += units * (minutes > circle_min)
        walked += units * round(minutes * 10)
    fill = tuple(sum(got[r.id] for r in problem.requests if r.priority is p) for p in Priority)
    fair = tuple(tuple(sorted(got[r.id] / r.quantity for r in problem.requests
                              if r.priority is p)) for p in Priority)
    days = sorted({d.expires.toordinal() if d.expires else 10**9 for d in problem.donations})
    expiry = tuple(used_by_day[day] for day in days)
    return fill, fair, expiry, -delivered, -walked


def brute_force(problem: CharityProblem, walk: Walk,
                circle_min: float = 15.0) -> tuple[object, ...]:
    """The best :func:`objective` over every valid allocation (tiny problems only)."""
    week_monday = problem.week.monday
    cells = [(d, r) for d in problem.donations for r in problem.requests
             if d.category == r.category and (d.expires is None or d.expires >= week_monday)]
    best: tuple[object, ...] | None = None
    ranges = [range(min(d.quantity, r.quantity) + 1) for d, r in cells]
    for values in itertools.product(*ranges):
        gives: dict[str, int] = defaultdict(int)
        gets: dict[str, int] = defaultdict(int)
        for (d, r), v in zip(cells, values, strict=True):
            gives[d.id] += v
            gets[r.id] += v
        if any(gives[d.id] > d.quantity for d, _ in cells) or \
                any(gets[r.id] > r.quantity for _, r in cells):
            continue
        x = {(d.id, r.id): v for (d, r), v in zip(cells, values, strict=True)}
        value = objective(problem, x, walk, circle_min)
        if best is None or _better(value, best):
            best = value
    assert best is not None
    return best


def _better(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return a > b  # type: ignore[operator]  # tuples of numbers and tuples compare fine
