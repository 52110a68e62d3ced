"""The import template: the importer reads it (example row included) without a problem or a
note, its Chinese headers are the importer's, and its drop-downs refuse what the importer
refuses and offer only what it accepts."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.datavalidation import DataValidation

from matcher.errors import InputError
from matcher.spreadsheets import COLUMNS, _header_name, read_charity, read_community
from matcher.template import (
    CHARITY,
    COMMUNITY,
    EXAMPLE_ROW,
    HEADER_ROW,
    HEADERS,
    SHEETS,
    Vocabulary,
    template_workbook,
)
from tests.conftest import WEEK


def _save(tmp_path: Path, data: bytes, name: str = "template.xlsx") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _check_at(sheet: openpyxl.worksheet.worksheet.Worksheet, cell: str) -> DataValidation:
    found = [v for v in sheet.data_validations.dataValidation if cell in v.sqref]
    assert len(found) == 1, f"{sheet.title}!{cell} has {len(found)} rules"
    return found[0]


def _list_words(check: DataValidation) -> list[str]:
    assert check.type == "list"
    assert check.formula1 is not None
    return check.formula1.strip('"').split(",")


def _excel_accepts(check: DataValidation, value: str) -> bool:
    """What Excel does with ``value`` typed in a cell under ``check``: a list rule with the
    stop style refuses any word not on it; a warning lets it through."""
    if check.type == "list" and check.showErrorMessage and check.errorStyle == "stop":
        return value in _list_words(check)
    return True


@pytest.mark.parametrize("kind", list(HEADERS))
def test_the_headers_are_the_importers_chinese_names_in_its_order(kind: str) -> None:
    assert list(HEADERS[kind]) == list(COLUMNS[kind])
    for column, header in HEADERS[kind].items():
        assert _header_name(header, kind) == column


def test_the_importer_reads_the_community_template_with_its_example_cleanly(
        tmp_path: Path) -> None:
    path = _save(tmp_path, template_workbook(COMMUNITY))
    imported = read_community(path, WEEK)
    assert imported.notes == []
    problem = imported.problem
    assert [v.id for v in problem.volunteers] == ["V001"]
    assert [n.id for n in problem.needs] == ["N001"]
    assert [m.id for m in problem.merchants] == ["M001"]
    need = problem.needs[0]
    assert need.priority.value == "red" and need.kind.value == "elderly"
    assert [d.value for d in need.days] == ["mon", "thu"]
    assert need.skills <= problem.volunteers[0].skills  # the example need can be covered


def test_the_importer_reads_the_charity_template_cleanly(tmp_path: Path) -> None:
    path = _save(tmp_path, template_workbook(CHARITY))
    imported = read_charity(path, WEEK)
    assert imported.notes == []
    assert [d.id for d in imported.problem.donations] == ["D001"]
    assert [r.id for r in imported.problem.requests] == ["R001"]


def test_the_sheets_are_named_in_chinese_with_a_title_above_the_header() -> None:
    book = openpyxl.load_workbook(io.BytesIO(template_workbook(COMMUNITY)))
    assert book.sheetnames == [SHEETS[k] for k in COMMUNITY]
    sheet = book["需求"]
    assert sheet.cell(HEADER_ROW, 1).value == "需求编号"
    assert "示例" in str(sheet.cell(1, 1).value)


def test_a_bad_priority_is_refused_by_the_drop_down_as_by_the_importer(
        tmp_path: Path) -> None:
    data = template_workbook(COMMUNITY)
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book["需求"]
    position = list(HEADERS["needs"]).index("priority") + 1
    letter = openpyxl.utils.get_column_letter(position)
    check = _check_at(sheet, f"{letter}{EXAMPLE_ROW + 5}")
    assert _list_words(check) == ["红", "黄", "蓝"]
    assert check.errorStyle == "stop" and check.showErrorMessage
    assert _excel_accepts(check, "红")
    assert not _excel_accepts(check, "紫")
    # The importer agrees: 紫 typed anyway (in LibreOffice, pasted) is an error naming the cell.
    sheet.cell(EXAMPLE_ROW, position, "紫")
    bad = tmp_path / "bad.xlsx"
    book.save(bad)
    with pytest.raises(InputError) as caught:
        read_community(bad, WEEK)
    [issue] = caught.value.issues
    assert (issue.row, issue.column, issue.value) == (EXAMPLE_ROW, "priority", "紫")


@pytest.mark.parametrize(("kind", "column"), [
    ("needs", "priority"), ("needs", "kind"), ("needs", "days"), ("needs", "skills"),
    ("needs", "service"), ("volunteers", "skills"), ("merchants", "services"),
    ("requests", "priority")])
def test_every_word_a_drop_down_offers_is_accepted_by_the_importer(
        tmp_path: Path, kind: str, column: str) -> None:
    kinds = CHARITY if kind in CHARITY else COMMUNITY
    vocab = Vocabulary(skills=["first_aid", "meal_delivery"], services=["home_visit"],
                       merchant_services=["meal"])
    book = openpyxl.load_workbook(io.BytesIO(template_workbook(kinds, vocab)))
    sheet = book[SHEETS[kind]]
    position = list(HEADERS[kind]).index(column) + 1
    letter = openpyxl.utils.get_column_letter(position)
    words = _list_words(_check_at(sheet, f"{letter}{EXAMPLE_ROW}"))
    assert words
    for word in words:
        sheet.cell(EXAMPLE_ROW, position, word)
        if column == "skills" and kind == "volunteers":  # the example need asks for one
            sheet.cell(EXAMPLE_ROW, position, f"{word}；first_aid；meal_delivery")
        path = tmp_path / f"{kind}-{column}.xlsx"
        book.save(path)
        reader = read_charity if kinds == CHARITY else read_community
        reader(path, WEEK)  # raises on a word it does not accept


def test_the_drop_downs_offer_the_communitys_own_words() -> None:
    vocab = Vocabulary(skills=["sign_language", "first_aid"], merchant_services=["massage"])
    book = openpyxl.load_workbook(io.BytesIO(template_workbook(COMMUNITY, vocab)))
    sheet = book["志愿者"]
    letter = openpyxl.utils.get_column_letter(list(HEADERS["volunteers"]).index("skills") + 1)
    check = _check_at(sheet, f"{letter}{EXAMPLE_ROW}")
    assert _list_words(check) == ["first_aid", "sign_language"]
    assert check.errorStyle == "warning"  # several skills in one cell, and new ones, go in
    assert sheet.cell(EXAMPLE_ROW, list(HEADERS["volunteers"]).index("skills") + 1).value \
        == "first_aid"


def test_a_long_list_is_cut_to_what_excel_holds_and_then_only_warns() -> None:
    many = [f"skill_number_{k:03d}" for k in range(60)]
    book = openpyxl.load_workbook(io.BytesIO(template_workbook(
        COMMUNITY, Vocabulary(skills=many))))
    sheet = book["需求"]
    letter = openpyxl.utils.get_column_letter(list(HEADERS["needs"]).index("skills") + 1)
    check = _check_at(sheet, f"{letter}{EXAMPLE_ROW}")
    assert check.formula1 is not None and len(check.formula1) <= 255
    assert 0 < len(_list_words(check)) < len(many)
    assert check.errorStyle == "warning"
