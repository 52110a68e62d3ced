"""A district: communities split into parts that share nothing, solved in this process or as
Ray tasks (the same schedules either way), failures retried and reported, the summary table."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from matcher import diagnosis
from matcher.circles import Candidates
from matcher.district import (
    SUMMARY_FILE,
    Community,
    Crashes,
    District,
    DistrictResult,
    components,
    generate_district,
    is_district,
    load_district,
    lpt_makespan,
    parts,
    save_district,
    solve_district,
    solve_part,
    write_district,
)
from matcher.domain import Day, Location, Problem, Week
from matcher.errors import InputError
from matcher.generate import generate_community
from matcher.i18n import use
from matcher.params import SolveParams
from matcher.patterns import _Group
from matcher.settings import Settings
from tests.conftest import CENTRE, need, volunteer
from tests.matcher.test_diagnosis import _works_as_first_written
from tests.matcher.test_patterns import _energy_as_written_first
from tests.validator import geodesic_walk, validate

WEEK = Week(2026, 48)
PARAMS = SolveParams(time_limit_s=1.0)  # per community, deterministic, one worker


def _east(metres: float) -> Location:
    return Location(CENTRE.lat, CENTRE.lon + metres / (111_320 * 0.9237))


def _community(name: str, centre: Location, seed: int) -> Community:
    p = generate_community(16, 20, 2, network=None, centre=centre, radius_m=400, week=WEEK,
                           seed=seed)
    return Community(name, Problem(
        WEEK, [replace(v, id=f"{name}-{v.id}") for v in p.volunteers],
        [replace(n, id=f"{name}-{n.id}") for n in p.needs],
        [replace(m, id=f"{name}-{m.id}") for m in p.merchants]))


@pytest.fixture(scope="module")
def district() -> District:
    """A and B side by side (their circles overlap), C five kilometres away; B also lists one
    of A's volunteers (she lives on the boundary)."""
    a = _community("A", CENTRE, 1)
    b = _community("B", _east(1000), 2)
    c = _community("C", _east(6000), 3)
    b = Community("B", replace(b.problem, volunteers=[*b.problem.volunteers,
                                                       a.problem.volunteers[0]]))
    return District(WEEK, [a, b, c])


@pytest.fixture(scope="module")
def local(district: District) -> DistrictResult:
    with use("en"):  # not the default: Ray's workers must be told the language
        return solve_district(district, PARAMS)


def test_communities_are_coupled_by_circles_and_shared_people(district: District) -> None:
    assert components(district) == [[0, 1], [2]]
    # Far apart, but listing the same volunteer: one part (her hours are shared).
    far = District(WEEK, [
        Community("X", Problem(WEEK, [volunteer("V1")], [need("X1")])),
        Community("Y", Problem(WEEK, [volunteer("V1"), volunteer("V2", 0, 9000)],
                               [need("Y1", 0, 9000)])),
        Community("Z", Problem(WEEK, [volunteer("V3", 0, 20000)], [need("Z1", 0, 20000)]))])
    assert components(far) == [[0, 1], [2]]
    # A volunteer of one within a circle of a need of the other couples them, listed or not.
    near = District(WEEK, [
        Community("X", Problem(WEEK, [volunteer("V1")], [need("X1")])),
        Community("Y", Problem(WEEK, [volunteer("V2", 0, 1050)], [need("Y1", 0, 2500)]))])
    assert components(near) == [[0, 1]]
    apart = District(WEEK, [
        Community("X", Problem(WEEK, [volunteer("V1")], [need("X1")])),
        Community("Y", Problem(WEEK, [volunteer("V2", 0, 1300)], [need("Y1", 0, 2500)]))])
    assert components(apart) == [[0], [1]]


def test_each_community_gets_a_valid_share_of_its_part(district: District,
                                                       local: DistrictResult) -> None:
    assert [c.name for c in local.communities] == ["A", "B", "C"] and not local.failed
    assert [p.communities for p in local.parts] == [("A", "B"), ("C",)]
    walk = geodesic_walk()
    for share in local.communities:
        s = share.schedule
        mine = district.community(share.name).problem
        assert {a.need_id for a in s.assignments} <= {n.id for n in mine.needs}
        assert validate(share.problem, s.assignments, walk) == []
        assert s.covered + len(s.unmet) == len(mine.occurrences) == s.occurrences
        assert s.deterministic_limit == pytest.approx(0.6 * len(share.component))
    # The boundary volunteer serves in both communities, within her one weekly cap.
    everyone = [a for c in local.communities for a in c.schedule.assignments]
    assert validate(replace(_merged(district), needs=[n for c in district.communities
                                                      for n in c.problem.needs]),
                    everyone, walk) == []


