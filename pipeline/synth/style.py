"""Everything a seed decides about a world, drawn once from one RNG stream.

Keeping every per-seed choice in one frozen record means the renderers below never touch a random
generator for layout or appearance, which is what makes ``render(i)`` a pure function of
``(seed, size, i)``. Colours are BGR tuples of floats (the image order used everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Color = tuple[float, float, float]


def rgb(r: float, g: float, b: float) -> Color:
    """Palette entries are written as RGB for readability; images are BGR."""
    return (float(b), float(g), float(r))


def jitter(rng: np.random.Generator, color: Color, amount: float, lo: float = 0.0, hi: float = 255.0) -> Color:
    """A colour near ``color``: a shared brightness change plus a smaller per-channel tint."""
    c = np.asarray(color) * rng.uniform(1 - amount, 1 + amount) + rng.normal(0, 60 * amount, 3)
    return tuple(float(v) for v in np.clip(c, lo, hi))


def pick(rng: np.random.Generator, options: list) -> object:
    return options[int(rng.integers(len(options)))]


# Realistic-ish base palettes (RGB); jittered per seed/object so no class has one fixed colour.
SKY_CLEAR = [(rgb(70, 130, 205), rgb(185, 210, 230)), (rgb(95, 150, 215), rgb(210, 225, 235)),
             (rgb(120, 160, 200), rgb(225, 225, 220))]
SKY_OVERCAST = [(rgb(150, 155, 165), rgb(205, 208, 212)), (rgb(175, 178, 182), rgb(225, 226, 228)),
                (rgb(130, 135, 145), rgb(180, 182, 188))]
SKY_DUSK = [(rgb(70, 90, 150), rgb(235, 175, 130)), (rgb(90, 95, 130), rgb(220, 190, 160))]
ASPHALT = [rgb(95, 95, 100), rgb(80, 80, 84), rgb(115, 112, 110), rgb(70, 72, 78), rgb(125, 122, 118)]
PAVEMENT = [rgb(165, 160, 150), rgb(140, 138, 135), rgb(175, 150, 135), rgb(150, 140, 120), rgb(120, 118, 118),
            rgb(185, 180, 170)]
GRASS = [rgb(85, 120, 55), rgb(105, 130, 65), rgb(120, 125, 75), rgb(70, 100, 50)]
BUILDING = [rgb(170, 95, 75), rgb(150, 80, 65), rgb(200, 190, 170), rgb(225, 215, 195), rgb(160, 160, 160),
            rgb(120, 115, 110), rgb(190, 170, 130), rgb(215, 200, 160), rgb(140, 110, 90), rgb(230, 230, 225),
            rgb(110, 100, 95), rgb(185, 125, 95), rgb(150, 165, 170)]
GLASS = [rgb(40, 50, 60), rgb(70, 85, 100), rgb(110, 130, 150), rgb(30, 30, 35), rgb(140, 160, 175),
         rgb(90, 80, 70)]
CAR = [rgb(230, 230, 230), rgb(240, 240, 240), rgb(170, 172, 178), rgb(150, 150, 155), rgb(30, 30, 32),
       rgb(45, 45, 50), rgb(90, 92, 95), rgb(25, 45, 95), rgb(50, 70, 120), rgb(150, 25, 30), rgb(120, 20, 25),
       rgb(30, 80, 50), rgb(200, 170, 60), rgb(210, 110, 30), rgb(120, 100, 80), rgb(60, 110, 160)]
CLOTHES = [rgb(30, 30, 35), rgb(50, 55, 70), rgb(40, 60, 110), rgb(120, 30, 30), rgb(200, 200, 195),
           rgb(90, 90, 90), rgb(150, 120, 90), rgb(60, 90, 60), rgb(170, 60, 90), rgb(220, 180, 60),
           rgb(80, 50, 40), rgb(110, 140, 180)]
SKIN = [rgb(235, 200, 170), rgb(200, 150, 120), rgb(150, 100, 70), rgb(95, 65, 45), rgb(225, 185, 150)]
FOLIAGE = [rgb(55, 90, 40), rgb(70, 110, 45), rgb(45, 75, 35), rgb(90, 115, 50), rgb(110, 120, 60),
           rgb(140, 110, 50)]
FENCE = [rgb(40, 45, 45), rgb(130, 95, 65), rgb(170, 160, 140), rgb(90, 95, 100), rgb(60, 80, 60)]


@dataclass(frozen=True)
class CameraStyle:
    moving: bool  # dashcam driving along the road, else a static pole camera
    x: float  # lateral position, metres (road centre = 0)
    height: float
    pitch_deg: float  # negative looks down
    yaw_deg: float  # positive looks right
    hfov_deg: float
    speed: float  # m/s along +Z
    shake_px: float  # amplitude of the integer-pixel jitter
    shake_hz: float


@dataclass(frozen=True)
class RoadStyle:
    lanes_fwd: int  # lanes driving towards +Z
    lanes_back: int
    lane_width: float
    left_hand: bool  # forward lanes on the left (UK, where CamVid was filmed)
    bike_lane: float  # width of a bike lane at each road edge, 0 for none
    parking: float  # width of a parking strip at each road edge (outside the bike lane), 0 for none
    pavement: tuple[float, float]  # widths left, right
    verge: tuple[float, float]  # grass strip between kerb and pavement (Tree class), left, right
    asphalt: Color
    pavement_color: Color
    kerb_color: Color
    grass: Color
    marking: Color
    centre_marking: Color
    dash: tuple[float, float]  # dash length, gap
    slab: float  # paving slab size, metres
    yard_grass: bool  # ground behind the pavement: grass (Tree) or more pavement

    @property
    def lanes_edge(self) -> float:
        """|x| of the outer edge of the outermost traffic lane."""
        return (self.lanes_fwd + self.lanes_back) * self.lane_width / 2

    @property
    def half_width(self) -> float:
        """|x| of the kerb: traffic lanes, then bike lane, then parking."""
        return self.lanes_edge + self.bike_lane + self.parking

    def lanes(self) -> list[tuple[float, int]]:
        """(centre x, direction) of each traffic lane from left to right; direction +1 drives to +Z."""
        dirs = [1] * self.lanes_fwd + [-1] * self.lanes_back
        if not self.left_hand:
            dirs.reverse()
        x0 = -self.lanes_edge
        return [(x0 + (i + 0.5) * self.lane_width, d) for i, d in enumerate(dirs)]


@dataclass(frozen=True)
class SceneryStyle:
    height: tuple[float, float]  # building height range
    setback_p: float  # probability that a building stands back behind a yard
    gap_p: float  # probability of a gap (alley/lot) after a building
    palette: tuple[Color, ...]
    tree_spacing: float  # 0 = no street trees
    lamp_spacing: float
    sign_p: float  # signs per 40 m block, expected
    fence_p: float  # probability a yard is fenced
    hedge_p: float
    side_street_every: float  # metres between side streets on each side, 0 = none
    side_street_width: float


@dataclass(frozen=True)
class TrafficStyle:
    car_gap: float  # mean free gap between cars in a lane, metres
    ped_gap: float
    bike_gap: float
    car_speed: float  # typical traffic speed, m/s


@dataclass(frozen=True)
class LookStyle:
    sky_top: Color
    sky_horizon: Color
    clouds: float  # 0..1 cloud contrast
    haze: Color
    fog_m: float  # distance at which 63 % of a colour is haze
    sun_right: bool  # which side of the street is lit
    sun_strength: float  # 0 (overcast) .. 1: contrast between lit and shaded faces
    gain: Color  # white balance / exposure per channel
    gamma: float
    contrast: float
    noise: float  # sensor noise sigma in grey levels
    blur: float  # Gaussian sigma in pixels, 0 = sharp
    vignette: float


@dataclass(frozen=True)
class WorldStyle:
    camera: CameraStyle
    road: RoadStyle
    scenery: SceneryStyle
    traffic: TrafficStyle
    look: LookStyle

    @classmethod
    def from_seed(cls, seed: int) -> WorldStyle:
        rng = np.random.default_rng([seed, 0x57A1])
        road = _road(rng)
        return cls(camera=_camera(rng, road), road=road, scenery=_scenery(rng), traffic=_traffic(rng),
                   look=_look(rng))


def _road(rng: np.random.Generator) -> RoadStyle:
    one_way = rng.random() < 0.15
    lanes_fwd = int(rng.choice([1, 1, 2, 2, 3]))
    lanes_back = 0 if one_way else int(rng.choice([1, 1, 2])) if lanes_fwd < 3 else 2
    asphalt = jitter(rng, pick(rng, ASPHALT), 0.12)
    pave = jitter(rng, pick(rng, PAVEMENT), 0.12)
    return RoadStyle(
        lanes_fwd=lanes_fwd, lanes_back=lanes_back, lane_width=float(rng.uniform(2.9, 3.7)),
        left_hand=bool(rng.random() < 0.5), bike_lane=float(rng.choice([0.0, 0.0, 1.5])),
        parking=float(rng.choice([0.0, 2.2])),
        pavement=(float(rng.uniform(2.2, 5.0)), float(rng.uniform(2.2, 5.0))),
        verge=tuple(float(v) for v in rng.choice([0.0, 0.0, 1.2, 2.0], 2)),
        asphalt=asphalt, pavement_color=pave,
        kerb_color=jitter(rng, rgb(175, 172, 165), 0.08),
        grass=jitter(rng, pick(rng, GRASS), 0.12),
        marking=jitter(rng, rgb(225, 225, 220), 0.05),
        centre_marking=pick(rng, [rgb(225, 225, 220), rgb(225, 190, 60)]),
        dash=(float(rng.uniform(2.0, 4.0)), float(rng.uniform(4.0, 9.0))),
        slab=float(rng.choice([0.4, 0.6, 0.9])), yard_grass=bool(rng.random() < 0.4))


def _camera(rng: np.random.Generator, road: RoadStyle) -> CameraStyle:
    moving = bool(rng.random() < 0.6)
    if moving:
        x = pick(rng, [x for x, d in road.lanes() if d > 0])
        return CameraStyle(moving=True, x=float(x), height=float(rng.uniform(1.2, 1.7)),
                           pitch_deg=float(rng.uniform(-4.0, 1.0)), yaw_deg=float(rng.uniform(-2.0, 2.0)),
                           hfov_deg=float(rng.uniform(55, 75)), speed=float(rng.uniform(5.0, 13.0)),
                           shake_px=float(rng.uniform(0.5, 2.5)), shake_hz=float(rng.uniform(1.5, 4.0)))
    side = 1.0 if rng.random() < 0.5 else -1.0
    x = side * (road.half_width + float(rng.uniform(0.3, 1.5)))
    return CameraStyle(moving=False, x=float(x), height=float(rng.uniform(3.0, 7.0)),
                       pitch_deg=float(rng.uniform(-16.0, -6.0)), yaw_deg=float(-side * rng.uniform(2.0, 12.0)),
                       hfov_deg=float(rng.uniform(55, 80)), speed=0.0,
                       shake_px=float(rng.uniform(0.0, 1.2)), shake_hz=float(rng.uniform(0.2, 0.8)))


def _scenery(rng: np.random.Generator) -> SceneryStyle:
    lo = float(rng.uniform(4.0, 10.0))
    palette_idx = rng.choice(len(BUILDING), size=int(rng.integers(3, 7)), replace=False)
    return SceneryStyle(
        height=(lo, lo + float(rng.uniform(4.0, 22.0))), setback_p=float(rng.uniform(0.0, 0.7)),
        gap_p=float(rng.uniform(0.0, 0.3)),
        palette=tuple(jitter(rng, BUILDING[i], 0.1) for i in palette_idx),
        tree_spacing=float(rng.choice([0.0, 8.0, 12.0, 18.0])), lamp_spacing=float(rng.uniform(18.0, 40.0)),
        sign_p=float(rng.uniform(0.3, 1.5)), fence_p=float(rng.uniform(0.3, 0.9)),
        hedge_p=float(rng.uniform(0.0, 0.5)),
        side_street_every=float(rng.uniform(90.0, 250.0)) if rng.random() < 0.55 else 0.0,
        side_street_width=float(rng.uniform(6.0, 10.0)))


def _traffic(rng: np.random.Generator) -> TrafficStyle:
    return TrafficStyle(car_gap=float(rng.uniform(10.0, 40.0)), ped_gap=float(rng.uniform(10.0, 45.0)),
                        bike_gap=float(rng.uniform(30.0, 120.0)), car_speed=float(rng.uniform(7.0, 14.0)))


def _look(rng: np.random.Generator) -> LookStyle:
    kind = rng.choice(["clear", "overcast", "dusk"], p=[0.45, 0.4, 0.15])
    top, horizon = pick(rng, {"clear": SKY_CLEAR, "overcast": SKY_OVERCAST, "dusk": SKY_DUSK}[kind])
    top, horizon = jitter(rng, top, 0.08), jitter(rng, horizon, 0.05)
    sun = {"clear": rng.uniform(0.5, 1.0), "overcast": rng.uniform(0.0, 0.25), "dusk": rng.uniform(0.2, 0.6)}[kind]
    exposure = rng.uniform(0.8, 1.15)
    tint = rng.normal(0, 0.04, 3) + ([0.0, 0.02, 0.08] if kind == "dusk" else 0.0)
    return LookStyle(
        sky_top=top, sky_horizon=horizon, clouds=float(rng.uniform(0.0, 0.6 if kind == "clear" else 1.0)),
        haze=horizon, fog_m=float(rng.uniform(150.0, 600.0)), sun_right=bool(rng.random() < 0.5),
        sun_strength=float(sun), gain=tuple(float(exposure * (1 + t)) for t in tint),
        gamma=float(rng.uniform(0.85, 1.15)), contrast=float(rng.uniform(0.85, 1.15)),
        noise=float(rng.uniform(1.0, 6.0)), blur=float(rng.choice([0.0, 0.5, 0.8, 1.1])),
        vignette=float(rng.uniform(0.0, 0.35)))
