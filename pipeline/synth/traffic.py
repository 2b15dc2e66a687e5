"""Traffic: agents in lanes whose positions are closed-form functions of time.

Every lane moves at one constant velocity, so agents in a lane keep their spacing and never
collide, and an agent's position at time t is ``a_k + v t`` for its position ``a_k`` at t = 0. A
lane's agents are a sequence generated outwards from the camera's view window in chunks with
their own RNG streams, so the state at any time can be computed without simulating the frames
before it.

Track ids are dense and stable: agents are numbered in order of the time they first enter the
view window (ties broken by lane and position). Before numbering the agents that enter up to time
T, every lane is generated beyond T, so the numbering does not depend on the order in which frames
were requested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.synth import classes as C
from pipeline.synth.agents import (CAR_KIND_P, CAR_KINDS, CAR_LENGTH, CarModel, Cyclist, Motorcyclist, Pedestrian,
                                   build_car, car_mesh, person_look, shadow_mesh)
from pipeline.synth.layout import Side
from pipeline.synth.mesh import Mesh
from pipeline.synth.style import CAR, Color, WorldStyle, jitter, pick, rgb

ZMIN, ZMAX = -15.0, 150.0  # agents exist while their distance ahead of the camera is in this window
ZMAX_PEOPLE = 80.0  # people further away are a few pixels tall
ZMAX_PARKED = 60.0  # parked cars further away hide behind each other
SIMPLE_BEYOND = 25.0  # people further away are drawn without limbs
CHUNK = 32


@dataclass(frozen=True)
class Lane:
    lane_id: int
    cls: int  # CamVid class of its agents
    x: float
    velocity: float  # m/s along Z (signed)
    gap: float  # mean free space between agents, metres
    min_gap: float
    keep_clear: tuple[float, float] | None = None  # relative positions left empty (the dashcam's own lane)
    parked: int = 0  # for cars standing still: the direction they face


@dataclass
class _LaneAgents:
    """The generated prefix of one lane's agent sequence."""

    lane: Lane
    rel_speed: float
    zmax: float  # far end of this lane's view window
    a: list[float] = field(default_factory=list)
    length: list[float] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    t_in: list[float] = field(default_factory=list)
    t_out: list[float] = field(default_factory=list)
    chunks: int = 0
    cursor: float = 0.0  # position of the next agent's rear (generation frontier)
    finished: bool = False  # a lane that stands still relative to the camera holds finitely many
    numbered: int = 0  # agents [0, numbered) have track ids


