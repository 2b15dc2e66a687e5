"""Per-class logit offsets for a trained semantic net: fitted for mIoU, folded into the exported classifier.

Why: our semantic net trains with ENet class weights (rare classes such as Pedestrian or Pole count up to
~40x more than Road), which buys recall on thin, rare classes but moves every decision boundary towards
them: on CamVid val the shipped net's Pedestrian accuracy (recall) was 0.89 while its IoU was 0.30, i.e.
it painted about three times the true pedestrian area. Adding one constant per class to the logits moves
the boundaries back without retraining. The constants are fitted on the *training* images (never on the
validation split that reports the result) by coordinate ascent on mIoU, and then added to the bias of the
1x1 classifier convolution inside the ONNX file: the bilinear resize after it has weights that sum to one,
so it carries a per-channel constant through unchanged, and inference costs nothing more.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.eval.semantic import scores

if TYPE_CHECKING:  # onnx is the `train` extra's: imported only by fold_class_bias, which needs it
    import onnx

# Offsets tried for each class: logits of our nets span tens of units, so +-3 in steps of 0.1 is both
# wide enough and fine enough (the fit moves no class by more than ~2 on CamVid).
DEFAULT_GRID = np.round(np.arange(-30, 31) / 10, 1)


def sample_pixels(logits: np.ndarray, labels: np.ndarray, void: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(C, H, W) logits and (H, W) labels -> (N, C) float32 logits and (N,) labels of every ``stride``-th
    pixel in both directions, void pixels dropped. Neighbouring pixels carry almost the same information,
    so a sparse grid fits the same offsets at a fraction of the memory."""
    flat = logits[:, ::stride, ::stride].reshape(logits.shape[0], -1).T
    truth = labels[::stride, ::stride].reshape(-1)
    keep = truth != void
    return np.ascontiguousarray(flat[keep], dtype=np.float32), truth[keep].astype(np.int64)


def fit_class_bias(logits: np.ndarray, labels: np.ndarray, grid: np.ndarray = DEFAULT_GRID,
                   rounds: int = 3) -> np.ndarray:
    """Offsets (C,) that maximise the mIoU of ``argmax(logits + offsets)`` over the (N, C) ``logits`` with
    (N,) ``labels``: coordinate ascent, one class at a time over ``grid`` (which must hold 0, the start, so
    no step can lower the mIoU). Returned with zero mean (a common shift changes no decision)."""
    num_classes = logits.shape[1]
    if not np.any(np.isclose(grid, 0.0)):
        raise ValueError("the offset grid must contain 0")
    bias = np.zeros(num_classes, np.float32)
    for _ in range(rounds):
        for c in range(num_classes):
            bias[c] = grid[np.argmax(_miou_per_offset(logits, labels, bias, c, grid))]
    return bias - bias.mean()


def _miou_per_offset(logits: np.ndarray, labels: np.ndarray, bias: np.ndarray, c: int,
                     grid: np.ndarray) -> np.ndarray:
    """mIoU for every offset of class ``c`` in the ascending ``grid``, the other offsets fixed, in one pass
    over the pixels: a pixel goes to ``c`` exactly when its margin (class ``c``'s logit over the best other
    shifted logit) plus the offset is positive, so sorting pixels into the grid's bins by margin and
    accumulating per (truth, best other class) gives every offset's confusion matrix at once."""
    num_classes = logits.shape[1]
    shifted = logits + bias
    shifted[:, c] = -np.inf
    other = shifted.argmax(1)
    margin = logits[:, c] - shifted[np.arange(len(other)), other]
    first = np.searchsorted(grid, -margin, side="right")  # the first grid index at which the pixel is c
    pair = labels * num_classes + other
    cells = num_classes * num_classes
    per_bin = np.bincount(first * cells + pair, minlength=(len(grid) + 1) * cells).reshape(-1, cells)
    moved = np.cumsum(per_bin, 0)[: len(grid)].reshape(len(grid), num_classes, num_classes)
    base = np.bincount(pair, minlength=cells).reshape(num_classes, num_classes)  # all pixels to "other"
    confusion = base[None] - moved
    confusion[:, :, c] += moved.sum(2)
    no_outside = np.zeros((num_classes, 1), np.int64)  # pipeline.eval.semantic's column for invalid predictions
    return np.array([scores(np.hstack([m, no_outside])).miou for m in confusion])


def fold_class_bias(onnx_path: Path, output: str, bias: np.ndarray) -> None:
    """Add ``bias`` to the classifier bias behind graph output ``output`` of the ONNX file, in place. The
    output must come from a Conv with a bias, directly or through linear Resize nodes (which carry a
    per-channel constant unchanged); anything else is refused rather than silently shifted wrong."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    producer = {name: node for node in graph.node for name in node.output}
    node = producer.get(output)
    while node is not None and node.op_type == "Resize" and _is_linear(node):
        node = producer.get(node.input[0])
    if node is None or node.op_type != "Conv" or len(node.input) < 3 or not node.input[2]:
        raise EdgeSegError(f"{onnx_path}: output '{output}' does not come from a Conv with a bias through "
                           "linear resizes only; cannot fold class offsets into it")
    initializers = {init.name: init for init in graph.initializer}
    if node.input[2] not in initializers:
        raise EdgeSegError(f"{onnx_path}: the classifier bias '{node.input[2]}' is not a stored initializer")
    init = initializers[node.input[2]]
    current = numpy_helper.to_array(init)
    if current.shape != bias.shape:
        raise EdgeSegError(f"{onnx_path}: classifier bias has {current.shape[0]} classes, offsets have {len(bias)}")
    init.CopyFrom(numpy_helper.from_array((current + bias).astype(current.dtype), init.name))
    onnx.save(model, str(onnx_path))


def _is_linear(node: onnx.NodeProto) -> bool:
    modes = [a.s for a in node.attribute if a.name == "mode"]
    return modes == [b"linear"]
