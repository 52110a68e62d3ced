"""Domain types validate their own invariants: ids, names, time windows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matcher.domain import (
    ID_MAX,
    Day,
    Location,
    Merchant,
    TimeWindow,
    Volunteer,
    Week,
    check_id,
    check_text,
)

HOME = Location(22.534, 114.017)


@pytest.mark.parametrize("ident", ["V1", "V0007", "香蜜湖-3.栋_7", "a" * ID_MAX, "1001"])
def test_plain_ids_are_accepted(ident: str) -> None:
    assert Volunteer(ident, "王芳", HOME).id == ident


@pytest.mark.parametrize("ident", ["", ".", "..", "V/../1", "V 1", "V\t1", "V;1", "V,1",
                                   "a" * (ID_MAX + 1), "V?x=1", "V#1", "V%2F1"])
def test_ids_that_break_urls_files_or_lists_are_refused(ident: str) -> None:
    with pytest.raises(ValueError, match="id"):
        Volunteer(ident, "王芳", HOME)


@given(st.text(max_size=40))
def test_an_accepted_id_is_safe_in_a_path(ident: str) -> None:
    try:
        check_id(ident)
    except ValueError:
        return
    assert ident not in {".", ".."} and not any(c in ident for c in "/\\?#% \t\n;,")
    assert 1 <= len(ident) <= ID_MAX


def test_names_are_bounded_and_free_of_control_characters() -> None:
    with pytest.raises(ValueError, match="at most 100"):
        Merchant("M1", "店" * 101, HOME, frozenset({"meal"}), 1, TimeWindow(600, 1200))
    with pytest.raises(ValueError, match="control characters"):
        check_text("王\r芳")
    assert check_text("王芳 (张家)") == "王芳 (张家)"


@pytest.mark.parametrize("text", ["9:30 - 20:30", "9:30-20:30", "09:30～20:30", "9：30-20:30",
                                  "09:30–20:30", "９:３０-２０:３０", "9:30至20:30",
                                  " 09:30-20:30 "])
def test_windows_typed_in_chinese_spreadsheets_are_normalised(text: str) -> None:
    assert str(TimeWindow.parse(text)) == "09:30-20:30"


@pytest.mark.parametrize(("text", "message"), [
    ("9.30-20.30", "type e.g. 09:30-20:30"), ("9-5", "type e.g. 09:30-20:30"),
    ("24:00-24:30", "24:30 is not a time of day"), ("22:00-02:00", "cannot cross midnight"),
    ("10:00-10:00", "ends before it starts"), ("09:60-10:00", "09:60 is not a time of day"),
])
def test_other_window_shapes_are_refused_with_what_to_type(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeWindow.parse(text)


@given(st.text(max_size=20))
def test_a_parsed_window_reads_back_as_itself(text: str) -> None:
    try:
        window = TimeWindow.parse(text)
    except ValueError:
        return
    assert TimeWindow.parse(str(window)) == window


def _refused(build: Callable[[], object], words: str) -> None:
    with pytest.raises((ValueError, TypeError), match=words):
        build()


def test_every_record_refuses_what_breaks_its_rules() -> None:
    """What the importer checks cell by cell, the types check themselves, so a record built
    from a database row or in code is as sound as one read from a spreadsheet."""
    from matcher.charity import Donation, Request
    from matcher.domain import Priority
    from tests.conftest import merchant, need, volunteer

    v = volunteer("V1")
    _refused(lambda: replace(v, skills=frozenset({"Meal Delivery"})), "not a code")
    _refused(lambda: replace(v, skills=frozenset({"a;b"})), "not a code")
    _refused(lambda: replace(v, skills="meal"), "frozenset")
    _refused(lambda: replace(v, max_hours_week=200), "max_hours_week")
    _refused(lambda: replace(v, max_hours_week=float("nan")), "max_hours_week")
    _refused(lambda: replace(v, availability=("mon 08:00-12:00",)), "Availability")
    _refused(lambda: Location(95, 114), "lat")
    _refused(lambda: Location(22.5, 200), "lon")
    n = need("N1", window="09:00-10:00", duration=30)
    _refused(lambda: replace(n, duration_min=90), "does not fit the window")
    _refused(lambda: replace(n, duration_min=0), "does not fit the window")
    _refused(lambda: replace(n, days=()), "no day")
    _refused(lambda: replace(n, days=(n.days[0], n.days[0])), "not distinct")
    _refused(lambda: replace(n, volunteers_needed=0), "at least 1")
    _refused(lambda: replace(n, merchant_service="hot meal"), "not a code")
    _refused(lambda: replace(n, service=""), "no service")
    _refused(lambda: replace(n, priority="purple"), "purple")
    m = merchant("M1")
    _refused(lambda: replace(m, services=frozenset()), "no service")
    _refused(lambda: replace(m, capacity_per_day=-1), "capacity_per_day")
    _refused(lambda: replace(m, open="10:00-20:00"), "TimeWindow")
    _refused(lambda: Donation("D1", "超市", "rice_5kg", 0, HOME), "quantity")
    _refused(lambda: Donation("D1", "超市", "rice 5kg", 1, HOME), "not a code")
    _refused(lambda: Request("R1", "李家", "rice_5kg", -2, HOME, Priority.RED), "quantity")
    assert Request("R1", "李家", "rice_5kg", 2, HOME, Priority.RED).quantity == 2


def test_a_days_number_is_its_place_in_the_week_and_its_iso_weekday() -> None:
    week = Week(2026, 48)
    for day in Day:
        assert day.number == list(Day).index(day) == week.date_of(day).isoweekday() - 1
