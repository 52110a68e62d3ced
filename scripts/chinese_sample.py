"""Write the sample community as a Chinese coordinator keeps it: ``data/sample/社区示例.xlsx``.

The same people, needs and merchants as the English CSVs of ``data/sample/``, with Chinese
sheet names and headers, a title row above each header, 周一 ... 周日, 红/黄/蓝, 养老/托育/慈善,
full-width colons in times and ``；``/``、`` between items (what a Chinese keyboard types).
``tests/matcher/test_spreadsheets.py`` checks it imports to the same problem as the CSVs.

Run: ``python scripts/chinese_sample.py`` (again whenever the English CSVs change).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import openpyxl
import pandas as pd

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
DAYS = dict(zip(("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
                ("周一", "周二", "周三", "周四", "周五", "周六", "周日"), strict=True))
PRIORITIES = {"red": "红", "yellow": "黄", "blue": "蓝"}
KINDS = {"elderly": "养老", "childcare": "托育", "charity": "慈善"}
SHEETS = {
    "volunteers": ("志愿者", "福田示例社区 志愿者名单", {
        "volunteer_id": "编号", "name": "姓名", "lat": "纬度", "lon": "经度", "skills": "技能",
        "availability": "可服务时间", "max_hours_week": "每周最多小时"}),
    "needs": ("需求", "福田示例社区 本周需求", {
        "need_id": "需求编号", "kind": "类别", "service": "服务", "beneficiary": "服务对象",
        "lat": "纬度", "lon": "经度", "days": "星期", "window": "时间段",
        "duration_min": "时长（分钟）", "skills": "技能", "volunteers_needed": "所需人数",
        "priority": "优先级", "merchant_service": "商家服务"}),
    "merchants": ("商家", "福田示例社区 合作商家", {
        "merchant_id": "商家编号", "name": "名称", "lat": "纬度", "lon": "经度",
        "services": "服务", "capacity_per_day": "每日容量", "open": "营业时间"}),
}


def _time(text: str) -> str:
    return text.replace(":", "：")


def _cell(column: str, value: str) -> object:
    if not value:
        return None
    if column in {"lat", "lon"}:
        return float(value)
    if column in {"duration_min", "volunteers_needed", "capacity_per_day"}:
        return int(value)
    if column == "max_hours_week":
        number = float(value)
        return int(number) if number.is_integer() else number
    if column == "availability":
        return "；".join(f"{DAYS[day]} {_time(window)}"
                        for day, window in (item.split(" ", 1) for item in value.split(";")))
    if column == "days":
        return "、".join(DAYS[day] for day in value.split(";"))
    if column in {"window", "open"}:
        return _time(value)
    if column == "priority":
        return PRIORITIES[value]
    if column == "kind":
        return KINDS[value]
    if column in {"skills", "services"}:
        return re.sub(";", "；", value)
    return value


def write(folder: Path, out: Path) -> None:
    """The CSVs of ``folder`` as one Chinese workbook at ``out``."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, (title, heading, headers) in SHEETS.items():
        frame = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
        sheet = book.create_sheet(title)
        sheet.append([heading])
        sheet.append([headers[c] for c in frame.columns])
        for record in frame.to_dict("records"):
            sheet.append([_cell(str(c), str(v)) for c, v in record.items()])
    book.save(out)


if __name__ == "__main__":
    write(SAMPLE, Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE / "社区示例.xlsx")
