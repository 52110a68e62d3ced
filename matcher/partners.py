"""Whom to partner with: from a week's ``no_merchant_in_circle`` occurrences, which kind of
partner merchant, placed near which street node, would unblock the most of them.

The sibling of :mod:`matcher.recruit` for merchants. A candidate is a pair (service, place): a
partner offering that service (a 社区食堂 for ``meal``, a 药店 for ``medicine`` ...) at a street
node (or, without a network, at a need's place). It *reaches* an occurrence that went unmet for
want of a merchant when the need asks that service, the place is within the need's circle, and
some volunteer with the need's skills, free that day during its window, has both the need and
the place within her circle (R4 with a merchant). Choosing ``k`` pairs that reach the most is
maximum coverage, solved as in :mod:`matcher.recruit` (exact with CP-SAT up to
:data:`~matcher.recruit.EXACT_MAX_K`, greedy for every ``k``).

Reaching is not unblocking: volunteers have hours and other tasks, so each suggestion is checked
by re-solving the week with a synthetic partner there (the suggestions before it included),
open across the windows it reaches and with a day's capacity for all of them; the gain reported
is the gain that solve finds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from matcher.domain import Day, Location, Merchant, Occurrence, Problem, TimeWindow, UnmetReason
from matcher.i18n import _
from matcher.params import SolveParams
from matcher.recruit import (
    EXACT_MAX_K,
    PlacesChosen,
    _greedy_order,
    max_coverage_exact,
    max_coverage_greedy,
    street_near,
)
from matcher.resources import MERCHANT_SERVICES, Category, category_label
from matcher.settings import Settings
from matcher.solver import solve
from matcher.travel import TravelTimes, WalkingNetwork, walk_minutes

PARTNER_PREFIX = "PARTNER-"


def service_label(service: str) -> str:
    """A merchant service as people say it after 提供 ("offering ..."); the code itself when we
    have no words."""
    labels = {
        "meal": _("meals"),
        "medicine": _("medicine"),
        "groceries": _("groceries"),
        "goods": _("daily goods"),
    }
    return labels.get(service, service)


def service_category(service: str) -> Category:
    """The resource category a partner offering this service is (see
    :data:`matcher.resources.MERCHANT_SERVICES`)."""
    return MERCHANT_SERVICES.get(service, Category.SERVICES)


@dataclass(frozen=True)
class PartnerSuggestion:
    """One partner to bring in: its service, its place, and what the re-solve found it adds.

    ``reaches`` are the blocked occurrences it would put within reach; ``adds`` those not
    reached by the suggestions before it (the estimate); ``gain`` the occurrences the re-solved
    week covers more than with the suggestions before it only (the truth).
    """

    service: str
    place: Location
    street: str
    reaches: tuple[tuple[str, Day], ...]
    adds: int
    gain: int
    merchant: Merchant

    @property
    def category(self) -> Category:
        return service_category(self.service)


@dataclass
class PartnerPlan(PlacesChosen):
    """The partner suggestions, with both coverage values and the re-solves' figures."""

    k: int
    blocked: int  # occurrences unmet as no_merchant_in_circle
    by_service: dict[str, int]
    suggestions: list[PartnerSuggestion]

    def sentences(self) -> list[str]:
        """Each suggestion in plain words."""
        return [_("Bring in a partner {category} near {place} offering {service}, open "
                  "{open}: {gain} more services covered").format(
                    category=category_label(s.category), place=s.street,
                    service=service_label(s.service), open=s.merchant.open, gain=s.gain)
                for s in self.suggestions]


def _free_for(problem: Problem, occ: Occurrence) -> np.ndarray:
    """Volunteers with the need's skills and a window that day long enough to serve it."""
    need = occ.need
    ok = np.zeros(len(problem.volunteers), dtype=bool)
    for v, vol in enumerate(problem.volunteers):
        if not need.skills <= vol.skills:
            continue
        for w in vol.windows_on(occ.day):
            start = max(w.start, need.window.start)
            if min(w.end, need.window.end) - start >= need.duration_min:
                ok[v] = True
                break
    return ok


def _covered(problem: Problem, settings: Settings, network: WalkingNetwork | None,
             params: SolveParams) -> tuple[int, bool, list[tuple[str, Day]]]:
    travel = TravelTimes.build(problem, settings, network)
    schedule = solve(problem, params, travel=travel, settings=settings)
    proven = all(level.optimal for level in schedule.levels.values())
    blocked = [(u.need_id, u.day) for u in schedule.unmet
               if u.reason is UnmetReason.NO_MERCHANT_IN_CIRCLE]
    return schedule.covered, proven, blocked


