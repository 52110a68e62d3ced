"""The district report: figures per community and grid unit equal to a hand count, the CSV for
Excel, the offline choropleth, the grid-units file of a community folder."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box

from matcher.district import (
    GRID_FILE,
    Community,
    CommunityResult,
    District,
    DistrictResult,
    grid_cells,
    load_district,
    save_district,
    solve_district,
    summary_rows,
)
from matcher.district_report import (
    HULL_BUFFER_M,
    MAP_FILE,
    NO_VISITS,
    REPORT_FILE,
    UNPUBLISHED,
    AreaFigures,
    DistrictReport,
    Ledger,
    community_report,
    coverage_colour,
    district_map_document,
    district_report,
    render_district_map,
    report_frame,
    write_district_report,
)
from matcher.domain import (
    Assignment,
    Day,
    LevelResult,
    Priority,
    Problem,
    Schedule,
    SolveStatus,
    Unmet,
    UnmetReason,
)
from matcher.errors import InputError
from matcher.grids import GridUnit
from matcher.i18n import use
from matcher.params import SolveParams
from tests.conftest import WEEK, need, offset, volunteer
from tests.matcher.test_mapview import external_references

RED, YELLOW, BLUE = Priority.RED, Priority.YELLOW, Priority.BLUE


def _cell(name: str, west: float, east: float) -> GridUnit:
    """A grid unit from ``west`` to ``east`` metres east of the centre, 300 m either side of
    it north to south."""
    sw, ne = offset(-300, west), offset(300, east)
    return GridUnit(name, f"{name}片", box(sw.lon, sw.lat, ne.lon, ne.lat))


def _at(day: Day, start: int, end: int, need_id: str, volunteer_id: str) -> Assignment:
    return Assignment(need_id, day, WEEK.date_of(day), start, end, volunteer_id, None, 1.0)


def _unmet(need_id: str, day: Day, reason: UnmetReason) -> Unmet:
    return Unmet(need_id, day, WEEK.date_of(day), reason, reason.value)


def _schedule(problem: Problem, assignments: list[Assignment], unmet: list[Unmet]) -> Schedule:
    covered = {(a.need_id, a.day) for a in assignments}
    levels = {}
    for p in Priority:
        mine = [o for o in problem.occurrences if o.need.priority is p]
        done = sum(1 for o in mine if o.key in covered)
        levels[p] = LevelResult(done, len(mine), done, True)
    return Schedule(WEEK, assignments, unmet, levels, SolveStatus.OPTIMAL, 0.0, 0.0)


@pytest.fixture
def hand() -> tuple[District, DistrictResult]:
    """A: two grid units, west (A1, red, mon and tue) and east (A2, yellow, two volunteers);
    A3 (blue) lies in neither and is unmet. B: no grid units; B1 red unmet, B2 blue covered
    Monday of Monday and Wednesday. C: its part failed (three yellow visits)."""
    a = Problem(WEEK, [volunteer("VA1"), volunteer("VA2", 0, 400)], [
        need("A1", 0, 0, days="mon;tue", priority=RED),
        need("A2", 0, 400, priority=YELLOW, k=2),
        need("A3", 0, 2000, priority=BLUE)])
    b = Problem(WEEK, [volunteer("VB1", 0, 5000)], [
        need("B1", 0, 5000, priority=RED), need("B2", 100, 5000, days="mon;wed")])
    c = Problem(WEEK, [volunteer("VC1", 0, 9000)], [
        need("C1", 0, 9000, days="mon;tue;wed", priority=YELLOW)])
    district = District(WEEK, [
        Community("A", a, (_cell("G1", -200, 200), _cell("G2", 200, 600))),
        Community("B", b), Community("C", c)])
    a_schedule = _schedule(a, [
        _at(Day.MON, 540, 570, "A1", "VA1"), _at(Day.TUE, 540, 600, "A1", "VA1"),
        _at(Day.MON, 600, 630, "A2", "VA1"), _at(Day.MON, 600, 630, "A2", "VA2")],
        [_unmet("A3", Day.MON, UnmetReason.NO_SKILLED_VOLUNTEER_IN_CIRCLE)])
    b_schedule = _schedule(b, [_at(Day.MON, 600, 645, "B2", "VB1")], [
        _unmet("B1", Day.MON, UnmetReason.VOLUNTEERS_BUSY),
        _unmet("B2", Day.WED, UnmetReason.OUT_OF_HOURS)])
    result = DistrictResult(WEEK, [], [
        CommunityResult("A", ("A",), a, a_schedule), CommunityResult("B", ("B",), b, b_schedule)],
        {"C": "RuntimeError: boom"}, "local", 0.0)
    return district, result


def _by(figures: AreaFigures) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    return ({p.value: n for p, n in figures.occurrences.items()},
            {p.value: n for p, n in figures.covered.items()},
            {r.value: n for r, n in figures.unmet.items()})


def test_figures_equal_a_hand_count(hand: tuple[District, DistrictResult]) -> None:
    report = district_report(*hand)
    a, b, c = report.communities
    assert [x.name for x in report.communities] == ["A", "B", "C"]
    assert _by(a.figures) == ({"red": 2, "yellow": 1, "blue": 1},
                              {"red": 2, "yellow": 1, "blue": 0},
                              {"no_skilled_volunteer_in_circle": 1})
    # 30 + 60 minutes on A1, two volunteers 30 minutes each on A2.
    assert (a.figures.volunteer_hours, a.figures.volunteers_active) == (2.5, 2)
    assert a.status == "optimal" and a.area_source == "grids"
    g1, g2, outside = a.units
    assert (g1.unit_id, g1.unit_name, g2.unit_id, outside.unit_id) == ("G1", "G1片", "G2", "")
    assert _by(g1) == ({"red": 2, "yellow": 0, "blue": 0}, {"red": 2, "yellow": 0, "blue": 0},
                       {})
    assert (g1.volunteer_hours, g1.volunteers_active) == (1.5, 1)
    assert _by(g2) == ({"red": 0, "yellow": 1, "blue": 0}, {"red": 0, "yellow": 1, "blue": 0},
                       {})
    assert (g2.volunteer_hours, g2.volunteers_active) == (1.0, 2)
    assert _by(outside) == ({"red": 0, "yellow": 0, "blue": 1},
                            {"red": 0, "yellow": 0, "blue": 0},
                            {"no_skilled_volunteer_in_circle": 1})
    assert (outside.volunteer_hours, outside.volunteers_active) == (0.0, 0)

    assert _by(b.figures) == ({"red": 1, "yellow": 0, "blue": 2},
                              {"red": 0, "yellow": 0, "blue": 1},
                              {"volunteers_busy": 1, "volunteers_out_of_hours": 1})
    assert (b.figures.volunteer_hours, b.figures.volunteers_active) == (0.75, 1)
    assert b.units == () and b.area_source == "hull"
    assert b.figures.coverage(RED) == 0.0 and b.figures.coverage(BLUE) == 50.0
    assert b.figures.coverage(YELLOW) is None and b.figures.coverage() == pytest.approx(33.3)

    assert c.status == "failed" and c.error == "RuntimeError: boom"
    assert c.figures.occurrences[YELLOW] == 3 and c.figures.total_covered == 0
    assert c.figures.ledger == Ledger()  # the CLI knows no ledger


def test_a_task_kept_as_agreed_is_unmet_but_its_hours_count() -> None:
    """A pinned task kept although it breaks a rule is both an assignment and an unmet
    occurrence (held_by_pinned_task) in a schedule: the report counts it once, as unmet, as
    the schedule's levels do."""
    problem = Problem(WEEK, [volunteer("V1")], [need("N1", priority=RED, days="mon;tue")])
    schedule = _schedule(problem, [_at(Day.MON, 540, 570, "N1", "V1")], [
        _unmet("N1", Day.TUE, UnmetReason.NO_AVAILABLE_VOLUNTEER)])
    held = Schedule(WEEK, [*schedule.assignments, _at(Day.TUE, 540, 600, "N1", "V1")],
                    [_unmet("N1", Day.TUE, UnmetReason.HELD)],
                    schedule.levels, SolveStatus.OPTIMAL, 0.0, 0.0)
    figures = community_report("A", problem, held).figures
    assert figures.covered[RED] == held.levels[RED].covered == 1
    assert figures.unmet == {UnmetReason.HELD: 1}
    assert figures.volunteer_hours == 1.5


