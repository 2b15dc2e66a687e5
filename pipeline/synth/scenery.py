"""Static street furniture along an endless straight street, generated in 40 m blocks.

Each (side, block) pair has its own RNG stream, so any stretch of street can be generated on
demand in any order with the same result: what lets a moving camera's frame ``i`` be rendered
without rendering frames ``0..i-1``. Blocks are cached because a dashcam sees each one for
hundreds of frames.
"""

from __future__ import annotations

import numpy as np

from pipeline.synth import classes as C
from pipeline.synth.layout import Side, SideStreets, street_sides
from pipeline.synth.mesh import (LAYER_BUILDING, LAYER_FENCE, LAYER_STREET, LAYER_YARD, Mesh, MeshBuilder,
                                 box_faces)
from pipeline.synth.style import FENCE, FOLIAGE, GLASS, Color, WorldStyle, jitter, pick, rgb

BLOCK = 40.0  # metres of street per generated block


def shade(color: Color, k: float) -> Color:
    return (min(color[0] * k, 255.0), min(color[1] * k, 255.0), min(color[2] * k, 255.0))


class Scenery:
    def __init__(self, seed: int, style: WorldStyle, side_streets: SideStreets):
        self.seed = seed
        self.style = style
        self.sides = street_sides(style.road)
        self.side_streets = side_streets
        self._cache: dict[tuple[int, int], list[Mesh]] = {}
        rng = np.random.default_rng([seed, 0x1A4F])
        self._lamp_phase = rng.uniform(0, style.scenery.lamp_spacing, 2)
        self._tree_phase = rng.uniform(0, max(style.scenery.tree_spacing, 1.0), 2)
        self._lamp_color = pick(rng, [rgb(60, 65, 70), rgb(110, 112, 115), rgb(45, 60, 50), rgb(150, 150, 145)])
        self._lamp_height = float(rng.uniform(6.0, 9.0))

    def meshes(self, z0: float, z1: float) -> list[Mesh]:
        """Every mesh of the blocks overlapping [z0, z1)."""
        out: list[Mesh] = []
        b0, b1 = int(np.floor(z0 / BLOCK)), int(np.floor(z1 / BLOCK))
        for b in range(b0, b1 + 1):
            for s in (0, 1):
                key = (s, b)
                if key not in self._cache:
                    self._cache[key] = self._block(s, b)
                out.extend(self._cache[key])
        if len(self._cache) > 4 * (b1 - b0 + 1):  # forget blocks left behind; they regenerate identically
            self._cache = {k: v for k, v in self._cache.items() if b0 - 2 <= k[1] <= b1 + 2}
        return out

    def _block(self, s: int, b: int) -> list[Mesh]:
        side = self.sides[s]
        rng = np.random.default_rng([self.seed, 0xB10C, s, b + (1 << 30)])
        lit = self.style.look.sun_right == (side.sign > 0)
        light = 1.0 if lit else 1.0 - 0.4 * self.style.look.sun_strength
        za, zb = b * BLOCK, (b + 1) * BLOCK
        out: list[Mesh] = []
        streets = self.side_streets.intervals(s, za, zb)
        z = za
        while z < zb - 1.0:
            crossing = [b for a, b in streets if a - 1.0 <= z < b + 1.0]
            if crossing:  # keep the mouth of a side street clear
                z = crossing[0] + 1.0
                continue
            width = float(rng.uniform(6.0, 22.0))
            z_end = min([z + width, zb] + [a - 1.0 for a, _ in streets if a - 1.0 > z])
            setback = 0.0 if rng.random() >= self.style.scenery.setback_p else float(rng.uniform(2.0, 7.0))
            if rng.random() < self.style.scenery.gap_p:
                setback = float(rng.uniform(9.0, 16.0))  # a lot or alley: the next row of houses shows
            out.append(self._building(rng, side, z, z_end, side.property_line + setback, light))
            if setback > 1.0:
                out.extend(self._yard(rng, side, z, z_end, setback))
            z = z_end
        for a, b in streets:  # a building across the far end of each side street closes its view
            if za <= a < zb:
                out.append(self._building(rng, side, a - 8.0, b + 8.0, side.property_line + float(rng.uniform(25, 40)),
                                          light))
        furniture = self._street_trees(rng, side, za, zb) + self._lamps(side, s, za, zb)
        for _ in range(rng.poisson(self.style.scenery.sign_p)):
            furniture.append(self._sign(rng, side, float(rng.uniform(za, zb))))
        furniture = [m for m in furniture if not any(a - 1.0 < m.anchor[2] < b + 1.0 for a, b in streets)]
        cam = self.style.camera
        if not cam.moving and np.sign(cam.x) == side.sign:  # nothing stands on top of the pole camera
            furniture = [m for m in furniture if not -15.0 < m.anchor[2] < 10.0]
        return out + furniture

    # --- buildings -------------------------------------------------------------------------

    def _building(self, rng: np.random.Generator, side: Side, z0: float, z1: float, front: float,
                  light: float) -> Mesh:
        sg = side.sign
        lo, hi = self.style.scenery.height
        h = float(rng.uniform(lo, hi))
        depth = float(rng.uniform(8.0, 16.0))
        base = jitter(rng, pick(rng, list(self.style.scenery.palette)), 0.1)
        xf, xb = sg * front, sg * (front + depth)
        label = C.BUILDING
        mb = MeshBuilder()
        faces = box_faces(min(xf, xb), max(xf, xb), 0.0, h, z0, z1)
        # only the faces a camera on the street can see: the end wall towards the camera, the roof
        # (from a pole camera above it) and the facade, which always faces the street
        mb.poly(faces[2][0], shade(base, 0.85 * (0.5 + 0.5 * light)), label, faces[2][1], detail=True)
        mb.poly(faces[4][0], shade(base, 0.7), label, faces[4][1], detail=True)
        facade = faces[0] if sg > 0 else faces[1]
        mb.poly(facade[0], shade(base, light), label, detail=True)
        corners = np.concatenate([faces[0][0], faces[1][0]])
        if h < 14.0 and rng.random() < 0.35:  # a pitched roof, its ridge along the street
            xm, rise = (xf + xb) / 2, float(rng.uniform(1.5, 3.5))
            tiles = jitter(rng, pick(rng, [rgb(70, 70, 75), rgb(130, 65, 50), rgb(95, 85, 80)]), 0.1)
            mb.poly([[xf, h, z0], [xf, h, z1], [xm, h + rise, z1], [xm, h + rise, z0]], shade(tiles, light), label)
            mb.poly([[xf, h, z0], [xm, h + rise, z0], [xb, h, z0]], shade(base, 0.85 * (0.5 + 0.5 * light)), label,
                    (0.0, 0.0, -1.0))
            corners = np.concatenate([corners, [[xm, h + rise, z0], [xm, h + rise, z1]]])
        mb.hull(corners, shade(base, light), label)
        face = shade(base, light)
        x = xf - sg * 0.03  # details sit just in front of the facade
        normal = (-sg, 0.0, 0.0)
        ground = float(rng.uniform(3.2, 4.5))
        floor = float(rng.uniform(2.8, 3.4))
        if rng.random() < 0.5:  # string courses between floors
            ys = np.arange(ground, h - 1.0, floor)
            mb.quads(_facade_quads(x, ys - 0.12, ys + 0.05, np.array([z0 + 0.05]), np.array([z1 - 0.05])),
                     shade(face, 0.8), normal=normal, detail=True)
        if rng.random() < 0.6:  # cornice
            mb.quads(_facade_quads(x, np.array([h - 0.5]), np.array([h - 0.05]), np.array([z0]), np.array([z1])),
                     shade(face, float(rng.choice([0.7, 1.15]))), normal=normal, detail=True)
        # upper-floor windows
        col = float(rng.uniform(2.2, 3.6))
        ww = col * float(rng.uniform(0.4, 0.7))
        wh = floor * float(rng.uniform(0.4, 0.62))
        n_cols = int((z1 - z0 - 0.8) // col)
        n_rows = int((h - ground - 0.6) // floor)
        if n_cols > 0 and n_rows > 0:
            zc = z0 + (z1 - z0 - (n_cols - 1) * col) / 2 + np.arange(n_cols) * col
            yb = ground + floor * 0.3 + np.arange(n_rows) * floor
            za, zb = np.repeat(zc - ww / 2, n_rows), np.repeat(zc + ww / 2, n_rows)
            ya, yb2 = np.tile(yb, n_cols), np.tile(yb + wh, n_cols)
            if rng.random() < 0.5:  # window frames
                mb.quads(_facade_pairs(x, ya - 0.1, yb2 + 0.1, za - 0.1, zb + 0.1), shade(face, 1.25), normal=normal,
                         detail=True)
            glass = jitter(rng, pick(rng, GLASS), 0.1)
            other = jitter(rng, pick(rng, GLASS), 0.1)
            mask = rng.random(len(za)) < 0.3
            mb.quads(_facade_pairs(x, ya[~mask], yb2[~mask], za[~mask], zb[~mask]), glass, normal=normal, detail=True)
            mb.quads(_facade_pairs(x, ya[mask], yb2[mask], za[mask], zb[mask]), other, normal=normal, detail=True)
        # ground floor: shop fronts or windows and a door
        if rng.random() < 0.5 and z1 - z0 > 4.0:
            band = jitter(rng, pick(rng, [rgb(40, 40, 45), rgb(150, 30, 30), rgb(30, 60, 110), rgb(230, 230, 220),
                                          rgb(40, 90, 60)]), 0.1)
            mb.quads(_facade_quads(x, np.array([ground - 0.9]), np.array([ground - 0.2]), np.array([z0 + 0.3]),
                                   np.array([z1 - 0.3])), band, normal=normal, detail=True)
            n = max(1, int((z1 - z0) // 3.5))
            edges = np.linspace(z0 + 0.4, z1 - 0.4, n + 1)
            mb.quads(_facade_pairs(x, np.full(n, 0.5), np.full(n, ground - 1.1), edges[:-1] + 0.2, edges[1:] - 0.2),
                     jitter(rng, pick(rng, GLASS), 0.1), normal=normal, detail=True)
        else:
            door = float(rng.uniform(z0 + 0.8, max(z0 + 0.9, z1 - 2.0)))
            mb.quads(_facade_pairs(x, np.array([0.0]), np.array([2.2]), np.array([door]), np.array([door + 1.1])),
                     jitter(rng, rgb(70, 50, 40), 0.3), normal=normal, detail=True)
        return mb.build((xf, h / 2, (z0 + z1) / 2), LAYER_BUILDING)

    def _yard(self, rng: np.random.Generator, side: Side, z0: float, z1: float, setback: float) -> list[Mesh]:
        sg = side.sign
        out = []
        if rng.random() < 0.45:
            out.append(self._tree(rng, sg * (side.property_line + setback * float(rng.uniform(0.35, 0.65))),
                                  (z0 + z1) / 2 + float(rng.uniform(-0.35, 0.35)) * (z1 - z0), LAYER_YARD))
        x = sg * (side.property_line + 0.15)
        r = rng.random()
        if r < self.style.scenery.fence_p:
            out.append(self._fence(rng, x, sg, z0, z1))
        elif r < self.style.scenery.fence_p + self.style.scenery.hedge_p:
            h = float(rng.uniform(0.8, 1.6))
            mb = MeshBuilder()
            green = jitter(rng, pick(rng, FOLIAGE), 0.15)
            for verts, normal in box_faces(min(x, x + sg * 0.7), max(x, x + sg * 0.7), 0.0, h, z0 + 0.3, z1 - 0.3)[:5]:
                mb.poly(verts, shade(green, 1.0 if normal[1] == 0 else 1.2), C.TREE, normal)
            out.append(mb.build((x, h / 2, (z0 + z1) / 2), LAYER_FENCE))
        return out

    def _fence(self, rng: np.random.Generator, x: float, sg: float, z0: float, z1: float) -> Mesh:
        color = jitter(rng, pick(rng, FENCE), 0.15)
        h = float(rng.uniform(0.9, 1.8))
        mb = MeshBuilder()
        normal = (-sg, 0.0, 0.0)
        if rng.random() < 0.5:  # railings: posts and two rails, see-through
            spacing = float(rng.uniform(0.12, 0.25)) if rng.random() < 0.5 else float(rng.uniform(1.5, 2.5))
            zs = np.arange(z0 + 0.1, z1 - 0.05, spacing)
            w = 0.04 if spacing < 0.3 else 0.1
            mb.quads(_facade_pairs(x, np.zeros(len(zs)), np.full(len(zs), h), zs, zs + w), color, C.FENCE)
            for y in (0.15 * h, 0.92 * h):
                mb.poly(_facade_pairs(x, np.array([y]), np.array([y + 0.06]), np.array([z0]), np.array([z1]))[0],
                        color, C.FENCE)
        else:  # solid panels with planks
            mb.poly(_facade_pairs(x, np.array([0.0]), np.array([h]), np.array([z0]), np.array([z1]))[0],
                    color, C.FENCE)
            zs = np.arange(z0 + 0.15, z1 - 0.05, 0.15)
            mb.quads(_facade_pairs(x - sg * 0.01, np.zeros(len(zs)), np.full(len(zs), h), zs, zs + 0.02),
                     shade(color, 0.75), normal=normal, detail=True)
        return mb.build((x, h / 2, (z0 + z1) / 2), LAYER_FENCE)

    # --- street furniture ------------------------------------------------------------------

    def _street_trees(self, rng: np.random.Generator, side: Side, za: float, zb: float) -> list[Mesh]:
        spacing = self.style.scenery.tree_spacing
        if spacing <= 0:
            return []
        phase = self._tree_phase[int(side.sign > 0)]
        k0 = np.ceil((za - phase) / spacing)
        zs = phase + np.arange(k0, (zb - phase) / spacing) * spacing
        off = (side.kerb + side.pavement_in) / 2 if side.pavement_in > side.kerb else side.kerb + 0.9
        return [self._tree(rng, side.x(off), float(z + rng.uniform(-1, 1)), LAYER_STREET) for z in zs
                if rng.random() < 0.85]

    def _tree(self, rng: np.random.Generator, x: float, z: float, layer: int) -> Mesh:
        """A broad-leaved tree (a crown of discs), a poplar (a tall narrow crown) or a conifer."""
        kind = rng.choice(["broad", "poplar", "conifer"], p=[0.6, 0.25, 0.15])
        trunk_h = float(rng.uniform(1.8, 3.5))
        trunk_w = float(rng.uniform(0.18, 0.35))
        radius = float(rng.uniform(1.4, 3.2))
        green = pick(rng, FOLIAGE)
        mb = MeshBuilder()
        bark = jitter(rng, rgb(85, 70, 55), 0.2)
        top = trunk_h + radius * 0.8
        mb.poly([[x - trunk_w / 2, 0, z], [x - trunk_w / 2, top, z], [x + trunk_w / 2, top, z],
                 [x + trunk_w / 2, 0, z]], bark, C.TREE)
        if kind == "conifer":  # stacked triangles, widest at the bottom
            dark = shade(green, 0.6)
            tiers = ((1.0, trunk_h * 0.5), (0.78, trunk_h + radius * 0.6), (0.55, trunk_h + radius * 1.3))
            for i, (w, y) in enumerate(tiers):
                hw, hh = radius * w, radius * 1.3 * w
                mb.poly([[x - hw, y, z], [x, y + hh, z], [x + hw, y, z]], shade(dark, 1.0 + 0.12 * i), C.TREE)
            return mb.build((x, trunk_h, z), layer)
        stretch = (0.45, 1.6) if kind == "poplar" else (1.0, 1.0)  # crown width and height factors
        crown_y = trunk_h + radius * 0.9 * stretch[1]
        for dy in ((-0.35, 0.0, 0.35) if kind == "poplar" else (0.0,)):  # a poplar: overlapping discs in a column
            mb.disc((x, crown_y + dy * radius * stretch[1], z), radius * 0.8 * stretch[0] * (1.4 if dy else 1.0),
                    shade(green, 0.75), C.TREE)
        n = int(rng.integers(3, 7))
        pts = rng.normal(0, 1, (n, 3)) * (radius * 0.45 * stretch[0], radius * 0.4 * stretch[1],
                                          radius * 0.45 * stretch[0]) + (x, crown_y, z)
        order = np.argsort(pts[:, 1])  # lower, shadowed blobs first; sunlit top last
        for j, i in enumerate(order):
            k = 0.75 + 0.5 * j / max(n - 1, 1)
            mb.disc(pts[i], radius * stretch[0] * float(rng.uniform(0.4, 0.65)), shade(jitter(rng, green, 0.08), k),
                    C.TREE, detail=True)
        return mb.build((x, trunk_h, z), layer)

    def _lamps(self, side: Side, s: int, za: float, zb: float) -> list[Mesh]:
        spacing = self.style.scenery.lamp_spacing
        phase = self._lamp_phase[s]
        k0 = np.ceil((za - phase) / spacing)
        zs = phase + np.arange(k0, (zb - phase) / spacing) * spacing
        out = []
        h = self._lamp_height
        for z in zs:
            x = side.x(side.kerb + 0.45)
            inward = -side.sign
            mb = MeshBuilder()
            mb.poly(_pole(x, z, 0.0, h, 0.16), self._lamp_color, C.POLE)
            arm_end = x + inward * 1.8
            mb.poly([[x, h - 0.1, z], [x, h + 0.02, z], [arm_end, h + 0.25, z], [arm_end, h + 0.15, z]],
                    self._lamp_color, C.POLE)
            head = [[arm_end - inward * 0.1, h + 0.05, z - 0.15], [arm_end - inward * 0.1, h + 0.22, z],
                    [arm_end + inward * 0.6, h + 0.25, z], [arm_end + inward * 0.6, h + 0.1, z - 0.15]]
            mb.poly(head, shade(self._lamp_color, 1.2), C.POLE)
            out.append(mb.build((x, h / 2, float(z)), LAYER_STREET))
        return out

    def _sign(self, rng: np.random.Generator, side: Side, z: float) -> Mesh:
        x = side.x(side.kerb + 0.5)
        h = float(rng.uniform(2.2, 3.0))
        face_z = -float(side.facing)  # signs face the traffic coming along the adjacent lane
        front, back = (0.0, 0.0, face_z), (0.0, 0.0, -face_z)
        zf = z + face_z * 0.03
        mb = MeshBuilder()
        mb.poly(_pole(x, z, 0.0, h + 0.3, 0.08), rgb(130, 130, 135), C.POLE)
        kind = rng.choice(["circle", "triangle", "rect", "light"], p=[0.35, 0.2, 0.3, 0.15])
        grey = rgb(150, 150, 150)
        if kind == "circle":
            r = float(rng.uniform(0.3, 0.4))
            rim = pick(rng, [rgb(200, 30, 35), rgb(30, 70, 170)])
            mb.poly(_ngon(x, h, z, r, 16), grey, C.SIGN, back)
            mb.poly(_ngon(x, h, zf, r, 16), rim, C.SIGN, front)
            mb.poly(_ngon(x, h, zf + face_z * 0.01, r * 0.72, 16), rgb(235, 235, 235) if rim[2] > 150 else rim,
                    normal=front, detail=True)
            mb.poly([[x - r * 0.45, h - 0.06, zf + face_z * 0.02], [x - r * 0.45, h + 0.06, zf + face_z * 0.02],
                     [x + r * 0.45, h + 0.06, zf + face_z * 0.02], [x + r * 0.45, h - 0.06, zf + face_z * 0.02]],
                    rgb(30, 30, 30) if rng.random() < 0.5 else rgb(240, 240, 240), normal=front, detail=True)
        elif kind == "triangle":
            r = float(rng.uniform(0.4, 0.55))
            tri = np.array([[x - r, h - r * 0.55, zf], [x, h + r * 0.9, zf], [x + r, h - r * 0.55, zf]])
            mb.poly(tri[::-1], grey, C.SIGN, back)
            mb.poly(tri, rgb(200, 30, 35), C.SIGN, front)
            inner = (tri - (x, h, zf)) * 0.68 + (x, h - 0.03, zf + face_z * 0.01)
            mb.poly(inner, rgb(240, 240, 235), normal=front, detail=True)
        elif kind == "rect":
            w, hh = float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.4, 0.8))
            quad = np.array([[x - w / 2, h - hh / 2, zf], [x - w / 2, h + hh / 2, zf], [x + w / 2, h + hh / 2, zf],
                             [x + w / 2, h - hh / 2, zf]])
            mb.poly(quad, grey, C.SIGN, back)
            mb.poly(quad, pick(rng, [rgb(30, 80, 170), rgb(30, 110, 60), rgb(235, 235, 230), rgb(230, 190, 40)]),
                    C.SIGN, front)
            mb.poly((quad - (x, h, zf)) * (0.85, 0.3, 1) + (x, h, zf + face_z * 0.01), rgb(240, 240, 240),
                    normal=front, detail=True)
        else:  # traffic light
            y0 = h - 0.45
            for verts, normal in box_faces(x - 0.16, x + 0.16, y0, y0 + 0.9, z - 0.12, z + 0.12)[:5]:
                mb.poly(verts, rgb(30, 32, 30), C.SIGN, normal)
            lit = int(rng.integers(3))
            for i, col in enumerate((rgb(230, 40, 30), rgb(240, 170, 30), rgb(40, 220, 90))):
                c = col if i == lit else shade(col, 0.25)
                mb.poly(_ngon(x, y0 + 0.75 - i * 0.3, z + face_z * 0.13, 0.1, 8), c, normal=front, detail=True)
        return mb.build((x, h, z), LAYER_STREET)


def _facade_quads(x: float, y0: np.ndarray, y1: np.ndarray, z0: np.ndarray, z1: np.ndarray) -> np.ndarray:
    """Every combination of rows (y0, y1) and spans (z0, z1) as quads in the plane X = x."""
    ya, za = np.meshgrid(np.arange(len(y0)), np.arange(len(z0)), indexing="ij")
    return _facade_pairs(x, y0[ya.ravel()], y1[ya.ravel()], z0[za.ravel()], z1[za.ravel()])


def _facade_pairs(x: float, y0: np.ndarray, y1: np.ndarray, z0: np.ndarray, z1: np.ndarray) -> np.ndarray:
    """Quads (K, 4, 3) in the plane X = x from matching arrays of corners."""
    q = np.empty((len(y0), 4, 3))
    q[..., 0] = x
    q[:, 0, 1], q[:, 0, 2] = y0, z0
    q[:, 1, 1], q[:, 1, 2] = y1, z0
    q[:, 2, 1], q[:, 2, 2] = y1, z1
    q[:, 3, 1], q[:, 3, 2] = y0, z1
    return q


def _ngon(x: float, y: float, z: float, r: float, n: int) -> np.ndarray:
    """A regular polygon in the plane Z = z (a round sign plate or lamp)."""
    a = np.linspace(0, 2 * np.pi, n + 1)[:-1]
    return np.stack([x + r * np.cos(a), y + r * np.sin(a), np.full(n, z)], 1)


def _pole(x: float, z: float, y0: float, y1: float, w: float) -> np.ndarray:
    """A pole as a camera-facing strip (the camera always looks roughly along Z)."""
    return np.array([[x - w / 2, y0, z], [x - w / 2, y1, z], [x + w / 2, y1, z], [x + w / 2, y0, z]])
