"""Sky and ground: the part of every frame that is precomputed once per world.

The road is straight and the camera only translates along it, so every ground pixel keeps its
lateral position X and distance Z for the whole clip: colours, classes and solid markings are
baked once into a canvas (a few pixels larger than the frame, for camera shake). What moves with a
driving camera is the road texture, applied per frame by one ``cv2.remap`` of a wrap-around
world-space tile at the camera's offset, and the dashed lines and zebra crossings, drawn as polygons.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.synth import classes as C
from pipeline.synth.camera import Camera
from pipeline.synth.layout import Side, SideStreets
from pipeline.synth.mesh import LAYER_MARKING, Mesh, MeshBuilder
from pipeline.synth.style import Color, WorldStyle, jitter, pick, rgb
from pipeline.synth.textures import smooth_noise

PX_PER_M = 16.0  # ground texture resolution
ASPHALT, SLABS, GRASS, KERB = range(4)
MARKING_RANGE = 140.0  # metres ahead in which dashed lines and zebra crossings are drawn
CHUNK = 20.0  # metres of dashed lines per mesh
SIDE_STREET_LENGTH = 60.0  # how far a side street's asphalt is drawn (buildings close the view before)


class Background:
    def __init__(self, seed: int, style: WorldStyle, cam: Camera, canvas: tuple[int, int], sides: tuple[Side, Side],
                 side_streets: SideStreets):
        self.style = style
        self.side_streets = side_streets
        rng = np.random.default_rng([seed, 0xB6])
        w, h = canvas
        self.horizon = cam.horizon_row
        self.ground_row = int(np.clip(np.floor(self.horizon) + 1, 0, h))
        self.image = np.empty((h, w, 3), np.uint8)
        self.labels = np.empty((h, w), np.int32)
        self._sky(rng, cam, w, h)
        self._bands(rng, sides)
        self._ground(cam, w, h)
        self._tile = self._texture_tile(rng)

    # --- sky -------------------------------------------------------------------------------

    def _sky(self, rng: np.random.Generator, cam: Camera, w: int, h: int) -> None:
        look = self.style.look
        rows = np.arange(h, dtype=np.float32)
        elev = np.arctan(np.maximum(self.horizon - rows, 0) / cam.f)
        t = np.clip(elev / 0.6, 0, 1) ** 0.6
        grad = (np.outer(1 - t, look.sky_horizon) + np.outer(t, look.sky_top)).astype(np.float32)
        sky = np.repeat(grad[:, None, :], w, axis=1)
        if look.clouds > 0.05:
            n = smooth_noise(rng, (h, max(w // 3, 4)), 24.0, 4, wrap=False)
            n = cv2.resize(n, (w, h), interpolation=cv2.INTER_LINEAR)
            cover = np.clip((n + 0.2) * 2.0, 0, 1) * look.clouds * np.clip(elev / 0.05, 0, 1)[:, None]
            white = np.asarray(jitter(rng, rgb(235, 235, 238), 0.06), np.float32)
            sky += cover[..., None] * (white - sky) * 0.85
        self.image[:] = np.clip(sky, 0, 255).astype(np.uint8)
        self.labels[:] = C.SKY
        if rng.random() < 0.7:  # distant skyline sitting on the horizon
            x = 0
            bottom = int(np.ceil(self.horizon)) + 1
            scale = h / 360
            while x < w:
                bw = int(rng.uniform(8, 50) * scale)
                bh = int(rng.uniform(3, 30) * scale * rng.uniform(0.3, 1.0))
                base = np.asarray(pick(rng, list(self.style.scenery.palette)), np.float32)
                col = tuple(float(v) for v in base + (np.asarray(look.haze) - base) * rng.uniform(0.5, 0.8))
                cv2.rectangle(self.image, (x, bottom - bh), (x + bw, bottom), col, -1)
                cv2.rectangle(self.labels, (x, bottom - bh), (x + bw, bottom), (C.BUILDING,), -1)
                x += bw

    # --- ground ----------------------------------------------------------------------------

    def _bands(self, rng: np.random.Generator, sides: tuple[Side, Side]) -> None:
        """Lateral layout of the ground: band start x, class, colour, texture; then markings."""
        road = self.style.road
        yard = (C.TREE, road.grass, GRASS) if road.yard_grass else (C.PAVEMENT, jitter(rng, road.pavement_color, 0.1),
                                                                      SLABS)
        pave = (C.PAVEMENT, road.pavement_color, SLABS)
        verge = (C.TREE, road.grass, GRASS)
        kerb = (C.PAVEMENT, road.kerb_color, KERB)
        asphalt = (C.ROAD, road.asphalt, ASPHALT)
        left, right = sides
        bands = [(-1e9, *yard), (-left.property_line, *pave)]
        if left.pavement_in > left.kerb:
            bands.append((-left.pavement_in, *verge))
        bands += [(-left.kerb - 0.2, *kerb), (-left.kerb, *asphalt), (right.kerb, *kerb)]
        if right.pavement_in > right.kerb:
            bands.append((right.kerb + 0.2, *verge))
        bands += [(right.pavement_in if right.pavement_in > right.kerb else right.kerb + 0.2, *pave),
                  (right.property_line, *yard)]
        self.band_x = np.array([b[0] for b in bands])
        self.band_class = np.array([b[1] for b in bands], np.int32)
        self.band_color = np.array([b[2] for b in bands], np.float32)
        self.band_tex = np.array([b[3] for b in bands])
        # markings: (x0, x1, colour, dashed)
        marks: list[tuple[float, float, Color, bool]] = []
        edge = road.lanes_edge
        for s in (-1, 1):  # solid lines along the traffic lanes' edges and the bike lanes' outer edges
            for x in [edge + 0.1] + ([edge + road.bike_lane - 0.1] if road.bike_lane and road.parking else []):
                marks.append((s * x - 0.07, s * x + 0.07, road.marking, False))
        lanes = road.lanes()
        for (xa, da), (xb, db) in zip(lanes[:-1], lanes[1:]):
            x = (xa + xb) / 2
            if da != db:
                if road.lanes_fwd + road.lanes_back > 2 or rng.random() < 0.5:
                    marks += [(x - 0.22, x - 0.1, road.centre_marking, False),
                              (x + 0.1, x + 0.22, road.centre_marking, False)]
                else:
                    marks.append((x - 0.07, x + 0.07, road.centre_marking, True))
            else:
                marks.append((x - 0.07, x + 0.07, road.marking, True))
        self.solid = [m for m in marks if not m[3]]
        self.dashed = [m for m in marks if m[3]]
        self.bike_color = jitter(rng, pick(rng, [rgb(150, 70, 60), rgb(80, 130, 90)]), 0.1) \
            if road.bike_lane > 0 and rng.random() < 0.5 else None
        every = float(rng.uniform(90.0, 300.0))  # zebra crossings: spacing, position, depth
        self.zebra = (every, float(rng.uniform(0, every)), float(rng.uniform(3.0, 5.0))) if rng.random() < 0.6 \
            else None

    def _ground(self, cam: Camera, w: int, h: int) -> None:
        r0 = self.ground_row
        rays = cam.pixel_rays(w, h - r0, 0.0, float(r0))
        dy = np.minimum(rays[..., 1], -1e-6)
        t = -cam.pos[1] / dy
        x = cam.pos[0] + t * rays[..., 0]
        z = t * rays[..., 2]  # distance along the road from the camera
        far = z > 5000
        x[far], z[far] = 0.0, 5000.0
        band = np.searchsorted(self.band_x, x, side="right") - 1
        color = self.band_color[band]
        cls = self.band_class[band]
        road = self.style.road
        if self.bike_color is not None:
            bike = (np.abs(x) > road.lanes_edge) & (np.abs(x) < road.lanes_edge + road.bike_lane)
            color[bike] = self.bike_color
        for x0, x1, col, _ in self.solid:
            m = (x >= x0) & (x < x1)
            color[m], cls[m] = col, C.ROAD
        look = self.style.look
        # the unlit side of the street lies in the shadow of its buildings
        shadow_side = -1.0 if look.sun_right else 1.0
        edge = shadow_side * x > road.half_width * 0.6
        color[edge] *= 1.0 - 0.35 * look.sun_strength
        fog = (1.0 - np.exp(-z / look.fog_m))[..., None]
        color = color + (np.asarray(look.haze, np.float32) - color) * fog
        self.image[r0:] = np.clip(color, 0, 255).astype(np.uint8)
        self.labels[r0:] = cls
        # texture lookup: tile column from X, row from distance along the road (+ camera travel)
        self.xt = float(np.ceil(max(abs(self.band_x[1]), abs(self.band_x[-1])) + 30.0))
        self.map_x = ((x + self.xt) * PX_PER_M).astype(np.float32)
        self.map_z = (z * PX_PER_M).astype(np.float32)
        self.atten = (1.0 / (1.0 + z / 15.0)).astype(np.float32)

    def _texture_tile(self, rng: np.random.Generator) -> np.ndarray:
        road = self.style.road
        slab = road.slab
        period = slab * max(1, round(24.0 / slab))
        th, tw = int(round(period * PX_PER_M)), int(round(2 * self.xt * PX_PER_M))
        self.map_z %= th
        fine = smooth_noise(rng, (th, tw), 2.0, 2)
        coarse = smooth_noise(rng, (th, tw), 40.0, 3)
        xs = np.arange(tw) / PX_PER_M - self.xt
        zs = np.arange(th) / PX_PER_M
        kind = self.band_tex[np.searchsorted(self.band_x, xs, side="right") - 1]
        asphalt = 22 * fine + 16 * coarse
        patches = smooth_noise(rng, (th, tw), 25.0, 2)
        asphalt -= 18 * (patches > 0.55)
        cell_x, cell_z = np.floor(xs / slab).astype(int), np.floor(zs / slab).astype(int)
        cells = rng.normal(0, 9, (int(cell_z.max()) + 1, int(cell_x.max() - cell_x.min()) + 1))
        per_slab = cells[cell_z[:, None], (cell_x - cell_x.min())[None, :]]
        joint = ((xs % slab) < 0.03)[None, :] | ((zs % slab) < 0.03)[:, None]
        slabs = per_slab + 8 * fine + 8 * coarse - 35 * joint
        grass = 40 * fine + 25 * coarse
        kerb = 8 * fine - 30 * ((zs % 1.0) < 0.02)[:, None]
        tile = np.select([kind == ASPHALT, kind == SLABS, kind == GRASS],
                         [asphalt, slabs, grass], kerb) + 128
        return np.clip(tile, 0, 255).astype(np.uint8)

    # --- per frame -------------------------------------------------------------------------

    def markings(self, z0: float, z1: float) -> list[Mesh]:
        """Dashed lane lines, zebra crossings and side-street mouths between ``z0`` and ``z1`` metres
        (world), as ground meshes of about ``CHUNK`` metres each, so each is fogged for its own depth."""
        road = self.style.road
        out = []
        length, gap = road.dash
        period = length + gap
        per_chunk = max(1, int(CHUNK // period))
        k = np.arange(np.floor(z0 / period), np.ceil(z1 / period))
        for c in range(0, len(k), per_chunk):
            kk = k[c:c + per_chunk]
            mb = MeshBuilder()
            for x0, x1, col, _ in self.dashed:
                mb.quads(_ground_quads(np.full(len(kk), x0), np.full(len(kk), x1), kk * period, kk * period + length),
                         col, C.ROAD)
            out.append(mb.build((0.0, 0.0, float(kk.mean() * period)), LAYER_MARKING))
        if self.zebra is not None:
            every, phase, depth = self.zebra
            edge = road.lanes_edge + road.bike_lane
            xs = np.arange(-edge + 0.25, edge - 0.5, 1.0)
            for zc in phase + every * np.arange(np.floor((z0 - phase) / every), np.ceil((z1 - phase) / every)):
                mb = MeshBuilder()
                mb.quads(_ground_quads(xs, xs + 0.5, np.full(len(xs), zc), np.full(len(xs), zc + depth)),
                         road.marking, C.ROAD)
                out.append(mb.build((0.0, 0.0, float(zc)), LAYER_MARKING))
        for s, sign in ((0, -1.0), (1, 1.0)):
            for a, b in self.side_streets.intervals(s, z0, z1):
                mb = MeshBuilder()
                x0, x1 = sign * road.half_width, sign * (road.half_width + SIDE_STREET_LENGTH)
                mb.poly([[x0, 0.0, a], [x1, 0.0, a], [x1, 0.0, b], [x0, 0.0, b]], road.asphalt, C.ROAD)
                out.append(mb.build((x0 + sign * 5.0, 0.0, (a + b) / 2), LAYER_MARKING))
        return out

    def apply_texture(self, image: np.ndarray, y0: int, x0: int, travel: float) -> None:
        """Modulate the ground pixels of ``image``, the canvas window at (``x0``, ``y0``), by the
        texture tile scrolled by the camera's ``travel`` along the road."""
        h, w = image.shape[:2]
        g0 = max(self.ground_row - y0, 0)  # first image row below the horizon
        if g0 >= h:
            return
        rows = slice(y0 + g0 - self.ground_row, y0 + h - self.ground_row)
        cols = slice(x0, x0 + w)
        offset = np.float32((travel * PX_PER_M) % self._tile.shape[0])
        tex = cv2.remap(self._tile, self.map_x[rows, cols], self.map_z[rows, cols] + offset, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_WRAP)
        m = (tex.astype(np.float32) - 128.0) * self.atten[rows, cols] + 128.0
        target = image[g0:]
        target[:] = cv2.multiply(target, cv2.merge([m, m, m]), scale=1 / 128.0, dtype=cv2.CV_8U)


def _ground_quads(x0: np.ndarray, x1: np.ndarray, z0: np.ndarray, z1: np.ndarray) -> np.ndarray:
    """Quads (K, 4, 3) on the ground plane from matching corner arrays."""
    q = np.zeros((len(x0), 4, 3))
    q[:, 0, 0], q[:, 1, 0], q[:, 2, 0], q[:, 3, 0] = x0, x1, x1, x0
    q[:, 0, 2], q[:, 1, 2], q[:, 2, 2], q[:, 3, 2] = z0, z0, z1, z1
    return q
