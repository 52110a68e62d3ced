"""Split a week into parts that do not interact: the solver's components, the bound's days.

Two occurrences interact when a volunteer could serve both, or when they could use the same
merchant on the same day (its daily capacity, R8). Distant volunteers never compete, so each part
is its own, smaller model and the week's optimum is the union of the parts' optima. With
``by_day`` a volunteer on different days counts as different people: the weekly hours cap (R6)
is then no longer shared, which is what the day-by-day relaxation in :mod:`matcher.bounds` wants.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from matcher.circles import Candidates


@dataclass
class Part:
    """Occurrence and option indices (into the candidates) of one independent part."""

    occurrences: list[int]
    options: list[int]


def partition(cand: Candidates, occurrences: list[int] | None = None,
              options: list[int] | None = None, *, by_day: bool = False) -> list[Part]:
    """Independent parts of the coverable ``occurrences`` (all by default), largest first.

    ``options`` defaults to every option of those occurrences.
    """
    problem = cand.problem
    n_occ, n_vol = len(problem.occurrences), len(problem.volunteers)
    days = 7 if by_day else 1
    parent = list(range(n_occ + n_vol * days + len(problem.merchants) * 7))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    todo = range(n_occ) if occurrences is None else occurrences
    keep = {o for o in todo if cand.coverable(o)}
    chosen = range(len(cand.options)) if options is None else options
    chosen = [i for i in chosen if cand.options[i].occurrence in keep]

    def day(o: int) -> int:
        return problem.occurrences[o].day.number

    for i in chosen:
        opt = cand.options[i]
        slot = day(opt.occurrence) if by_day else 0
        union(opt.occurrence, n_occ + opt.volunteer * days + slot)
    for (o, j) in cand.merchant_starts:
        if o in keep:
            union(o, n_occ + n_vol * days + 7 * j + day(o))
    groups: dict[int, Part] = {}
    for o in sorted(keep):
        groups.setdefault(find(o), Part([], [])).occurrences.append(o)
    for i in chosen:
        groups[find(cand.options[i].occurrence)].options.append(i)
    return sorted(groups.values(), key=lambda p: -len(p.options))


def option_pairs(cand: Candidates, options: Iterable[int]) -> int:
    """How many pairs of options share a volunteer and a day: the size of R5 in a model."""
    per_day = Counter((cand.options[i].volunteer,
                       cand.problem.occurrences[cand.options[i].occurrence].day)
                      for i in options)
    return sum(n * (n - 1) // 2 for n in per_day.values())
