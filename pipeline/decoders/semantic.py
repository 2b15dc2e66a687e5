"""Semantic segmentation outputs -> :class:`pipeline.types.SemanticMap` at the frame's size.

Two ways back to the frame when it differs from the model's output size (``resize``):

- ``"nearest"``: argmax at model resolution, then nearest-neighbour resize of the uint8 label map.
  Cost barely depends on the frame size; edges are blocky by up to one model pixel. The default
  for streaming.
- ``"bilinear"``: bilinear resize of the C logit planes to the frame, then argmax. Smoother, more
  accurate boundaries, but its cost grows with frame area times classes. Used for evaluation.

Measured on our shared 2-core CPU (medians; the machine was busy, so +-30 %):
- 12-class 480x360 logits: argmax + nearest 2.3-2.6 ms whatever the frame size; bilinear + argmax
  12-17 ms to a 640x360 frame and 16-32 ms to 960x540; the same ~2.3 ms when the frame already
  has the model's size (no resize at all).
- The official ESPNet CamVid weights run at 320x240 and decoded to CamVid val's 480x360 frames
  (101 images): nearest 1.0 ms/frame, 66.67 mIoU; bilinear 16.7 ms/frame, 66.85 mIoU. Bilinear buys
  0.2 mIoU for ~15 ms: worth it for evaluation, not for streaming.

Confidence (the max softmax probability) is optional: it costs an exp over every logit (5-10 ms),
so it is computed at model resolution and resized.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from pipeline.modelcard import ModelCard
from pipeline.types import SemanticMap

Resize = Literal["nearest", "bilinear"]
VOID = 255  # label of pixels below the confidence threshold: no class, drawn black, not counted in coverage


def argmax_channels(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, H, W) scores -> (uint8 labels, float32 max score). The first of tied classes wins, as in
    np.argmax. A loop over the C channel planes (each step vectorised) runs about twice as fast as
    ``np.argmax(axis=0)``, whose reduction strides across planes, and gives the maximum for free."""
    best = logits[0].astype(np.float32, copy=True)
    labels = np.zeros(best.shape, np.uint8)
    for c in range(1, logits.shape[0]):
        better = logits[c] > best
        labels[better] = c
        np.maximum(best, logits[c], out=best)
    return labels, best


def max_softmax(logits: np.ndarray, best: np.ndarray) -> np.ndarray:
    """max_c softmax(logits)_c = 1 / sum_c exp(logit_c - max), without forming the softmax."""
    total = np.zeros(best.shape, np.float32)
    scratch = np.empty(best.shape, np.float32)
    for plane in logits:
        np.subtract(plane, best, out=scratch)
        total += np.exp(scratch, out=scratch)
    return np.reciprocal(total, out=total)


class SemanticDecoder:
    """``decoder(outputs, frame_sizes) -> [SemanticMap]``, one per image of the batch."""

    def __init__(self, card: ModelCard, resize: Resize = "nearest", confidence: bool = False,
                 threshold: float | None = None):
        """``threshold``: pixels whose top-class probability is below it become :data:`VOID` -- a robot
        would rather see "unknown" than a guess (needs logits; implies computing the confidence)."""
        if card.task != "semantic":
            raise ValueError(f"model {card.name} is a {card.task} model, not semantic")
        self.output_name = card.output.name
        self.kind = card.output.kind
        self.classes = tuple(card.classes)
        self.palette = np.asarray(card.palette, np.uint8)  # built once: every SemanticMap shares it
        self.resize = resize
        if threshold is not None and self.kind != "logits":
            raise ValueError(f"model {card.name} outputs labels, so it has no confidence to threshold")
        self.threshold = threshold
        self.confidence = (confidence or threshold is not None) and self.kind == "logits"

    def __call__(self, outputs: dict[str, np.ndarray], frame_sizes: Sequence[tuple[int, int]]) -> list[SemanticMap]:
        batch = outputs[self.output_name]
        if len(batch) != len(frame_sizes):
            raise ValueError(f"{len(batch)} outputs for {len(frame_sizes)} frames")
        return [self.decode(one, size) for one, size in zip(batch, frame_sizes)]

    def decode(self, output: np.ndarray, size: tuple[int, int]) -> SemanticMap:
        """One image's output ((C, h, w) logits or (h, w) labels) -> a SemanticMap of ``size`` (w, h)."""
        same = output.shape[-1] == size[0] and output.shape[-2] == size[1]
        if self.kind == "labels":
            labels = output.astype(np.uint8)
            if not same:
                labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST_EXACT)
            return SemanticMap(labels, self.classes, self.palette)
        confidence = None
        if self.resize == "bilinear" and not same:
            labels = upsampled_argmax(output, size)
            if self.confidence:
                confidence = max_softmax(output, output.max(0))
        else:
            labels, best = argmax_channels(output)
            if self.confidence:
                confidence = max_softmax(output, best)
            if not same:
                labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST_EXACT)
        if confidence is not None and not same:
            # Computed at model resolution and then resized: exp() over every logit at frame size would
            # cost several times the rest of the decoding, for a value that is only ever displayed.
            confidence = cv2.resize(confidence, size, interpolation=cv2.INTER_LINEAR)
        if self.threshold is not None:
            labels[confidence < self.threshold] = VOID
        return SemanticMap(labels, self.classes, self.palette, confidence)


def upsampled_argmax(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Labels of the (C, h, w) scores bilinearly resized to ``size`` (w, h). Resizes as HxWxC (cv2 does all
    C planes in one pass) and reduces over the last, contiguous axis: at frame size that is faster than
    copying back to planes for :func:`argmax_channels`."""
    hwc = cv2.resize(np.ascontiguousarray(logits.transpose(1, 2, 0)), size, interpolation=cv2.INTER_LINEAR)
    return hwc.reshape(size[1], size[0], -1).argmax(-1).astype(np.uint8)  # reshape: cv2 drops a C of 1
