"""Instance-segmentation training data for our road YOLACT: car, pedestrian and bicyclist masks.

Two sources, one representation (:class:`InstanceImage`: a BGR image, a uint16 instance-id map and a
class per instance; instances never overlap, so one id map holds them all and one warp moves them all):

- the synthetic road world (:func:`synth_instances`): exact per-object masks from the renderer. Objects
  with a tiny visible area or hidden mostly behind others are left out: a 20-pixel sliver of a car is
  not something the detector can learn to find, and as ground truth it would only lower AP.
- real CamVid frames (:func:`camvid_instances`): CamVid has no instance labels, so instances are the
  8-connected components of each thing class's label map. Known limitation: cars (or people) that
  touch in the image merge into ONE instance, and one object cut in two by a pole becomes two; the
  detector learns some of that merging. Components under ``min_area`` pixels are dropped.

What is left out need not become background. A 25-pixel pedestrian left out of the ground truth looks like
a 35-pixel one kept in it, and trained as background it is what OHEM picks first as a hard negative,
teaching the head to doubt every distant person. With ``ignore_rest`` the sources keep such objects as
:data:`IGNORE` instances, and the :class:`Augmenter` turns them (and boxes it finds too small) into
don't-care regions of the :class:`TrainSample`, which the loss leaves out of its negatives, as COCO's crowd
regions are. Validation frames never carry them: what is scored stays as the instance rules define it.

Augmentation, in the order the training script applies it:

- :class:`CopyPaste` pastes real CamVid instances (pixels under the mask) onto other CamVid frames,
  standing on road (cars) or road/pavement (people, cyclists), scaled with their distance below the
  horizon as a road camera sees them, and in depth order: a pasted object hides objects farther away
  (their masks lose those pixels) and is hidden by nearer ones. Exact masks at no labelling cost.
- :func:`foveated` (models whose card declares a fovea) warps the whole frame as inference will.
- :class:`Augmenter` picks a random window (zoom in, or zoom out with mean-coloured borders; aspect
  jitter), flips, stretches the window to the model's square input like YOLACT (no letterbox), jitters
  colour, and derives boxes from the warped masks, so boxes are always tight around what is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from pipeline.eval.datasets import CamVidDataset, SynthDataset
from pipeline.foveate import Foveation
from pipeline.labels import CAMVID
from pipeline.synth import SynthFrame, SynthObject, SynthWorld
from pipeline.train.synth_frames import SynthFrames
from pipeline.types import Instances

THING_CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Bicyclist")  # CamVid naming, model class order
_CAMVID_THINGS = np.array([CAMVID.index(name) for name in THING_CLASSES])  # 8, 9, 10
_THING_OF_CAMVID = np.full(256, -1, np.int64)
_THING_OF_CAMVID[_CAMVID_THINGS] = np.arange(len(THING_CLASSES))
ROAD, PAVEMENT = 1, 2  # values of InstanceImage.ground
_CAR = THING_CLASSES.index("Car")
IGNORE = -1  # InstanceImage.classes of an object the instance rules leave out, kept as a don't-care region


@dataclass(frozen=True)
class InstanceImage:
    """An image and its instances, as the augmentations pass it along."""

    image: np.ndarray  # HxWx3 uint8 BGR
    ids: np.ndarray  # HxW uint16: 0 = no instance, k = instance k-1
    classes: np.ndarray  # (N,) int64 indices into THING_CLASSES, or IGNORE
    ground: np.ndarray | None = None  # HxW uint8 0 / ROAD / PAVEMENT where objects may be pasted; None: no pastes

    def masks(self) -> np.ndarray:
        """(N, H, W) bool, one mask per instance."""
        return self.ids[None] == np.arange(1, len(self.classes) + 1, dtype=np.uint16)[:, None, None]

    def to_instances(self) -> Instances:
        """The ground truth as the pipeline's Instances (what mask AP compares predictions with), without
        IGNORE instances."""
        scored = self.classes >= 0
        masks = self.masks()[scored]
        return Instances(classes=self.classes[scored].astype(np.int32), scores=np.ones(len(masks), np.float32),
                         boxes=mask_boxes(masks), masks=masks, class_names=THING_CLASSES)


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, 4) float32 x1, y1, x2, y2 around each mask in pixel-edge coordinates (a mask on
    columns 3..7 has x1 = 3, x2 = 8, as in COCO and SynthObject). Empty masks give a zero box."""
    if len(masks) == 0:
        return np.zeros((0, 4), np.float32)
    cols, rows = masks.any(axis=1), masks.any(axis=2)
    w, h = cols.shape[1], rows.shape[1]
    boxes = np.stack([cols.argmax(1), rows.argmax(1), w - cols[:, ::-1].argmax(1), h - rows[:, ::-1].argmax(1)], 1)
    return np.where(cols.any(1)[:, None], boxes, 0).astype(np.float32)


