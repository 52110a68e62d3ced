"""Re-solving a week that is under way: work agreed with people stays, declines are honoured.

A re-solve (say, after deliveries were added) must not move what volunteers already accepted,
checked in or completed. :func:`commit` turns the options of a week into those of the re-solve:

* **Pinned** assignments become options fixed at their start and merchant that every model
  forces on (:class:`~matcher.model.ComponentModel`) and every greedy plan starts from
  (``Candidates.pin_plan``), so they count for R5 walks, R6 hours, R7 headcount (a two-person
  need with one pinned volunteer gains a second only at the same start, via the same
  merchant), R8 capacity and R9.
* **Forbidden** ``(volunteer_id, need_id, day)`` (a decline) lose their options.
* Nothing new is offered before ``not_before``: occurrences of earlier days are closed, and
  today's keep only the starts still ahead (a pinned one keeps its pins).

A pin that no longer satisfies the rules (its need, volunteer or merchant was edited after
publishing, it collides with another pin, or a second volunteer it needs cannot join) is
**held**: kept exactly as agreed, outside the model, and reported as a :class:`HeldPin`. Its
occurrence is offered to nobody else, its volunteer to nothing else that day, and its minutes
and merchant order are taken off the R6 and R8 limits of the others.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from matcher.circles import Candidates, Option
from matcher.domain import Assignment, Day, HeldPin, HeldReason
from matcher.timeline import Cover, Task, Timelines


@dataclass
class Commitment:
    """What :func:`commit` did: the re-solve's options, the held pins, the closed occurrences."""

    cand: Candidates
    held: list[HeldPin]
    held_occurrences: set[int]
    closed: set[int]  # occurrences nobody new may be offered (their time has passed)


def _minute(moment: dt.datetime) -> int:
    """The first whole minute at or after ``moment``."""
    return moment.hour * 60 + moment.minute + (1 if moment.second or moment.microsecond else 0)