class Traffic:
    def __init__(self, seed: int, style: WorldStyle, sides: tuple[Side, Side]):
        self.seed = seed
        self.style = style
        self.cam_speed = style.camera.speed
        rng = np.random.default_rng([seed, 0x7AF])
        self.lanes = _lanes(rng, style, sides)
        self._agents = [_LaneAgents(lane, lane.velocity - self.cam_speed,
                                    ZMAX_PARKED if lane.parked else ZMAX if lane.cls == C.CAR else ZMAX_PEOPLE)
                        for lane in self.lanes]
        self._ids: dict[tuple[int, int], int] = {}
        self._next_id = 1
        self._numbered_until = -1.0
        self._models: dict[tuple[int, int], object] = {}
        sun = style.look.sun_strength
        k = 0.2 + 0.9 * sun
        self._shadow_offset = (k if style.look.sun_right else -k, 0.4 * k)
        dark = 0.55 - 0.25 * sun
        self._shadow_road = tuple(c * dark for c in style.road.asphalt)
        self._shadow_pave = tuple(c * (dark + 0.1) for c in style.road.pavement_color)

    # --- sequences and ids -------------------------------------------------------------------

    def _extend(self, la: _LaneAgents) -> None:
        lane = la.lane
        rng = np.random.default_rng([self.seed, 0x7AF, lane.lane_id, la.chunks])
        if la.chunks == 0:
            la.cursor = la.zmax if la.rel_speed > 0 else ZMIN
            la.cursor += (-1 if la.rel_speed > 0 else 1) * float(rng.uniform(0, lane.gap))
        la.chunks += 1
        step = -1.0 if la.rel_speed > 0 else 1.0
        for _ in range(CHUNK):
            if lane.cls == C.CAR:
                kind = int(rng.choice(len(CAR_KINDS), p=CAR_KIND_P))
                if lane.parked and CAR_KINDS[kind] in ("bus", "motorbike"):
                    kind = CAR_KINDS.index("van")  # parking bays hold cars (same RNG draws either way)
                length = float(rng.uniform(*CAR_LENGTH[CAR_KINDS[kind]]))
            else:
                kind, length = 0, 0.6 if lane.cls == C.PEDESTRIAN else 1.8
            gap = lane.min_gap + float(rng.exponential(lane.gap))
            a = la.cursor + step * length / 2
            la.cursor += step * (length + gap)
            if la.rel_speed == 0 and a > la.zmax:
                la.finished = True
                return
            if lane.keep_clear and lane.keep_clear[0] < a < lane.keep_clear[1]:
                continue
            w = la.rel_speed
            if w > 0:
                t_in, t_out = max(0.0, (ZMIN - a) / w), (la.zmax - a) / w
            elif w < 0:
                t_in, t_out = max(0.0, (la.zmax - a) / w), (ZMIN - a) / w
            else:
                t_in, t_out = 0.0, np.inf
            la.a.append(a)
            la.length.append(length)
            la.kind.append(kind)
            la.t_in.append(t_in)
            la.t_out.append(t_out)

    def _ensure(self, t: float) -> None:
        """Generate every lane beyond time ``t`` and number all agents entering up to ``t``."""
        if t <= self._numbered_until:
            return
        horizon = float(np.ceil(t + 1.0))
        batch = []
        for la in self._agents:
            while not la.finished and (not la.t_in or la.t_in[-1] <= horizon):
                self._extend(la)
            while la.numbered < len(la.t_in) and la.t_in[la.numbered] <= horizon:
                batch.append((la.t_in[la.numbered], la.lane.lane_id, la.numbered))
                la.numbered += 1
        for _, lane_id, k in sorted(batch):
            self._ids[(lane_id, k)] = self._next_id
            self._next_id += 1
        self._numbered_until = horizon

    def track_count(self, t: float) -> int:
        """Largest track id an agent can have at or before time ``t``."""
        self._ensure(t)
        return self._next_id - 1

    # --- agents at a time ----------------------------------------------------------------------

    def meshes(self, t: float, cam_pos: np.ndarray) -> tuple[list[Mesh], list[Mesh]]:
        """(agent meshes, shadow meshes) of every agent in the window at time ``t``."""
        self._ensure(t)
        cam_z = float(cam_pos[2])
        agents: list[Mesh] = []
        shadows: list[Mesh] = []
        for la in self._agents:
            n = len(la.t_in)
            if n == 0:
                continue
            hi = int(np.searchsorted(la.t_in, t, side="right"))
            lo = int(np.searchsorted(la.t_out, t, side="right"))
            lane = la.lane
            v = lane.velocity
            for k in range(lo, hi):
                z = la.a[k] + v * t
                if z + la.length[k] / 2 < cam_z:  # wholly behind the camera (its view is < 90 deg off the road)
                    continue
                tid = self._ids[(lane.lane_id, k)]
                model, heading = self._model(lane, k, la.kind[k], la.length[k], tid)
                if isinstance(model, CarModel):
                    agents.append(car_mesh(model, lane.x, z, heading, tid, cam_pos))
                    shadows.append(shadow_mesh(lane.x, z, model.half_width + 0.1, model.half_length + 0.05,
                                               self._shadow_offset, self._shadow_road))
                elif isinstance(model, Motorcyclist):
                    agents.append(model.mesh(lane.x, z, heading))
                    shadows.append(shadow_mesh(lane.x, z, 0.35, 1.0, self._shadow_offset, self._shadow_road))
                elif lane.cls == C.PEDESTRIAN:
                    agents.append(model.mesh(lane.x, z, heading, abs(v) * t + abs(la.a[k]) if v else 0.0,
                                             z - cam_z > SIMPLE_BEYOND))
                    shadows.append(shadow_mesh(lane.x, z, 0.25, 0.2, self._shadow_offset, self._shadow_pave))
                else:
                    agents.append(model.mesh(lane.x, z, heading, abs(v) * t + abs(la.a[k])))
                    shadows.append(shadow_mesh(lane.x, z, 0.25, 0.8, self._shadow_offset, self._shadow_road))
        self._forget(t)
        return agents, shadows

    def _model(self, lane: Lane, k: int, kind: int, length: float, tid: int) -> tuple[object, int]:
        """(appearance model, heading) of agent ``k`` of ``lane``, built from its own RNG stream."""
        key = (lane.lane_id, k)
        cached = self._models.get(key)
        if cached is None:
            rng = np.random.default_rng([self.seed, 0xA6E, lane.lane_id, k])
            standing = 1 if rng.random() < 0.5 else -1  # which way an agent standing still faces
            v = lane.velocity
            heading = 1 if v > 0 else -1 if v < 0 else lane.parked or standing
            facing_camera = heading < 0  # the camera looks towards +Z
            if lane.cls == C.CAR and CAR_KINDS[kind] == "motorbike":
                model = Motorcyclist(person_look(rng), jitter(rng, pick(rng, CAR), 0.1), tid, facing_camera)
            elif lane.cls == C.CAR:
                model = build_car(rng, CAR_KINDS[kind], length, tid)
            elif lane.cls == C.PEDESTRIAN:
                model = Pedestrian(person_look(rng), tid, facing_camera)
            else:
                frame: Color = jitter(rng, pick(rng, [rgb(30, 30, 30), rgb(180, 30, 30), rgb(30, 60, 150),
                                                      rgb(200, 200, 200), rgb(40, 120, 60)]), 0.1)
                model = Cyclist(person_look(rng), frame, tid, facing_camera)
            cached = self._models[key] = (model, heading)
        return cached

    def _forget(self, t: float) -> None:
        """Drop cached models of agents long gone; they are rebuilt identically if asked again."""
        if len(self._models) < 400:
            return
        for la in self._agents:
            for k in range(int(np.searchsorted(la.t_out, t - 5.0))):
                self._models.pop((la.lane.lane_id, k), None)