def test_a_community_is_drawn_as_its_units_or_around_its_places(
        hand: tuple[District, DistrictResult]) -> None:
    a, b, _c = district_report(*hand).communities
    assert a.area is not None and a.area.equals(shapely.union_all(
        [u.geometry for u in hand[0].communities[0].units]))
    assert b.area is not None
    places = [n.location for n in hand[0].communities[1].problem.needs] + [
        v.location for v in hand[0].communities[1].problem.volunteers]
    for place in places:  # inside, with the buffer to spare
        assert b.area.contains(Point(place.lon, place.lat))
    edge = offset(0, 5000 + HULL_BUFFER_M * 0.5)
    far = offset(0, 5000 + HULL_BUFFER_M * 1.5)
    assert b.area.contains(Point(edge.lon, edge.lat))
    assert not b.area.contains(Point(far.lon, far.lat))


def test_the_report_agrees_with_the_summary_of_a_solved_district() -> None:
    """On a real solve: the community rows are the summary's, the units add up to them."""
    west, east = _cell("W", -1000, 300), _cell("E", 300, 1500)
    a = Problem(WEEK, [volunteer("V1"), volunteer("V2", 0, 600)], [
        need("N1", priority=RED), need("N2", 50, 600, days="mon;tue", priority=YELLOW),
        need("N3", -50, 800, window="09:00-09:40", duration=40), need("N4", 0, 700, k=3)])
    b = Problem(WEEK, [volunteer("V3", 0, 8000)], [need("N5", 0, 8000, priority=RED)])
    district = District(WEEK, [Community("A", a, (west, east)), Community("B", b)])
    result = solve_district(district, SolveParams(time_limit_s=1.0))
    report = district_report(district, result)
    for row, community in zip(summary_rows(result, district), report.communities, strict=True):
        f = community.figures
        assert row["occurrences"] == f.total_occurrences and row["covered"] == f.total_covered
        for p in Priority:
            assert row[f"{p.value}_covered"] == f.covered[p]
            assert row[f"{p.value}_occurrences"] == f.occurrences[p]
        for r in UnmetReason:
            assert row[f"unmet_{r.value}"] == f.unmet.get(r, 0)
    units = report.communities[0].units
    assert [u.unit_id for u in units] == ["W", "E"]
    whole = report.communities[0].figures
    for p in Priority:
        assert sum(u.covered[p] for u in units) == whole.covered[p]
        assert sum(u.occurrences[p] for u in units) == whole.occurrences[p]
    assert sum(u.volunteer_hours for u in units) == pytest.approx(whole.volunteer_hours)
    assert whole.total_covered > 0 and whole.unmet  # N4 wants three volunteers: never covered


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)