def commit(cand: Candidates, pinned: Sequence[Assignment] = (),
           forbidden: Collection[tuple[str, str, Day]] = (),
           not_before: dt.datetime | None = None,
           offered: Sequence[Assignment] = ()) -> Commitment:
    """The options of a re-solve that keeps ``pinned``, honours ``forbidden`` and offers
    nothing before ``not_before`` (a naive local time; None: no limit); the options that would
    keep one of the ``offered`` assignments as it is are marked (``Candidates.kept_offers``).

    ``cand`` holds every option of the problem; the result's candidates share its problem and
    travel times.
    """
    problem = cand.problem
    occ_index = {(o.need.id, o.day): k for k, o in enumerate(problem.occurrences)}
    vol_index = {v.id: k for k, v in enumerate(problem.volunteers)}
    merchant_index = {m.id: k for k, m in enumerate(problem.merchants)}

    def opens(o: int) -> int | None:
        """The earliest start a new volunteer may be offered on ``o``; None when closed."""
        occ = problem.occurrences[o]
        if not_before is None or occ.date > not_before.date():
            return occ.earliest_start
        if occ.date < not_before.date():
            return None
        first = max(occ.earliest_start, _minute(not_before))
        return first if first <= occ.latest_start else None

    closed = {o for o in range(len(problem.occurrences)) if opens(o) is None}
    held: list[HeldPin] = []
    held_occ: set[int] = set()
    reserved_minutes: dict[int, int] = defaultdict(int)
    reserved_orders: dict[tuple[int, Day], int] = defaultdict(int)
    blocked_days: set[tuple[int, Day]] = set()  # volunteer-days of held pins

    def hold(group: list[Assignment], reason: HeldReason, detail: str,
             o: int | None = None) -> None:
        for a in group:
            held.append(HeldPin(a, reason, detail))
            v = vol_index.get(a.volunteer_id)
            if v is not None:
                reserved_minutes[v] += a.end - a.start
                blocked_days.add((v, a.day))
        if o is not None:
            held_occ.add(o)
            merchant = group[0].merchant_id
            if merchant in merchant_index:
                reserved_orders[merchant_index[merchant], group[0].day] += 1

    # Pins per occurrence, each occurrence's pins judged together (R7: one start, one merchant).
    groups: dict[int, list[Assignment]] = defaultdict(list)
    for a in sorted(pinned, key=lambda a: (a.date, a.start, a.need_id, a.volunteer_id)):
        o = occ_index.get((a.need_id, a.day))
        if o is None or a.volunteer_id not in vol_index:
            hold([a], HeldReason.NO_LONGER_FITS,
                 f"{a.need_id} on {a.day} or {a.volunteer_id} is no longer in the week")
            continue
        groups[o].append(a)

    timelines = Timelines(cand)
    chosen: dict[int, tuple[int, int | None, list[int]]] = {}  # occurrence -> pinned options
    for o, group in sorted(groups.items(), key=lambda og: (og[1][0].date, og[1][0].start)):
        need = problem.occurrences[o].need
        first = group[0]
        start, merchant_id = first.start, first.merchant_id
        merchant = merchant_index.get(merchant_id) if merchant_id is not None else None
        problem_text = _static_problem(cand, o, group, merchant, vol_index)
        if problem_text is not None:
            hold(group, HeldReason.NO_LONGER_FITS, problem_text, o)
            continue
        options = [_fitting_option(cand, o, vol_index[a.volunteer_id], start, merchant)
                   for a in group]
        found = [i for i in options if i is not None]
        if len(found) < len(options):
            hold(group, HeldReason.NO_LONGER_FITS,
                 f"{need.id} on {first.day} at its start no longer fits the skills, circle, "
                 "availability, window or merchant hours of its volunteers", o)
            continue
        blocked = [cand.problem.volunteers[cand.options[i].volunteer].id for i in found
                   if timelines.blocker(cand.options[i], start, merchant) is not None]
        if merchant is not None and not timelines.merchant_free(o, merchant, start):
            blocked.append(problem.merchants[merchant].id)
        if blocked:
            hold(group, HeldReason.CONFLICT,
                 f"{need.id} on {first.day} collides with other pinned tasks of "
                 f"{', '.join(blocked)} (time, weekly hours or merchant capacity)", o)
            continue
        timelines.add(o, start, merchant, tuple(found))
        chosen[o] = (start, merchant, found)

    # A pinned occurrence short of volunteers needs partners at its start, via its merchant.
    for o, (start, merchant, found) in sorted(chosen.items()):
        need = problem.occurrences[o].need
        missing = need.volunteers_needed - len(found)
        if not missing:
            continue
        first_open = opens(o)
        taken = {cand.options[i].volunteer for i in found}
        day = problem.occurrences[o].day
        partners: list[int] = []
        if first_open is not None and start >= first_open:
            for i in sorted(cand.by_occurrence[o], key=lambda i: cand.options[i].best_walk):
                opt = cand.options[i]
                v = opt.volunteer
                if len(partners) == missing or v in taken or (v, day) in blocked_days or \
                        (problem.volunteers[v].id, need.id, problem.occurrences[o].day) \
                        in forbidden or (merchant is not None and merchant not in opt.merchants):
                    continue
                if timelines.blocker(opt, start, merchant) is None:
                    partners.append(i)
                    taken.add(v)
        if len(partners) < missing:
            hold(groups[o], HeldReason.UNDERSTAFFED,
                 f"{need.id} on {problem.occurrences[o].day} needs {need.volunteers_needed} "
                 "volunteers and no other can join at its start", None)
            held_occ.add(o)
            if merchant is not None:
                # Its order stays in the timelines (the pinned volunteers still go).
                reserved_orders[merchant, problem.occurrences[o].day] += 1
            del chosen[o]
            continue
        end = start + need.duration_min
        for i in partners:
            v = cand.options[i].volunteer
            timelines.tasks.setdefault((v, day), []).append(Task(o, start, end, merchant))
            timelines.used[v] += end - start
        # The pins come first; partners are not forced, only a valid start for the plans.
        chosen[o] = (start, merchant, found + partners)

    commitment = _rebuild(cand, chosen, {o: len(groups[o]) for o in chosen}, forbidden, opens,
                          held, held_occ, closed, blocked_days, reserved_minutes,
                          reserved_orders)
    _mark_offers(commitment.cand, offered, occ_index, vol_index, merchant_index)
    return commitment


def _mark_offers(cand: Candidates, offered: Sequence[Assignment],
                 occ_index: dict[tuple[str, Day], int], vol_index: dict[str, int],
                 merchant_index: dict[str, int]) -> None:
    """Mark the options that would keep an offered assignment as it is."""
    for a in offered:
        o = occ_index.get((a.need_id, a.day))
        v = vol_index.get(a.volunteer_id)
        merchant = merchant_index.get(a.merchant_id) if a.merchant_id is not None else None
        if o is None or v is None or (a.merchant_id is not None and merchant is None) or \
                (merchant is not None and (o, merchant) not in cand.merchant_starts):
            continue
        for i in cand.by_occurrence[o]:
            opt = cand.options[i]
            if opt.volunteer == v and opt.lo <= a.start <= opt.hi and \
                    (merchant is None or merchant in opt.merchants):
                cand.kept_offers[i] = (a.start, merchant)


def _static_problem(cand: Candidates, o: int, group: list[Assignment], merchant: int | None,
                    vol_index: dict[str, int]) -> str | None:
    """What makes an occurrence's pins unusable whatever else is planned, if anything."""
    occ = cand.problem.occurrences[o]
    need = occ.need
    first = group[0]
    if any(a.start != first.start or a.merchant_id != first.merchant_id for a in group):
        return f"{need.id} on {occ.day}: its volunteers are pinned at different starts"
    if len({a.volunteer_id for a in group}) < len(group):
        return f"{need.id} on {occ.day}: a volunteer is pinned twice"
    if len(group) > need.volunteers_needed:
        return (f"{need.id} on {occ.day} needs {need.volunteers_needed} volunteers and "
                f"{len(group)} are pinned")
    if first.end - first.start != need.duration_min:
        return f"{need.id} on {occ.day}: its duration changed"
    if (merchant is None) != (need.merchant_service is None):
        return f"{need.id} on {occ.day}: its merchant no longer fits"
    return None