def _lanes(rng: np.random.Generator, style: WorldStyle, sides: tuple[Side, Side]) -> list[Lane]:
    cam = style.camera
    tr = style.traffic
    lanes: list[Lane] = []
    road_lanes = style.road.lanes()
    sparser = max(1.0, len(road_lanes) / 2.5)  # wide roads: fewer cars per lane (most would be hidden anyway)
    for x, d in road_lanes:
        own = cam.moving and d > 0 and abs(x - cam.x) < 0.01
        speed = cam.speed if own else tr.car_speed * float(rng.uniform(0.7, 1.25))
        lanes.append(Lane(len(lanes), C.CAR, x, d * speed, sparser * tr.car_gap * float(rng.uniform(0.7, 1.3)), 4.0,
                          (-14.0, 12.0) if own else None))
    road = style.road
    for side in sides:
        off = road.lanes_edge + road.bike_lane / 2 if road.bike_lane else road.lanes_edge - 0.55
        gap = tr.bike_gap * (1.0 if road.bike_lane else 2.0)
        lanes.append(Lane(len(lanes), C.BICYCLIST, side.x(off), side.facing * float(rng.uniform(3.5, 6.5)), gap, 6.0))
    if road.parking:
        for side in sides:  # parked cars: a lane standing still, seen only when near
            lanes.append(Lane(len(lanes), C.CAR, side.x(side.kerb - road.parking / 2), 0.0,
                              float(rng.uniform(2.5, 12.0)), 0.8, parked=side.facing))
    for side in sides:
        width = side.property_line - side.pavement_in
        d = 1 if rng.random() < 0.5 else -1
        for frac, direction in ((0.45, d), (0.75, -d)):
            lanes.append(Lane(len(lanes), C.PEDESTRIAN, side.x(side.pavement_in + frac * width),
                              direction * float(rng.uniform(1.0, 1.6)), tr.ped_gap * float(rng.uniform(0.7, 1.4)),
                              1.0))
        lanes.append(Lane(len(lanes), C.PEDESTRIAN, side.x(side.pavement_in + 0.9 * width), 0.0, tr.ped_gap * 3, 2.0))
    return lanes