def synth_instances(frame: SynthFrame, min_area: int, min_visible: float, ignore_rest: bool = False) -> InstanceImage:
    """A rendered synthetic frame's objects with at least ``min_area`` visible pixels and at least
    ``min_visible`` of their unoccluded area visible; with ``ignore_rest`` the other visible things too, as
    IGNORE."""
    track_ids = frame.instance_ids
    areas = np.bincount(track_ids.ravel(), minlength=max((o.track_id for o in frame.objects), default=0) + 1)

    def scored(o: SynthObject) -> bool:
        return areas[o.track_id] >= min_area and o.visible_fraction >= min_visible

    keep = [o for o in frame.objects if _THING_OF_CAMVID[o.label] >= 0 and areas[o.track_id] > 0
            and (ignore_rest or scored(o))]
    lut = np.zeros(len(areas), np.uint16)
    lut[[o.track_id for o in keep]] = np.arange(1, len(keep) + 1)
    classes = np.array([_THING_OF_CAMVID[o.label] if scored(o) else IGNORE for o in keep], np.int64)
    return InstanceImage(frame.frame.image, lut[track_ids], classes)


def camvid_instances(image: np.ndarray, labels: np.ndarray, min_area: int, ignore_rest: bool = False) -> InstanceImage:
    """Instances of a CamVid frame: 8-connected components of each thing class with >= ``min_area`` pixels
    (touching objects of one class merge; see the module docstring); with ``ignore_rest`` the smaller ones
    too, as IGNORE. Road and pavement become ``ground``."""
    ids = np.zeros(labels.shape, np.uint16)
    classes: list[int] = []
    for k, camvid_id in enumerate(_CAMVID_THINGS):
        n, components, stats, _ = cv2.connectedComponentsWithStats((labels == camvid_id).view(np.uint8), connectivity=8)
        big = stats[1:, cv2.CC_STAT_AREA] >= min_area
        chosen = np.arange(1, n) if ignore_rest else np.flatnonzero(big) + 1
        lut = np.zeros(n, np.uint16)
        lut[chosen] = np.arange(len(classes) + 1, len(classes) + 1 + len(chosen))
        ids += lut[components]  # components of different classes never share a pixel
        classes.extend(np.where(big[chosen - 1], k, IGNORE).tolist())
    ground = np.zeros(labels.shape, np.uint8)
    ground[labels == CAMVID.index("Road")] = ROAD
    ground[labels == CAMVID.index("Pavement")] = PAVEMENT
    return InstanceImage(image, ids, np.array(classes, np.int64), ground)


def load_camvid(root: str | Path, split: str, min_area: int, ignore_rest: bool = False) -> list[InstanceImage]:
    """A whole CamVid split with its derived instances, in memory (367 training frames are ~200 MB; decoding
    JPEGs and labelling components every epoch would cost more than a training step)."""
    return [camvid_instances(item.image, item.labels, min_area, ignore_rest) for item in CamVidDataset(root, split)]


def synth_validation(seeds: range, min_area: int, min_visible: float) -> list[InstanceImage]:
    """The held-out synthetic frames that `edgeseg eval` scores (SynthDataset's choice: ``frames_per_seed``
    frames one second apart per seed, at its frame size), with their instance ground truth."""
    frames = []
    for seed in seeds:
        world = SynthWorld(seed=seed, size=SynthDataset.size)
        for k in range(SynthDataset.frames_per_seed):
            frames.append(synth_instances(world.render(k * SynthDataset.frame_step), min_area, min_visible))
    return frames


