"""The import template: an .xlsx a coordinator fills in, with Chinese sheet names and headers as
the importer reads them (:data:`matcher.spreadsheets.HEADER_ALIASES`), an example row on each
sheet, and Excel data validation (drop-downs for 红/黄/蓝, 周一...周日, 养老/托育/慈善 and the
community's own skills and services; number ranges; a hint on the cells with a format), so most
mistakes are caught while typing, before the importer sees them.

Every sheet starts with a one-line title (the importer skips a title above the header), the
header on row 2 and the example on row 3. Lists of skills and services are suggestions (Excel
warns about another word but accepts it: a community meets new ones); choices the importer
knows only a few of (priority, kind) refuse anything else.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import openpyxl
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from matcher.i18n import _

# The sheets in the importer's Chinese (matcher.spreadsheets.SHEET_ALIASES).
SHEETS = {"volunteers": "志愿者", "needs": "需求", "merchants": "商家", "donations": "捐赠",
          "requests": "求助"}
COMMUNITY = ("volunteers", "needs", "merchants")
CHARITY = ("donations", "requests")

# Each column's Chinese header, in the importer's column order (matcher.spreadsheets
# *_COLUMNS); tests/matcher/test_template.py checks that the importer reads each back.
HEADERS: dict[str, dict[str, str]] = {
    "volunteers": {"volunteer_id": "志愿者编号", "name": "姓名", "lat": "纬度", "lon": "经度",
                   "skills": "技能", "availability": "可服务时间",
                   "max_hours_week": "每周最多小时"},
    "needs": {"need_id": "需求编号", "kind": "类别", "service": "服务项目",
              "beneficiary": "服务对象", "lat": "纬度", "lon": "经度", "days": "服务日",
              "window": "时间段", "duration_min": "时长(分钟)", "skills": "技能",
              "volunteers_needed": "所需人数", "priority": "优先级",
              "merchant_service": "商家服务"},
    "merchants": {"merchant_id": "商家编号", "name": "商家名称", "lat": "纬度", "lon": "经度",
                  "services": "服务项目", "capacity_per_day": "每日容量",
                  "open": "营业时间"},
    "donations": {"donation_id": "捐赠编号", "donor": "捐赠人", "category": "物资类别",
                  "quantity": "数量", "lat": "纬度", "lon": "经度", "expires": "有效期至"},
    "requests": {"request_id": "求助编号", "beneficiary": "服务对象", "category": "物资类别",
                 "quantity": "数量", "lat": "纬度", "lon": "经度", "priority": "优先级"},
}

PRIORITIES = ("红", "黄", "蓝")
KINDS = ("养老", "托育", "慈善")
DAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")

# Words offered when the community has none of its own yet (the demo's words).
DEFAULT_SKILLS = ("meal_delivery", "escort_medical", "first_aid", "tutoring", "childcare",
                  "cleaning")
DEFAULT_SERVICES = ("meal_delivery", "home_visit", "escort_medical", "tutoring",
                    "school_pickup", "goods_delivery")
DEFAULT_MERCHANT_SERVICES = ("meal", "medicine", "groceries", "goods", "haircut")
DEFAULT_CATEGORIES = ("rice_5kg", "oil_5l", "milk_box", "clothes", "books")

# Excel keeps a drop-down's list in the rule itself, at most this many characters with the
# commas between; a longer list is cut (its rule then only warns, so other words still go in).
LIST_CHARS = 255
DATA_ROWS = 1000  # rows below the header that the rules cover
TITLE_ROW, HEADER_ROW, EXAMPLE_ROW = 1, 2, 3

# The example row, at the community centre of the demo (车公庙, Futian).
_LAT, _LON = "22.53407", "114.01766"


@dataclass(frozen=True)
class Vocabulary:
    """The words a community already uses, offered in the drop-downs (defaults when empty)."""

    skills: Sequence[str] = ()
    services: Sequence[str] = ()
    merchant_services: Sequence[str] = ()
    categories: Sequence[str] = ()

    def words(self, which: str) -> list[str]:
        defaults = {"skills": DEFAULT_SKILLS, "services": DEFAULT_SERVICES,
                    "merchant_services": DEFAULT_MERCHANT_SERVICES,
                    "categories": DEFAULT_CATEGORIES}[which]
        own: Sequence[str] = getattr(self, which)
        return sorted({w for w in own if w and "," not in w}) or list(defaults)


@dataclass
class _Rule:
    """One column's data validation: a list of words or a number range, and a hint."""

    kind: str  # list, whole, decimal, date, or none (a hint only)
    words: list[str] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    strict: bool = True
    hint: str = ""


