"""Coordinate systems of Chinese map apps and the conversion to WGS84.

Amap (高德), Tencent and Google China export GCJ-02 ("Mars coordinates"); Baidu exports BD-09. Their
offset from WGS84 is 300-700 m, most of a 15-minute circle, so the importer converts them. The
conversion is prcoords' iterative inverse (accurate to centimetres). Everything inside Linli is
WGS84 (the street network is); files written for people go back to the system they gave
(:func:`from_wgs84`, prcoords' exact forward formulas), so a place read and written again lands
where it was, within centimetres.
"""

from __future__ import annotations

from enum import StrEnum

import prcoords

# A generous box around the People's Republic (incl. Hainan, Xinjiang, Heilongjiang).
CHINA_LAT = (18.0, 54.0)
CHINA_LON = (73.0, 135.5)


class CoordSystem(StrEnum):
    """The coordinate system of imported ``lat``/``lon`` columns."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def to_wgs84(lat: float, lon: float, system: CoordSystem) -> tuple[float, float]:
    """Convert one point in ``system`` to WGS84 ``(lat, lon)``."""
    if system is CoordSystem.WGS84:
        return lat, lon
    point = prcoords.Coords(lat, lon)
    if system is CoordSystem.GCJ02:
        out = prcoords.gcj_wgs_bored(point)
    else:
        out = prcoords.bd_wgs_bored(point)
    return float(out.lat), float(out.lon)


def from_wgs84(lat: float, lon: float, system: CoordSystem) -> tuple[float, float]:
    """Convert one WGS84 point to ``system`` (the inverse of :func:`to_wgs84`)."""
    if system is CoordSystem.WGS84:
        return lat, lon
    point = prcoords.Coords(lat, lon)
    out = prcoords.wgs_gcj(point) if system is CoordSystem.GCJ02 else prcoords.wgs_bd(point)
    return float(out.lat), float(out.lon)


def in_china(lat: float, lon: float) -> bool:
    """Whether a point lies in the rough bounding box of China."""
    return CHINA_LAT[0] <= lat <= CHINA_LAT[1] and CHINA_LON[0] <= lon <= CHINA_LON[1]