def _merged(district: District) -> Problem:
    people = {v.id: v for c in district.communities for v in c.problem.volunteers}
    shops = {m.id: m for c in district.communities for m in c.problem.merchants}
    return Problem(WEEK, list(people.values()), [], list(shops.values()))


def _same(a: DistrictResult, b: DistrictResult) -> None:
    assert [c.name for c in a.communities] == [c.name for c in b.communities]
    for x, y in zip(a.communities, b.communities, strict=True):
        assert x.schedule.assignments == y.schedule.assignments
        assert x.schedule.unmet == y.schedule.unmet
        assert x.schedule.levels == y.schedule.levels
        assert x.schedule.deterministic_time == y.schedule.deterministic_time


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024 ** 2)
    yield
    ray.shutdown()


@pytest.mark.usefixtures("ray_local")
def test_ray_gives_the_schedule_of_one_process(district: District,
                                               local: DistrictResult) -> None:
    with use("en"):
        on_ray = solve_district(district, PARAMS, engine="ray")
    assert on_ray.engine == "ray" and not on_ray.failed
    _same(local, on_ray)
    unmet = [u for c in on_ray.communities for u in c.schedule.unmet]
    assert unmet and all(u.detail.isascii() for u in unmet)  # English, as asked
    assert all(p.worker and p.peak_rss_mb > 0 for p in on_ray.parts)


@pytest.mark.usefixtures("ray_local")
def test_ray_retries_a_killed_worker_and_reports_a_part_that_keeps_failing(
        district: District, local: DistrictResult, tmp_path: Path) -> None:
    events = []
    result = solve_district(district, PARAMS, engine="ray", max_retries=1,
                            crashes=Crashes({"A": 1, "C": 5}, tmp_path), on_part=events.append)
    # A's part lost its worker once and was retried; C's lost it on every try.
    assert len(list(tmp_path.glob("part0-*"))) == 1 and len(list(tmp_path.glob("part1-*"))) == 2
    assert list(result.failed) == ["C"] and "Worker" in result.failed["C"]
    assert [c.name for c in result.communities] == ["A", "B"]
    for x, y in zip(local.communities[:2], result.communities, strict=True):
        assert x.schedule.assignments == y.schedule.assignments
    assert sorted(e.result.index for e in events) == [0, 1] and events[-1].done == 2


def test_the_local_engine_retries_and_reports_too(district: District, local: DistrictResult,
                                                  tmp_path: Path) -> None:
    result = solve_district(district, PARAMS, max_retries=1,
                            crashes=Crashes({"A": 2, "C": 1}, tmp_path))
    assert list(result.failed) == ["A", "B"] and "injected failure" in result.failed["B"]
    assert result.community("C").schedule.assignments == \
        local.community("C").schedule.assignments


def test_summary_table_and_files(district: District, local: DistrictResult,
                                 tmp_path: Path) -> None:
    failed = replace(local, communities=local.communities[:2], failed={"C": "RuntimeError: x"})
    write_district(failed, district, tmp_path, map_html=False)
    raw = (tmp_path / SUMMARY_FILE).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the mark
    table = pd.read_csv(tmp_path / SUMMARY_FILE, encoding="utf-8-sig", keep_default_na=False)
    assert list(table["community"]) == ["A", "B", "C"]
    a = local.community("A").schedule
    row = table.iloc[0]
    assert int(row["covered"]) == a.covered and int(row["occurrences"]) == a.occurrences
    assert row["component"] == "A;B"
    for p, level in a.levels.items():
        assert int(row[f"{p.value}_covered"]) == level.covered
    for code, count in a.unmet_by_reason().items():
        assert int(row[f"unmet_{code}"]) == count
    assert table.iloc[2]["status"] == "failed" and table.iloc[2]["error"] == "RuntimeError: x"
    assert (tmp_path / "A" / "assignments.csv").exists()
    assert (tmp_path / "B" / "summary.json").exists() and not (tmp_path / "C").exists()


