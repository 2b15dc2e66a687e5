"""Panoptic fusion: the semantic net's stuff and the instance model's things in one map where every pixel is
exactly one (class, instance), or void.

Inputs: a :class:`SemanticMap` (its classes may include thing classes, as CamVid's 11 do) and
:class:`Instances` (class names possibly from another label set, e.g. COCO's), joined by a declared
:class:`PanopticConfig`: which semantic classes are stuff and which panoptic class each is, which instance
classes are things and which panoptic class each is. Panoptic classes, ids and colours come from one
:class:`~pipeline.labels.LabelSet` (CamVid by default: Sky ... Fence stuff; Car, Pedestrian, Bicyclist
things).

Rules, in the order applied:

1. Things. Instances of a mapped class whose score is at least ``score_threshold`` are taken in
   descending score order; each claims the pixels of its mask that no higher-scored instance holds. An
   instance left with less than ``min_visible`` of its mask (0.5, the heuristic of Panoptic FPN and
   UPSNet) is dropped: what remains of it is mostly an overlap artefact, not an object. Taking the
   highest score first gives the same picture as painting in ascending score order (the higher score
   wins each overlap), except that a dropped instance frees its pixels for lower-scored ones instead of
   occluding them. Instances win over stuff everywhere they are kept: an instance model's mask is the
   sharper evidence for an object, and the score threshold is the confidence gate.
2. Stuff. Every other pixel takes its semantic class if that class is declared stuff. Pixels of the
   semantic net's thing classes (Car, ...) that no kept instance covers become VOID rather than a
   "crowd" stuff segment: downstream code counts, tracks and measures thing segments as one object
   each, which an identity-less blob would break; the instance model looked there and did not find a
   confident object, and void says "unknown" honestly (in PQ, void predictions cost recall only, while
   a wrong thing segment is also a false positive). Pixels the semantic net left void (255 after its
   confidence threshold) stay void.
3. Small stuff fragments (8-connected regions of one class smaller than ``min_stuff_area`` pixels) become
   void: specks of semantic noise, and slivers of road left between overlapping cars, are not regions a
   consumer should act on. One stuff class forms one segment however many regions it has (the COCO and
   Cityscapes panoptic convention).

Ids (the Cityscapes scheme, shifted by one so that void stays 0): a class with index ``c`` in the panoptic
label set has category id ``c + 1`` (CamVid's Sky is index 0; COCO category ids start at 1 for the same
reason); a stuff segment's id is ``(c + 1) * 1000``, a thing's ``(c + 1) * 1000 + n`` with ``n`` in 1..999:
the track id modulo 1000 once a tracker has run (an object keeps its id, and its PNG colour, across
frames), else its position in the frame's instance list plus 1. Where two objects of a class would get
the same ``n`` (tracks 5 and 1005 in one frame, or a track id that is a multiple of 1000), the
lower-scored one takes the smallest free number; the segment still carries its true track id.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.errors import EdgeSegError
from pipeline.labels import CAMVID, LABEL_SETS, LabelSet
from pipeline.types import Instances, PanopticMap, PanopticSegment, SemanticMap

OFFSET = 1000  # id = category id * OFFSET + instance number
VOID = 255  # "no panoptic class" in the uint8 per-pixel class maps used while fusing (label sets have < 255)
CAMVID_STUFF = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence")
CAMVID_THINGS = ("Car", "Pedestrian", "Bicyclist")


class PanopticConfig(BaseModel):
    """Which classes are stuff and things and how the two models' names map to the panoptic label set.

    ``stuff`` maps semantic model class -> panoptic stuff class, ``things`` instance model class -> panoptic
    thing class; a list means each name maps to itself. A COCO-trained instance model on CamVid panoptic
    classes: ``things: {car: Car, truck: Car, bus: Car, person: Pedestrian, bicycle: Bicyclist}``. Semantic
    classes not in ``stuff`` give void, instance classes not in ``things`` are ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_set: str = CAMVID.name
    stuff: dict[str, str] = Field(default_factory=lambda: {c: c for c in CAMVID_STUFF})
    things: dict[str, str] = Field(default_factory=lambda: {c: c for c in CAMVID_THINGS})
    score_threshold: float = Field(default=0.5, ge=0, le=1)
    min_visible: float = Field(default=0.5, ge=0, le=1)
    # 16 px (a 4x4 speck) removes the semantic net's isolated specks yet keeps thin real structure: on the
    # synthetic world's exact ground truth at 640x360 (seeds 7 and 9001, 20 frames) fragment removal alone
    # costs stuff PQ 1.4 points at 8 px, 2.3 at 16, 4.7 at 32 and 6.7 at 64 (distant poles, pavement and
    # fence slivers between occluders are genuinely that small).
    min_stuff_area: int = Field(default=16, ge=0)

    @field_validator("stuff", "things", mode="before")
    @classmethod
    def _list_maps_names_to_themselves(cls, value: object) -> object:
        return {name: name for name in value} if isinstance(value, (list, tuple)) else value

    @model_validator(mode="after")
    def _targets_are_classes_of_the_label_set(self) -> PanopticConfig:
        if self.label_set not in LABEL_SETS:
            raise ValueError(f"label_set '{self.label_set}' is unknown (known: {', '.join(LABEL_SETS)})")
        classes = LABEL_SETS[self.label_set].classes
        for key in ("stuff", "things"):
            for source, target in getattr(self, key).items():
                if target not in classes:
                    raise ValueError(f"{key}: '{source}' maps to '{target}', not a class of {self.label_set}")
        both = set(self.stuff.values()) & set(self.things.values())
        if both:
            raise ValueError(f"classes {sorted(both)} are declared both stuff and things")
        return self

    @property
    def labels(self) -> LabelSet:
        return LABEL_SETS[self.label_set]


