"""`edgeseg eval --plot PATH`: the evaluation as a picture (like Ultralytics' PR_curve.png and
confusion_matrix.png), drawn with OpenCV, which the package already needs.

A mask AP50 of 0.5 can be a recall ceiling (half the objects never detected: the curve falls to 0 at recall
0.5) or a precision sag (false alarms ranked above true objects: the curve is low from the start); the two
call for different fixes, and the curves per class and per object size tell them apart at a glance. For a
semantic model, the row-normalised confusion matrix shows which classes bleed into which (poles into
buildings, pavement into road) where mIoU only says how much is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.eval.instances import RECALL_POINTS, SIZES, InstanceScores
from pipeline.eval.semantic import scores as semantic_scores
from pipeline.train.curves import FONT, GRID, INK

PR_PANEL = (460, 420)  # width, height of one precision-recall chart, pixels
PR_MARGIN = (44, 40, 16, 44)  # left, top, right, bottom
CURVE_COLOURS = ((180, 90, 20), (30, 110, 230), (40, 150, 40), (150, 60, 170), (20, 170, 200))  # BGR
CELL = 40  # one confusion-matrix cell, pixels
HEAD, COLUMN_LABELS, ROW_LABELS, IOU_COLUMN = 34, 100, 110, 64  # the confusion matrix's title, label and IoU room
DARK = np.array([120, 50, 10], np.float64)  # BGR of a row's whole share


@dataclass(frozen=True)
class Curve:
    """One line of a precision-recall chart: precision at each of RECALL_POINTS (NaN: undefined)."""

    label: str
    precision: np.ndarray


def _text(img: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45,
          colour: tuple[int, int, int] = INK) -> None:
    cv2.putText(img, text, origin, FONT, scale, colour, 1, cv2.LINE_AA)


def draw_pr_panel(title: str, curves: Sequence[Curve]) -> np.ndarray:
    """Precision (up) against recall (right), both 0..1, one coloured line per curve with its label in a
    legend at the bottom left; a curve with no defined point is listed but not drawn."""
    w, h = PR_PANEL
    left, top, right, bottom = PR_MARGIN
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = left, top, w - right, h - bottom
    _text(img, title, (left, 22), 0.5)
    for k in range(1, 4):
        cv2.line(img, (x0 + (x1 - x0) * k // 4, y0), (x0 + (x1 - x0) * k // 4, y1), GRID, 1)
        cv2.line(img, (x0, y0 + (y1 - y0) * k // 4), (x1, y0 + (y1 - y0) * k // 4), GRID, 1)
    cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
    for value in (0.0, 0.5, 1.0):
        _text(img, f"{value:g}", (x0 - 8 + int(value * (x1 - x0)) - 4 * (value == 1.0), y1 + 16), 0.4)
        _text(img, f"{value:g}", (x0 - 24, y1 - int(value * (y1 - y0)) + 4), 0.4)
    _text(img, "recall", ((x0 + x1) // 2 - 20, y1 + 34), 0.45)
    _text(img, "precision", (4, top - 8), 0.4)
    xs = x0 + RECALL_POINTS * (x1 - x0)
    for k, curve in enumerate(curves):
        defined = ~np.isnan(curve.precision)
        if defined.any():
            ys = y1 - curve.precision[defined] * (y1 - y0)
            points = np.round(np.stack([xs[defined], ys], 1)).astype(np.int32)
            cv2.polylines(img, [points.reshape(-1, 1, 2)], False, CURVE_COLOURS[k % len(CURVE_COLOURS)], 2,
                          cv2.LINE_AA)
    if curves:  # the legend on a white box over the curves, which rarely reach the low-precision corner
        widest = max(cv2.getTextSize(c.label, FONT, 0.42, 1)[0][0] for c in curves)
        corners = (x0 + 4, y1 - 28 - 18 * (len(curves) - 1)), (x0 + 40 + widest, y1 - 4)
        cv2.rectangle(img, *corners, (255, 255, 255), -1)
        cv2.rectangle(img, *corners, GRID, 1)
    for k, curve in enumerate(curves):
        colour = CURVE_COLOURS[k % len(CURVE_COLOURS)]
        y = y1 - 12 - 18 * (len(curves) - 1 - k)
        cv2.line(img, (x0 + 8, y - 4), (x0 + 26, y - 4), colour, 2)
        _text(img, curve.label, (x0 + 32, y), 0.42)
    return img


def pr_curves_image(scores: InstanceScores, title: str) -> np.ndarray:
    """Two charts side by side: mask precision-recall at IoU 0.5 per class, and per COCO object size (the
    mean over classes), each line labelled with its AP50 and its number of ground-truth objects."""

    def label(name: str, ap50: float, count: int) -> str:
        return f"{name}: AP50 {'-' if np.isnan(ap50) else f'{ap50 * 100:.1f}'} ({count} objects)"

    per_class = [Curve(label(name, scores.ap50_per_class[name], scores.ground_truth_per_class[name]),
                       scores.pr50_per_class[name]) for name in scores.pr50_per_class]
    per_size = [Curve(label(name, scores.ap50_by_size[name], scores.ground_truth_by_size[name]),
                      scores.pr50_by_size[name]) for name in SIZES]
    panels = [draw_pr_panel("mask PR at IoU 0.5, per class", per_class),
              draw_pr_panel("per object size (< 32^2, < 96^2, larger px)", per_size)]
    head = np.full((30, PR_PANEL[0] * 2, 3), 255, np.uint8)
    _text(head, title, (10, 21), 0.5)
    return np.vstack([head, np.hstack(panels)])


def _vertical_text(text: str, height: int, width: int) -> np.ndarray:
    """``text`` reading upwards in a (height, width) white tile (a column label)."""
    tile = np.full((width, height, 3), 255, np.uint8)
    _text(tile, text, (4, width // 2 + 5), 0.42)
    return np.ascontiguousarray(np.rot90(tile))


def confusion_image(matrix: np.ndarray, classes: Sequence[str], title: str) -> np.ndarray:
    """The (K, K+1) confusion matrix of :func:`pipeline.eval.semantic.confusion_matrix` with each row divided
    by its pixels (true class -> share predicted as each class, in % where >= 1 %), shaded white to dark blue,
    and each class's IoU at the row's end. The last column ("none": predictions outside the K classes, e.g. a
    void channel) is shown only where some pixel went there."""
    k = len(classes)
    columns = list(classes) + (["none"] if matrix[:, k:].sum() else [])
    totals = matrix.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals > 0, matrix[:, :len(columns)] / totals, np.nan)
    iou = semantic_scores(matrix).iou
    x_iou = ROW_LABELS + CELL * len(columns)
    h = HEAD + COLUMN_LABELS + CELL * k + 30
    img = np.full((h, x_iou + IOU_COLUMN, 3), 255, np.uint8)
    _text(img, title, (8, 22), 0.5)
    y0 = HEAD + COLUMN_LABELS
    for c, name in enumerate(columns):
        img[HEAD:y0, ROW_LABELS + c * CELL:ROW_LABELS + (c + 1) * CELL] = _vertical_text(name, COLUMN_LABELS, CELL)
    _text(img, "IoU %", (x_iou + 8, y0 - 8), 0.42)
    for r, name in enumerate(classes):
        y = y0 + r * CELL
        _text(img, name, (6, y + CELL // 2 + 5), 0.42)
        for c in range(len(columns)):
            value = share[r, c]
            x = ROW_LABELS + c * CELL
            if np.isnan(value):
                continue
            colour = tuple(int(v) for v in np.round(255 - value * (255 - DARK)))
            cv2.rectangle(img, (x, y), (x + CELL - 1, y + CELL - 1), colour, -1)
            if value >= 0.01:
                text = f"{value * 100:.0f}"
                (tw, _), _ = cv2.getTextSize(text, FONT, 0.4, 1)
                _text(img, text, (x + (CELL - tw) // 2, y + CELL // 2 + 5), 0.4,
                      (255, 255, 255) if value > 0.5 else INK)
        if not np.isnan(iou[r]):
            _text(img, f"{iou[r] * 100:.1f}", (x_iou + 10, y + CELL // 2 + 5), 0.42)
    cv2.rectangle(img, (ROW_LABELS, y0), (x_iou - 1, y0 + CELL * k - 1), INK, 1)
    _text(img, "rows: true class; columns: predicted class (% of the row's pixels)", (8, h - 10), 0.4)
    return img


def write_png(image: np.ndarray, path: Path) -> None:
    """Write ``image`` to ``path`` (folders made as needed); an unwritable path is a one-line error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = cv2.imwrite(str(path), image)
    except (OSError, cv2.error) as e:
        raise EdgeSegError(f"{path}: cannot write the plot: {e}") from None
    if not written:
        raise EdgeSegError(f"{path}: cannot write the plot (a .png path in a writable folder is needed)")
