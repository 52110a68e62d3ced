"""The printable 15-minute service map: resources within the circle of the centre by category,
a legend in Chinese, the QR code of the lookup page, the OSM attribution."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import segno

from matcher.poster import poster_html
from matcher.resources import Category, Resource
from matcher.settings import Settings
from tests.conftest import CENTRE, offset
from tests.matcher.test_nearby import _resources, _street_graph

URL = "https://linli.example.org/nearby"


def test_the_poster_shows_what_is_within_reach_with_legend_and_qr() -> None:
    resources = [*_resources(), Resource("r-2", Category.CLINIC, "二号诊所", offset(300, 100))]
    page = poster_html(_street_graph(), resources, CENTRE, Settings(), "景田社区", URL)
    assert "景田社区 · 15分钟便民服务圈" in page
    assert "社康诊所</b> 步行可达 2 处，最近的 6 分钟" in page  # r-far (23 min) is left off
    assert "公交站</b> 步行可达 1 处，最近的 2 分钟" in page
    assert "公园" not in page  # no park: no legend line
    assert segno.make(URL, error="m").svg_inline(scale=5) in page
    assert "© OpenStreetMap contributors" in page and "4.5 公里" in page
    svg = re.search(r'<svg class="map".*?</svg>', page, re.S)
    assert svg is not None
    root = ET.fromstring(svg.group(0))
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert sorted(titles) == ["二号诊所", "公交站", "景田社康"]


def test_a_poster_with_nothing_within_reach_says_so() -> None:
    page = poster_html(_street_graph(), [], CENTRE, Settings(), "景田社区", URL)
    assert "步行范围内暂时还没有登记的服务点" in page