def test_load_refuses_communities_that_disagree(district: District, tmp_path: Path) -> None:
    save_district(district, tmp_path)
    assert is_district(tmp_path) and not is_district(tmp_path / "A")
    loaded = load_district(tmp_path, WEEK)
    assert [c.name for c in loaded.communities] == ["A", "B", "C"]
    assert components(loaded) == components(district)
    # The boundary volunteer under another name in B, and one of A's need ids in C.
    shared = district.communities[0].problem.volunteers[0]
    b = district.communities[1].problem
    c = district.communities[2].problem
    bad = District(WEEK, [
        district.communities[0],
        Community("B", replace(b, volunteers=[*b.volunteers[:-1], replace(shared, name="x")])),
        Community("C", replace(c, needs=[*c.needs, district.communities[0].problem.needs[0]]))])
    save_district(bad, tmp_path / "bad")
    with pytest.raises(InputError) as caught:
        load_district(tmp_path / "bad", WEEK)
    text = str(caught.value)
    assert f"B/volunteers.csv, volunteer_id: '{shared.id}' is listed by A too" in text
    assert "C/needs.csv, need_id: 'A-N0001' is already a need of A" in text
    (tmp_path / "broken" / "Q").mkdir(parents=True)
    (tmp_path / "broken" / "Q" / "volunteers.csv").write_text("volunteer_id\n")
    with pytest.raises(InputError, match="Q/"):
        load_district(tmp_path / "broken", WEEK)


def test_generated_district_on_streets_has_parts(futian) -> None:  # type: ignore[no-untyped-def]
    d = generate_district(futian, communities=4, volunteers=120, needs=160, merchants=8,
                          radius_m=400, week=WEEK, seed=5)
    assert [c.name for c in d.communities] == ["C01", "C02", "C03", "C04"]
    assert sum(len(c.problem.needs) for c in d.communities) == 160
    listed = [v.id for c in d.communities for v in c.problem.volunteers]
    assert len(set(listed)) == 120 and len(listed) > 120  # some live on a boundary
    groups = components(d)
    assert len(groups) < 4 and sorted(k for g in groups for k in g) == [0, 1, 2, 3]
    again = generate_district(futian, communities=4, volunteers=120, needs=160, merchants=8,
                              radius_m=400, week=WEEK, seed=5)
    assert again == d


def test_lpt_makespan() -> None:
    assert lpt_makespan([], 4) == 0
    assert lpt_makespan([5, 1, 1, 1], 2) == 5
    assert lpt_makespan([3, 3, 2, 2, 2], 2) == 7  # LPT, not the optimum 6
    assert lpt_makespan([4, 3, 2], 8) == 4


def test_importing_matcher_does_not_import_ray() -> None:
    code = ("import sys, matcher, matcher.district, matcher.cli, matcher.solver; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def _walk_as_first_written(cand: Candidates, a: int, b: int, merchant_b: int | None) -> float:
    """R5's walk looked up anew at every call (the reference of the cached one)."""
    if merchant_b is None:
        return cand.need_to_need(a, b)
    return cand.need_to_merchant(a, merchant_b) + cand.need_to_merchant(b, merchant_b)


def test_a_parts_schedule_is_that_of_the_reference_implementations(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A part down every path of a street-scale solve (the week without walks, a day at a time,
    # the pattern bound) and a diagnosis with fixes, solved as it is and with the
    # straightforward versions of what was made faster: the same schedule, to the reasons.
    district = generate_district(None, communities=2, volunteers=44, needs=90, merchants=6,
                                 radius_m=350, week=WEEK, seed=11)
    part = max(parts(district, PARAMS), key=lambda p: p.size)
    part = replace(part, params=replace(part.params, pair_budget=40, day_pair_budget=30))
    fast = solve_part(part, Settings(), None).schedule
    with monkeypatch.context() as patch:
        patch.setattr(Candidates, "transition", _walk_as_first_written)
        patch.setattr(_Group, "energy", _energy_as_written_first)
        patch.setattr(diagnosis, "_first", lambda cand, plan, _tl, o, fixes: next(
            (fix for fix in fixes if _works_as_first_written(cand, plan, o, fix)), None))
        patch.setattr(Day, "number", property(lambda day: list(Day).index(day)))
        slow = solve_part(part, Settings(), None).schedule
    assert fast is not None and slow is not None
    assert fast.assignments == slow.assignments and fast.unmet == slow.unmet
    assert fast.levels == slow.levels and fast.deterministic_time == slow.deterministic_time
    assert fast.unmet and any(u.change is not None for u in fast.unmet)
    assert {"red_relax_seconds", "blue_pattern_bound"} <= set(fast.stats)
