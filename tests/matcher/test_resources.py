"""The resource list: OSM tags to categories with Chinese names, merchants by their services,
public places read from a real OSM extract, and the CLI listing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from matcher import i18n
from matcher.cli import app
from matcher.resources import (
    CATEGORIES,
    Category,
    category_label,
    merchant_resources,
    osm_category,
    read_osm_resources,
    write_resources_csv,
)
from tests.conftest import NETWORK, merchant

# The shipped raw OSM export with public places (data/beijing-haidian/PROVENANCE.md).
HAIDIAN = NETWORK.parents[1] / "beijing-haidian" / "haidian_xueqing_rd.osm"

OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
  <node id="1" lat="22.5340" lon="114.0170"><tag k="amenity" v="pharmacy"/>
    <tag k="name" v="益民药店"/></node>
  <node id="2" lat="22.5341" lon="114.0171"><tag k="highway" v="bus_stop"/>
    <tag k="name" v="景田北"/></node>
  <node id="3" lat="22.5342" lon="114.0172"><tag k="amenity" v="bench"/></node>
  <node id="4" lat="22.5300" lon="114.0100"/>
  <node id="5" lat="22.5310" lon="114.0100"/>
  <node id="6" lat="22.5310" lon="114.0110"/>
  <way id="7"><nd ref="4"/><nd ref="5"/><nd ref="6"/><nd ref="4"/>
    <tag k="leisure" v="park"/><tag k="name" v="荔枝公园"/></way>
  <node id="8" lat="22.5350" lon="114.0180"><tag k="amenity" v="hospital"/>
    <tag k="healthcare" v="hospital"/></node>
</osm>
"""


@pytest.mark.parametrize(("tags", "category"), [
    ({"amenity": "clinic"}, Category.CLINIC), ({"healthcare": "centre"}, Category.CLINIC),
    ({"amenity": "hospital", "healthcare": "clinic"}, Category.HOSPITAL),
    ({"shop": "chemist"}, Category.PHARMACY), ({"amenity": "childcare"}, Category.KINDERGARTEN),
    ({"amenity": "school"}, Category.SCHOOL), ({"amenity": "library"}, Category.LIBRARY),
    ({"leisure": "park"}, Category.PARK), ({"amenity": "marketplace"}, Category.MARKET),
    ({"shop": "supermarket"}, Category.SUPERMARKET), ({"amenity": "canteen"}, Category.CANTEEN),
    ({"highway": "bus_stop"}, Category.BUS_STOP),
    ({"shop": "convenience"}, Category.SUPERMARKET), ({"shop": "greengrocer"}, Category.MARKET),
    ({"amenity": "food_court"}, Category.CANTEEN), ({"shop": "hairdresser"}, Category.SERVICES),
    ({"amenity": "post_office"}, Category.SERVICES),
    ({"amenity": "restaurant", "name": "石科院职工食堂"}, Category.CANTEEN),
    ({"amenity": "fast_food", "name:zh": "二食堂"}, Category.CANTEEN),
    ({"amenity": "restaurant", "name": "老北京炸酱面"}, None),
    ({"building": "yes", "name": "二食堂"}, None),
    ({"public_transport": "platform", "bus": "yes"}, Category.BUS_STOP),
    ({"public_transport": "platform", "train": "yes"}, None), ({"amenity": "bench"}, None),
    ({}, None),
])
def test_osm_tags_map_to_categories(tags: dict[str, str], category: Category | None) -> None:
    assert osm_category(tags) is category


def test_every_category_has_a_chinese_name_and_its_english_one() -> None:
    chinese = [category_label(c) for c in CATEGORIES]
    assert chinese[:3] == ["社康诊所", "药店", "医院"]
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in chinese)
    assert len(set(chinese)) == len(CATEGORIES) == 12
    with i18n.use("en"):
        assert category_label(Category.BUS_STOP) == "Bus stop"


def test_places_are_read_from_nodes_and_ways(tmp_path: Path) -> None:
    path = tmp_path / "pois.osm"
    path.write_text(OSM, encoding="utf-8")
    found = {r.id: r for r in read_osm_resources(path)}
    assert set(found) == {"osm:n1", "osm:n2", "osm:n8", "osm:w7"}
    assert found["osm:n1"].category is Category.PHARMACY and found["osm:n1"].name == "益民药店"
    assert found["osm:n8"].category is Category.HOSPITAL
    park = found["osm:w7"]
    assert park.category is Category.PARK and park.name == "荔枝公园"
    assert 22.5300 < park.location.lat < 22.5310 and 114.0100 < park.location.lon < 114.0110
    assert found["osm:n8"].label == "医院"  # no name: the category's


def test_a_graphml_network_has_no_places() -> None:
    assert read_osm_resources(NETWORK) == []


