"""Generate believable communities on real streets: the sample data and the benchmarks.

Homes, needs and merchants are placed at street nodes (with a few metres of jitter) inside a
radius around a centre, so walking times are real. The mix of needs, skills and availability
follows what community social workers describe: retirees free on weekday mornings, working
volunteers on evenings and weekends, daily meal deliveries from canteens, school pickups.

A :class:`Regime` shifts that mix one way, to test the solver where one rule binds (the
benchmark family, ``benchmarks/bench_family.py``): :data:`REGIMES` names them. The default
regime changes nothing, so the sample data and the benchmarks' communities stay as they were.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import numpy as np

from matcher.charity import CharityProblem, Donation, Request
from matcher.domain import (
    Availability,
    Day,
    Location,
    Merchant,
    Need,
    NeedKind,
    Priority,
    Problem,
    TimeWindow,
    Volunteer,
    Week,
)
from matcher.spreadsheets import merge_availability
from matcher.travel import WalkingNetwork, geodesic_m

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
    "许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = ["芳", "伟", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明",
         "超", "秀英", "华", "慧", "建国", "桂兰", "玉兰", "志强", "海燕", "晓东", "子涵", "雨轩"]
ELDER = ["奶奶", "爷爷", "阿姨", "伯伯"]
WEEKDAYS = [Day.MON, Day.TUE, Day.WED, Day.THU, Day.FRI]


@dataclass(frozen=True)
class NeedType:
    """A template for one kind of need: service, timing, skills and priority mix."""

    kind: NeedKind
    service: str
    weight: float
    windows: tuple[str, ...]
    durations: tuple[int, ...]
    days: tuple[int, int]  # how many days a week, min..max
    skills: tuple[str, ...] = ()
    priorities: tuple[float, float, float] = (0.1, 0.3, 0.6)  # red, yellow, blue
    pair_share: float = 0.0  # share that needs two volunteers at once
    merchant_service: str | None = None


NEED_TYPES = (
    NeedType(NeedKind.ELDERLY, "meal_delivery", 0.24, ("11:00-12:30", "17:00-18:30"), (20, 30),
             (3, 5), priorities=(0.15, 0.45, 0.4), merchant_service="meal"),
    NeedType(NeedKind.ELDERLY, "home_visit", 0.17, ("09:00-11:30", "14:00-17:00", "19:00-20:30"),
             (30, 45, 60), (1, 2), priorities=(0.25, 0.35, 0.4)),
    NeedType(NeedKind.ELDERLY, "escort_medical", 0.08, ("08:00-11:30", "13:30-17:00"),
             (120, 150, 180), (1, 1), skills=("escort_medical",), priorities=(0.4, 0.5, 0.1),
             pair_share=0.2),
    NeedType(NeedKind.ELDERLY, "cleaning", 0.08, ("09:00-12:00", "14:00-17:30"), (60, 90),
             (1, 1), priorities=(0.0, 0.2, 0.8), pair_share=0.3),
    NeedType(NeedKind.ELDERLY, "shopping", 0.07, ("09:00-11:00", "15:00-18:00"), (45, 60),
             (1, 2), priorities=(0.0, 0.3, 0.7), merchant_service="groceries"),
    NeedType(NeedKind.ELDERLY, "medicine_delivery", 0.04, ("10:00-12:00", "15:00-18:00"), (30,),
             (1, 1), priorities=(0.3, 0.6, 0.1), merchant_service="medicine"),
    NeedType(NeedKind.CHILDCARE, "school_pickup", 0.12, ("16:00-17:30", "11:30-12:30"), (30, 40),
             (2, 5), skills=("childcare",), priorities=(0.5, 0.2, 0.3)),
    NeedType(NeedKind.CHILDCARE, "tutoring", 0.08, ("18:30-21:00", "09:00-12:00"), (60, 90),
             (1, 2), skills=("tutoring",), priorities=(0.0, 0.0, 1.0)),
    NeedType(NeedKind.CHILDCARE, "childminding", 0.04, ("08:30-12:30", "13:30-18:00"), (120, 180),
             (1, 1), skills=("childminding_certified",), priorities=(0.2, 0.5, 0.3)),
    NeedType(NeedKind.CHARITY, "goods_delivery", 0.08, ("09:00-12:00", "14:00-18:00"), (30, 45),
             (1, 1), priorities=(0.1, 0.3, 0.6), pair_share=0.25),
)

SKILL_SHARE = {"meal_delivery": 0.6, "escort_medical": 0.18, "childcare": 0.3, "tutoring": 0.15,
               "childminding_certified": 0.06, "cleaning": 0.35, "first_aid": 0.12}

MERCHANT_TYPES = (
    ("食堂", ("meal",), (25, 45), "10:00-20:00", 0.55),
    ("超市", ("groceries", "goods"), (15, 30), "08:00-22:00", 0.25),
    ("药房", ("medicine",), (10, 20), "08:30-21:00", 0.2),
    ("理发店", ("haircut",), (8, 15), "09:00-19:00", 0.1),
)


@dataclass(frozen=True)
class Regime:
    """How a generated community departs from the usual mix, one knob per rule it stresses.

    Every knob scales a draw after it is made (no extra random draws), so the same seed gives
    the same people, needs and places in every regime, only their caps, skills, windows,
    headcounts, capacities or spread changed; the default changes nothing.

    Parameters
    ----------
    name
        How benchmarks and tests call it.
    hours
        Multiplies each volunteer's weekly hours cap (R6), in half hours, at least one:
        below 1 the cap binds (most unmet occurrences then read ``volunteers_out_of_hours``).
    skills
        Multiplies the share of volunteers holding each skill (R1): below 1 skills are rare.
    windows
        Multiplies the length of each need's time window around its middle (R3), never below
        the task's duration and kept within 06:00-22:00: above 1 wide, below 1 narrow.
    double_staffing
        Added to each kind of need's share that needs two volunteers at once (R7).
    capacity
        Multiplies each merchant's daily capacity (R8), at least one: below 1 scarce.
    spread
        Multiplies the radius the community spreads over: below 1 dense streets (everyone
        within reach of many), above 1 sparse ones (few volunteers in each circle, R4).
    """

    name: str = "default"
    hours: float = 1.0
    skills: float = 1.0
    windows: float = 1.0
    double_staffing: float = 0.0
    capacity: float = 1.0
    spread: float = 1.0
    description: str = field(default="the usual mix", compare=False)

    def __post_init__(self) -> None:
        for knob in ("hours", "skills", "windows", "capacity", "spread"):
            if getattr(self, knob) <= 0:
                raise ValueError(f"regime {self.name}: {knob} must be positive")
        if not 0 <= self.double_staffing <= 1:
            raise ValueError(f"regime {self.name}: double_staffing must be in 0..1")

    def hours_cap(self, hours: float) -> float:
        if self.hours == 1.0:
            return hours
        return max(1.0, round(hours * self.hours * 2) / 2)

    def window(self, window: TimeWindow, duration: int) -> TimeWindow:
        if self.windows == 1.0:
            return window
        length = min(max(duration, round((window.end - window.start) * self.windows)),
                     DAY_END - DAY_START)
        start = (window.start + window.end) // 2 - length // 2
        start = min(max(start, DAY_START), DAY_END - length)
        return TimeWindow(start, start + length)

    def merchant_capacity(self, capacity: int) -> int:
        return capacity if self.capacity == 1.0 else max(1, round(capacity * self.capacity))


DAY_START, DAY_END = 6 * 60, 22 * 60  # a widened window stays within these
DEFAULT = Regime()
REGIMES: dict[str, Regime] = {r.name: r for r in (
    DEFAULT,
    Regime("tight_hours", hours=0.5, description="weekly hours caps halved: R6 binds"),
    Regime("loose_hours", hours=2.0, description="weekly hours caps doubled"),
    Regime("rare_skills", skills=0.3, description="skilled volunteers 30% as common"),
    Regime("wide_windows", windows=2.0, description="need windows twice as long"),
    Regime("narrow_windows", windows=0.5,
           description="need windows half as long (never shorter than the task)"),
    Regime("double_staffing", double_staffing=0.35,
           description="35% more of each kind of need takes two volunteers"),
    Regime("scarce_merchants", capacity=0.15, description="merchant capacity at 15%"),
    Regime("dense", spread=0.5, description="the same people on half the radius"),
    Regime("sparse", spread=1.6, description="the same people on 1.6 times the radius"),
)}


def _places(rng: np.random.Generator, count: int, network: WalkingNetwork | None,
            centre: Location, radius_m: float) -> list[Location]:
    """Points on streets (network nodes + jitter) or uniform in a disc around the centre."""
    if network is not None:
        d = geodesic_m(network.lat, network.lon, np.full(len(network.lat), centre.lat),
                       np.full(len(network.lon), centre.lon))
        pool = np.flatnonzero(d <= radius_m)
        if len(pool) == 0:
            raise ValueError("no street node within the radius of the centre")
        picks = rng.choice(pool, size=count, replace=True)
        jitter = rng.normal(0, 0.00012, size=(count, 2))  # about 13 m: different doorways
        return [Location(round(float(network.lat[i] + j[0]), 6),
                         round(float(network.lon[i] + j[1]), 6))
                for i, j in zip(picks, jitter, strict=True)]
    out = []
    for _ in range(count):
        r = radius_m * float(np.sqrt(rng.random()))
        theta = float(rng.random()) * 2 * np.pi
        out.append(Location(round(centre.lat + r * np.sin(theta) / 110_540, 6),
                            round(centre.lon + r * np.cos(theta) / (111_320 * np.cos(
                                np.radians(centre.lat))), 6)))
    return out


def _availability(rng: random.Random) -> tuple[Availability, ...]:
    profile = rng.choices(["retiree", "worker", "student", "flexible"], [0.45, 0.3, 0.1, 0.15])[0]
    windows: list[Availability] = []

    def add(days: list[Day], spans: list[str], k: int) -> None:
        for day in rng.sample(days, min(k, len(days))):
            windows.append(Availability(day, TimeWindow.parse(rng.choice(spans))))

    if profile == "retiree":
        add(WEEKDAYS, ["08:00-12:00", "09:00-12:30", "10:30-13:00", "14:00-17:30", "15:00-18:30"],
            rng.randint(2, 4))
    elif profile == "worker":
        add(WEEKDAYS, ["18:00-21:00", "16:00-18:30", "11:00-13:00"], rng.randint(1, 3))
        add([Day.SAT, Day.SUN], ["09:00-12:00", "14:00-18:00"], rng.randint(0, 2))
    elif profile == "student":
        add([Day.SAT, Day.SUN], ["09:00-12:00", "13:00-17:00"], rng.randint(1, 2))
        add(WEEKDAYS, ["18:30-21:00", "16:00-18:00"], rng.randint(1, 2))
    else:
        add(list(Day), ["08:00-12:00", "13:00-18:00", "10:00-14:00", "16:00-20:00"],
            rng.randint(2, 5))
    return merge_availability(windows)


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def generate_community(n_volunteers: int, n_needs: int, n_merchants: int, *,
                       network: WalkingNetwork | None, centre: Location, radius_m: float,
                       week: Week, seed: int = 7, regime: Regime = DEFAULT) -> Problem:
    """A random but believable community week.

    Parameters
    ----------
    n_volunteers, n_needs, n_merchants
        Sizes; occurrences are about 2.5 x ``n_needs``.
    network
        Street network to place people on; ``None`` places them in a disc.
    centre, radius_m
        Where the community is and how far it spreads, in metres.
    week
        The ISO week of the problem.
    seed
        Same seed, same community.
    regime
        How the mix departs from the usual one (:data:`REGIMES`); the default changes nothing.
    """
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    radius_m = radius_m * regime.spread
    homes = _places(nrng, n_volunteers, network, centre, radius_m)
    need_places = _places(nrng, n_needs, network, centre, radius_m)
    shop_places = _places(nrng, n_merchants, network, centre, radius_m)
    volunteers = []
    for i, home in enumerate(homes):
        skills = frozenset(s for s, share in SKILL_SHARE.items()
                           if rng.random() < share * regime.skills)
        volunteers.append(Volunteer(
            id=f"V{i + 1:04d}", name=_name(rng), location=home, skills=skills,
            availability=_availability(rng),
            max_hours_week=regime.hours_cap(rng.choice([2, 3, 4, 4, 4, 5, 6, 8])),
        ))
    merchants = []
    for i, place in enumerate(shop_places):
        kind = MERCHANT_TYPES[i % len(MERCHANT_TYPES)] if i < len(MERCHANT_TYPES) else \
            rng.choices(MERCHANT_TYPES, [t[4] for t in MERCHANT_TYPES])[0]
        label, services, capacity, hours, _ = kind
        merchants.append(Merchant(
            id=f"M{i + 1:03d}", name=f"{rng.choice(SURNAMES)}记{label}", location=place,
            services=frozenset(services),
            capacity_per_day=regime.merchant_capacity(rng.randint(*capacity)),
            open=TimeWindow.parse(hours),
        ))
    needs = []
    weights = [t.weight for t in NEED_TYPES]
    for i, place in enumerate(need_places):
        t = rng.choices(NEED_TYPES, weights)[0]
        n_days = rng.randint(*t.days)
        pool = WEEKDAYS if t.service in ("school_pickup", "meal_delivery") else list(Day)
        days = tuple(sorted(rng.sample(pool, min(n_days, len(pool))), key=lambda d: d.number))
        priority = rng.choices(list(Priority), t.priorities)[0]
        who = (f"{rng.choice(SURNAMES)}{rng.choice(ELDER)}" if t.kind is NeedKind.ELDERLY
               else f"{rng.choice(SURNAMES)}家" if t.kind is NeedKind.CHARITY
               else f"{rng.choice(SURNAMES)}小{rng.choice(GIVEN)[0]}")
        window = TimeWindow.parse(rng.choice(t.windows))
        duration = rng.choice(t.durations)
        needs.append(Need(
            id=f"N{i + 1:04d}", kind=t.kind, service=t.service, beneficiary=who, location=place,
            days=days, window=regime.window(window, duration), duration_min=duration,
            skills=frozenset(t.skills),
            volunteers_needed=2 if rng.random() < t.pair_share + regime.double_staffing else 1,
            priority=priority, merchant_service=t.merchant_service,
        ))
    return Problem(week, volunteers, needs, merchants)


# (category, units per request min..max, units per donation min..max, shelf life in days or None)
CHARITY_CATEGORIES = (
    ("rice", (1, 3), (5, 40), None), ("cooking_oil", (1, 2), (4, 20), None),
    ("flour", (1, 2), (4, 20), None), ("noodles", (1, 4), (10, 40), 180),
    ("eggs", (1, 2), (5, 20), 14), ("milk", (2, 6), (12, 48), 10),
    ("milk_powder", (1, 2), (2, 10), 365), ("canteen_meal", (3, 10), (20, 80), 2),
    ("bread", (2, 4), (10, 30), 3), ("fruit", (1, 3), (5, 25), 7),
    ("winter_coat", (1, 2), (2, 12), None), ("quilt", (1, 1), (2, 10), None),
    ("school_bag", (1, 1), (3, 15), None), ("stationery_set", (1, 2), (5, 30), None),
    ("books", (2, 5), (10, 40), None), ("shoes", (1, 2), (2, 10), None),
    ("adult_diapers", (1, 3), (5, 20), None), ("walking_aid", (1, 1), (1, 4), None),
    ("blood_pressure_meter", (1, 1), (1, 3), None), ("face_masks", (1, 3), (10, 60), None),
    ("soap", (1, 3), (10, 40), None), ("toothpaste", (1, 2), (10, 40), None),
    ("towels", (1, 2), (5, 20), None), ("electric_fan", (1, 1), (1, 4), None),
    ("rice_cooker", (1, 1), (1, 3), None), ("children_clothes", (1, 3), (5, 20), None),
    ("toys", (1, 2), (5, 20), None), ("vegetables", (1, 3), (10, 30), 4),
    ("pork", (1, 2), (5, 15), 3), ("mooncakes", (1, 2), (10, 40), 30),
)
DONORS = ("爱心企业", "社区食堂", "居民", "商会", "超市", "基金会", "学校")


def generate_charity(n_requests: int, n_donations: int, n_categories: int, *,
                     network: WalkingNetwork | None, centre: Location, radius_m: float,
                     week: Week, seed: int = 7) -> CharityProblem:
    """Random but believable donations and requests around a community.

    Requests outnumber stock in about half of the categories; perishable goods carry expiry
    dates around the week (a few already expired), others none. Pickup places are fewer than
    donations (donors hand goods to a handful of stations), so some households are out of reach.
    """
    if not 1 <= n_categories <= len(CHARITY_CATEGORIES):
        raise ValueError(f"n_categories must be 1..{len(CHARITY_CATEGORIES)}")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    categories = CHARITY_CATEGORIES[:n_categories]
    stations = _places(nrng, max(3, n_donations // 8), network, centre, radius_m)
    homes = _places(nrng, n_requests, network, centre, radius_m)
    scarcity = {c[0]: rng.choice([0.5, 0.8, 1.2, 2.0]) for c in categories}
    requests = []
    for i, home in enumerate(homes):
        name, per_request, _, _ = rng.choice(categories)
        requests.append(Request(
            id=f"R{i + 1:05d}", beneficiary=f"{rng.choice(SURNAMES)}家", category=name,
            quantity=rng.randint(*per_request), location=home,
            priority=rng.choices(list(Priority), (0.15, 0.3, 0.55))[0]))
    wanted = {c[0]: sum(r.quantity for r in requests if r.category == c[0]) for c in categories}
    weights = [max(1.0, wanted[c[0]] * scarcity[c[0]]) for c in categories]
    donations = []
    for i in range(n_donations):
        name, _, per_donation, shelf = rng.choices(categories, weights)[0]
        expires = None
        if shelf is not None:
            expires = week.monday + dt.timedelta(days=rng.randint(-2, shelf + 7))
        donations.append(Donation(
            id=f"D{i + 1:04d}", donor=rng.choice(DONORS), category=name,
            quantity=max(1, round(rng.randint(*per_donation) * min(scarcity[name], 1.0))),
            location=rng.choice(stations), expires=expires))
    return CharityProblem(week, donations, requests)
