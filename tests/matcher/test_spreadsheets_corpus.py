"""The corpus of broken spreadsheets (``tests/matcher/spreadsheets/``): each case must produce
exactly the messages ``expected.csv`` lists for it, no more: errors (file, row, column and the
whole message), notes, or ``ok`` (imports without a note). ``make_corpus.py`` wrote the cases."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from matcher import i18n
from matcher.charity import CharityProblem
from matcher.domain import Problem
from matcher.errors import InputError
from matcher.spreadsheets import read_charity, read_community
from tests.conftest import WEEK

CORPUS = Path(__file__).parent / "spreadsheets"


def _expected() -> dict[str, list[dict[str, str]]]:
    cases: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (CORPUS / "expected.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            cases[row["case"]].append(row)
    return dict(cases)


EXPECTED = _expected()


def source_of(case: str, tmp_path: Path) -> Path:
    """The case's workbook, or ``_base/`` with the case's files laid over it."""
    books = sorted((CORPUS / case).glob("*.xlsx"))
    if books:
        return books[0]
    for folder in (CORPUS / "_base", CORPUS / case):
        for file in folder.iterdir():
            shutil.copy(file, tmp_path / file.name)
    return tmp_path


def _problem(result: Problem | CharityProblem) -> Problem:
    assert isinstance(result, Problem)
    return result


# What an ``ok`` case must have read, beyond reading without a note.
CHECKS: dict[str, Callable[[Problem | CharityProblem], None]] = {
    "charity-chinese-dates": lambda p: _dates(p, [dt.date(2027, 3, 31)] * 2),
    "charity-xlsx-date-cell": lambda p: _dates(p, [dt.date(2027, 3, 31), None]),
    "spaced-times": lambda p: _times(_problem(p)),
    "header-spaces": lambda p: _skills(_problem(p)),
    "full-width-semicolons": lambda p: _days(_problem(p)),
    "xlsx-numbers-as-ids": lambda p: _ids(_problem(p)),
    "utf8-bom": lambda p: _ids(_problem(p), ["V1", "V2", "V3"]),
}


def _dates(problem: Problem | CharityProblem, expires: list[dt.date | None]) -> None:
    assert isinstance(problem, CharityProblem)
    assert [d.expires for d in problem.donations] == expires


def _times(problem: Problem) -> None:
    assert str(problem.merchants[0].open) == "09:30-20:30"
    assert str(problem.needs[0].window) == "11:00-12:30"
    assert [str(a) for a in problem.volunteers[0].availability] == ["mon 08:00-12:00",
                                                                    "wed 14:00-18:00"]


def _skills(problem: Problem) -> None:
    assert problem.volunteers[0].skills == {"meal_delivery", "escort_medical"}


def _days(problem: Problem) -> None:
    assert [d.value for d in problem.needs[0].days] == ["mon", "wed"]


def _ids(problem: Problem, ids: list[str] | None = None) -> None:
    assert [v.id for v in problem.volunteers] == (ids or ["1001", "1002", "1003"])
    assert problem.volunteers[0].max_hours_week == 4.0


def test_the_corpus_is_large_and_every_case_is_listed() -> None:
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir() and p.name != "_base"}
    assert folders == set(EXPECTED)
    assert len(folders) >= 25


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_broken_spreadsheet(case: str, tmp_path: Path) -> None:
    rows = EXPECTED[case]
    reader = read_charity if case.startswith("charity-") else read_community
    source = source_of(case, tmp_path)
    errors = [r for r in rows if r["kind"] == "error"]
    if errors:
        with pytest.raises(InputError) as info:
            reader(source, WEEK)
        got = [(i.file, str(i.row or ""), i.column or "", str(i)) for i in info.value.issues]
        assert got == [(r["file"], r["row"], r["column"], r["message"]) for r in errors]
        # What the CLI prints in English is the message as written, byte for byte.
        with i18n.use("en"):
            assert [i.localised() for i in info.value.issues] == [r["message"] for r in errors]
        return
    imported = reader(source, WEEK)
    assert imported.notes == [r["message"] for r in rows if r["kind"] == "note"]
    if case in CHECKS:
        CHECKS[case](imported.problem)


@pytest.mark.parametrize(("case", "chinese"), [
    ("bad-time", "merchants.csv 第 2 行，open 列：'9.30-20.30' 不是时间段（请写成 09:30-20:30 "
                 "这样）"),
    ("duplicate-ids", "needs.csv 第 5 行，need_id 列：'N1' 编号重复了（第一次出现在第 2 行）"),
    ("missing-column", "needs.csv 第 1 行，window 列：表头里缺少这一列"),
    ("swapped-lat-lon", "volunteers.csv 第 3 行，lat, lon 列：'114.019, 22.535' 不在中国境内"
                        "（纬度和经度好像填反了）"),
])
def test_a_coordinator_reads_the_problems_in_chinese(case: str, chinese: str,
                                                     tmp_path: Path) -> None:
    """The same issues, translated first and formatted after: file, row, column and value as in
    English, the sentence in Chinese; ``str()`` (what the API returns) stays English."""
    with pytest.raises(InputError) as info:
        read_community(source_of(case, tmp_path), WEEK)
    with i18n.use("zh"):
        shown = info.value.localised()
    assert chinese in shown.splitlines()[1:][0]
    assert shown.startswith(f"表格里有 {len(info.value.issues)} 处问题：")
    assert str(info.value.issues[0]) == EXPECTED[case][0]["message"]