def test_the_shipped_extract_gives_places_of_eleven_categories() -> None:
    found = read_osm_resources(HAIDIAN)
    counts = {c.value: sum(r.category is c for r in found) for c in CATEGORIES}
    assert counts == {"clinic": 0, "pharmacy": 2, "hospital": 2, "school": 3, "kindergarten": 2,
                      "library": 2, "park": 9, "market": 3, "supermarket": 19, "canteen": 1,
                      "bus_stop": 24, "services": 6}
    by_name = {(r.name, r.category) for r in found}
    assert ("石科院职工食堂", Category.CANTEEN) in by_name  # tagged amenity=restaurant
    assert ("物美", Category.SUPERMARKET) in by_name and ("同仁堂", Category.PHARMACY) in by_name
    assert ("石板房", Category.BUS_STOP) in by_name
    assert all(39.99 < r.location.lat < 40.02 and 116.33 < r.location.lon < 116.37
               for r in found)
    assert "ODbL" in (HAIDIAN.parent / "PROVENANCE.md").read_text(encoding="utf-8")


def test_cli_reads_public_places_from_the_osm_network(tmp_path: Path) -> None:
    out = tmp_path / "resources.csv"
    result = CliRunner().invoke(app, ["resources", "--network", str(HAIDIAN), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "社区食堂" in result.output and "石科院职工食堂" in result.output
    assert "no public places" not in result.output
    rows = out.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 73
    assert "osm:w594889495,canteen,石科院职工食堂,39.998060,116.350132,osm," in rows
    near = CliRunner().invoke(app, ["nearby", "--lat", "39.99900", "--lon", "116.35050",
                                    "--network", str(HAIDIAN), "--category", "canteen"])
    assert near.exit_code == 0, near.output
    assert "石科院职工食堂" in near.output and "到达石科院职工食堂" in near.output.replace("\n", "")


def test_merchants_take_the_categories_of_their_services() -> None:
    shops = [merchant("M1", services="meal"), merchant("M2", services="meal;groceries"),
             merchant("M3", services="haircut")]
    found = {r.id: r for r in merchant_resources(shops)}
    assert found["merchant:M1"].category is Category.CANTEEN
    assert {found["merchant:M2:canteen"].category, found["merchant:M2:supermarket"].category} \
        == {Category.CANTEEN, Category.SUPERMARKET}
    assert found["merchant:M3"].category is Category.SERVICES
    assert found["merchant:M3"].services == ("haircut",)
    text = write_resources_csv(list(found.values()))
    assert text.splitlines()[0] == "resource_id,category,name,lat,lon,source,services"
    assert "merchant:M2:canteen,canteen,M2," in text


def test_cli_lists_resources_by_category(tmp_path: Path) -> None:
    path = tmp_path / "pois.osm"
    path.write_text(OSM, encoding="utf-8")
    out = tmp_path / "resources.csv"
    result = CliRunner().invoke(app, ["resources", "--network", str(NETWORK), "--osm", str(path),
                                      "--data", str(NETWORK.parents[1] / "sample"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "药店" in result.output and "OpenStreetMap" in result.output
    rows = out.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 4 + 24  # header, the OSM places, the sample's merchants
    bad = CliRunner().invoke(app, ["resources", "--network", str(tmp_path / "none.osm")])
    assert bad.exit_code == 2 and "no such" in bad.output


def test_cli_nearby_and_poster_on_the_sample(tmp_path: Path) -> None:
    sample = str(NETWORK.parents[1] / "sample")
    result = CliRunner().invoke(app, ["nearby", "--lat", "22.53407", "--lon", "114.01766",
                                      "--network", str(NETWORK), "--data", sample,
                                      "--category", "canteen"])
    assert result.exit_code == 0, result.output
    assert "社区食堂" in result.output and "到达" in result.output
    bad = CliRunner().invoke(app, ["nearby", "--lat", "22.5", "--lon", "114.0", "--network",
                                   str(NETWORK), "--category", "casino"])
    assert bad.exit_code == 2 and "casino" in bad.output
    out = tmp_path / "poster.html"
    made = CliRunner().invoke(app, ["poster", "--network", str(NETWORK), "--data", sample,
                                    "--url", "https://linli.example.org/n", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert "15分钟便民服务圈" in out.read_text(encoding="utf-8")


def test_coordinators_correct_add_and_hide() -> None:
    from matcher.domain import Location
    from matcher.resources import Edit, Resource, apply_edits

    here = Location(22.534, 114.017)
    listed = [Resource("osm:n1", Category.PHARMACY, "益民药店", here),
              Resource("osm:n2", Category.BUS_STOP, "景田北", here),
              Resource("merchant:M1", Category.CANTEEN, "幸福食堂", here, "merchant", ("meal",))]
    edits = [Edit(Resource("osm:n1", Category.CLINIC, "景田社康", here)),
             Edit(Resource("osm:n2", Category.BUS_STOP, "", here), hidden=True),
             Edit(Resource("R1", Category.LIBRARY, "社区书屋", here)),
             Edit(Resource("R2", Category.PARK, "已拆除", here), hidden=True)]
    out = {r.id: r for r in apply_edits(listed, edits)}
    assert set(out) == {"osm:n1", "merchant:M1", "R1"}
    assert out["osm:n1"].category is Category.CLINIC and out["osm:n1"].source == "osm"
    assert out["R1"].source == "coordinator" and out["merchant:M1"] == listed[2]