class PanopticFuser:
    """``fuser(semantic, instances) -> PanopticMap`` per frame, by the rules of the module docstring.

    The lookup tables from each model's class list to panoptic classes are built once per class list and
    kept: per frame, the work is a few whole-frame gathers, one crop-sized pass per instance and one
    connected-components pass per stuff class present."""

    def __init__(self, config: PanopticConfig | None = None):
        self.config = config or PanopticConfig()
        labels = self.config.labels
        self.classes = labels.classes
        self.palette = np.asarray(labels.palette, np.uint8)
        self._stuff_classes = np.array(sorted({labels.index(t) for t in self.config.stuff.values()}), np.int64)
        self._stuff_ids = np.zeros(256, np.int32)  # panoptic class (VOID included) -> stuff segment id
        self._stuff_ids[self._stuff_classes] = (self._stuff_classes + 1) * OFFSET
        self._stuff_luts: dict[tuple[str, ...], np.ndarray] = {}
        self._thing_luts: dict[tuple[str, ...], np.ndarray] = {}

    def __call__(self, semantic: SemanticMap, instances: Instances | None = None) -> PanopticMap:
        height, width = semantic.labels.shape
        if instances is not None and instances.masks.shape[1:] != (height, width):
            raise ValueError(f"instance masks {instances.masks.shape[1:]} and semantic map {(height, width)} "
                             f"differ in size")
        ids = np.zeros((height, width), np.int32)
        things = self._paint_things(instances, ids) if instances is not None else []
        stuff = cv2.LUT(semantic.labels, self._stuff_lut(semantic.classes))  # 5x numpy's gather on uint8
        if things:
            stuff[ids > 0] = VOID
        areas = self._remove_small_fragments(stuff)
        ids += np.take(self._stuff_ids, stuff)  # stuff is VOID (id 0) wherever a thing already is
        segments = [PanopticSegment(int(c + 1) * OFFSET, int(c), False, int(areas[c]))
                    for c in self._stuff_classes if areas[c]]
        segments.extend(things)
        return PanopticMap(ids, tuple(sorted(segments, key=lambda s: s.id)), self.classes, self.palette)

    def _paint_things(self, instances: Instances, ids: np.ndarray) -> list[PanopticSegment]:
        """Write the kept instances' ids into ``ids`` (highest score first, each into pixels still 0) and
        return their segments. Each instance is handled inside the bounding box of its mask, found for all
        masks in two reductions."""
        categories = self._thing_lut(instances.class_names)[instances.classes]
        scores = instances.scores
        eligible = np.flatnonzero((categories >= 0) & (scores >= self.config.score_threshold))
        if not eligible.size:
            return []
        order = eligible[np.argsort(-scores[eligible], kind="stable")]
        tracks = instances.track_ids
        preferred = tracks[order] if tracks is not None else order + 1
        values = (categories[order] + 1) * OFFSET + instance_numbers(categories[order], preferred)
        masks = instances.masks
        rows, cols = masks.any(axis=2), masks.any(axis=1)
        kept = []
        for i, value in zip(order.tolist(), values.tolist()):
            r, c = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
            if not r.size:
                continue
            box = slice(r[0], r[-1] + 1), slice(c[0], c[-1] + 1)
            mask, region = masks[i][box], ids[box]
            visible = mask & (region == 0)
            area = np.count_nonzero(visible)
            if not area or area < self.config.min_visible * np.count_nonzero(mask):
                continue
            region[visible] = value
            kept.append(PanopticSegment(value, int(categories[i]), True, int(area),
                                        int(tracks[i]) if tracks is not None else None))
        return kept

    def _remove_small_fragments(self, stuff: np.ndarray) -> np.ndarray:
        """Set 8-connected regions of one stuff class smaller than ``min_stuff_area`` to VOID, in place;
        return the pixels left per class (256 counts).

        Per class present: components inside the rows and columns the class spans, their areas by one
        bincount, and a gather only when some region is small. ``connectedComponentsWithStats`` would
        give the areas too, but its statistics (boxes, centroids) cost more than the labelling itself."""
        minimum = self.config.min_stuff_area
        counts = np.bincount(stuff.ravel(), minlength=256)
        if not minimum:
            return counts
        for c in self._stuff_classes[counts[self._stuff_classes] > 0].tolist():
            member = stuff == c
            if counts[c] < minimum:  # every region of the class is small: no need to find them
                stuff[member] = VOID
                counts[c] = 0
                continue
            rows, cols = np.flatnonzero(member.any(axis=1)), np.flatnonzero(member.any(axis=0))
            box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
            n, regions = cv2.connectedComponents(member[box].view(np.uint8), connectivity=8)
            if n <= 2:  # one region, of counts[c] >= minimum pixels
                continue
            areas = np.bincount(regions.ravel(), minlength=n)
            small = areas < minimum
            small[0] = False  # label 0 is everything outside the class
            if small.any():
                stuff[box][np.take(small, regions)] = VOID
                counts[c] -= areas[small].sum()
        return counts

    def _stuff_lut(self, classes: tuple[str, ...]) -> np.ndarray:
        """256-entry uint8 table: semantic class index -> panoptic stuff class, VOID for the rest (thing
        classes, classes not declared, the semantic net's own void values)."""
        lut = self._stuff_luts.get(classes)
        if lut is None:
            lut = np.full(256, VOID, np.uint8)
            for source, target in self.config.stuff.items():
                if source not in classes:
                    raise EdgeSegError(f"panoptic.stuff: '{source}' is not a class of the semantic model "
                                       f"(its classes: {', '.join(classes)})")
                lut[classes.index(source)] = self.config.labels.index(target)
            self._stuff_luts[classes] = lut
        return lut

    def _thing_lut(self, class_names: tuple[str, ...]) -> np.ndarray:
        """Instance class index -> panoptic thing class, -1 for classes not declared things."""
        lut = self._thing_luts.get(class_names)
        if lut is None:
            lut = np.full(len(class_names), -1, np.int64)
            for source, target in self.config.things.items():
                if source not in class_names:
                    raise EdgeSegError(f"panoptic.things: '{source}' is not a class of the instance model "
                                       f"(its classes: {', '.join(class_names)})")
                lut[class_names.index(source)] = self.config.labels.index(target)
            self._thing_luts[class_names] = lut
        return lut