def test_the_csv_opens_with_a_bom_and_chinese_headers(hand: tuple[District, DistrictResult],
                                                      tmp_path: Path) -> None:
    report = district_report(*hand)
    with use("en"):  # the headers are Chinese first whatever the language of the run
        written = write_district_report(report, tmp_path)
    assert written == [tmp_path / REPORT_FILE, tmp_path / MAP_FILE]
    raw = (tmp_path / REPORT_FILE).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw[3:].decode("utf-8").splitlines()[0].split(",")
    assert header[:3] == ["社区/community", "网格编号/unit_id", "网格名称/unit_name"]
    assert "红色服务次数/red_occurrences" in header
    assert "没排上：附近的志愿者都排满了/unmet_volunteers_busy" in header
    for cell in header:
        chinese, code = cell.rsplit("/", 1)
        assert re.search(r"[\u4e00-\u9fff]", chinese) and re.fullmatch(r"[a-z_]+", code)
    frame = _read(tmp_path / REPORT_FILE)
    frame.columns = pd.Index([c.rsplit("/", 1)[1] for c in frame.columns])
    assert list(zip(frame["community"], frame["unit_id"], strict=True)) == [
        ("A", ""), ("A", "G1"), ("A", "G2"), ("A", ""), ("B", ""), ("C", "")]
    a, g1, _g2, outside, b, c = frame.to_dict("records")
    assert (a["red_covered"], a["red_pct"], a["blue_pct"], a["volunteer_hours"]) == (
        "2", "100.0", "0.0", "2.5")
    assert a["area_source"] == "grids" and b["area_source"] == "hull"
    assert (g1["unit_name"], g1["red_occurrences"], g1["yellow_pct"]) == ("G1片", "2", "")
    assert outside["unit_name"] == "不在任何网格内" and outside["unit_id"] == ""
    assert (b["unmet_volunteers_busy"], b["unmet_volunteers_out_of_hours"]) == ("1", "1")
    assert (c["status"], c["yellow_occurrences"], c["yellow_covered"], c["error"]) == (
        "failed", "3", "", "RuntimeError: boom")
    assert a["points_issued"] == "" and a["charity_units"] == ""


