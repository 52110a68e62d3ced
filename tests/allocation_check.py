"""Independent checks of a charity allocation (SCHEMA.md A1-A4) and a brute-force optimum.

Written from the schema, not from ``matcher.allocation``: it walks with its own oracle and
enumerates every allocation of tiny problems to find the lexicographic optimum.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

from matcher.charity import AllocationLine, CharityProblem
from matcher.domain import Priority
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
    errors += [f"A1 {k} gives {v} > {donations[k].quantity}" for k, v in given.items()
               if v > donations[k].quantity]
    errors += [f"A1 {k} receives {v} > {requests[k].quantity}" for k, v in received.items()
               if v > requests[k].quantity]
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