def instance_numbers(categories: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """Instance numbers 1..999, unique within each class: ``preferred % 1000`` where that is free, the
    smallest free number where it is 0 or taken by an earlier object of the class (objects come in
    priority order). Raises ValueError past 999 objects of one class."""
    numbers = np.asarray(preferred, np.int64) % OFFSET
    for c in np.unique(categories):
        members = np.flatnonzero(categories == c)
        wanted = numbers[members]
        clash = np.ones(members.size, bool)
        clash[np.unique(wanted, return_index=True)[1]] = False
        clash |= wanted == 0
        if clash.any():
            free = np.setdiff1d(np.arange(1, OFFSET), wanted[~clash])[: np.count_nonzero(clash)]
            if free.size < np.count_nonzero(clash):
                raise ValueError(f"more than {OFFSET - 1} objects of class {int(c)} in one frame")
            numbers[members[clash]] = free
    return numbers


def panoptic_from_ids(labels: np.ndarray, instance_ids: np.ndarray, label_set: LabelSet,
                      thing_classes: tuple[str, ...]) -> PanopticMap:
    """A panoptic map from a label map and an instance-id map (0 = no instance), the form of ground truth
    the synthetic world and Cityscapes-style datasets give: each instance id is one thing segment, of
    the class its first pixel (row-major) has; every other pixel of a class that is not in
    ``thing_classes`` joins that class's stuff segment; thing-class pixels without an instance and
    label values outside the label set (its void) are void. Ids as in the module docstring, the
    instance id standing for the track id."""
    k = label_set.num_classes
    thing = np.zeros(256, bool)
    thing[[label_set.index(name) for name in thing_classes]] = True
    flat_labels = labels.ravel()
    stuff_key = np.where((flat_labels < k) & ~thing[flat_labels], flat_labels, VOID).astype(np.int64)
    key = np.where(instance_ids.ravel() > 0, instance_ids.ravel().astype(np.int64) + 256, stuff_key)
    keys, first, inverse, areas = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    is_instance = keys >= 256
    categories = np.where(is_instance, flat_labels[first], keys)
    if not thing[categories[is_instance]].all():
        raise ValueError("an instance's pixels carry a class that is not a thing class")
    table = (categories + 1) * OFFSET
    table[keys == VOID] = 0
    instances = np.flatnonzero(is_instance)
    table[instances] += instance_numbers(categories[instances], keys[instances] - 256)
    segments = tuple(
        PanopticSegment(int(table[j]), int(categories[j]), bool(is_instance[j]), int(areas[j]),
                        int(keys[j] - 256) if is_instance[j] else None)
        for j in np.argsort(table) if table[j])
    return PanopticMap(table[inverse].reshape(labels.shape).astype(np.int32), segments, label_set.classes,
                       np.asarray(label_set.palette, np.uint8))
