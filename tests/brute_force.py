"""Exhaustive lexicographic optimum of tiny problems, independent of CP-SAT.

Every occurrence is either left out or given a set of volunteers and a merchant; for each such
choice the start times are decided exactly: every order of each volunteer's tasks in a day is
tried and the resulting difference constraints are solved by longest paths (Bellman-Ford).
Integer starts, as in HH:MM outputs.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

from matcher.domain import Occurrence, Problem
from tests.validator import Walk

RADIUS = 15.0


def _occ_choices(problem: Problem, occ: Occurrence, walk: Walk) -> list[tuple[tuple[str, ...],
                                                                             str | None]]:
    need = occ.need
    merchants: list[str | None] = [None]
    if need.merchant_service is not None:
        merchants = [m.id for m in problem.merchants
                     if need.merchant_service in m.services and m.capacity_per_day > 0
                     and walk(m.location, need.location) <= RADIUS + 1e-6]
    capable = [v for v in problem.volunteers if need.skills <= v.skills
               and walk(v.location, need.location) <= RADIUS + 1e-6]
    out: list[tuple[tuple[str, ...], str | None]] = [((), None)]
    for group in itertools.combinations(capable, need.volunteers_needed):
        for mid in merchants:
            if mid is not None:
                m = problem.merchant_by_id[mid]
                if any(walk(v.location, m.location) > RADIUS + 1e-6 for v in group):
                    continue
            out.append((tuple(v.id for v in group), mid))
    return out


def _times_feasible(problem: Problem, chosen: dict[int, tuple[tuple[str, ...], str | None]],
                    walk: Walk) -> bool:
    occs = problem.occurrences
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    for o, (group, mid) in chosen.items():
        occ = occs[o]
        a, b = occ.need.window.start, occ.need.window.end - occ.need.duration_min
        if mid is not None:
            m = problem.merchant_by_id[mid]
            a, b = max(a, m.open.start), min(b, m.open.end - 1)
        for vid in group:
            windows = problem.volunteer_by_id[vid].windows_on(occ.day)
            if len(windows) != 1:
                return False  # tiny instances give each volunteer at most one window a day
            a, b = max(a, windows[0].start), min(b, windows[0].end - occ.need.duration_min)
        if a > b:
            return False
        lo[o], hi[o] = a, b
    per_day: dict[tuple[str, str], list[int]] = defaultdict(list)
    for o, (group, _mid) in chosen.items():
        for vid in group:
            per_day[(vid, occs[o].day)].append(o)

    def gap(a: int, b: int) -> int:
        need_a, need_b = occs[a].need, occs[b].need
        mid = chosen[b][1]
        if mid is None:
            t = walk(need_a.location, need_b.location)
        else:
            m = problem.merchant_by_id[mid].location
            t = walk(need_a.location, m) + walk(m, need_b.location)
        return need_a.duration_min + math.ceil(t - 1e-7)

    days = list(per_day.values())
    for orders in itertools.product(*[list(itertools.permutations(d)) for d in days]):
        edges = [(seq[i], seq[i + 1], gap(seq[i], seq[i + 1]))
                 for seq in orders for i in range(len(seq) - 1)]
        start = dict(lo)
        for _ in range(len(start) + 1):
            changed = False
            for a, b, w in edges:
                if start[a] + w > start[b]:
                    start[b] = start[a] + w
                    changed = True
            if not changed:
                break
        if not changed and all(start[o] <= hi[o] for o in start):
            return True
    return False


def lexicographic_optimum(problem: Problem, walk: Walk) -> tuple[int, int, int]:
    """(red, yellow, blue) covered occurrences in the lexicographically best valid schedule."""
    occs = problem.occurrences
    choices = [_occ_choices(problem, occ, walk) for occ in occs]
    best = (-1, -1, -1)
    for combo in itertools.product(*choices):
        chosen = {o: c for o, c in enumerate(combo) if c[0]}
        score = [0, 0, 0]
        for o in chosen:
            score[occs[o].need.priority.rank] += 1
        if tuple(score) <= best:
            continue
        used: dict[str, int] = defaultdict(int)
        load: dict[tuple[str, str], int] = defaultdict(int)
        for o, (group, mid) in chosen.items():
            for vid in group:
                used[vid] += occs[o].need.duration_min
            if mid is not None:
                load[(mid, occs[o].day)] += 1
        if any(used[v] > 60 * problem.volunteer_by_id[v].max_hours_week + 1e-6 for v in used):
            continue
        if any(n > problem.merchant_by_id[m].capacity_per_day for (m, _d), n in load.items()):
            continue
        if _times_feasible(problem, chosen, walk):
            best = (score[0], score[1], score[2])
    return best