def _list_formula(words: Sequence[str]) -> tuple[str, bool]:
    """A drop-down's formula and whether it holds every word (it is cut at LIST_CHARS)."""
    kept: list[str] = []
    for word in words:
        if len(",".join([*kept, word])) > LIST_CHARS - 2:
            return '"' + ",".join(kept) + '"', False
        kept.append(word)
    return '"' + ",".join(kept) + '"', True


def _rules(kind: str, vocab: Vocabulary) -> dict[str, _Rule]:
    coordinate = _("Decimal degrees (WGS84), e.g. {lat}").format(lat=_LAT)
    several = _("Several: put ；between them. Other words are allowed.")
    common = {"lat": _Rule("decimal", low=-90, high=90, hint=coordinate),
              "lon": _Rule("decimal", low=-180, high=180, hint=coordinate)}
    if kind == "volunteers":
        return common | {
            "skills": _Rule("list", vocab.words("skills"), strict=False, hint=several),
            "availability": _Rule("none", hint=_(
                "Day and hours, e.g. 周一 09:00-12:00；周三 14:00-17:00")),
            "max_hours_week": _Rule("decimal", low=0, high=80,
                                    hint=_("Hours a week at most (0 to 80); empty means 4"))}
    if kind == "needs":
        return common | {
            "kind": _Rule("list", list(KINDS), hint=_("养老, 托育 or 慈善")),
            "service": _Rule("list", vocab.words("services"), strict=False,
                             hint=_("The service, one word. Other words are allowed.")),
            "days": _Rule("list", list(DAYS), strict=False,
                          hint=_("Days of the week, e.g. 周一；周四")),
            "window": _Rule("none", hint=_("When it may start and must end, e.g. 09:00-11:00")),
            "duration_min": _Rule("whole", low=1, high=24 * 60,
                                  hint=_("Minutes one visit takes")),
            "skills": _Rule("list", vocab.words("skills"), strict=False, hint=several),
            "volunteers_needed": _Rule("whole", low=1, high=20,
                                       hint=_("How many volunteers go together (1 to 20)")),
            "priority": _Rule("list", list(PRIORITIES),
                              hint=_("红 urgent, 黄 health, 蓝 routine")),
            "merchant_service": _Rule("list", vocab.words("merchant_services"), strict=False,
                                      hint=_("Only when a partner merchant provides it"))}
    if kind == "merchants":
        return common | {
            "services": _Rule("list", vocab.words("merchant_services"), strict=False,
                              hint=several),
            "capacity_per_day": _Rule("whole", low=0, high=100_000,
                                      hint=_("How many orders a day at most")),
            "open": _Rule("none", hint=_("Opening hours, e.g. 10:00-20:00"))}
    if kind == "donations":
        return common | {
            "category": _Rule("list", vocab.words("categories"), strict=False,
                              hint=_("The kind of goods, one word. Other words are allowed.")),
            "quantity": _Rule("whole", low=1, high=10**7, hint=_("How many, a whole number")),
            "expires": _Rule("date", hint=_("Use by, e.g. 2026-12-31; empty if it keeps"))}
    if kind == "requests":
        return common | {
            "category": _Rule("list", vocab.words("categories"), strict=False,
                              hint=_("The kind of goods, one word. Other words are allowed.")),
            "quantity": _Rule("whole", low=1, high=10**7, hint=_("How many, a whole number")),
            "priority": _Rule("list", list(PRIORITIES),
                              hint=_("红 urgent, 黄 health, 蓝 routine"))}
    raise KeyError(kind)


