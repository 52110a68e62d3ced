"""What is within a resident's 15 minutes (便民服务圈): the resource list (资源清单).

A resource is a place a resident walks to: a partner merchant with its services, or a public
place taken from OpenStreetMap (clinics, pharmacies, schools, parks, bus stops ...). Each belongs
to one category of :data:`CATEGORIES`; :func:`category_label` gives its name for people
(Chinese first). OSM tags map to categories by :data:`OSM_TAGS`, the first matching rule of a
feature winning; merchants by the services they offer (:data:`MERCHANT_SERVICES`), and a merchant
whose services map to none of them is a 便民服务 (everyday services: a barber, a tailor).

OSM data are © OpenStreetMap contributors (ODbL 1.0): whatever lists or maps these places must
keep that attribution.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import osmium

from matcher.domain import Location, Merchant
from matcher.errors import NetworkError
from matcher.i18n import _

ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"


class Category(StrEnum):
    """The kinds of place a resident looks for; codes are stable (programs read them)."""

    CLINIC = "clinic"
    PHARMACY = "pharmacy"
    HOSPITAL = "hospital"
    SCHOOL = "school"
    KINDERGARTEN = "kindergarten"
    LIBRARY = "library"
    PARK = "park"
    MARKET = "market"
    SUPERMARKET = "supermarket"
    CANTEEN = "canteen"
    BUS_STOP = "bus_stop"
    SERVICES = "services"


CATEGORIES: tuple[Category, ...] = tuple(Category)


def category_label(category: Category) -> str:
    """The category's name for people, in the current language."""
    labels = {
        Category.CLINIC: _("Clinic"),
        Category.PHARMACY: _("Pharmacy"),
        Category.HOSPITAL: _("Hospital"),
        Category.SCHOOL: _("School"),
        Category.KINDERGARTEN: _("Kindergarten"),
        Category.LIBRARY: _("Library"),
        Category.PARK: _("Park"),
        Category.MARKET: _("Market"),
        Category.SUPERMARKET: _("Supermarket"),
        Category.CANTEEN: _("Community canteen"),
        Category.BUS_STOP: _("Bus stop"),
        Category.SERVICES: _("Everyday services"),
    }
    return labels[category]


# (key, values, category): a feature takes the category of the first rule its tags match.
# Hospitals before clinics (a hospital often also carries healthcare=*); a bus stop is a node
# tagged highway=bus_stop, or a public-transport platform tagged bus=yes. Mappers in China tag
# a 便利店 as shop=convenience and a 菜店 as shop=greengrocer; residents shop at both.
OSM_TAGS: tuple[tuple[str, frozenset[str], Category], ...] = (
    ("amenity", frozenset({"hospital"}), Category.HOSPITAL),
    ("healthcare", frozenset({"hospital"}), Category.HOSPITAL),
    ("amenity", frozenset({"clinic", "doctors"}), Category.CLINIC),
    ("healthcare", frozenset({"clinic", "doctor", "centre"}), Category.CLINIC),
    ("amenity", frozenset({"pharmacy"}), Category.PHARMACY),
    ("healthcare", frozenset({"pharmacy"}), Category.PHARMACY),
    ("shop", frozenset({"chemist"}), Category.PHARMACY),
    ("amenity", frozenset({"kindergarten", "childcare"}), Category.KINDERGARTEN),
    ("amenity", frozenset({"school"}), Category.SCHOOL),
    ("amenity", frozenset({"library"}), Category.LIBRARY),
    ("leisure", frozenset({"park"}), Category.PARK),
    ("amenity", frozenset({"marketplace"}), Category.MARKET),
    ("shop", frozenset({"greengrocer"}), Category.MARKET),
    ("shop", frozenset({"supermarket", "convenience"}), Category.SUPERMARKET),
    ("amenity", frozenset({"canteen", "food_court"}), Category.CANTEEN),
    ("highway", frozenset({"bus_stop"}), Category.BUS_STOP),
    ("shop", frozenset({"hairdresser", "laundry", "dry_cleaning", "tailor", "shoes_repair",
                        "shoe_repair", "key_cutter"}), Category.SERVICES),
    ("amenity", frozenset({"post_office"}), Category.SERVICES),
    ("craft", frozenset({"tailor", "shoemaker", "key_cutter"}), Category.SERVICES),
)

# In China a 食堂 (canteen: staff, school or community) is usually mapped as a restaurant;
# its name says what it is.
CANTEEN_NAMES = ("食堂",)
_EATERIES = frozenset({"restaurant", "fast_food"})

# Merchant services (needs.csv ``merchant_service`` words) that make a merchant a place of a
# public category.
MERCHANT_SERVICES: dict[str, Category] = {
    "meal": Category.CANTEEN,
    "medicine": Category.PHARMACY,
    "groceries": Category.SUPERMARKET,
    "goods": Category.SUPERMARKET,
}


