"""Coordinate systems: what is read in one system is written back in it, to the centimetre."""

from __future__ import annotations

from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.coords import CoordSystem, from_wgs84, to_wgs84

# Mainland cities (the conversions are defined for China; outside it GCJ-02 is WGS84).
LATS = st.floats(20.0, 45.0)
LONS = st.floats(100.0, 125.0)


@given(LATS, LONS, st.sampled_from(list(CoordSystem)))
@settings(max_examples=200, deadline=None)
def test_a_place_read_and_written_back_is_where_it_was(lat: float, lon: float,
                                                       system: CoordSystem) -> None:
    back = from_wgs84(*to_wgs84(lat, lon, system), system)
    assert geodesic((lat, lon), back).meters < 0.05
    again = to_wgs84(*from_wgs84(lat, lon, system), system)
    assert geodesic((lat, lon), again).meters < 0.05


def test_gcj02_is_hundreds_of_metres_from_wgs84_in_shenzhen() -> None:
    # The reason outputs must go back to the user's system: Amap would show them this far off.
    wgs = (22.53407, 114.01766)
    for system in (CoordSystem.GCJ02, CoordSystem.BD09):
        assert 300 < geodesic(wgs, from_wgs84(*wgs, system)).meters < 1500
    assert from_wgs84(*wgs, CoordSystem.WGS84) == wgs
