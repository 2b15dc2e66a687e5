"""Geometry of the moving agents: cars (and vans, buses), pedestrians, cyclists.

Cars are built once per agent as a rigid model in local coordinates (x across, y up, z forward)
and only translated or turned round per frame. Pedestrians and cyclists are articulated, so their
handful of joints is recomputed per frame from the walk or pedal phase. Every labelled operation
carries ``class + 256 * track_id``; details inside the silhouette (windows, lights) are image-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.synth import classes as C
from pipeline.synth.mesh import IMAGE_ONLY, LAYER_SHADOW, LAYER_STREET, POLY, Mesh, MeshBuilder, Op, box_faces
from pipeline.synth.style import CAR, CLOTHES, SKIN, Color, jitter, pick, rgb

# Road vehicles of the car lanes. Motorbikes ride with the cars but are CamVid "Bicyclist", as its
# 11-class set merges MotorcycleScooter into Bicyclist.
CAR_KINDS = ("sedan", "hatch", "suv", "van", "bus", "motorbike")
CAR_KIND_P = (0.41, 0.24, 0.16, 0.10, 0.05, 0.04)
CAR_LENGTH = {"sedan": (4.4, 4.9), "hatch": (3.7, 4.2), "suv": (4.5, 5.0), "van": (4.9, 5.6), "bus": (10.0, 12.0),
              "motorbike": (2.0, 2.3)}


def packed(cls: int, track_id: int) -> int:
    return cls + 256 * track_id


def _shade(c: Color, k: float) -> Color:
    return (min(c[0] * k, 255.0), min(c[1] * k, 255.0), min(c[2] * k, 255.0))


def _normal(quad: np.ndarray, centre: np.ndarray) -> tuple[float, float, float]:
    n = np.cross(quad[1] - quad[0], quad[3] - quad[0])
    n /= np.linalg.norm(n) + 1e-12
    if n @ (quad.mean(axis=0) - centre) < 0:
        n = -n
    return tuple(float(v) for v in n)


def _corners(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """The eight corners of an axis-aligned box."""
    return np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)])


# --- cars -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarModel:
    """A rigid car in local coordinates (driving towards +Z) with its back-face culling done here,
    vectorised over all faces, instead of per operation in the painter: a car has ~40 operations
    of which about half face away, and which half depends only on where the camera is."""

    verts: np.ndarray
    ops: tuple[Op, ...]  # with cull=False: visibility is decided by ``visible_ops``
    normals: np.ndarray  # (n_ops, 3) outward normals; zero for operations that are always drawn
    refs: np.ndarray  # (n_ops, 3) a point on each operation's plane
    extent: float
    half_width: float
    half_length: float
    _subsets: dict = field(default_factory=dict, compare=False)

    def visible_ops(self, cam_local: np.ndarray) -> tuple[Op, ...]:
        d = ((cam_local - self.refs) * self.normals).sum(axis=1)
        keep = (d > 0) | ~self.normals.any(axis=1)
        key = keep.tobytes()
        ops = self._subsets.get(key)
        if ops is None:
            ops = self._subsets[key] = tuple(op for op, k in zip(self.ops, keep) if k)
        return ops


def build_car(rng: np.random.Generator, kind: str, length: float, track_id: int) -> CarModel:
    label = packed(C.CAR, track_id)
    L = length
    hl = L / 2
    if kind == "bus":
        W, clear, belt, roof = rng.uniform(2.4, 2.55), 0.3, 1.15, rng.uniform(2.9, 3.2)
        cab = (-hl + 0.15, hl - 0.1, 0.0, 0.0)  # cabin z0, z1 at the bottom; insets of the top
        color = pick(rng, [rgb(200, 40, 35), rgb(230, 230, 225), rgb(40, 90, 160), rgb(230, 180, 40)])
    else:
        W = {"sedan": 1.8, "hatch": 1.72, "suv": 1.88, "van": 1.95}[kind] + rng.uniform(-0.05, 0.05)
        clear = 0.28 if kind in ("suv", "van") else 0.2
        belt = {"sedan": 0.9, "hatch": 0.9, "suv": 1.05, "van": 1.05}[kind] + rng.uniform(-0.04, 0.04)
        roof = {"sedan": 1.42, "hatch": 1.48, "suv": 1.72, "van": 2.05}[kind] + rng.uniform(-0.04, 0.04)
        cab = {"sedan": (-hl + 0.9, hl - 1.35, 0.45, 0.55), "hatch": (-hl + 0.35, hl - 1.1, 0.15, 0.55),
               "suv": (-hl + 0.45, hl - 1.2, 0.15, 0.5), "van": (-hl + 0.15, hl - 0.8, 0.0, 0.5)}[kind]
        color = jitter(rng, pick(rng, CAR), 0.08)
    hw = W / 2
    mb = MeshBuilder()
    dark = rgb(22, 22, 24)
    # underside with the tyres seen end-on first: the body covers what it should
    r = 0.33 if kind != "bus" else 0.5
    wheel_z = (-hl + 0.75 + r * 0.5, hl - 0.85 - r * 0.5) if kind != "bus" else (-hl + 2.6, hl - 2.4)
    for verts, normal in box_faces(-hw + 0.05, hw - 0.05, 0.0, clear + 0.1, wheel_z[0] - r, wheel_z[1] + r)[:4]:
        mb.poly(verts, dark, label, normal, detail=True)
    # body
    body = box_faces(-hw, hw, clear, belt, -hl, hl)
    shades = (0.78, 0.78, 0.92, 0.92, 1.12)
    for (verts, normal), k in zip(body[:5], shades):
        mb.poly(verts, _shade(color, k), label, normal, detail=True)
    mb.hull(_corners(-hw, hw, clear * 0.5, belt, -hl, hl), _shade(color, 0.88), label)
    rear_n, front_n = (0.0, 0.0, -1.0), (0.0, 0.0, 1.0)
    # wheels on the sides, over the body's lower edge
    ang = np.linspace(0, 2 * np.pi, 11)[:-1]
    for side in (-1.0, 1.0):
        n = (side, 0.0, 0.0)
        x = side * (hw + 0.01)
        for wz in wheel_z:
            mb.poly(np.stack([np.full(10, x), r + r * np.sin(ang), wz + r * np.cos(ang)], 1), dark, label, n,
                    detail=True)
            mb.poly(np.stack([np.full(10, x + side * 0.01), r + 0.5 * r * np.sin(ang), wz + 0.5 * r * np.cos(ang)], 1),
                    rgb(130, 130, 135) if rng.random() < 0.7 else rgb(50, 50, 55), normal=n, detail=True)
    # bumpers, lights, plates on the ends
    bump = _shade(color, 0.6) if rng.random() < 0.5 else rgb(35, 35, 38)
    for z, n, lamp in ((-hl - 0.01, rear_n, rgb(200, 30, 30)), (hl + 0.01, front_n, rgb(235, 235, 215))):
        mb.poly([[-hw, clear, z], [-hw, clear + 0.18, z], [hw, clear + 0.18, z], [hw, clear, z]], bump, normal=n,
                detail=True)
        ly0, ly1 = belt - 0.28, belt - 0.1
        for sx in (-1, 1):
            xa, xb = sorted((sx * (hw - 0.08), sx * (hw - 0.4)))
            mb.poly([[xa, ly0, z], [xa, ly1, z], [xb, ly1, z], [xb, ly0, z]], lamp, normal=n, detail=True)
        mb.poly([[-0.26, clear + 0.2, z], [-0.26, clear + 0.32, z], [0.26, clear + 0.32, z], [0.26, clear + 0.2, z]],
                rgb(235, 235, 230) if rng.random() < 0.6 else rgb(240, 200, 40), normal=n, detail=True)
    # cabin: a frustum whose sloped ends are the wind screens
    z0, z1, ins_back, ins_front = cab
    top_hw = hw - (0.18 if kind != "bus" else 0.02)
    bottom = np.array([[-hw + 0.04, belt, z0], [hw - 0.04, belt, z0], [hw - 0.04, belt, z1], [-hw + 0.04, belt, z1]])
    top = np.array([[-top_hw, roof, z0 + ins_back], [top_hw, roof, z0 + ins_back], [top_hw, roof, z1 - ins_front],
                    [-top_hw, roof, z1 - ins_front]])
    cabin_centre = np.vstack([bottom, top]).mean(axis=0)
    faces = [np.array([bottom[0], top[0], top[3], bottom[3]]),  # left
             np.array([bottom[1], bottom[2], top[2], top[1]]),  # right
             np.array([bottom[0], bottom[1], top[1], top[0]]),  # rear screen
             np.array([bottom[3], top[3], top[2], bottom[2]]),  # windscreen
             top]
    glass = jitter(rng, pick(rng, [rgb(35, 40, 48), rgb(55, 65, 80), rgb(25, 28, 30), rgb(80, 95, 110)]), 0.1)
    cab_shades = (0.85, 0.85, 0.95, 0.95, 1.05)
    mb.hull(np.vstack([bottom, top]), tuple((a + b) / 2 for a, b in zip(_shade(color, 0.9), glass)), label)
    for face, k in zip(faces, cab_shades):
        n = _normal(face, cabin_centre)
        mb.poly(face, _shade(color, k), label, n, detail=True)
        if face is top:
            continue
        c = face.mean(axis=0)
        inset = c + (face - c) * (0.86, 0.8, 0.9)
        if face is faces[0] or face is faces[1]:
            # side windows with a pillar in the middle (bus: a long band)
            lo, hi = inset[0], inset[3]
            mid = (lo + hi) / 2
            if kind == "bus":
                mb.poly(inset, glass, normal=n, detail=True)
            else:
                a = np.array([inset[0], inset[1], (inset[1] + inset[2]) / 2 - (hi - lo) * 0.03,
                              mid - (hi - lo) * 0.03])
                b = np.array([mid + (hi - lo) * 0.03, (inset[1] + inset[2]) / 2 + (hi - lo) * 0.03, inset[2],
                              inset[3]])
                mb.poly(a, glass, normal=n, detail=True)
                mb.poly(b, glass, normal=n, detail=True)
        else:
            mb.poly(inset, _shade(glass, 1.15), normal=n, detail=True)
    mesh = mb.build((0, 0, 0), LAYER_STREET)
    normals = np.array([n if n is not None else (0.0, 0.0, 0.0) for n in mb.normals])
    refs = np.array([mesh.verts[op.start] for op in mesh.ops])
    ops = tuple(replace(op, cull=False) for op in mesh.ops)
    return CarModel(mesh.verts, ops, normals, refs, mesh.extent, hw, hl)


def car_mesh(model: CarModel, x: float, z: float, heading: int, track_id: int, cam_pos: np.ndarray) -> Mesh:
    """The model placed at (x, z), turned round for heading -1, with only its faces that face the camera."""
    s = float(heading)
    verts = model.verts * (s, 1.0, s) + (x, 0.0, z)
    cam_local = (cam_pos - (x, 0.0, z)) * (s, 1.0, s)
    return Mesh(verts, model.visible_ops(cam_local), (x, 1.0, z), LAYER_STREET, model.extent, 0.0, track_id)


def shadow_mesh(x: float, z: float, half_w: float, half_l: float, offset: tuple[float, float], color: Color) -> Mesh:
    """A flat dark patch on the ground under an agent (image only: the ground keeps its class).
    The footprint sheared by the sun offset stays a convex quadrilateral."""
    ox, oz = offset
    q = np.array([[x - half_w, 0.01, z - half_l], [x + half_w, 0.01, z - half_l],
                  [x + half_w + ox, 0.01, z + half_l + oz], [x - half_w + ox, 0.01, z + half_l + oz]])
    return Mesh(q, (Op(POLY, 0, 4, color, IMAGE_ONLY),), (x, 0.0, z), LAYER_SHADOW, 2 * half_l)


# --- people ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonLook:
    height: float
    width: float
    top: Color
    bottom: Color
    skin: Color
    hair: Color
    shoes: Color
    stride: float
    phase0: float
    coat: bool  # a long coat or dress hides the upper legs


def person_look(rng: np.random.Generator) -> PersonLook:
    child = rng.random() < 0.1
    height = float(rng.uniform(1.05, 1.35) if child else rng.normal(1.72, 0.08))
    return PersonLook(height=height, width=float(rng.uniform(0.85, 1.15)),
                      top=jitter(rng, pick(rng, CLOTHES), 0.12), bottom=jitter(rng, pick(rng, CLOTHES), 0.12),
                      skin=jitter(rng, pick(rng, SKIN), 0.05),
                      hair=jitter(rng, pick(rng, [rgb(25, 20, 18), rgb(70, 45, 30), rgb(150, 110, 60),
                                                  rgb(120, 120, 120)]), 0.1),
                      shoes=jitter(rng, rgb(30, 30, 30), 0.3), stride=float(rng.uniform(1.2, 1.6)) * height / 1.72,
                      phase0=float(rng.uniform(0, 2 * np.pi)), coat=bool(rng.random() < 0.25))


class _Rig:
    """An articulated figure whose vertices are affine in a few pose variables.

    ``pose(*vars)`` builds the figure with a MeshBuilder; evaluating it once at zero and once per
    unit variable gives a base and one delta per variable, so a frame's vertices are one weighted
    sum, and the operation list (with its packed labels) is shared by every frame."""

    def __init__(self, pose, n_vars: int, extent: float, track_id: int):
        base_builder = pose(*([0.0] * n_vars))
        base = base_builder.build((0, 0, 0), LAYER_STREET, track_id)
        self.ops, self.base = base.ops, base.verts
        deltas = []
        for i in range(n_vars):
            unit = [0.0] * n_vars
            unit[i] = 1.0
            deltas.append(pose(*unit).build((0, 0, 0), LAYER_STREET).verts - self.base)
        self.deltas = np.stack(deltas).reshape(n_vars, -1) if deltas else np.zeros((0, self.base.size))
        self.extent = extent
        self.reach = base.reach
        self.track_id = track_id

    def mesh(self, x: float, z: float, heading: int, weights: tuple[float, ...]) -> Mesh:
        """The figure posed by ``weights`` at (x, z); heading -1 turns it round (a rotation, so
        back-face culling of its solid parts still holds)."""
        verts = self.base + (np.asarray(weights) @ self.deltas).reshape(self.base.shape) if weights else self.base
        h = float(heading)
        verts = verts * (h, 1.0, h) + (x, 0.0, z)
        return Mesh(verts, self.ops, (x, 1.0, z), LAYER_STREET, self.extent, self.reach, self.track_id)


class Pedestrian:
    """A walking person in the plane facing along Z (local z = walking direction), seen from the
    front or from behind. Far away it is drawn as three flat shapes: limbs would be below a pixel."""

    def __init__(self, look: PersonLook, track_id: int, facing_camera: bool):
        self.look = look
        label = packed(C.PEDESTRIAN, track_id)
        H = look.height
        self._full = _Rig(lambda sw, asw, up_l, up_r: self._pose(label, facing_camera, sw, asw, up_l, up_r), 4, H,
                          track_id)
        self._simple = _Rig(lambda: self._flat(label, facing_camera), 0, H, track_id)

    def mesh(self, x: float, z: float, heading: int, walked: float, simple: bool) -> Mesh:
        if simple:
            return self._simple.mesh(x, z, heading, ())
        if walked == 0:
            return self._full.mesh(x, z, heading, (0.0, 0.0, 0.0, 0.0))
        phase = self.look.phase0 + 2 * np.pi * walked / self.look.stride
        swing, lift = math.sin(phase), math.cos(phase)
        return self._full.mesh(x, z, heading, (swing, abs(swing), max(0.0, -lift), max(0.0, lift)))

    def _flat(self, label: int, facing: bool) -> MeshBuilder:
        look = self.look
        H, hw = look.height, 0.13 * look.width * look.height / 1.72
        mb = MeshBuilder()
        mb.poly([[-hw, 0, 0], [-hw, 0.55 * H, 0], [hw, 0.55 * H, 0], [hw, 0, 0]], look.bottom, label)
        low = 0.3 * H if look.coat else 0.5 * H
        mb.poly([[-hw * 1.1, low, 0], [-hw * 1.5, 0.82 * H, 0], [hw * 1.5, 0.82 * H, 0], [hw * 1.1, low, 0]],
                look.top, label)
        mb.disc((0, 0.92 * H, 0), 0.11 * H / 1.72, look.skin if facing else look.hair, label)
        return mb

    def _pose(self, label: int, facing: bool, swing: float, abs_swing: float, up_l: float, up_r: float) -> MeshBuilder:
        look = self.look
        H, s = look.height, look.width
        k = H / 1.72
        hip_y, sh_y = 0.52 * H, 0.81 * H
        mb = MeshBuilder()
        for j, up in ((-1.0, up_l), (1.0, up_r)):
            hip = np.array([j * 0.085 * s * k, hip_y, 0.0])
            foot = np.array([hip[0] + j * 0.02, 0.06 + 0.1 * up, 0.32 * k * j * swing])
            knee = (hip + foot) / 2 + (0.0, 0.02, 0.08 * abs_swing)
            mb.line([hip, knee, foot], 0.13 * s * k, look.bottom, label)
            mb.line([foot, foot + (0.0, -0.04, 0.12)], 0.1, look.shoes, label)
        w_sh, w_hip = 0.2 * s * k, 0.16 * s * k
        low = 0.3 * H if look.coat else hip_y - 0.05
        w_low = w_hip * (1.25 if look.coat else 1.0)
        mb.poly([[-w_low, low, 0], [-w_sh, sh_y, 0], [w_sh, sh_y, 0], [w_low, low, 0]], look.top, label)
        for j in (-1.0, 1.0):
            sh = np.array([j * (w_sh - 0.02), sh_y - 0.03, 0.0])
            hand = np.array([j * (w_sh + 0.04), hip_y - 0.02, -0.22 * j * swing])
            elbow = (sh + hand) / 2 + (j * 0.03, 0.0, 0.0)
            mb.line([sh, elbow, hand], 0.085 * s * k, look.top, label)
            mb.disc(hand, 0.045, look.skin, label, detail=True)
        head_r = 0.11 * k
        head = (0.0, sh_y + 0.035 * H + head_r, 0.0)
        mb.line([(0.0, sh_y - 0.02, 0.0), (0.0, sh_y + 0.05 * H, 0.0)], 0.1 * k, look.skin, label)
        if facing:
            mb.disc(head, head_r, look.skin, label)
            mb.disc((0.0, head[1] + head_r * 0.45, 0.0), head_r * 0.78, look.hair, label)
        else:
            mb.disc(head, head_r, look.hair, label)
        return mb


class Cyclist:
    """A rider on a bicycle. The bicycle lies in the plane X = x, so from an angle its wheels show
    as ellipses and from behind as thin dark strokes; the legs follow the pedals."""

    def __init__(self, look: PersonLook, frame_color: Color, track_id: int, facing_camera: bool):
        self.look = look
        label = packed(C.BICYCLIST, track_id)
        self._rig = _Rig(lambda sn, cs: self._pose(label, frame_color, facing_camera, sn, cs), 2, 1.9, track_id)

    def mesh(self, x: float, z: float, heading: int, ridden: float) -> Mesh:
        theta = self.look.phase0 + ridden / (2 * np.pi * 0.34) * 2 * np.pi / 2.2  # crank slower than wheels
        return self._rig.mesh(x, z, heading, (math.sin(theta), math.cos(theta)))

    def _pose(self, label: int, frame_color: Color, facing: bool, sin_t: float, cos_t: float) -> MeshBuilder:
        look = self.look
        R = 0.34
        rear, front = np.array([0.0, R, -0.52]), np.array([0.0, R, 0.53])
        bb = np.array([0.0, 0.3, -0.05])
        seat = np.array([0.0, 0.95, -0.22])
        head_tube = np.array([0.0, 0.98, 0.4])
        bar = np.array([0.0, 1.05, 0.42])
        ang = np.linspace(0, 2 * np.pi, 15)[:-1]
        circle = np.stack([np.zeros(14), R * np.sin(ang), R * np.cos(ang)], 1)
        mb = MeshBuilder()
        for hub in (rear, front):
            mb.line(circle + hub, 0.055, rgb(25, 25, 25), label, closed=True)
        mb.line([rear, bb, seat, rear], 0.045, frame_color, label, closed=True)
        mb.line([bb, head_tube, front], 0.045, frame_color, label)
        mb.line([seat, head_tube], 0.045, frame_color, label)
        mb.line([bar + (-0.24, 0, 0), bar + (0.24, 0, 0)], 0.035, rgb(40, 40, 40), label)
        hip = seat + (0.0, 0.1, 0.0)
        shoulder = hip + (0.0, 0.48 * look.height / 1.72, 0.3)
        for j in (-1.0, 1.0):  # the right pedal is half a turn ahead of the left
            pedal = bb + (j * 0.12, 0.17 * sin_t * -j, 0.17 * cos_t * -j)
            hj = hip + (j * 0.1, 0.0, 0.0)
            knee = (hj + pedal) / 2 + (j * 0.04, 0.14, 0.16)
            mb.line([hj, knee, pedal], 0.1, look.bottom, label)
        mb.poly([hip + (-0.13, -0.05, 0), shoulder + (-0.17, 0, 0), shoulder + (0.17, 0, 0), hip + (0.13, -0.05, 0)],
                look.top, label)
        for j in (-1.0, 1.0):
            mb.line([shoulder + (j * 0.15, -0.03, 0), bar + (j * 0.24, 0.0, 0.0)], 0.07, look.top, label)
        head = shoulder + (0.0, 0.2, 0.06)
        mb.disc(head, 0.11, look.skin if facing else look.hair, label)
        mb.disc(head + (0.0, 0.05, 0.0), 0.105, frame_color if look.phase0 > 3 else look.hair, label)
        return mb


class Motorcyclist:
    """A rider sitting upright on a motorbike: thick tyres, a body block between them, a helmet."""

    def __init__(self, look: PersonLook, color: Color, track_id: int, facing_camera: bool):
        label = packed(C.BICYCLIST, track_id)
        self._rig = _Rig(lambda: self._pose(look, color, label, facing_camera), 0, 2.3, track_id)

    def mesh(self, x: float, z: float, heading: int) -> Mesh:
        return self._rig.mesh(x, z, heading, ())

    @staticmethod
    def _pose(look: PersonLook, color: Color, label: int, facing: bool) -> MeshBuilder:
        R = 0.32
        ang = np.linspace(0, 2 * np.pi, 15)[:-1]
        circle = np.stack([np.zeros(14), R * np.sin(ang), R * np.cos(ang)], 1)
        mb = MeshBuilder()
        for hub in ((0.0, R, -0.7), (0.0, R, 0.7)):
            mb.line(circle + hub, 0.12, rgb(20, 20, 20), label, closed=True)
        for verts, normal in box_faces(-0.2, 0.2, 0.3, 0.85, -0.45, 0.55)[:5]:
            mb.poly(verts, _shade(color, 1.1 if normal[1] > 0 else 0.85), label, normal)
        for verts, normal in box_faces(-0.16, 0.16, 0.85, 0.95, -0.6, -0.05)[:5]:
            mb.poly(verts, rgb(25, 25, 25), label, normal)
        hip = np.array([0.0, 0.98, -0.3])
        shoulder = hip + (0.0, 0.55 * look.height / 1.72, 0.12)
        bar = np.array([0.0, 1.05, 0.5])
        mb.line([bar + (-0.34, 0, 0), bar + (0.34, 0, 0)], 0.04, rgb(40, 40, 40), label)
        for j in (-1.0, 1.0):
            knee = np.array([j * 0.22, 0.78, 0.12])
            mb.line([hip + (j * 0.12, 0, 0), knee, (j * 0.2, 0.35, -0.1)], 0.12, look.bottom, label)
        mb.poly([hip + (-0.15, -0.05, 0), shoulder + (-0.2, 0, 0), shoulder + (0.2, 0, 0), hip + (0.15, -0.05, 0)],
                look.top, label)
        for j in (-1.0, 1.0):
            mb.line([shoulder + (j * 0.18, -0.04, 0), bar + (j * 0.3, 0.0, 0.0)], 0.08, look.top, label)
        helmet = shoulder + (0.0, 0.24, 0.04)
        mb.disc(helmet, 0.15, color if facing else _shade(color, 0.8), label)
        if facing:
            mb.disc(helmet + (0.0, -0.01, 0.0), 0.08, rgb(30, 30, 35), label, detail=True)  # visor
        return mb