def osm_category(tags: dict[str, str]) -> Category | None:
    """The category of an OSM feature with these tags, or None when it is none of ours."""
    for key, values, category in OSM_TAGS:
        if tags.get(key) in values:
            return category
    if tags.get("amenity") in _EATERIES and any(
            word in tags.get(key, "") for key in ("name", "name:zh") for word in CANTEEN_NAMES):
        return Category.CANTEEN
    if tags.get("public_transport") == "platform" and tags.get("bus") == "yes":
        return Category.BUS_STOP
    return None


@dataclass(frozen=True)
class Resource:
    """One place of the resource list.

    ``source`` is ``osm`` (id ``osm:n<id>`` / ``osm:w<id>``), ``merchant`` (id ``merchant:<id>``)
    or ``coordinator`` (added by hand). ``services`` are a merchant's services (服务清单).
    """

    id: str
    category: Category
    name: str
    location: Location
    source: str = "osm"
    services: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        """Its name, or its category's name when OSM gave it none."""
        return self.name or category_label(self.category)


def merchant_resources(merchants: Iterable[Merchant]) -> list[Resource]:
    """Partner merchants as resources: one per category their services give (a shop offering
    meals and groceries is a canteen and a supermarket), or one 便民服务 when none does."""
    out: list[Resource] = []
    for m in merchants:
        out += partner_resources(m.id, m.name, m.location, m.services)
    return out


def partner_resources(ident: str, name: str, location: Location, services: Iterable[str]
                      ) -> list[Resource]:
    """One partner merchant as resources (see :func:`merchant_resources`)."""
    offered = tuple(sorted({s for s in services if s}))
    categories = sorted({MERCHANT_SERVICES[s] for s in offered if s in MERCHANT_SERVICES},
                        key=CATEGORIES.index) or [Category.SERVICES]
    return [Resource(f"merchant:{ident}" + ("" if len(categories) == 1 else f":{c.value}"),
                     c, name, location, "merchant", offered) for c in categories]


class _PoiHandler(osmium.SimpleHandler):
    """Collects tagged nodes and ways (a way's place is the mean of its nodes)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[Resource] = []

    def _add(self, ident: str, tags: dict[str, str], lat: float, lon: float) -> None:
        category = osm_category(tags)
        if category is None:
            return
        name = tags.get("name:zh") or tags.get("name") or ""
        self.found.append(Resource(ident, category, name.strip(), Location(lat, lon)))

    def node(self, n: osmium.osm.Node) -> None:
        if n.tags and n.location.valid():
            self._add(f"osm:n{n.id}", dict(n.tags), n.location.lat, n.location.lon)

    def way(self, w: osmium.osm.Way) -> None:
        if not w.tags:
            return
        tags = dict(w.tags)
        if osm_category(tags) is None:
            return
        points = [(r.location.lat, r.location.lon) for r in w.nodes if r.location.valid()]
        if points:
            self._add(f"osm:w{w.id}", tags, sum(p[0] for p in points) / len(points),
                      sum(p[1] for p in points) / len(points))


def read_osm_resources(path: Path | str) -> list[Resource]:
    """The public places of an OSM extract (``.osm`` or ``.osm.pbf``), sorted by id.

    An osmnx GraphML file holds streets only: it gives no places (an empty list).

    Raises
    ------
    NetworkError
        When the file is missing or not readable OSM data.
    """
    path = Path(path)
    if not path.exists():
        raise NetworkError(f"{path}: no such file")
    if path.name.lower().endswith(".graphml"):
        return []
    handler = _PoiHandler()
    try:
        handler.apply_file(str(path), locations=True)
    except RuntimeError as exc:
        raise NetworkError(f"{path.name}: not a readable OSM file ({exc})") from exc
    return sorted(handler.found, key=lambda r: r.id)


RESOURCE_COLUMNS = ("resource_id", "category", "name", "lat", "lon", "source", "services")


def write_resources_csv(resources: Sequence[Resource]) -> str:
    """The resource list as CSV text (UTF-8, ``;`` between services)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESOURCE_COLUMNS)
    for r in resources:
        writer.writerow([r.id, r.category.value, r.name, f"{r.location.lat:.6f}",
                         f"{r.location.lon:.6f}", r.source, ";".join(r.services)])
    return out.getvalue()


@dataclass(frozen=True)
class Edit:
    """A coordinator's entry: ``resource`` replaces the place of the same id (a correction) or
    is added (a new id); with ``hidden`` the place of that id is left out."""

    resource: Resource
    hidden: bool = False


def apply_edits(resources: Sequence[Resource], edits: Sequence[Edit]) -> list[Resource]:
    """The resource list after the coordinators' corrections, additions and hidings: a
    corrected place keeps its source (``osm``, ``merchant``); an added one is ``coordinator``."""
    by_id = {e.resource.id: e for e in edits}
    out: list[Resource] = []
    for r in resources:
        edit = by_id.pop(r.id, None)
        if edit is None:
            out.append(r)
        elif not edit.hidden:
            out.append(replace(edit.resource, source=r.source))
    out += [replace(e.resource, source="coordinator") for e in by_id.values() if not e.hidden]
    return out