def test_ledger_figures_reach_the_csv_and_the_map(hand: tuple[District, DistrictResult]) -> None:
    district, result = hand
    ledger = Ledger(points_issued=120, points_redeemed=40, charity_units=7,
                    timebank_minutes=300)
    report = district_report(district, result, {"B": ledger})
    frame = report_frame(report)
    frame.columns = pd.Index([c.rsplit("/", 1)[1] for c in frame.columns])
    row = frame[frame["community"] == "B"].iloc[0]
    assert (row["points_issued"], row["points_redeemed"], row["charity_units"],
            row["timebank_minutes"]) == (120, 40, 7, 300)
    with use("zh_CN"):
        document = district_map_document(report)
    b = next(f for f in document["layers"]["communities"]["features"]
             if f["properties"]["community"] == "B")
    assert "发放积分：120" in b["properties"]["label"]


def _document(page: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="linli-district-data">(.*?)</script>',
                      page, re.S)
    assert match is not None
    document: dict[str, object] = json.loads(match.group(1))
    return document


def test_the_map_has_every_community_and_loads_nothing_from_elsewhere(
        hand: tuple[District, DistrictResult]) -> None:
    district, result = hand
    # A name that tries to break out of the page.
    district.communities[1] = Community("</script><b>B</b>", district.communities[1].problem)
    result.communities[1] = CommunityResult("</script><b>B</b>", ("B",),
                                            result.communities[1].problem,
                                            result.communities[1].schedule)
    with use("zh_CN"):
        page = render_district_map(district_report(district, result))
    assert external_references(page) == []
    assert page.count("</script>") == 4  # the data, Leaflet, the drawing code, the call
    document = _document(page)
    layers = document["layers"]
    assert isinstance(layers, dict)
    features = layers["communities"]["features"]
    assert [f["properties"]["community"] for f in features] == ["A", "</script><b>B</b>", "C"]
    a, b, c = (f["properties"] for f in features)
    assert (a["source"], b["source"], c["source"]) == ("grids", "hull", "hull")
    assert a["colour"]["red"] == coverage_colour(100.0)
    assert b["colour"]["red"] == coverage_colour(0.0) != a["colour"]["red"]
    assert b["colour"]["yellow"] == NO_VISITS and c["colour"]["yellow"] == NO_VISITS
    assert a["label"][0] == "A" and "共 4 次服务，已安排 3 次" in a["label"]
    assert c["status"] == "failed"
    units = [f["properties"]["unit_id"] for f in layers["units"]["features"]]
    assert units == ["G1", "G2"]
    assert [ch["key"] for ch in document["choices"]] == ["red", "yellow", "blue", "all"]
    assert document["selected"] == "red"
    assert document["title"] == "邻里 · 街道 · 第 2026-W48 周"
    legend = document["legend"]
    assert isinstance(legend, dict)
    assert [o["style"] for o in legend["outlines"]] == ["grids", "hull"]
    assert "网格" in legend["outlines"][0]["label"]


def test_the_map_speaks_the_readers_language(hand: tuple[District, DistrictResult]) -> None:
    with use("en"):
        page = render_district_map(district_report(*hand))
    document = _document(page)
    assert document["lang"] == "en" and document["legend_title"] == "Share of visits covered"
    with use("zh_CN"):
        page = render_district_map(district_report(*hand))
    assert _document(page)["legend_title"] == "服务已安排的比例"


def test_coverage_classes() -> None:
    assert coverage_colour(None) == NO_VISITS
    colours = [coverage_colour(v) for v in (0.0, 49.9, 50.0, 70.0, 85.0, 94.9, 95.0, 100.0)]
    assert colours[0] == colours[1] != colours[2]
    assert colours[5] != colours[6] == colours[7]
    assert len(set(colours)) == 5


def test_grid_units_round_trip_through_a_district_folder(
        hand: tuple[District, DistrictResult], tmp_path: Path) -> None:
    district, _result = hand
    save_district(district, tmp_path)
    assert (tmp_path / "A" / GRID_FILE).exists() and not (tmp_path / "B" / GRID_FILE).exists()
    loaded = load_district(tmp_path, WEEK)
    a = loaded.community("A")
    assert [(u.id, u.name) for u in a.units] == [("G1", "G1片"), ("G2", "G2片")]
    assert a.units[0].geometry.equals(district.communities[0].units[0].geometry)
    assert loaded.community("B").units == ()


