"""The community's 15-minute service map (便民服务圈海报): one printable page (A3 portrait) with
the streets within the circle of the community centre, the resources on them coloured by
category, a legend with how many of each lie within reach and the nearest one's minutes, and the
QR code of the lookup page so a resident can ask from where she stands.

It is one self-contained HTML file (inline SVG, no scripts, no tiles fetched): it prints the
same anywhere and can be put on a notice board or sent in a chat group.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import segno
from scipy.sparse.csgraph import dijkstra

from matcher.domain import Location
from matcher.i18n import _
from matcher.resources import ATTRIBUTION, CATEGORIES, Category, Resource, category_label
from matcher.settings import Settings
from matcher.travel import WalkingNetwork, _local_xy

# One colour per category, distinguishable in print (Tableau 10 and two more).
COLOURS: dict[Category, str] = {
    Category.CLINIC: "#e15759", Category.PHARMACY: "#ff9da7", Category.HOSPITAL: "#b07aa1",
    Category.SCHOOL: "#4e79a7", Category.KINDERGARTEN: "#76b7b2", Category.LIBRARY: "#9c755f",
    Category.PARK: "#59a14f", Category.MARKET: "#edc948", Category.SUPERMARKET: "#f28e2b",
    Category.CANTEEN: "#d37295", Category.BUS_STOP: "#17becf", Category.SERVICES: "#7f7f7f",
}
MAP_PX = 1000  # the map's side in SVG units


def poster_html(network: WalkingNetwork, resources: Sequence[Resource], centre: Location,
                settings: Settings, community: str, lookup_url: str) -> str:
    """The poster as an HTML page.

    Parameters
    ----------
    network, settings
        The streets and the circle (walking speed, minutes).
    resources
        Every resource; those beyond the circle of ``centre`` are left off.
    centre
        The community centre (社区党群服务中心) the circle is drawn around.
    community
        Its name, for the title.
    lookup_url
        The page of ``GET /v1/nearby`` the QR code opens.
    """
    cutoff = settings.circle_min * settings.walk_speed_m_per_min
    start, lead = network.snap([centre])
    dist = dijkstra(network.csr, directed=False, indices=int(start[0]),
                    limit=max(cutoff - float(lead[0]), 0.0)) + float(lead[0])
    inside = np.isfinite(dist)
    minutes: list[tuple[Resource, float]] = []
    if resources:
        nodes, access = network.snap([r.location for r in resources])
        total = dist[nodes] + access
        minutes = [(r, float(t) / settings.walk_speed_m_per_min)
                   for r, t in zip(resources, total, strict=True) if t <= cutoff]
    xy = _local_xy(network.lat, network.lon, centre.lat, centre.lon)
    span = max(float(np.abs(xy[inside]).max()) if inside.any() else 0.0, 100.0) * 1.08

    def px(x: float, y: float) -> tuple[float, float]:
        return (MAP_PX / 2 + x / span * MAP_PX / 2, MAP_PX / 2 - y / span * MAP_PX / 2)

    lines: list[str] = []
    index = {n: i for i, n in enumerate(network.nodes)}
    for a, b in network.graph.edges():
        i, j = index[a], index[b]
        if inside[i] or inside[j]:
            (x1, y1), (x2, y2) = px(*xy[i]), px(*xy[j])
            colour = "#555" if inside[i] and inside[j] else "#ccc"
            lines.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                         f'stroke="{colour}" stroke-width="1.6"/>')
    marks: list[str] = []
    for r, _minutes in minutes:
        rx, ry = _local_xy(np.array([r.location.lat]), np.array([r.location.lon]),
                           centre.lat, centre.lon)[0]
        x, y = px(float(rx), float(ry))
        marks.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="{COLOURS[r.category]}" '
                     f'stroke="#fff" stroke-width="2"><title>{html.escape(r.label)}</title>'
                     f'</circle>')
    cx, cy = px(0.0, 0.0)
    marks.append(f'<rect x="{cx - 10:.1f}" y="{cy - 10:.1f}" width="20" height="20" '
                 f'fill="#c00" stroke="#fff" stroke-width="2"/>')
    legend: list[str] = []
    for category in CATEGORIES:
        mine = sorted(m for r, m in minutes if r.category is category)
        if not mine:
            continue
        legend.append(
            f'<li><span class="dot" style="background:{COLOURS[category]}"></span>'
            f'<b>{html.escape(category_label(category))}</b> '
            + html.escape(_("{n} within reach, the nearest {minutes} min away").format(
                n=len(mine), minutes=math.ceil(mine[0]))) + "</li>")
    if not legend:
        legend.append("<li>" + html.escape(_("No resources within reach yet")) + "</li>")
    qr = segno.make(lookup_url, error="m").svg_inline(scale=5)
    title = _("{community}: what is within a {minutes}-minute walk").format(
        community=community, minutes=f"{settings.circle_min:g}")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
@page {{ size: A3 portrait; margin: 12mm; }}
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
       margin: 0; color: #222; }}
h1 {{ font-size: 30pt; margin: 0 0 4mm; }}
svg.map {{ width: 100%; height: auto; border: 1px solid #999; }}
.below {{ display: flex; justify-content: space-between; gap: 8mm; margin-top: 5mm; }}
ul {{ list-style: none; padding: 0; margin: 0; columns: 2; font-size: 13pt; }}
li {{ margin: 0 0 2mm; break-inside: avoid; }}
.dot {{ display: inline-block; width: 12pt; height: 12pt; border-radius: 50%;
        vertical-align: middle; margin-right: 2mm; }}
.qr {{ text-align: center; font-size: 12pt; }}
.small {{ font-size: 9pt; color: #666; margin-top: 4mm; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<svg class="map" viewBox="0 0 {MAP_PX} {MAP_PX}" xmlns="http://www.w3.org/2000/svg">
{"".join(lines)}
{"".join(marks)}
</svg>
<div class="below">
<div><ul>
<li><span class="dot" style="background:#c00;border-radius:0"></span><b>{
    html.escape(_("Community centre"))}</b></li>
{"".join(legend)}</ul></div>
<div class="qr">{qr}<div>{html.escape(_("Scan to see what is near you, with the way there"))}
</div></div>
</div>
<p class="small">{html.escape(_("Walking times on the real streets at {speed} km/h.").format(
    speed=f"{settings.walk_speed_m_per_min * 60 / 1000:g}"))}
{html.escape(_("Map data"))} {html.escape(ATTRIBUTION)}</p>
</body></html>
"""
