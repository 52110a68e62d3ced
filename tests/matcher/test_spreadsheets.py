"""Import: every bad cell is reported with file, row, column and value; nothing half-imported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from matcher.coords import CoordSystem
from matcher.domain import Day, Week
from matcher.errors import InputError
from matcher.spreadsheets import problem_frames, read_community, write_community
from tests.conftest import WEEK, need, volunteer

VOL_HEADER = "volunteer_id,name,lat,lon,skills,availability,max_hours_week\n"
NEED_HEADER = ("need_id,kind,service,beneficiary,lat,lon,days,window,duration_min,skills,"
               "volunteers_needed,priority,merchant_service\n")
GOOD_VOL = "V1,王芳,22.534,114.017,meal_delivery,mon 08:00-12:00,4\n"
GOOD_NEED = "N1,elderly,home_visit,张奶奶,22.535,114.018,mon;wed,09:00-11:00,30,,1,red,\n"


def community(tmp_path: Path, volunteers: str = GOOD_VOL, needs: str = GOOD_NEED,
              encoding: str = "utf-8") -> Path:
    (tmp_path / "volunteers.csv").write_bytes((VOL_HEADER + volunteers).encode(encoding))
    (tmp_path / "needs.csv").write_bytes((NEED_HEADER + needs).encode(encoding))
    return tmp_path


def test_good_community_imports(tmp_path: Path) -> None:
    imported = read_community(community(tmp_path), WEEK)
    problem = imported.problem
    assert [v.id for v in problem.volunteers] == ["V1"]
    assert len(problem.occurrences) == 2
    assert problem.occurrences[1].date.isoformat() == "2026-11-25"


@pytest.mark.parametrize(("needs", "expected"), [
    ("N1,elderly,home_visit,张奶奶,22.535,114.018,mon,25:00-26:00,30,,1,red,\n",
     "needs.csv row 2, window: '25:00-26:00' is not a time window"),
    ("N1,elderly,home_visit,张奶奶,22.535,114.018,mon,09:00-09:20,30,,1,red,\n",
     "needs.csv row 2, duration_min: '30' is longer than the window"),
    ("N1,elderly,home_visit,张奶奶,22.535,114.018,funday,09:00-11:00,30,,1,red,\n",
     "needs.csv row 2, days: 'funday' is not a day"),
    ("N1,elderly,home_visit,张奶奶,51.5,-0.12,mon,09:00-11:00,30,,1,red,\n",
     "needs.csv row 2, lat, lon: '51.5, -0.12' is outside China"),
    ("N1,elderly,home_visit,张奶奶,114.018,22.535,mon,09:00-11:00,30,,1,red,\n",
     "lat and lon look swapped"),
    ("N1,elderly,home_visit,张奶奶,22.535,114.018,mon,09:00-11:00,30,,1,purple,\n",
     "needs.csv row 2, priority: 'purple' is not one of red / yellow / blue"),
    (GOOD_NEED + GOOD_NEED, "needs.csv row 3, need_id: 'N1' is a duplicate id (first on row 2)"),
    ("N1,elderly,home_visit,张奶奶,22.535,114.018,mon,09:00-11:00,thirty,,1,red,\n",
     "duration_min: 'thirty' is not a whole number"),
])
def test_bad_needs_are_named(tmp_path: Path, needs: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        read_community(community(tmp_path, needs=needs), WEEK)
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad_vol = "V1,王芳,22.534,114.017,,mon 8-12,4\nV1,李伟,abc,114.0,,tue 09:00-10:00,x\n"
    with pytest.raises(InputError) as info:
        read_community(community(tmp_path, volunteers=bad_vol), WEEK)
    text = str(info.value)
    assert "volunteers.csv row 2, availability: 'mon 8-12'" in text
    assert "volunteers.csv row 3, volunteer_id: 'V1' is a duplicate id" in text
    assert "volunteers.csv row 3, lat: 'abc' is not a number" in text
    assert "volunteers.csv row 3, max_hours_week: 'x' is not a number" in text


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "volunteers.csv").write_text("")
    with pytest.raises(InputError, match=r"volunteers\.csv: is empty"):
        read_community(tmp_path, WEEK)
    (tmp_path / "volunteers.csv").write_text(VOL_HEADER)
    with pytest.raises(InputError, match=r"needs\.csv: is missing"):
        read_community(tmp_path, WEEK)


def test_header_without_rows_and_missing_column(tmp_path: Path) -> None:
    (tmp_path / "volunteers.csv").write_text(VOL_HEADER)
    (tmp_path / "needs.csv").write_text("need_id,kind\nN1,elderly\n")
    with pytest.raises(InputError) as info:
        read_community(tmp_path, WEEK)
    assert "volunteers.csv: has a header but no rows" in str(info.value)
    assert "needs.csv row 1, window: column is missing from the header" in str(info.value)


def test_gbk_excel_export_is_read_with_a_note(tmp_path: Path) -> None:
    imported = read_community(community(tmp_path, encoding="gbk"), WEEK)
    assert imported.problem.volunteers[0].name == "王芳"
    assert any("GBK" in note for note in imported.notes)


def test_undecodable_file(tmp_path: Path) -> None:
    community(tmp_path)
    (tmp_path / "needs.csv").write_bytes(b"\xff\xfe\x00\x81\x30\xff" * 5)
    with pytest.raises(InputError, match=r"needs\.csv row 1: is neither UTF-8 nor GBK"):
        read_community(tmp_path, WEEK)


def test_gcj02_is_converted(tmp_path: Path) -> None:
    wgs = read_community(community(tmp_path), WEEK).problem
    gcj = read_community(tmp_path, WEEK, CoordSystem.GCJ02).problem
    shift = abs(wgs.needs[0].location.lat - gcj.needs[0].location.lat) * 110_540
    assert 100 < shift < 700  # the GCJ-02 offset in Shenzhen is a few hundred metres


def test_xlsx_workbook_and_round_trip(tmp_path: Path) -> None:
    from matcher.domain import Problem

    problem = Problem(WEEK, [volunteer("V1", windows="mon 08:00-12:00;mon 12:00-13:00")],
                      [need("N1", days="mon;tue")])
    assert str(problem.volunteers[0].availability[0].window) == "08:00-12:00"
    book = tmp_path / "community.xlsx"
    with pd.ExcelWriter(book) as writer:
        for name, frame in problem_frames(problem).items():
            frame.to_excel(writer, sheet_name=name, index=False)
    back = read_community(book, WEEK).problem
    assert back.needs[0].days == problem.needs[0].days
    write_community(back, tmp_path / "csv")
    again = read_community(tmp_path / "csv", WEEK).problem
    assert again.volunteers[0].skills == problem.volunteers[0].skills
    assert len(again.occurrences) == 2


def test_touching_windows_merge(tmp_path: Path) -> None:
    vol = "V1,王芳,22.534,114.017,,mon 08:00-12:00;mon 12:00-14:00;tue 09:00-10:00,4\n"
    v = read_community(community(tmp_path, volunteers=vol), WEEK).problem.volunteers[0]
    assert [str(a) for a in v.availability] == ["mon 08:00-14:00", "tue 09:00-10:00"]


def test_week_parsing() -> None:
    assert Week.parse("2026-W48").monday.isoformat() == "2026-11-23"
    with pytest.raises(ValueError, match="not an ISO week"):
        Week.parse("2026-48")
    with pytest.raises(ValueError, match="not an ISO week of 2026"):
        Week.parse("2026-W54")
    assert str(Week.parse("0895-W17")) == "0895-W17"  # parses back to itself
    # A week whose Sunday is past the last date is not a week either.
    assert Week.parse("9999-W51").date_of(Day.SUN).isoformat() == "9999-12-26"
    with pytest.raises(ValueError, match="not an ISO week of 9999"):
        Week.parse("9999-W52")


def test_extra_needs_join_the_week_and_clashing_ids_are_named(tmp_path: Path) -> None:
    folder = community(tmp_path)
    extra = tmp_path / "delivery_needs.csv"
    extra.write_text(NEED_HEADER + "GD-D1-R1,charity,goods_delivery,王家,22.535,114.018,sat,"
                     "09:00-17:00,45,,1,blue,\n", encoding="utf-8")
    imported = read_community(folder, WEEK, extra_needs=[extra])
    assert {n.id for n in imported.problem.needs} == {"N1", "GD-D1-R1"}
    clash = tmp_path / "more.csv"
    clash.write_text(NEED_HEADER + GOOD_NEED, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_community(folder, WEEK, extra_needs=[clash])
    assert "more.csv row 2, need_id: 'N1' is already a need (needs.csv row 2)" in str(info.value)


def test_files_beyond_the_limits_are_refused_before_parsing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matcher.spreadsheets as sheets

    rows = "".join(f"V{k},王芳,22.534,114.017,,mon 08:00-12:00,4\n" for k in range(30))
    community(tmp_path, volunteers=rows)
    monkeypatch.setattr(sheets, "MAX_ROWS", 20)
    with pytest.raises(InputError, match=r"volunteers\.csv: has more than 20 rows"):
        read_community(tmp_path, WEEK)
    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book) as writer:
        for name in ("volunteers", "needs"):
            pd.read_csv(tmp_path / f"{name}.csv", dtype=str).to_excel(writer, sheet_name=name,
                                                                      index=False)
    with pytest.raises(InputError, match=r"book.xlsx\[volunteers\]: has more than 20 rows"):
        read_community(book, WEEK)
    monkeypatch.setattr(sheets, "MAX_ROWS", 50_000)
    monkeypatch.setattr(sheets, "MAX_FILE_BYTES", 1000)
    with pytest.raises(InputError, match=r"volunteers.csv: is 0.0 MB: at most 0 MB per file"):
        read_community(tmp_path, WEEK)


def test_a_mixed_file_names_its_first_foreign_row(tmp_path: Path) -> None:
    community(tmp_path)
    gbk_row = "N2,elderly,home_visit,李爷爷,22.535,114.018,mon,09:00-11:00,30,,1,red,\n"
    (tmp_path / "needs.csv").write_bytes((NEED_HEADER + GOOD_NEED).encode("utf-8")
                                         + gbk_row.encode("gbk"))
    with pytest.raises(InputError, match=r"needs\.csv row 3: mixes encodings: row 2 is UTF-8"):
        read_community(tmp_path, WEEK)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-20", "2026-11-20"), ("2026/11/20", "2026-11-20"), ("2026/1/5", "2026-01-05"),
    ("2026年11月20日", "2026-11-20"), ("2026.11.20", "2026-11-20"),
    ("2026-11-20 00:00:00", "2026-11-20"), ("２０２６－１１－２０", "2026-11-20"),
])
def test_dates_as_chinese_excel_writes_them(tmp_path: Path, text: str, expected: str) -> None:
    from matcher.spreadsheets import read_charity

    (tmp_path / "donations.csv").write_text(
        f"donation_id,donor,category,quantity,lat,lon,expires\nD1,超市,rice,4,22.53,114.01,{text}\n",
        encoding="utf-8")
    (tmp_path / "requests.csv").write_text(
        "request_id,beneficiary,category,quantity,lat,lon\nR1,李家,rice,1,22.53,114.01\n",
        encoding="utf-8")
    donation = read_charity(tmp_path, WEEK).problem.donations[0]
    assert donation.expires is not None and donation.expires.isoformat() == expected


@pytest.mark.parametrize("text", ["2026-02-30", "20/11/2026", "next week", "2026-11"])
def test_impossible_dates_are_refused(tmp_path: Path, text: str) -> None:
    from matcher.spreadsheets import read_charity

    (tmp_path / "donations.csv").write_text(
        f"donation_id,donor,category,quantity,lat,lon,expires\nD1,超市,rice,4,22.53,114.01,{text}\n",
        encoding="utf-8")
    (tmp_path / "requests.csv").write_text(
        "request_id,beneficiary,category,quantity,lat,lon\nR1,李家,rice,1,22.53,114.01\n",
        encoding="utf-8")
    with pytest.raises(InputError, match=r"donations\.csv row 2, expires: .* is not a date"):
        read_charity(tmp_path, WEEK)


def test_gbk_that_happens_to_be_valid_utf8_is_not_taken_for_a_mixed_file(tmp_path: Path) -> None:
    """Every GB2312 level-1 character alone in a cell: in GBK, 682 of them are also valid UTF-8
    byte pairs (小 is the bytes of С), which must not count as UTF-8 rows."""
    chars = [bytes([a, b]).decode("gb2312") for a in range(0xB0, 0xD8)
             for b in range(0xA1, 0xFF) if not (a == 0xD7 and b > 0xF9)]
    rows = "".join(f"N{k},elderly,home_visit,{c},22.535,114.018,mon,09:00-11:00,30,,1,red,\n"
                   for k, c in enumerate(chars))
    community(tmp_path, needs=rows, encoding="gbk")
    imported = read_community(tmp_path, WEEK)
    assert [n.beneficiary for n in imported.problem.needs] == chars
    assert any("read as GBK" in note for note in imported.notes)


# --- a Chinese coordinator's sheet -----------------------------------------------------------

ZH_VOL_HEADER = "编号,姓名,纬度,经度,技能,可服务时间,每周最多小时\n"
ZH_NEED_HEADER = ("需求编号,类别,服务,服务对象,纬度,经度,星期,时间段,时长（分钟）,技能,所需人数,"
                  "优先级,商家服务\n")


def test_chinese_headers_days_priorities_and_punctuation_read_as_the_english(
        tmp_path: Path) -> None:
    """Chinese headers (full-width brackets too), 周一/星期三/日, 红/黄/蓝, 养老, full-width
    colons, a window typed without a space after its day, ；and 、 between items: the same
    problem as the English sheet."""
    english = tmp_path / "en"
    english.mkdir()
    community(english, volunteers="V1,王芳,22.534,114.017,meal_delivery;first_aid,"
              "mon 08:00-12:00;wed 14:00-18:00;sun 09:00-10:00,4\n",
              needs=GOOD_NEED + "N2,childcare,tutoring,小明,22.535,114.018,wed;sun,"
              "09:00-10:00,30,,1,yellow,\n")
    chinese = tmp_path / "zh"
    chinese.mkdir()
    (chinese / "volunteers.csv").write_text(
        ZH_VOL_HEADER + "V1,王芳,22.534,114.017,meal_delivery；first_aid,"
        "周一 08：00-12：00；星期三14:00-18:00、周日 09:00-10:00,4\n", encoding="utf-8")
    (chinese / "needs.csv").write_text(
        ZH_NEED_HEADER + "N1,养老,home_visit,张奶奶,22.535,114.018,周一、三,09：00-11：00,30,,1,"
        "红,\nN2,托育,tutoring,小明,22.535,114.018,星期三；日,09:00-10:00,30,,1,黄色,\n",
        encoding="utf-8")
    want = read_community(english, WEEK)
    got = read_community(chinese, WEEK)
    assert got.problem == want.problem and got.notes == []
    assert [n.priority.value for n in got.problem.needs] == ["red", "yellow"]


@pytest.mark.parametrize(("sheet", "header", "value", "expected"), [
    ("needs", "优先级", "紫", "needs.csv row 2, priority: '紫' is not one of red / yellow / blue"),
    ("needs", "星期", "周八", "needs.csv row 2, days: '周八' is not a day"),
])
def test_a_bad_chinese_cell_is_named_by_its_english_column(
        tmp_path: Path, sheet: str, header: str, value: str, expected: str) -> None:
    from matcher import i18n

    folder = community(tmp_path)
    (folder / "needs.csv").write_text(
        ZH_NEED_HEADER + "N1,养老,home_visit,张奶奶,22.535,114.018,周一,09:00-11:00,30,,1,红,\n",
        encoding="utf-8")
    frame = pd.read_csv(folder / f"{sheet}.csv", dtype=str, keep_default_na=False)
    frame[header] = value
    frame.to_csv(folder / f"{sheet}.csv", index=False)
    with pytest.raises(InputError) as caught, i18n.use("en"):
        read_community(folder, WEEK)
    assert expected in str(caught.value)


def test_the_chinese_sample_workbook_is_the_english_sample() -> None:
    """``data/sample/社区示例.xlsx`` (sheets 志愿者/需求/商家, Chinese headers under a title row,
    written by scripts/chinese_sample.py) imports to the problem of the English CSVs."""
    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    book = read_community(sample / "社区示例.xlsx", WEEK)
    assert book.notes == []
    assert book.problem == read_community(sample, WEEK).problem
    assert len(book.problem.volunteers) > 100 and book.problem.merchants