class SynthSource:
    """Synthetic frames at random (seed, index) (:class:`SynthFrames`) as instance images."""

    def __init__(self, seeds: range, max_index: int, size: tuple[int, int], min_area: int, min_visible: float,
                 rng: np.random.Generator, ignore_rest: bool = False):
        self.frames = SynthFrames(seeds, max_index, size, rng)
        self.min_area, self.min_visible, self.ignore_rest = min_area, min_visible, ignore_rest

    def sample(self) -> InstanceImage:
        return synth_instances(self.frames.sample(), self.min_area, self.min_visible, self.ignore_rest)

    def build_all(self) -> None:
        """Build every world before worker processes fork (:meth:`SynthFrames.build_all`)."""
        self.frames.build_all()


@dataclass(frozen=True)
class Patch:
    """A real instance cut out of its frame for pasting."""

    image: np.ndarray  # hxwx3 uint8 BGR, the pixels of its box
    mask: np.ndarray  # hxw bool
    cls: int
    bottom: float  # y of its box's bottom edge over its frame's height


class PatchBank:
    """Every instance of the given frames that is whole enough to paste elsewhere: at least ``min_area``
    pixels, not cut by the frame border (a car cut off at the frame edge looks cut off anywhere), and
    standing below the horizon (its size is then predictable from where it stands)."""

    def __init__(self, frames: Sequence[InstanceImage], min_area: int, horizon: float):
        self.by_class: list[list[Patch]] = [[] for _ in THING_CLASSES]
        for frame in frames:
            masks = frame.masks()
            h, w = frame.ids.shape
            boxes = mask_boxes(masks).astype(int)
            areas = masks.sum(axis=(1, 2))
            for mask, (x1, y1, x2, y2), area, cls in zip(masks, boxes, areas, frame.classes.tolist()):
                if (cls == IGNORE or area < min_area or x1 == 0 or y1 == 0 or x2 == w or y2 == h
                        or y2 < (horizon + 0.02) * h):
                    continue
                self.by_class[cls].append(Patch(frame.image[y1:y2, x1:x2].copy(), mask[y1:y2, x1:x2].copy(),
                                                cls, y2 / h))
        self.classes = [c for c, patches in enumerate(self.by_class) if patches]

    def __len__(self) -> int:
        return sum(len(p) for p in self.by_class)


