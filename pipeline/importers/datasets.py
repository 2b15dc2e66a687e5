"""What the output channels of the official checkpoints mean.

The official training code maps the dataset's ignore label to one extra class instead of ignoring
it, so the nets have one more output channel than their label set: CamVid 11 + void (12),
Cityscapes 19 train ids + background (20). The extra channel gets black in the palette.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import EdgeSegError
from pipeline.labels import CAMVID, CITYSCAPES, LabelSet

EXTRA_COLOR = (0, 0, 0)


@dataclass(frozen=True)
class OutputLabels:
    dataset: str
    label_set: LabelSet
    extra_class: str  # the channel the official code trained on the ignore label

    @property
    def channels(self) -> int:
        return self.label_set.num_classes + 1

    @property
    def classes(self) -> list[str]:
        return [*self.label_set.classes, self.extra_class]

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        return [*self.label_set.palette, EXTRA_COLOR]


DATASETS: dict[str, OutputLabels] = {
    "camvid": OutputLabels("camvid", CAMVID, "void"),
    "cityscapes": OutputLabels("cityscapes", CITYSCAPES, "background"),
}


def output_labels(channels: int, requested: str | None, checkpoint: str | Path) -> OutputLabels:
    """The dataset named by ``requested``, else the one whose channel count matches; the checkpoint's
    channel count must fit either way."""
    if requested is None:
        match = [d for d in DATASETS.values() if d.channels == channels]
        if not match:
            known = ", ".join(f"{d.channels} for {d.dataset}" for d in DATASETS.values())
            raise EdgeSegError(f"{checkpoint}: {channels} output channels match no known dataset ({known}); "
                               f"pass --dataset if the checkpoint is one of them")
        return match[0]
    labels = DATASETS[requested]
    if labels.channels != channels:
        raise EdgeSegError(f"{checkpoint}: has {channels} output channels, but {requested} models have "
                           f"{labels.channels} ({labels.label_set.num_classes} classes + {labels.extra_class})")
    return labels
