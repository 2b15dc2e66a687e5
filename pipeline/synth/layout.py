"""Cross-section of the street: where the kerb, verge, pavement and property line lie on each side.

The ground renderer, the scenery generator and the traffic lanes all read positions from here so
that pedestrians walk on the drawn pavement and buildings stand on the drawn property line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.synth.style import RoadStyle, WorldStyle


@dataclass(frozen=True)
class Side:
    sign: float  # -1 left of the road, +1 right
    kerb: float  # |x| of the road edge
    pavement_in: float  # |x| where the pavement starts (after any grass verge)
    property_line: float  # |x| where the pavement ends: building fronts, fences, yards
    facing: int  # travel direction of the adjacent traffic lane (+1 towards +Z)

    def x(self, offset: float) -> float:
        """World x of a point ``offset`` metres out from the road centre on this side."""
        return self.sign * offset


def street_sides(road: RoadStyle) -> tuple[Side, Side]:
    lanes = road.lanes()
    out = []
    for i, sign in enumerate((-1.0, 1.0)):
        kerb = road.half_width
        pav_in = kerb + road.verge[i]
        facing = lanes[0][1] if sign < 0 else lanes[-1][1]
        out.append(Side(sign, kerb, pav_in, pav_in + road.pavement[i], facing))
    return out[0], out[1]


@dataclass(frozen=True)
class SideStreets:
    """Where side streets branch off: on each side every ``every`` metres from a per-side phase.
    The scenery leaves these stretches free of buildings and furniture; the ground draws them."""

    every: float  # 0 = no side streets
    width: float
    phase: tuple[float, float]  # left, right

    @classmethod
    def from_style(cls, seed: int, style: WorldStyle) -> SideStreets:
        every = style.scenery.side_street_every
        rng = np.random.default_rng([seed, 0x51DE])
        return cls(every, style.scenery.side_street_width, tuple(float(v) for v in rng.uniform(0, max(every, 1), 2)))

    def intervals(self, side: int, z0: float, z1: float) -> list[tuple[float, float]]:
        """(start, end) along the road of the side streets of ``side`` (0 left, 1 right) meeting [z0, z1)."""
        if self.every <= 0:
            return []
        p = self.phase[side]
        first = math.floor((z0 - self.width - p) / self.every)
        last = math.floor((z1 - p) / self.every)
        spans = [(p + k * self.every, p + k * self.every + self.width) for k in range(first, last + 1)]
        return [(a, b) for a, b in spans if b > z0 and a < z1]
