"""The command line on communities it has never seen, checked by the independent validator."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from icalendar import Calendar
from typer.testing import CliRunner

from matcher.cli import app
from matcher.domain import Assignment, Day, UnmetReason, Week, parse_hhmm
from matcher.spreadsheets import read_community
from tests.conftest import NETWORK
from tests.validator import network_walk, validate

# The existing checks read English; the language tests below set their own.
runner = CliRunner(env={"LC_ALL": None, "LC_MESSAGES": None, "LANG": "en_US.UTF-8"})


def read_assignments(out: Path) -> list[Assignment]:
    frame = pd.read_csv(out / "assignments.csv", dtype=str, keep_default_na=False)
    return [Assignment(r.need_id, Day(r.day), pd.Timestamp(r.date).date(), parse_hhmm(r.start),
                       parse_hhmm(r.end), r.volunteer_id, r.merchant_id or None,
                       float(r.walk_min)) for r in frame.itertuples()]


def test_generate_then_solve_on_real_streets(tmp_path: Path, futian) -> None:
    data, out = tmp_path / "community", tmp_path / "out"
    result = runner.invoke(app, ["generate", "--out", str(data), "--volunteers", "60",
                                 "--needs", "80", "--merchants", "6", "--radius-m", "900",
                                 "--network", str(NETWORK), "--seed", "3"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["solve", "--data", str(data), "--week", "2026-W49", "--out",
                                 str(out), "--network", str(NETWORK), "--time-limit", "20"])
    assert result.exit_code == 0, result.output
    assert "red" in result.output and "Why occurrences stay unmet" in result.output
    summary = json.loads((out / "summary.json").read_text())
    problem = read_community(data, Week.parse("2026-W49")).problem
    assignments = read_assignments(out)
    # The walking oracle: the shipped network, independent Dijkstra per pair (networkx).
    assert validate(problem, assignments, network_walk(futian)) == []
    assert summary["covered"] == len({(a.need_id, a.day) for a in assignments})
    assert summary["limit"] == "deterministic" and summary["deterministic_time"] > 0
    unmet = pd.read_csv(out / "unmet.csv")
    assert len(unmet) + summary["covered"] == summary["occurrences"]
    assert unmet["reason"].str.len().min() > 10
    assert (out / "map.html").read_text().count("OpenStreetMap") >= 1
    ics = next((out / "calendars").glob("*.ics")).read_text()
    assert "BEGIN:VEVENT" in ics and "Asia/Shanghai" in ics
    calendar = Calendar.from_ical(ics)
    assert calendar.walk("VTIMEZONE") and not calendar.get_missing_tzids()


def test_bad_input_exits_with_the_cell(tmp_path: Path) -> None:
    (tmp_path / "volunteers.csv").write_text(
        "volunteer_id,name,lat,lon,availability\nV1,王芳,22.5,114.0,mon 09:00-12:00\n")
    (tmp_path / "needs.csv").write_text(
        "need_id,kind,service,beneficiary,lat,lon,days,window,duration_min\n"
        "N1,elderly,visit,张奶奶,22.5,114.0,mon,25:00-26:00,30\n")
    result = runner.invoke(app, ["solve", "--data", str(tmp_path), "--week", "2026-W48",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "needs.csv row 2, window: '25:00-26:00'" in result.output
    assert not (tmp_path / "out" / "assignments.csv").exists()


def test_bad_week(tmp_path: Path) -> None:
    result = runner.invoke(app, ["solve", "--data", str(tmp_path), "--week", "W48",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not an ISO week" in result.output


def test_demo_runs_on_the_embedded_data(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--time-limit", "15"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["occurrences"] > 800
    assert summary["covered_by_priority"]["red"] >= summary["stats"]["greedy_red"]


def test_allocate_writes_valid_allocations_and_delivery_needs(tmp_path: Path) -> None:
    from matcher.spreadsheets import read_charity
    from tests.allocation_check import check_allocation
    from tests.validator import geodesic_walk

    data, out = tmp_path / "community", tmp_path / "alloc"
    result = runner.invoke(app, ["generate", "--out", str(data), "--volunteers", "30",
                                 "--needs", "20", "--merchants", "3", "--requests", "120",
                                 "--donations", "30", "--categories", "6", "--seed", "4"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["allocate", "--data", str(data), "--week", "2026-W48",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "lowest fill" in result.output
    problem = read_charity(data, Week.parse("2026-W48")).problem
    frame = pd.read_csv(out / "allocations.csv", dtype=str, keep_default_na=False,
                        encoding="utf-8-sig")
    frame["quantity"] = frame["quantity"].astype(int)
    from matcher.charity import AllocationLine

    lines = [AllocationLine(r.donation_id, r.request_id, int(r.quantity), float(r.walk_min),
                            r.delivery == "yes",
                            dt.date.fromisoformat(r.deliver_on or r.collect_by))
             for r in frame.itertuples()]
    assert check_allocation(problem, lines, geodesic_walk()) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "optimal"
    assert sum(summary["allocated_by_priority"].values()) == frame["quantity"].sum()
    deliveries = pd.read_csv(out / "delivery_needs.csv")
    assert len(deliveries) == (frame["delivery"] == "yes").sum()
    # ... and the week takes them as needs.
    result = runner.invoke(app, ["solve", "--data", str(data), "--week", "2026-W48", "--out",
                                 str(tmp_path / "week"), "--time-limit", "10", "--wall-clock",
                                 "--add-needs", str(out / "delivery_needs.csv")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "week" / "summary.json").read_text())["limit"] == "wall_clock"


def test_allocate_reports_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "donations.csv").write_text(
        "donation_id,donor,category,quantity,lat,lon,expires\n"
        "D1,超市,rice,-3,22.53,114.01,2026-13-01\n", encoding="utf-8")
    (tmp_path / "requests.csv").write_text(
        "request_id,beneficiary,category,quantity,lat,lon,priority\n"
        "R1,王家,rice,2,22.53,114.01,purple\n", encoding="utf-8")
    result = runner.invoke(app, ["allocate", "--data", str(tmp_path), "--week", "2026-W48",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "donations.csv row 2, quantity: '-3'" in text
    assert "donations.csv row 2, expires: '2026-13-01' is not a date" in text
    assert "requests.csv row 2, priority: 'purple'" in text
    assert not (tmp_path / "out").exists()


# --- coordinates and encodings of the files people open ----------------------------------------

BOM = b"\xef\xbb\xbf"
PEOPLE_CSVS = ("allocations.csv", "unmet_requests.csv", "leftover.csv", "delivery_needs.csv")


def _gcj(north: float, east: float) -> tuple[float, float]:
    """A place near the sample centre as Amap shows it (GCJ-02, prcoords' forward formula)."""
    import prcoords

    point = prcoords.wgs_gcj(prcoords.Coords(22.53407 + north / 110_540,
                                             114.01766 + east / 102_830))
    return float(point.lat), float(point.lon)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    from geopy.distance import geodesic

    return float(geodesic(a, b).meters)


def test_gcj02_round_trip_places_deliveries_at_the_households(tmp_path: Path) -> None:
    """allocate --coords gcj02, then solve --coords gcj02 --add-needs: the delivery is where the
    household is (within a metre), on or before the goods expire, and every file people open
    is in GCJ-02, says so, and opens in Excel (UTF-8 with a byte-order mark)."""
    from icalendar import Calendar

    from matcher.coords import CoordSystem
    from matcher.spreadsheets import read_charity

    week = Week.parse("2026-W48")
    thursday = week.monday + dt.timedelta(days=3)
    depot, home, near = _gcj(2500, 0), _gcj(0, 0), _gcj(150, 0)
    data, out, sched = tmp_path / "data", tmp_path / "alloc", tmp_path / "week"
    data.mkdir()
    (data / "donations.csv").write_text(
        "donation_id,donor,category,quantity,lat,lon,expires\n"
        f"D1,华润万家,牛奶,2,{depot[0]:.7f},{depot[1]:.7f},{thursday.isoformat()}\n"
        f"D2,华润万家,大米,3,{depot[0]:.7f},{depot[1]:.7f},\n", encoding="utf-8")
    (data / "requests.csv").write_text(
        "request_id,beneficiary,category,quantity,lat,lon,priority\n"
        f"R1,王奶奶家,牛奶,2,{home[0]:.7f},{home[1]:.7f},red\n"
        f"R2,刘爷爷家,牛奶,1,{near[0]:.7f},{near[1]:.7f},blue\n", encoding="utf-8")
    (data / "volunteers.csv").write_text(
        "volunteer_id,name,lat,lon,availability\n"
        f"V1,李芳,{near[0]:.7f},{near[1]:.7f},mon-sun\n".replace(
            "mon-sun", ";".join(f"{d.value} 08:00-18:00" for d in Day)), encoding="utf-8")
    (data / "needs.csv").write_text(
        "need_id,kind,service,beneficiary,lat,lon,days,window,duration_min\n"
        f"N1,elderly,home_visit,张爷爷,{home[0]:.7f},{home[1]:.7f},sat,09:00-10:00,30\n",
        encoding="utf-8")
    result = runner.invoke(app, ["allocate", "--data", str(data), "--week", str(week),
                                 "--out", str(out), "--coords", "gcj02"])
    assert result.exit_code == 0, result.output
    for name in PEOPLE_CSVS:
        assert (out / name).read_bytes().startswith(BOM), name
    short = pd.read_csv(out / "unmet_requests.csv", dtype=str, encoding="utf-8-sig")
    assert short["category"].tolist() == ["牛奶"] and "牛奶" in short.loc[0, "reason"]
    leftover = pd.read_csv(out / "leftover.csv", dtype=str, encoding="utf-8-sig")
    assert leftover["category"].tolist() == ["大米"]
    lines = pd.read_csv(out / "allocations.csv", dtype=str, encoding="utf-8-sig")
    assert list(lines[["delivery", "deliver_on"]].itertuples(index=False, name=None)) == \
        [("yes", thursday.isoformat())]
    needs = pd.read_csv(out / "delivery_needs.csv", dtype=str, encoding="utf-8-sig")
    assert needs.loc[0, "beneficiary"] == "王奶奶家" and needs.loc[0, "days"] == "thu"
    assert needs.loc[0, "coords"] == "gcj02"
    assert _metres((float(needs.loc[0, "lat"]), float(needs.loc[0, "lon"])), home) < 1.0
    assert json.loads((out / "summary.json").read_text())["coords"] == "gcj02"

    # The week reads the file back in the system it names: the household's place, not 480 m off.
    charity = read_charity(data, week, CoordSystem.GCJ02).problem
    community = read_community(data, week, CoordSystem.GCJ02,
                               extra_needs=[out / "delivery_needs.csv"]).problem
    delivery = community.need_by_id["GD-D1-R1"]
    household = charity.requests[0].location
    assert _metres((delivery.location.lat, delivery.location.lon),
                   (household.lat, household.lon)) < 1.0
    result = runner.invoke(app, ["solve", "--data", str(data), "--week", str(week), "--out",
                                 str(sched), "--time-limit", "10", "--coords", "gcj02",
                                 "--add-needs", str(out / "delivery_needs.csv")])
    assert result.exit_code == 0, result.output
    for name in ("assignments.csv", "unmet.csv"):
        assert (sched / name).read_bytes().startswith(BOM), name
    tasks = pd.read_csv(sched / "assignments.csv", dtype=str, encoding="utf-8-sig")
    assert tasks.loc[tasks.need_id == "GD-D1-R1", "date"].tolist() == [thursday.isoformat()]
    assert json.loads((sched / "summary.json").read_text())["coords"] == "gcj02"
    # The calendar shows the place as Amap does, so it opens at the door.
    calendar = Calendar.from_ical((sched / "calendars" / "V1.ics").read_bytes())
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    event = events["goods_delivery · 王奶奶家"]
    geo = (event["geo"].latitude, event["geo"].longitude)
    assert _metres(geo, home) < 1.0
    assert _metres(tuple(map(float, str(event["location"]).split(","))), home) < 1.0
    assert "GCJ-02" in str(event["description"])


def test_added_needs_written_in_wgs84_are_not_converted_by_gcj02(tmp_path: Path) -> None:
    """A delivery_needs.csv that says wgs84 stays put under solve --coords gcj02."""
    from matcher.coords import CoordSystem

    week = Week.parse("2026-W48")
    data = tmp_path / "data"
    data.mkdir()
    (data / "volunteers.csv").write_text(
        "volunteer_id,name,lat,lon,availability\nV1,李芳,22.53407,114.01766,sat 08:00-18:00\n",
        encoding="utf-8")
    (data / "needs.csv").write_text(
        "need_id,kind,service,beneficiary,lat,lon,days,window,duration_min\n"
        "N1,elderly,home_visit,张爷爷,22.53407,114.01766,sat,09:00-10:00,30\n",
        encoding="utf-8")
    extra = tmp_path / "delivery_needs.csv"
    extra.write_bytes(BOM + (
        "need_id,kind,service,beneficiary,lat,lon,days,window,duration_min,coords\n"
        "GD-D1-R1,charity,goods_delivery,王奶奶家,22.5,114.0,sat,09:00-17:00,60,wgs84\n"
    ).encode())
    problem = read_community(data, week, CoordSystem.GCJ02, extra_needs=[extra]).problem
    need = problem.need_by_id["GD-D1-R1"]
    assert (need.location.lat, need.location.lon) == (22.5, 114.0)
    assert need.beneficiary == "王奶奶家"
    assert problem.need_by_id["N1"].location.lat != 22.53407  # --coords still applies to the rest


def test_user_text_is_printed_literally(tmp_path: Path) -> None:
    """A sheet name in square brackets and a cell like ``[red]`` are text, not console markup."""
    book = Path(__file__).parent / "matcher" / "spreadsheets" / "xlsx-bad-cell" / "book.xlsx"
    result = runner.invoke(app, ["solve", "--data", str(book), "--week", "2026-W48",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "book.xlsx[needs] row 3, window: '25:00-26:00'" in result.output
    folder = tmp_path / "brackets"
    folder.mkdir()
    base = Path(__file__).parent / "matcher" / "spreadsheets" / "_base"
    for name in ("volunteers.csv", "merchants.csv"):
        (folder / name).write_bytes((base / name).read_bytes())
    needs = (base / "needs.csv").read_text(encoding="utf-8").replace(",red,", ",[red],")
    (folder / "needs.csv").write_text(needs, encoding="utf-8")
    result = runner.invoke(app, ["solve", "--data", str(folder), "--week", "2026-W48",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "priority: '[red]' is not one of red / yellow / blue" in result.output


def test_map_tiles_that_cannot_work_stop_before_solving(tmp_path: Path) -> None:
    for env, words in (({"LINLI_TILES": "tianditu"}, "LINLI_TIANDITU_KEY"),
                       ({"LINLI_TILES": "google"}, "tiles")):
        result = runner.invoke(app, ["solve", "--data", str(tmp_path), "--week", "2026-W48",
                                     "--out", str(tmp_path / "out")], env=env)
        assert result.exit_code == 2, result.output
        assert words in result.output and "Traceback" not in result.output
        assert not (tmp_path / "out").exists()


# --- the language people read ------------------------------------------------------------------

@pytest.mark.parametrize(("flag", "env", "lang"), [
    (None, {}, "zh_CN"), (None, {"LANG": "C"}, "zh_CN"), (None, {"LANG": "POSIX"}, "zh_CN"),
    (None, {"LANG": "en_US.UTF-8"}, "en"), (None, {"LANG": "zh_CN.UTF-8"}, "zh_CN"),
    (None, {"LANG": "zh_CN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
    ("en", {"LANG": "zh_CN.UTF-8"}, "en"), ("zh", {"LC_ALL": "en_US.UTF-8"}, "zh_CN"),
])
def test_the_language_is_the_flag_else_the_locale_else_chinese(
        flag: str | None, env: dict[str, str], lang: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from matcher.cli import language

    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert language(flag) == lang


def test_errors_are_in_the_language_asked_for(tmp_path: Path) -> None:
    args = ["solve", "--data", str(tmp_path), "--week", "2026-W48", "--out", str(tmp_path)]
    chinese = CliRunner(env={"LC_ALL": None, "LC_MESSAGES": None, "LANG": None})
    assert "出错了" in chinese.invoke(app, ["--lang", "zh", *args]).output
    assert "出错了" in chinese.invoke(app, args).output
    assert "error:" in chinese.invoke(app, ["--lang", "en", *args]).output
    assert "error:" in runner.invoke(app, args).output


def test_a_week_is_told_in_plain_chinese_with_a_progress_bar(tmp_path: Path) -> None:
    """The table in a 社区书记's words, the unmet reasons' codes kept, and the bar's last line:
    planning done at 100%."""
    base = Path(__file__).parent / "matcher" / "spreadsheets" / "_base"
    result = runner.invoke(app, ["--lang", "zh", "solve", "--data", str(base), "--week",
                                 "2026-W48", "--out", str(tmp_path / "out"),
                                 "--time-limit", "3"])
    assert result.exit_code == 0, result.output
    text = result.output
    for word in ("优先级", "服务次数", "已安排", "比例", "最多可安排", "已是最好的安排", "红", "蓝",
                 "排班完成", "100%", "志愿者", "结果文件在"):
        assert word in text, word
    for english in ("priority", "occurrences", "covered", "bound", "proven", " volunteers,",
                    "could if", "capable", "more volunteer"):
        assert english not in text, english
    # unmet.csv: reason codes as they are, the reason and the fix in the CLI's language.
    unmet = pd.read_csv(tmp_path / "out" / "unmet.csv", dtype=str, encoding="utf-8-sig")
    assert set(unmet["reason_code"]) <= {r.value for r in UnmetReason}
    assert unmet["reason"].str.contains("志愿者|商家").all()
    assert unmet["fix"].str.contains("[\u4e00-\u9fff]").all()


def test_a_bad_cell_is_named_in_chinese(tmp_path: Path) -> None:
    (tmp_path / "volunteers.csv").write_text(
        "编号,姓名,纬度,经度,可服务时间\nV1,王芳,22.5,114.0,周一 09:00-12:00\n",
        encoding="utf-8")
    (tmp_path / "needs.csv").write_text(
        "需求编号,类别,服务,服务对象,纬度,经度,星期,时间段,时长（分钟）\n"
        "N1,养老,visit,张奶奶,22.5,114.0,周一,25:00-26:00,30\n", encoding="utf-8")
    result = runner.invoke(app, ["--lang", "zh", "solve", "--data", str(tmp_path), "--week",
                                 "2026-W48", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    text = "".join(result.output.split())
    assert "表格里有1处问题" in text
    assert "needs.csv第2行，window列：'25:00-26:00'不是时间段" in text


def test_the_grid_report_reads_in_chinese_or_english_as_asked(tmp_path: Path) -> None:
    """One of the residents' commands (grids) in both languages: title, columns, the row of
    places in no unit, and a bad unit file's problem."""
    units = tmp_path / "units.geojson"
    ring = [[114.0, 22.5], [114.01, 22.5], [114.01, 22.51], [114.0, 22.51], [114.0, 22.5]]
    units.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"unit_id": "G1", "name": "第一网格"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}), encoding="utf-8")
    args = ["grids", "--units", str(units), "--data", str(NETWORK.parents[1] / "sample")]
    chinese = runner.invoke(app, ["--lang", "zh_CN", *args])
    english = runner.invoke(app, ["--lang", "en", *args])
    assert chinese.exit_code == english.exit_code == 0, chinese.output + english.output
    zh, en = "".join(chinese.output.split()), "".join(english.output.split())
    assert "邻里·网格·2026-W48周" in zh and "Linli·gridunits·week2026-W48" in en
    assert "服务次数" in zh and "visits" in en
    assert "网格外" in zh and "outside" in en
    assert "outside" not in zh and "visits" not in zh
    units.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "没有编号"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}), encoding="utf-8")
    bad_zh = runner.invoke(app, ["--lang", "zh_CN", *args])
    bad_en = runner.invoke(app, ["--lang", "en", *args])
    assert bad_zh.exit_code == bad_en.exit_code == 2
    assert "缺少网格编号" in "".join(bad_zh.output.split())
    assert "needs a unit id" in " ".join(bad_en.output.split())