class CopyPaste:
    """Paste 1..``max_objects`` bank instances onto a frame that has ``ground``.

    Placement follows a road camera's geometry: an object's bottom edge stands on a ground pixel (road for
    cars, road or pavement for people and cyclists) and its size scales with the distance of that edge below
    the horizon (``horizon``: its height over the frame height; CamVid's camera puts it at ~0.44: a
    least-squares fit of box height against bottom edge over the training instances gives 0.47 for cars,
    0.42 for pedestrians, 0.46 for cyclists). Classes are drawn uniformly, so rare
    cyclists are pasted as often as cars. Depth order: nearer objects (lower bottom edge) cover farther
    ones; covered instances keep only their visible pixels and vanish below ``min_area`` (with ``ignore_rest``
    they become IGNORE instead)."""

    def __init__(self, bank: PatchBank, horizon: float, max_objects: int, min_area: int, rng: np.random.Generator,
                 max_rescale: float = 3.0, ignore_rest: bool = False):
        self.bank, self.horizon, self.max_objects, self.min_area = bank, horizon, max_objects, min_area
        self.rng = rng
        self.max_rescale = max_rescale
        self.ignore_rest = ignore_rest

    def __call__(self, sample: InstanceImage) -> InstanceImage:
        if sample.ground is None or not self.bank.classes:
            return sample
        rng = self.rng
        h, w = sample.ids.shape
        horizon = self.horizon * h
        image, ids = sample.image.copy(), sample.ids.copy()
        classes = sample.classes.tolist()
        bottoms = _bottom_rows(ids, len(classes))  # index 0 (no instance) is -1: anything covers background
        road_y, road_x = np.nonzero(sample.ground == ROAD)
        any_y, any_x = np.nonzero(sample.ground)
        for _ in range(int(rng.integers(1, self.max_objects + 1))):
            cls = self.bank.classes[rng.integers(len(self.bank.classes))]
            patch = self.bank.by_class[cls][rng.integers(len(self.bank.by_class[cls]))]
            ys, xs = (road_y, road_x) if cls == _CAR else (any_y, any_x)
            # bottom edges whose rescale of the patch stays within max_rescale either way (rows are sorted)
            below = patch.bottom * h - horizon
            lo, hi = np.searchsorted(ys, [horizon + below / self.max_rescale, horizon + below * self.max_rescale])
            if hi <= lo:
                continue
            j = rng.integers(lo, hi)
            bottom, centre = int(ys[j]) + 1, int(xs[j])
            scale = (bottom - horizon) / below
            ph, pw = round(patch.mask.shape[0] * scale), round(patch.mask.shape[1] * scale)
            if ph < 4 or pw < 4 or ph > h:
                continue
            pixels = cv2.resize(patch.image, (pw, ph), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(patch.mask.view(np.uint8), (pw, ph), interpolation=cv2.INTER_NEAREST).view(bool)
            if rng.random() < 0.5:
                pixels, mask = pixels[:, ::-1], mask[:, ::-1]
            x1, y1 = centre - pw // 2, bottom - ph
            cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x1 + pw, w), min(bottom, h)
            if cx2 <= cx1 or cy2 <= cy1:
                continue
            region = (slice(cy1, cy2), slice(cx1, cx2))
            inside = (slice(cy1 - y1, cy2 - y1), slice(cx1 - x1, cx2 - x1))
            covers = mask[inside] & (bottoms[ids[region]] < bottom - 1)
            image[region][covers] = pixels[inside][covers]
            ids[region][covers] = len(classes) + 1
            classes.append(cls)
            bottoms = np.append(bottoms, bottom - 1)
        areas = np.bincount(ids.ravel(), minlength=len(classes) + 1)[1:]
        big = areas >= self.min_area
        keep = areas > 0 if self.ignore_rest else big
        lut = np.zeros(len(classes) + 1, np.uint16)
        lut[1:][keep] = np.arange(1, keep.sum() + 1)
        return InstanceImage(image, lut[ids], np.where(big, np.array(classes, np.int64), IGNORE)[keep], sample.ground)


def _bottom_rows(ids: np.ndarray, n: int) -> np.ndarray:
    """(n + 1,) the lowest row of each instance id 0..n (-1 for id 0 and for absent ids)."""
    present = np.zeros((n + 1, ids.shape[0]), bool)
    present[ids, np.arange(ids.shape[0])[:, None]] = True
    present[0] = False
    last = ids.shape[0] - 1 - present[:, ::-1].argmax(axis=1)
    return np.where(present.any(axis=1), last, -1)


@dataclass(frozen=True)
class TrainSample:
    """One augmented image at the model's input size and its targets, as the YOLACT loss reads them."""

    image: np.ndarray  # SxSx3 uint8 BGR, normalised by the model card's InputSpec like any frame
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2 over the input size, in [0, 1]
    classes: np.ndarray  # (N,) int64 indices into THING_CLASSES
    masks: np.ndarray  # (N, S, S) uint8 0/1
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # (M, 4) don't-care boxes


def foveated(sample: InstanceImage, fovea: Foveation) -> InstanceImage:
    """The frame through a foveated model's warp at its own size (image bilinear, ids and ground nearest), so
    that training sees objects as that model's input shows them; the augmentation's window comes after."""
    def nearest(labels: np.ndarray) -> np.ndarray:
        return fovea.warp(labels, interpolation=cv2.INTER_NEAREST)

    return replace(sample, image=fovea.warp(sample.image), ids=nearest(sample.ids),
                   ground=None if sample.ground is None else nearest(sample.ground))