def _example(kind: str, vocab: Vocabulary) -> dict[str, object]:
    """A row the importer accepts, showing how each cell is written."""
    skill = vocab.words("skills")[0]
    service = vocab.words("merchant_services")[0]
    category = vocab.words("categories")[0]
    return {
        "volunteers": {"volunteer_id": "V001", "name": _("Wang Fang (example, delete me)"),
                       "lat": float(_LAT), "lon": float(_LON), "skills": skill,
                       "availability": "周一 09:00-12:00；周四 14:00-17:00",
                       "max_hours_week": 4},
        "needs": {"need_id": "N001", "kind": "养老", "service": vocab.words("services")[0],
                  "beneficiary": _("Granny Li (example, delete me)"), "lat": float(_LAT),
                  "lon": float(_LON), "days": "周一；周四", "window": "09:00-11:00",
                  "duration_min": 45, "skills": skill, "volunteers_needed": 1,
                  "priority": "红", "merchant_service": ""},
        "merchants": {"merchant_id": "M001", "name": _("Community canteen (example, delete me)"),
                      "lat": float(_LAT), "lon": float(_LON), "services": service,
                      "capacity_per_day": 30, "open": "10:00-20:00"},
        "donations": {"donation_id": "D001", "donor": _("A caring company (example, delete me)"),
                      "category": category, "quantity": 10, "lat": float(_LAT),
                      "lon": float(_LON), "expires": dt.date(2026, 12, 31)},
        "requests": {"request_id": "R001", "beneficiary": _("The Li family (example, delete me)"),
                     "category": category, "quantity": 2, "lat": float(_LAT),
                     "lon": float(_LON), "priority": "红"},
    }[kind]


def _validation(rule: _Rule, column: str) -> DataValidation:
    """The Excel rule for one column: a refusal (stop) when strict, else a warning."""
    if rule.kind == "list":
        formula, whole = _list_formula(rule.words)
        check = DataValidation(type="list", formula1=formula, allow_blank=True)
        strict = rule.strict and whole
    elif rule.kind in ("whole", "decimal"):
        check = DataValidation(type=rule.kind, operator="between", formula1=f"{rule.low:g}",
                               formula2=f"{rule.high:g}", allow_blank=True)
        strict = rule.strict
    elif rule.kind == "date":
        check = DataValidation(type="date", operator="greaterThan", formula1="1",
                               allow_blank=True)
        strict = rule.strict
    else:
        check = DataValidation(allow_blank=True)  # any value: the hint only
        strict = False
    check.errorStyle = "stop" if strict else "warning"
    check.showErrorMessage = rule.kind != "none"
    check.error = (_("Choose from the list.") if rule.kind == "list"
                   else _("This value is not allowed here."))
    check.errorTitle = column
    check.prompt, check.promptTitle = rule.hint[:255], column[:32]
    check.showInputMessage = bool(rule.hint)
    return check


def _sheet(book: openpyxl.Workbook, kind: str, vocab: Vocabulary) -> Worksheet:
    sheet = book.create_sheet(SHEETS[kind])
    headers = HEADERS[kind]
    sheet.cell(TITLE_ROW, 1, _("{sheet}: row {row} is an example; type over it or delete it "
                               "before importing.").format(sheet=SHEETS[kind], row=EXAMPLE_ROW))
    sheet.cell(TITLE_ROW, 1).font = Font(bold=True, color="9C5700")
    example = _example(kind, vocab)
    rules = _rules(kind, vocab)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for position, (column, header) in enumerate(headers.items(), start=1):
        cell = sheet.cell(HEADER_ROW, position, header)
        cell.font, cell.fill = Font(bold=True), fill
        cell.alignment = Alignment(horizontal="center")
        value = example[column]
        sheet.cell(EXAMPLE_ROW, position, value if value != "" else None)
        if isinstance(value, dt.date):
            sheet.cell(EXAMPLE_ROW, position).number_format = "yyyy-mm-dd"
        letter = get_column_letter(position)
        sheet.column_dimensions[letter].width = max(10, 2 * len(header) + 4,
                                                    len(str(value)) + 2)
        rule = rules.get(column)
        if rule is not None:
            check = _validation(rule, header)
            sheet.add_data_validation(check)
            check.add(f"{letter}{EXAMPLE_ROW}:{letter}{HEADER_ROW + DATA_ROWS}")
    sheet.freeze_panes = sheet.cell(EXAMPLE_ROW, 1)
    return sheet


def template_workbook(kinds: Iterable[str], vocab: Vocabulary | None = None) -> bytes:
    """The template for ``kinds`` (keys of :data:`SHEETS`) as .xlsx bytes."""
    vocab = vocab or Vocabulary()
    book = openpyxl.Workbook()
    book.remove(book.active)
    for kind in kinds:
        _sheet(book, kind, vocab)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