def suggest_partners(problem: Problem, k: int, settings: Settings,
                     network: WalkingNetwork | None = None,
                     params: SolveParams | None = None) -> PartnerPlan:
    """The ``k`` partner merchants (service and place) that would unblock the most
    ``no_merchant_in_circle`` occurrences of the week, each checked by re-solving."""
    params = params or SolveParams(time_limit_s=30)
    before, proven, blocked_keys = _covered(problem, settings, network, params)
    by_key = {o.key: o for o in problem.occurrences}
    blocked = [by_key[key] for key in blocked_keys if by_key[key].need.merchant_service]
    services = sorted({str(o.need.merchant_service) for o in blocked})
    needs = list({o.need.id: o.need for o in blocked}.values())
    if network is not None:
        places = [Location(float(a), float(b))
                  for a, b in zip(network.lat, network.lon, strict=True)]
    else:
        places = [n.location for n in needs]
    covers: list[frozenset[int]] = []
    pairs: list[tuple[str, int]] = []
    if blocked:
        circle = settings.circle_min
        need_index = {n.id: i for i, n in enumerate(needs)}
        need_place = walk_minutes([n.location for n in needs], places, settings,
                                  network) <= circle
        vols = [v.location for v in problem.volunteers]
        if vols:
            vol_place = walk_minutes(vols, places, settings, network) <= circle
            vol_need = walk_minutes(vols, [n.location for n in needs], settings,
                                    network) <= circle
        else:
            vol_place = np.zeros((0, len(places)), dtype=bool)
            vol_need = np.zeros((0, len(needs)), dtype=bool)
        reach_rows = []
        for occ in blocked:
            i = need_index[occ.need.id]
            helpers = _free_for(problem, occ) & vol_need[:, i]
            reach_rows.append(need_place[i] & vol_place[helpers].any(axis=0))
        reach = np.array(reach_rows, dtype=bool)
        for service in services:
            mine = np.array([o.need.merchant_service == service for o in blocked])
            for j in range(len(places)):
                hit = frozenset(np.flatnonzero(reach[:, j] & mine).tolist())
                if hit:
                    covers.append(hit)
                    pairs.append((service, j))
    greedy = max_coverage_greedy(covers, k)
    greedy_cover = len(frozenset().union(*(covers[c] for c in greedy)))
    exact: list[int] | None = None
    if k <= EXACT_MAX_K and covers:
        exact = max_coverage_exact(covers, len(blocked), k)
    chosen = _greedy_order(covers, exact) if exact is not None else greedy
    exact_cover = (len(frozenset().union(*(covers[c] for c in exact)))
                   if exact is not None else (0 if k <= EXACT_MAX_K else None))
    suggestions: list[PartnerSuggestion] = []
    current = problem
    covered = before
    so_far: set[int] = set()
    for number, c in enumerate(chosen, start=1):
        service, j = pairs[c]
        reached = sorted(covers[c], key=lambda o: blocked[o].key)
        windows = [blocked[o].need.window for o in reached]
        per_day = Counter(blocked[o].day for o in reached)
        partner = Merchant(f"{PARTNER_PREFIX}{number}", _("new partner merchant"), places[j],
                           frozenset({service}), max(per_day.values()),
                           TimeWindow(min(w.start for w in windows),
                                      max(w.end for w in windows)))
        current = replace(current, merchants=[*current.merchants, partner])
        after, ok, _blocked = _covered(current, settings, network, params)
        proven = proven and ok
        street = (street_near(network, j) if network is not None
                  else f"({places[j].lat:.4f}, {places[j].lon:.4f})")
        suggestions.append(PartnerSuggestion(service, places[j], street,
                                             tuple(blocked[o].key for o in reached),
                                             len(covers[c] - so_far), after - covered, partner))
        so_far |= covers[c]
        covered = after
    by_service = dict(sorted(Counter(str(o.need.merchant_service) for o in blocked).items()))
    return PartnerPlan(k, len(blocked), by_service, suggestions, greedy_cover=greedy_cover,
                       exact_cover=exact_cover, covered_before=before, covered_after=covered,
                       proven=proven, greedy_places=greedy)


def partner_rows(plan: PartnerPlan) -> list[dict[str, object]]:
    """The suggestions as table rows (CLI, API, console)."""
    return [{"rank": n, "service": s.service, "category": s.category.value,
             "category_name": category_label(s.category), "near": s.street,
             "lat": round(s.place.lat, 6), "lon": round(s.place.lon, 6),
             "open": str(s.merchant.open), "capacity_per_day": s.merchant.capacity_per_day,
             "reaches": len(s.reaches), "adds": s.adds, "gain": s.gain}
            for n, s in enumerate(plan.suggestions, start=1)]


__all__: Sequence[str] = ("PartnerPlan", "PartnerSuggestion", "partner_rows",
                          "service_category", "service_label", "suggest_partners")