class Augmenter:
    """Random window -> flip -> stretch to ``size`` (width, height) -> photometric jitter -> boxes from masks.

    The window's side is ``scale`` times the frame's (below 1 zooms in, above 1 zooms out and fills the
    border with ``fill``, the model's mean colour, which normalises to zero), its aspect jittered by up to
    ``aspect``. Instances whose visible box is under ``min_box`` input pixels wide or high are dropped, like
    YOLACT's discard_box_width/height (4/550 of the input); with ``ignore_small`` their boxes, and those of
    IGNORE instances, become the sample's don't-care regions. At scale 1 and aspect 1 the whole frame is
    stretched to the input, whatever the two aspect ratios, as inference does."""

    def __init__(self, size: tuple[int, int], scale: tuple[float, float], aspect: float, flip: float,
                 fill: tuple[int, int, int], min_box: float, rng: np.random.Generator, photometric: bool = True,
                 ignore_small: bool = False):
        self.size = (int(size[0]), int(size[1]))
        self.scale, self.aspect, self.flip = scale, aspect, flip
        self.fill = tuple(float(v) for v in fill)
        self.min_box, self.rng, self.photometric = min_box, rng, photometric
        self.ignore_small = ignore_small

    def __call__(self, sample: InstanceImage) -> TrainSample:
        rng = self.rng
        h, w = sample.ids.shape
        s = rng.uniform(*self.scale)
        a = np.exp(rng.uniform(-np.log(self.aspect), np.log(self.aspect)))
        ww, wh = w * s * np.sqrt(a), h * s / np.sqrt(a)
        x0 = rng.uniform(min(0.0, w - ww), max(0.0, w - ww))
        y0 = rng.uniform(min(0.0, h - wh), max(0.0, h - wh))
        image, ids = self._warp(sample, (x0, y0, ww, wh), rng.random() < self.flip)
        if self.photometric:
            image = jitter_colours(image, rng)
        return self._targets(image, ids, sample.classes)

    def fit(self, sample: InstanceImage) -> TrainSample:
        """The whole frame stretched to the input size, no randomness: what inference sees."""
        h, w = sample.ids.shape
        image, ids = self._warp(sample, (0.0, 0.0, float(w), float(h)), False)
        return self._targets(image, ids, sample.classes)

    def _warp(self, sample: InstanceImage, window: tuple[float, float, float, float],
              flip: bool) -> tuple[np.ndarray, np.ndarray]:
        x0, y0, ww, wh = window
        width, height = self.size
        sx, sy = width / ww, height / wh
        # pixel centres map like cv2.resize's: dst = (src + 0.5 - origin) * scale - 0.5
        tx, ty = (0.5 - x0) * sx - 0.5, (0.5 - y0) * sy - 0.5
        m = np.array([[-sx, 0, width - 1 - tx], [0, sy, ty]] if flip else [[sx, 0, tx], [0, sy, ty]], np.float64)
        image = cv2.warpAffine(sample.image, m, self.size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=self.fill)
        ids = cv2.warpAffine(sample.ids, m, self.size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=0)
        return image, ids

    def _targets(self, image: np.ndarray, ids: np.ndarray, classes: np.ndarray) -> TrainSample:
        masks = ids[None] == np.arange(1, len(classes) + 1, dtype=np.uint16)[:, None, None]
        boxes = mask_boxes(masks)
        big = ((boxes[:, 2] - boxes[:, 0]) >= self.min_box) & ((boxes[:, 3] - boxes[:, 1]) >= self.min_box)
        keep = big & (classes >= 0)
        scale = np.array(self.size * 2, np.float32)  # x1, y1, x2, y2 over width, height, width, height
        present = boxes[:, 2] > boxes[:, 0]  # an instance the window left no pixel of has a zero box
        ignore = boxes[~keep & present] / scale if self.ignore_small else np.zeros((0, 4), np.float32)
        return TrainSample(image, boxes[keep] / scale, classes[keep], masks[keep].view(np.uint8), ignore)


def jitter_colours(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast, colour cast, brightness and saturation jitter, sometimes a slight blur (uint8 in and out):
    the spread between CamVid's camera, the synthetic world's looks and the cameras users bring."""
    gain = rng.uniform(0.7, 1.3) * rng.uniform(0.9, 1.1, size=3)
    out = image.astype(np.float32) * gain.astype(np.float32) + np.float32(rng.uniform(-25, 25))
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * np.float32(rng.uniform(0.6, 1.4))
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
