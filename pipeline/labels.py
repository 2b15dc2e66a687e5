"""Label sets shared by models, datasets, the synthetic world and the annotators.

A label set fixes the meaning of class indices: names, display palette (RGB) and the index that
datasets use for "void" (ignored in metrics). Models and datasets that share a label set can be
evaluated against each other without remapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelSet:
    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]  # RGB, one per class
    void_index: int | None  # value that marks unlabelled pixels in ground truth; not a class

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.palette):
            raise ValueError(f"label set {self.name}: {len(self.classes)} classes but {len(self.palette)} colours")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def index(self, name: str) -> int:
        return self.classes.index(name)


# CamVid as prepared by the SegNet tutorial: 11 classes, void = 11. Palette from its camvid11.png.
CAMVID = LabelSet(
    name="camvid11",
    classes=("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
             "Pedestrian", "Bicyclist"),
    palette=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
             (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
    void_index=11,
)

# Cityscapes train ids 0..18. Models trained on it by the official ESPNet/ESPNetv2 code emit a 20th
# "background" channel (the ignore label mapped to 19); see CITYSCAPES_WITH_BACKGROUND.
CITYSCAPES = LabelSet(
    name="cityscapes19",
    classes=("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
             "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
             "motorcycle", "bicycle"),
    palette=((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
             (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
             (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
             (0, 80, 100), (0, 0, 230), (119, 11, 32)),
    void_index=255,
)

LABEL_SETS: dict[str, LabelSet] = {s.name: s for s in (CAMVID, CITYSCAPES)}

# How a Cityscapes model's classes read as CamVid's, for scoring Cityscapes-trained nets on CamVid-labelled
# road video. CamVid has no wall, terrain, truck/bus/train or motorcycle class; each goes to the CamVid
# class that labels the same stuff in CamVid's own annotations (walls are Building, vegetation and terrain
# are Tree, all vehicles of four wheels or more are Car, riders and two-wheelers are Bicyclist).
# Cityscapes classes with no counterpart would map to None (none do).
CITYSCAPES_TO_CAMVID: dict[str, str | None] = {
    "road": "Road", "sidewalk": "Pavement", "building": "Building", "wall": "Building", "fence": "Fence",
    "pole": "Pole", "traffic light": "SignSymbol", "traffic sign": "SignSymbol", "vegetation": "Tree",
    "terrain": "Tree", "sky": "Sky", "person": "Pedestrian", "rider": "Bicyclist", "car": "Car", "truck": "Car",
    "bus": "Car", "train": "Car", "motorcycle": "Bicyclist", "bicycle": "Bicyclist",
}

CLASS_MAPS: dict[tuple[str, str], dict[str, str | None]] = {(CITYSCAPES.name, CAMVID.name): CITYSCAPES_TO_CAMVID}


def mapping_lut(source: LabelSet, target: LabelSet) -> np.ndarray | None:
    """A 256-entry uint8 table taking ``source`` class indices to ``target`` ones (255 where a class, or any
    index beyond the source's classes such as a background channel, has no counterpart), or None when no
    mapping between the two label sets is declared."""
    names = CLASS_MAPS.get((source.name, target.name))
    if names is None:
        return None
    lut = np.full(256, 255, np.uint8)
    for i, name in enumerate(source.classes):
        if names.get(name) is not None:
            lut[i] = target.index(names[name])
    return lut
