"""All tunable numbers of Linli in one place (``LINLI_`` environment variables).

Walking speed, detour factor and the circle radius come from SCHEMA.md; the solver's time limit and
the weights of the quality objective are product decisions documented in the README.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from matcher.params import DEFAULT_TIME_LIMIT_S


class Settings(BaseSettings):
    """Settings read from the environment (prefix ``LINLI_``) with SCHEMA.md defaults."""

    model_config = SettingsConfigDict(env_prefix="LINLI_", extra="ignore")

    walk_speed_m_per_min: float = Field(75.0, gt=0, description="4.5 km/h, in metres per minute")
    detour_factor: float = Field(1.3, ge=1.0, description="geodesic x factor without a network")
    circle_min: float = Field(15.0, gt=0, description="the service circle radius, in minutes")
    snap_warn_m: float = Field(
        300.0, gt=0, description="warn when a place is farther than this from any street node"
    )
    time_limit_s: float = Field(DEFAULT_TIME_LIMIT_S, gt=0, description="default solver time "
                                "limit, seconds (deterministic time unless wall_clock; the "
                                "default is SolveParams')")
    wall_clock: bool = Field(False, description="count the solver's limit in wall-clock "
                             "seconds (repeated runs may then differ)")
    workers: int = Field(0, ge=0, description="CP-SAT workers; 0 = one per core with "
                         "wall_clock, else one")
    tiles: Literal["none", "osm", "tianditu", "amap"] = Field(
        "none", description="map tiles under map.html: none (the street network alone, "
        "works offline), osm, tianditu (needs tianditu_key) or amap (GCJ-02)")
    tianditu_key: str = Field("", description="the Tianditu (天地图) browser key, for tiles")


    @property
    def circle_straight_m(self) -> float:
        """The circle as a straight-line radius (metres) without a network: ~865 m."""
        return self.circle_min * self.walk_speed_m_per_min / self.detour_factor


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return Settings()
