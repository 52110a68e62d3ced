"""The public monthly allocation report (信息公开): what was given, by category, to whom in
anonymous form.

Input is the published allocations of a month as two tables (pandas): the lines (units of a
donation for a request) and the requests left short. Households appear only as numbered codes
and places only as areas of about 1 km, so the report can be posted on a notice board or a
website. A household served in several weekly rounds is one household: what it asked for in the
month is the most it was ever waiting for (what was still open in a round plus what it had
already received).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

from matcher.i18n import _

LINE_COLUMNS = ("week", "request_id", "category", "priority", "quantity", "delivery",
                "area_lat", "area_lon")
SHORT_COLUMNS = ("week", "request_id", "category", "priority", "requested", "allocated",
                 "area_lat", "area_lon")
PRIORITY_ORDER = {"red": 0, "yellow": 1, "blue": 2}
TIMEBANK_MEASURES = ("issued", "drawn", "subsidised", "liability", "owed", "owed_to_others",
                     "owed_by_others")


@dataclass
class MonthReport:
    """The two public tables of one month."""

    month: str
    community: str
    households: pd.DataFrame
    categories: pd.DataFrame
    # The time bank's month: one row per measure (see :func:`timebank_table`); empty if none.
    timebank: pd.DataFrame = field(default_factory=pd.DataFrame)


def timebank_table(figures: dict[str, int], community: str) -> pd.DataFrame:
    """The time bank's public figures of a month, in minutes and hours: minutes issued for
    confirmed service, drawn by residents' requests, paid by the community's subsidy, and at
    the month's end the liability (minutes people hold: promised service not yet drawn), what
    members owe (overdrafts), and what the community owes other communities of the city and
    they owe it (hours that crossed, settled between the communities)."""
    words = {"issued": _("minutes issued for service confirmed this month"),
             "drawn": _("minutes drawn by residents' requests this month"),
             "subsidised": _("minutes the community paid for requests"),
             "liability": _("minutes held by people at the month's end (still to be served)"),
             "owed": _("minutes members owe at the month's end (overdraft)"),
             "owed_to_others": _("minutes this community owes other communities at the "
                                 "month's end (hours given to their residents)"),
             "owed_by_others": _("minutes other communities owe this community at the "
                                 "month's end (hours given to our residents)")}
    return pd.DataFrame({
        "community": community,
        "measure": list(TIMEBANK_MEASURES),
        "description": [words[m] for m in TIMEBANK_MEASURES],
        "minutes": [int(figures.get(m, 0)) for m in TIMEBANK_MEASURES],
        "hours": [round(int(figures.get(m, 0)) / 60, 1) for m in TIMEBANK_MEASURES]})


def _rounds(lines: pd.DataFrame, short: pd.DataFrame) -> pd.DataFrame:
    """One row per (request, week): units received and units that were open in that round."""
    got = (lines.assign(delivered=lines["quantity"].where(lines["delivery"], 0))
           .groupby(["request_id", "week"], as_index=False)
           .agg(category=("category", "first"), priority=("priority", "first"),
                area_lat=("area_lat", "first"), area_lon=("area_lon", "first"),
                allocated=("quantity", "sum"), delivered=("delivered", "sum")))
    open_ = short[list(SHORT_COLUMNS)].rename(columns={"allocated": "short_allocated"})
    rounds = got.merge(open_, on=["request_id", "week"], how="outer",
                       suffixes=("", "_short"))
    for column in ("category", "priority", "area_lat", "area_lon"):
        rounds[column] = rounds[column].fillna(rounds[f"{column}_short"])
    rounds["allocated"] = rounds["allocated"].fillna(0).astype(int)
    rounds["delivered"] = rounds["delivered"].fillna(0).astype(int)
    # A round without a short row filled the request completely: it asked for what it got.
    rounds["requested"] = rounds["requested"].fillna(rounds["allocated"]).astype(int)
    return rounds.sort_values(["request_id", "week"])


def month_report(lines: pd.DataFrame, short: pd.DataFrame, month: str,
                 community: str) -> MonthReport:
    """Build the month's tables from published allocation lines and short requests.

    Parameters
    ----------
    lines
        Columns :data:`LINE_COLUMNS`, one row per allocation line of the month's published runs.
    short
        Columns :data:`SHORT_COLUMNS`, one row per request a run left short.
    month
        ``YYYY-MM``, shown on the report.
    community
        The community's name, a column of both tables.
    """
    lines = pd.DataFrame(lines, columns=list(LINE_COLUMNS))
    short = pd.DataFrame(short, columns=list(SHORT_COLUMNS))
    rounds = _rounds(lines, short)
    rounds["before"] = rounds.groupby("request_id")["allocated"].cumsum() - rounds["allocated"]
    rounds["waiting"] = rounds["requested"] + rounds["before"]
    per_household = (rounds.groupby("request_id", as_index=False)
                     .agg(category=("category", "first"), priority=("priority", "first"),
                          area_lat=("area_lat", "first"), area_lon=("area_lon", "first"),
                          requested=("waiting", "max"), allocated=("allocated", "sum"),
                          delivered=("delivered", "sum")))
    per_household["rank"] = per_household["priority"].map(PRIORITY_ORDER)
    # Codes follow category, priority and area, never the request ids.
    per_household = per_household.sort_values(
        ["category", "rank", "area_lat", "area_lon", "allocated", "requested"],
        kind="stable").reset_index(drop=True)
    households = pd.DataFrame({
        "household": [f"H{n + 1:03d}" for n in range(len(per_household))],
        "community": community,
        "area": [f"{lat:.2f},{lon:.2f}" for lat, lon in
                 zip(per_household["area_lat"], per_household["area_lon"], strict=True)],
        "category": per_household["category"],
        "priority": per_household["priority"],
        "requested": per_household["requested"].astype(int),
        "allocated": per_household["allocated"].astype(int),
        "delivered": per_household["delivered"].astype(int),
    })
    households["fill_ratio"] = (households["allocated"] / households["requested"]).round(3)
    categories = (households.groupby(["category", "priority"], as_index=False)
                  .agg(households=("household", "count"), requested=("requested", "sum"),
                       allocated=("allocated", "sum"), delivered=("delivered", "sum"),
                       fully_served=("fill_ratio", lambda r: int((r >= 1).sum()))))
    categories["fill_ratio"] = (categories["allocated"] / categories["requested"]).round(3)
    categories.insert(0, "community", community)
    categories = (categories.assign(rank=categories["priority"].map(PRIORITY_ORDER))
                  .sort_values(["category", "rank"]).drop(columns="rank")
                  .reset_index(drop=True))
    return MonthReport(month, community, households, categories)


def report_html(report: MonthReport) -> str:
    """The report as a self-contained HTML page (no scripts, no external resources)."""
    title = f"{report.community} {report.month} 慈善物资分配公示 / allocation report"
    total = report.households["allocated"].sum() if len(report.households) else 0
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #999;padding:.2em .6em;text-align:right}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(report.households)} 户 households, {total} 件 units allocated. 住户以编号代替,
位置精确到约 1 公里 / households are numbered, places shown to about 1 km.</p>
<h2>按类别 / by category</h2>
{report.categories.to_html(index=False, border=0)}
<h2>按住户 / by household</h2>
{report.households.to_html(index=False, border=0)}
{_timebank_html(report)}</body></html>
"""


def _timebank_html(report: MonthReport) -> str:
    if report.timebank.empty:
        return ""
    title = _("Time bank")
    return (f"<h2>{html.escape(title)}</h2>\n"
            f"{report.timebank.to_html(index=False, border=0)}\n")
