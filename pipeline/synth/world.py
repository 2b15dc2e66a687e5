"""The synthetic road world: a seeded street, its traffic and a camera, rendered frame by frame.

``render(i)`` is a pure function of (seed, size, i): all randomness comes from the seed (layout
and appearance, see :mod:`pipeline.synth.style`) or from streams keyed by block, lane, agent or
frame index, never from a generator advanced by earlier frames. Caches (scenery blocks, car models,
the agent sequences) only make sequential rendering faster.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.synth.background import MARKING_RANGE, Background
from pipeline.synth.camera import Camera
from pipeline.synth.frame import SynthFrame, SynthObject
from pipeline.synth.layout import SideStreets, street_sides
from pipeline.synth.mesh import LAYER_STREET
from pipeline.synth.painter import Fog, Silhouette, paint
from pipeline.synth.postfx import CameraResponse
from pipeline.synth.scenery import Scenery
from pipeline.synth.style import WorldStyle
from pipeline.synth.surfaces import SurfaceTexture
from pipeline.synth.traffic import Traffic
from pipeline.types import Frame

MARGIN = 8  # canvas border in pixels around the frame: room for camera shake
VIEW_BEHIND, VIEW_AHEAD = 20.0, 170.0  # stretch of street whose scenery is drawn, metres
MAX_TRACK_ID = 65535  # instance maps are uint16 (some hours of clip)


class SynthWorld:
    """A street scene for one seed: ``render(i)`` for any frame, ``frames(n)`` for the first n.

    The seed picks the camera (a dashcam driving along the road, or a static pole camera), the
    street layout, traffic density and the look (sky, colours, exposure, noise, blur). Building the
    world precomputes the sky, ground and texture tiles (a fraction of a second); each frame then
    costs a few tens of milliseconds on one core at 640x360."""

    def __init__(self, seed: int, size: tuple[int, int] = (640, 360), fps: float = 30.0):
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise EdgeSegError(f"synth: seed must be a non-negative integer, got {seed!r}")
        if len(size) != 2 or any(not isinstance(v, (int, np.integer)) or v < 16 for v in size):
            raise EdgeSegError(f"synth: size must be two integers >= 16 (width, height), got {size!r}")
        if not fps > 0:
            raise EdgeSegError(f"synth: fps must be positive, got {fps!r}")
        self.seed, self.size, self.fps = int(seed), (int(size[0]), int(size[1])), float(fps)
        self.style = style = WorldStyle.from_seed(self.seed)
        w, h = self.size
        cs = style.camera
        self._cam = Camera.looking_along_road(self.size, cs.hfov_deg, (cs.x, cs.height, 0.0), cs.yaw_deg, cs.pitch_deg)
        canvas_cam = self._cam.moved(dcx=MARGIN, dcy=MARGIN)
        sides = street_sides(style.road)
        side_streets = SideStreets.from_style(self.seed, style)
        self._fog = Fog(style.look.haze, style.look.fog_m)
        self._scenery = Scenery(self.seed, style, side_streets)
        self._traffic = Traffic(self.seed, style, sides)
        self._bg = Background(self.seed, style, canvas_cam, (w + 2 * MARGIN, h + 2 * MARGIN), sides, side_streets)
        self._surfaces = SurfaceTexture(self.seed, canvas_cam, (w + 2 * MARGIN, h + 2 * MARGIN), sides)
        self._response = CameraResponse(self.seed, style.look, self.size)
        self._scratch = np.zeros((h, w), np.uint8)
        rng = np.random.default_rng([self.seed, 0x5A4E])
        self._shake = (rng.uniform(0, 2 * np.pi, 4), rng.uniform(0.8, 1.25, 4))
        self._street = []
        if not cs.moving:  # a static camera sees the same street every frame: bake it once
            bg = self._bg
            paint(bg.image, bg.labels, bg.markings(-VIEW_BEHIND, VIEW_AHEAD), canvas_cam, self._fog)
            bg.apply_texture(bg.image, 0, 0, 0.0)
            static = self._scenery.meshes(-VIEW_BEHIND, VIEW_AHEAD)
            paint(bg.image, bg.labels, [m for m in static if m.layer < LAYER_STREET], canvas_cam, self._fog)
            self._street = [m for m in static if m.layer >= LAYER_STREET]

    @property
    def moving(self) -> bool:
        return self.style.camera.moving

    def track_count(self, n_frames: int) -> int:
        """Upper bound of the track ids that can appear in frames ``0..n_frames-1``."""
        return self._traffic.track_count(max(n_frames - 1, 0) / self.fps)

    def shake(self, t: float) -> tuple[int, int]:
        """Integer pixel offset of the image at time ``t``: two incommensurate sines per axis."""
        phase, freq = self._shake
        cs = self.style.camera
        w = 2 * np.pi * cs.shake_hz * t * freq
        dx = 0.6 * np.sin(w[0] + phase[0]) + 0.4 * np.sin(2.3 * w[1] + phase[1])
        dy = 0.6 * np.sin(w[2] + phase[2]) + 0.4 * np.sin(2.3 * w[3] + phase[3])
        return (int(np.clip(np.rint(cs.shake_px * dx), -MARGIN, MARGIN)),
                int(np.clip(np.rint(cs.shake_px * dy), -MARGIN, MARGIN)))

    def render(self, index: int) -> SynthFrame:
        if index < 0:
            raise EdgeSegError(f"synth:{self.seed}: frame index must be >= 0, got {index}")
        w, h = self.size
        t = index / self.fps
        if self._traffic.track_count(t) > MAX_TRACK_ID:
            raise EdgeSegError(f"synth:{self.seed}: frame {index} lies beyond the clip length whose track ids fit "
                               f"16-bit instance maps")
        dx, dy = self.shake(t)
        travel = self.style.camera.speed * t
        cam = self._cam.moved(dz=travel, dcx=-dx, dcy=-dy)
        x0, y0 = MARGIN + dx, MARGIN + dy
        bg = self._bg
        img = bg.image[y0:y0 + h, x0:x0 + w].copy()
        lab = bg.labels[y0:y0 + h, x0:x0 + w].copy()
        if self.moving:
            paint(img, lab, bg.markings(travel - VIEW_BEHIND, travel + MARKING_RANGE), cam, self._fog)
            bg.apply_texture(img, y0, x0, travel)
            scenery = self._scenery.meshes(travel - VIEW_BEHIND, travel + VIEW_AHEAD)
        else:
            scenery = self._street
        agents, shadows = self._traffic.meshes(t, cam.pos)
        silhouettes = paint(img, lab, shadows + scenery + agents, cam, self._fog, self._scratch)
        semantic = (lab & 0xFF).astype(np.uint8)
        instance_ids = (lab >> 8).astype(np.uint16)
        objects = _objects(semantic, instance_ids, silhouettes)
        image = self._response.apply(img, index, self._surfaces.gain(semantic, y0, x0, travel))
        frame = Frame(image=image, index=index, pts=index / self.fps, source_id=f"synth:{self.seed}")
        return SynthFrame(frame=frame, semantic=semantic, instance_ids=instance_ids, objects=objects)

    def frames(self, n: int) -> Iterator[SynthFrame]:
        """The first ``n`` frames in order."""
        for i in range(n):
            yield self.render(i)


def _objects(semantic: np.ndarray, instance_ids: np.ndarray, silhouettes: list[Silhouette]) -> tuple[SynthObject, ...]:
    out = []
    for s in sorted(silhouettes, key=lambda s: s.track_id):
        x0, y0, x1, y1 = s.bbox
        m = (instance_ids[y0:y1, x0:x1] == s.track_id).view(np.uint8)
        visible = cv2.countNonZero(m)
        if visible == 0:
            continue
        bx, by, bw, bh = cv2.boundingRect(m)
        box = np.array([x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh], np.float32)
        label = int(semantic[y0 + by:y0 + by + bh, x0 + bx:x0 + bx + bw][m[by:by + bh, bx:bx + bw] > 0][0])
        out.append(SynthObject(s.track_id, label, box, min(1.0, visible / max(s.pixels, 1))))
    return tuple(out)
