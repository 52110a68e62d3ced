"""Write the corpus of broken spreadsheets (run from anywhere: ``python make_corpus.py``).

Each case is a folder holding only the files that differ from ``_base/`` (the test lays them over
it), or one ``book.xlsx``. The binary cases (encodings, workbooks) are why this is a script; the
files it writes are committed, and ``expected.csv`` says what each must produce.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent

VOLUNTEERS = [
    ["volunteer_id", "name", "lat", "lon", "skills", "availability", "max_hours_week"],
    ["V1", "王芳", "22.5341", "114.0177", "meal_delivery;escort_medical",
     "mon 08:00-12:00;wed 14:00-18:00", "4"],
    ["V2", "李强", "22.5350", "114.0190", "meal_delivery", "tue 09:00-17:00", "6"],
    ["V3", "陈静", "22.5330", "114.0160", "", "sat 08:00-12:00", ""],
]
NEEDS = [
    ["need_id", "kind", "service", "beneficiary", "lat", "lon", "days", "window", "duration_min",
     "skills", "volunteers_needed", "priority", "merchant_service"],
    ["N1", "elderly", "meal_delivery", "张奶奶", "22.5352", "114.0183", "mon;wed", "11:00-12:30",
     "30", "meal_delivery", "1", "red", "meal"],
    ["N2", "childcare", "homework_help", "小明", "22.5345", "114.0170", "tue", "16:00-18:00",
     "60", "", "1", "yellow", ""],
    ["N3", "elderly", "home_visit", "刘爷爷", "22.5338", "114.0165", "sat", "09:00-11:00", "45",
     "", "2", "blue", ""],
]
MERCHANTS = [
    ["merchant_id", "name", "lat", "lon", "services", "capacity_per_day", "open"],
    ["M1", "幸福食堂", "22.5338", "114.0169", "meal", "30", "10:00-20:00"],
]
DONATIONS = [
    ["donation_id", "donor", "category", "quantity", "lat", "lon", "expires"],
    ["D1", "华润万家", "rice_5kg", "40", "22.5336", "114.0191", "2027-03-31"],
    ["D2", "社区中心", "cooking_oil", "10", "22.5340", "114.0180", ""],
]
REQUESTS = [
    ["request_id", "beneficiary", "category", "quantity", "lat", "lon", "priority"],
    ["R1", "李伯伯家", "rice_5kg", "2", "22.5349", "114.0172", "yellow"],
    ["R2", "周阿姨家", "cooking_oil", "1", "22.5344", "114.0168", "red"],
]
BASE = {"volunteers": VOLUNTEERS, "needs": NEEDS, "merchants": MERCHANTS,
        "donations": DONATIONS, "requests": REQUESTS}


def csv_text(rows: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return f'"{value}"' if any(c in value for c in ',"\n') else value
    return "".join(",".join(cell(c) for c in row) + "\n" for row in rows)


def changed(rows: list[list[str]], row: int, column: str, value: str) -> list[list[str]]:
    """A copy of ``rows`` with one cell replaced (``row`` counts like a spreadsheet)."""
    out = [list(r) for r in rows]
    out[row - 1][rows[0].index(column)] = value
    return out


def text_case(case: str, files: dict[str, str | bytes]) -> None:
    folder = HERE / case
    folder.mkdir()
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)


def book_case(case: str, sheets: dict[str, list[list[object]]],
              merge: tuple[str, str] | None = None) -> None:
    folder = HERE / case
    folder.mkdir()
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        if merge and merge[0] == name:
            sheet.merge_cells(merge[1])
    book.save(folder / "book.xlsx")


def main() -> None:
    for old in HERE.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    base = HERE / "_base"
    base.mkdir()
    for name, rows in BASE.items():
        (base / f"{name}.csv").write_text(csv_text(rows), encoding="utf-8")

    # Encodings.
    needs_utf8 = csv_text(NEEDS).encode("utf-8")
    lines = needs_utf8.split(b"\n")
    lines[2] = csv_text([NEEDS[2]]).strip().encode("gbk")
    text_case("mixed-encoding", {"needs.csv": b"\n".join(lines)})
    text_case("gbk-file", {"needs.csv": csv_text(NEEDS).encode("gbk")})
    ascii_needs = [list(r) for r in NEEDS]
    for r in ascii_needs[1:]:
        r[3] = "Zhang"
    raw = csv_text(ascii_needs).encode().split(b"\n")
    raw[3] = raw[3].replace(b"Zhang", b"\xff\xfeZh")
    text_case("neither-utf8-nor-gbk", {"needs.csv": b"\n".join(raw)})
    text_case("utf8-bom", {"volunteers.csv": b"\xef\xbb\xbf" + csv_text(VOLUNTEERS).encode()})

    # Empty rows: Excel's trailing ",,,," rows and a blank line in the middle; the bad window
    # after the blank line must keep its spreadsheet row number.
    rows = [*NEEDS[:3], [""] * 13, changed(NEEDS, 4, "window", "25:00-26:00")[3],
            *[[""] * 13] * 25]
    text = csv_text(rows).replace("\n" + "," * 12 + "\n", "\n\n", 1)
    text_case("empty-rows", {"needs.csv": text})
    book_case("xlsx-blank-rows", {
        "volunteers": VOLUNTEERS,
        "needs": [*NEEDS[:2], [None] * 13, NEEDS[2],
                  changed(NEEDS, 4, "window", "25:00-26:00")[3], [None] * 13, [" "] * 13],
        "merchants": MERCHANTS})

    # Dates.
    book_case("charity-xlsx-date-cell", {
        "donations": [DONATIONS[0], [*DONATIONS[1][:6], dt.datetime(2027, 3, 31)],
                      [*DONATIONS[2][:6], None]],
        "requests": REQUESTS})
    text_case("charity-chinese-dates", {"donations.csv": csv_text(
        [*changed(DONATIONS, 2, "expires", "2027/3/31")[:2],
         changed(DONATIONS, 3, "expires", "2027年3月31日")[2]])})
    text_case("charity-bad-date", {"donations.csv": csv_text(
        changed(DONATIONS, 2, "expires", "31/03/2027"))})

    # Times.
    text_case("spaced-times", {
        "merchants.csv": csv_text(changed(MERCHANTS, 2, "open", "9:30 - 20:30")),
        "needs.csv": csv_text(changed(NEEDS, 2, "window", "11:00～12:30")),
        "volunteers.csv": csv_text(changed(VOLUNTEERS, 2, "availability",
                                           "mon 8：00 - 12:00；wed 14:00-18:00")),
    })
    text_case("bad-time", {"merchants.csv": csv_text(changed(MERCHANTS, 2, "open",
                                                             "9.30-20.30"))})
    text_case("time-after-24", {"needs.csv": csv_text(changed(NEEDS, 3, "window",
                                                              "24:00-24:30"))})
    text_case("window-over-midnight", {"needs.csv": csv_text(changed(NEEDS, 3, "window",
                                                                     "22:00-02:00"))})
    text_case("negative-duration", {"needs.csv": csv_text(changed(NEEDS, 3, "duration_min",
                                                                  "-30"))})

    # Places.
    sea = changed(changed(NEEDS, 3, "lat", "22.30"), 3, "lon", "114.30")
    text_case("need-in-the-sea", {"needs.csv": csv_text(sea)})
    far = changed(changed(MERCHANTS, 2, "lat", "22.5700"), 2, "lon", "114.0177")
    text_case("merchant-far-away", {"merchants.csv": csv_text(far)})
    swapped = changed(changed(VOLUNTEERS, 3, "lat", "114.0190"), 3, "lon", "22.5350")
    text_case("swapped-lat-lon", {"volunteers.csv": csv_text(swapped)})
    text_case("charity-zero-coordinates", {"requests.csv": csv_text(
        changed(changed(REQUESTS, 2, "lat", "0"), 2, "lon", "0"))})

    # Names people mistype.
    text_case("skill-typo", {"needs.csv": csv_text(changed(NEEDS, 2, "skills", "meal_delivry"))})
    text_case("service-typo", {"needs.csv": csv_text(changed(NEEDS, 2, "merchant_service",
                                                             "meals"))})

    # Headers.
    text_case("missing-header", {"volunteers.csv": csv_text(VOLUNTEERS[1:])})
    header = ["volunteer_id\u3000", " name ", "lat", "lon", "Skills", "availability ",
              "max_hours_week"]
    text_case("header-spaces", {"volunteers.csv": csv_text([header, *VOLUNTEERS[1:]])})
    text_case("title-above-header", {"volunteers.csv": csv_text(
        [["香蜜湖社区志愿者名单", *[""] * 6], [""] * 7,
         *changed(VOLUNTEERS, 4, "max_hours_week", "-1")])})
    text_case("header-column-twice", {"volunteers.csv": csv_text(
        [[*VOLUNTEERS[0][:6], "name"], *VOLUNTEERS[1:]])})
    text_case("missing-column", {"needs.csv": csv_text([r[:7] + r[8:] for r in NEEDS])})

    # Ids and text.
    text_case("duplicate-ids", {"needs.csv": csv_text([*NEEDS, NEEDS[1]])})
    text_case("id-with-slash", {"volunteers.csv": csv_text(
        changed(VOLUNTEERS, 3, "volunteer_id", "V/../1"))})
    text_case("id-dots", {"merchants.csv": csv_text(changed(MERCHANTS, 2, "merchant_id", ".."))})
    text_case("charity-id-too-long", {"requests.csv": csv_text(
        changed(REQUESTS, 3, "request_id", "R" + "0" * 29))})
    text_case("name-too-long", {"volunteers.csv": csv_text(
        changed(VOLUNTEERS, 2, "name", "王" * 150))})
    text_case("line-break-in-name", {"volunteers.csv": csv_text(
        changed(VOLUNTEERS, 4, "name", "陈\n静"))})
    text_case("value-in-brackets", {"needs.csv": csv_text(changed(NEEDS, 2, "priority",
                                                                  "[red]"))})

    # Separators.
    comma = csv_text(VOLUNTEERS).replace('"mon 08:00-12:00;wed 14:00-18:00"',
                                         "mon 08:00-12:00,wed 14:00-18:00")
    comma = comma.replace("mon 08:00-12:00;wed 14:00-18:00", "mon 08:00-12:00,wed 14:00-18:00")
    text_case("comma-between-items", {"volunteers.csv": comma})
    text_case("windows-without-semicolon", {"volunteers.csv": csv_text(changed(
        VOLUNTEERS, 2, "availability", "mon 08:00-12:00 wed 14:00-18:00"))})
    text_case("semicolons-between-columns", {"merchants.csv": "".join(
        ";".join(row) + "\n" for row in MERCHANTS)})
    text_case("full-width-semicolons", {"needs.csv": csv_text(changed(NEEDS, 2, "days",
                                                                      "mon；wed"))})

    # Workbooks.
    book_case("xlsx-extra-sheet", {"volunteers": VOLUNTEERS, "needs": NEEDS,
                                   "merchants": MERCHANTS, "Sheet2": [["notes"], ["call 王芳"]]})
    book_case("xlsx-bad-cell", {"volunteers": VOLUNTEERS,
                                "needs": changed(NEEDS, 3, "window", "25:00-26:00"),
                                "merchants": MERCHANTS})
    book_case("xlsx-merged-cells", {"volunteers": VOLUNTEERS, "needs": NEEDS,
                                    "merchants": MERCHANTS}, merge=("needs", "G3:G4"))
    numbers: list[list[object]] = [list(VOLUNTEERS[0])]
    for r in VOLUNTEERS[1:]:
        numbers.append([int(r[0][1:]) + 1000, r[1], float(r[2]), float(r[3]), *r[4:6],
                        float(r[6]) if r[6] else None])
    book_case("xlsx-numbers-as-ids", {"volunteers": numbers, "needs": NEEDS,
                                      "merchants": MERCHANTS})
    text_case("empty-file", {"merchants.csv": ""})
    book_case("xlsx-title-above-header", {
        "volunteers": [["香蜜湖社区志愿者名单"], [], *changed(VOLUNTEERS, 3, "lat", "lat?")],
        "needs": NEEDS, "merchants": MERCHANTS}, merge=("volunteers", "A1:G1"))
    book_case("xlsx-formula-never-calculated", {
        "volunteers": VOLUNTEERS, "needs": changed(NEEDS, 3, "duration_min", "=15*4"),
        "merchants": MERCHANTS})


if __name__ == "__main__":
    main()