def test_a_bad_grid_file_names_the_file_and_the_field(
        hand: tuple[District, DistrictResult], tmp_path: Path) -> None:
    district, _result = hand
    save_district(district, tmp_path)
    document = json.loads((tmp_path / "A" / GRID_FILE).read_text("utf-8"))
    document["features"][1]["geometry"] = {"type": "Point", "coordinates": [114.0, 22.5]}
    document["features"][0]["properties"]["unit_id"] = ""
    (tmp_path / "A" / GRID_FILE).write_text(json.dumps(document), "utf-8")
    (tmp_path / "B" / GRID_FILE).write_text("{not json", "utf-8")
    with pytest.raises(InputError) as caught:
        load_district(tmp_path, WEEK)
    found = {(i.file, i.column) for i in caught.value.issues}
    assert found == {("A/grids.geojson", "features[0].properties.unit_id"),
                     ("A/grids.geojson", "features[1].geometry"),
                     ("B/grids.geojson", None)}
    with use("zh_CN"):
        assert "A/grids.geojson" in caught.value.localised()


def test_a_workbook_community_has_its_grid_file_beside_it(tmp_path: Path) -> None:
    from matcher.district import grid_path

    assert grid_path(tmp_path / "A") == tmp_path / "A" / GRID_FILE
    assert grid_path(tmp_path / "B.xlsx") == tmp_path / "B.grids.geojson"


def test_generated_grid_cells_tile_the_community() -> None:
    problem = Problem(WEEK, [volunteer("V1", -400, -300), volunteer("V2", 500, 600)], [
        need("N1", 100, 100), need("N2", -200, 450)])
    for count in (1, 3, 4, 5):
        units = grid_cells(problem, count, "C01")
        assert [u.id for u in units] == [f"C01-G{k + 1}" for k in range(count)]
        whole = shapely.union_all([u.geometry for u in units])
        assert sum(u.geometry.area for u in units) == pytest.approx(whole.area)
        places = [n.location for n in problem.needs] + [v.location for v in problem.volunteers]
        assert all(whole.contains(Point(p.lon, p.lat)) for p in places)
    assert grid_cells(problem, 0, "C01") == ()


def test_one_community_report_is_what_the_console_builds(
        hand: tuple[District, DistrictResult]) -> None:
    """The API calls community_report with its own schedule and ledger: no district needed."""
    district, result = hand
    a = district.communities[0]
    alone = community_report("A", a.problem, result.communities[0].schedule, a.units,
                             ledger=Ledger(points_issued=5),
                             unit_ledgers={"G2": Ledger(charity_units=2)})
    assert alone.figures.ledger.points_issued == 5
    assert alone.units[1].ledger.charity_units == 2 and alone.units[0].ledger == Ledger()
    report = DistrictReport(WEEK, (alone,))
    assert [r.unit_id for r in report.rows()] == [None, "G1", "G2", ""]
    assert dt.date(2026, 11, 23) == WEEK.monday


def test_a_community_without_a_published_plan_is_counted_not_covered(
        hand: tuple[District, DistrictResult]) -> None:
    """The service's ``unpublished`` community: its visits are counted; covered figures and
    shares are empty in the CSV and grey on the map, which says why."""
    district, _result = hand
    a = district.communities[0]
    part = community_report(a.name, a.problem, None, a.units, status=UNPUBLISHED)
    assert not part.planned
    report = DistrictReport(WEEK, (part,))
    frame = report_frame(report)
    whole = frame.iloc[0]
    covered = next(c for c in frame.columns if c.endswith("/covered"))
    share = next(c for c in frame.columns if c.endswith("/coverage_pct"))
    visits = next(c for c in frame.columns if c.endswith("/occurrences"))
    assert (whole[visits], whole[covered], whole[share]) == (4, "", "")
    with use("zh_CN"):
        doc = district_map_document(report)
    [feature] = doc["layers"]["communities"]["features"]
    assert feature["properties"]["colour"]["all"] == NO_VISITS
    assert feature["properties"]["label"][-1] == "这一周的排班还没有公布"