def _fitting_option(cand: Candidates, o: int, v: int, start: int,
                    merchant: int | None) -> int | None:
    """The option of volunteer ``v`` on ``o`` that allows ``start`` via ``merchant``."""
    if merchant is not None:
        bounds = cand.merchant_starts.get((o, merchant))
        if bounds is None or not bounds[0] <= start <= bounds[1]:
            return None
    for i in cand.by_occurrence[o]:
        opt = cand.options[i]
        if opt.volunteer == v and opt.lo <= start <= opt.hi and \
                (merchant is None or merchant in opt.merchants):
            return i
    return None


def _at(opt: Option, start: int, merchant: int | None) -> Option:
    """``opt`` narrowed to one start and merchant."""
    if merchant is None:
        return replace(opt, lo=start, hi=start)
    return replace(opt, lo=start, hi=start, merchants=(merchant,),
                   walks=(opt.walks[opt.merchants.index(merchant)],))


def _rebuild(cand: Candidates, chosen: dict[int, tuple[int, int | None, list[int]]],
             pin_count: dict[int, int], forbidden: Collection[tuple[str, str, Day]],
             opens: Callable[[int], int | None], held: list[HeldPin], held_occ: set[int],
             closed: set[int],
             blocked_days: set[tuple[int, Day]], reserved_minutes: dict[int, int],
             reserved_orders: dict[tuple[int, Day], int]) -> Commitment:
    problem = cand.problem
    forbidden_set = set(forbidden)
    pinned_old = {i for o, (_, _, opts) in chosen.items() for i in opts[:pin_count[o]]}
    in_plan = {i for _, _, opts in chosen.values() for i in opts}
    pinned_vol = {(cand.options[i].volunteer, cand.options[i].occurrence) for i in pinned_old}
    options: list[Option] = []
    new_index: dict[int, int] = {}
    for i, opt in enumerate(cand.options):
        o, v = opt.occurrence, opt.volunteer
        occ = problem.occurrences[o]
        if i in in_plan:  # a pin, or a partner the pins' plan needs
            start, merchant, _ = chosen[o]
            new_index[i] = len(options)
            options.append(_at(opt, start, merchant))
            continue
        if o in held_occ or o in closed or (v, o) in pinned_vol or (v, occ.day) in blocked_days \
                or (problem.volunteers[v].id, occ.need.id, occ.day) in forbidden_set:
            continue
        first = opens(o)
        assert isinstance(first, int)
        if o in chosen:
            start, merchant, _ = chosen[o]
            if pin_count[o] >= occ.need.volunteers_needed or start < first or \
                    not opt.lo <= start <= opt.hi or \
                    (merchant is not None and merchant not in opt.merchants):
                continue
            new_index[i] = len(options)
            options.append(_at(opt, start, merchant))
            continue
        if first > opt.lo:
            if first > opt.hi:
                continue
            opt = replace(opt, lo=first)
        new_index[i] = len(options)
        options.append(opt)
    merchant_starts: dict[tuple[int, int], tuple[int, int]] = {}
    for (o, j), (lo, hi) in cand.merchant_starts.items():
        if o in chosen:
            start, merchant, _ = chosen[o]
            if j == merchant:
                merchant_starts[o, j] = (start, start)
        elif o not in held_occ and o not in closed:
            first = opens(o)
            assert isinstance(first, int)
            if max(lo, first) <= hi:
                merchant_starts[o, j] = (max(lo, first), hi)
    pin_plan = {o: Cover(start, merchant, tuple(new_index[i] for i in opts))
                for o, (start, merchant, opts) in chosen.items()}
    # Held tasks take their share of R6 and R8; never below what the model's pins need, so the
    # pins alone always make a valid plan.
    pinned_minutes: dict[int, int] = defaultdict(int)
    pinned_orders: dict[tuple[int, Day], int] = defaultdict(int)
    for o, (_, merchant, opts) in chosen.items():
        occ = problem.occurrences[o]
        for i in opts:
            pinned_minutes[cand.options[i].volunteer] += occ.need.duration_min
        if merchant is not None:
            pinned_orders[merchant, occ.day] += 1
    minutes_caps = {v: max(problem.volunteers[v].max_minutes_week - used, pinned_minutes[v])
                    for v, used in reserved_minutes.items()}
    merchant_caps = {(j, day): max(problem.merchants[j].capacity_per_day - used,
                                   pinned_orders[j, day])
                     for (j, day), used in reserved_orders.items()}
    new = Candidates(problem, cand.travel, cand.circle, options, merchant_starts,
                     pinned=frozenset(new_index[i] for i in pinned_old), pin_plan=pin_plan,
                     minutes_caps=minutes_caps, merchant_caps=merchant_caps)
    return Commitment(new, held, held_occ, closed)
