"""Training curves as one PNG (like Ultralytics' results.png): a run that takes hours is judged at a glance,
whether its validation score still rises or its loss has stalled, without reading log.jsonl by eye.
Drawn with OpenCV, which the package already needs, so training needs no plotting library."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PANEL = (360, 240)  # width, height of one chart, pixels
MARGIN = (56, 34, 14, 30)  # left, top, right, bottom: room for the value labels and the title
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK, GRID, LINE = (40, 40, 40), (225, 225, 225), (180, 90, 20)  # BGR


@dataclass(frozen=True)
class Series:
    """One chart: a value per epoch (epochs need not be consecutive: validation runs every few)."""

    title: str
    epochs: Sequence[int]
    values: Sequence[float]


def _label(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def draw_panel(series: Series) -> np.ndarray:
    """A chart of ``series``: its title with the last value, its lowest and highest values written level with
    them, first and last epoch below, the line with a dot per point. An empty series gives the frame and the
    title only."""
    w, h = PANEL
    left, top, right, bottom = MARGIN
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = left, top, w - right, h - bottom
    title = f"{series.title}: {_label(series.values[-1])}" if len(series.values) else series.title
    cv2.putText(img, title, (left, 20), FONT, 0.5, INK, 1, cv2.LINE_AA)
    for k in range(1, 4):
        y = y0 + (y1 - y0) * k // 4
        cv2.line(img, (x0, y), (x1, y), GRID, 1)
    cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
    if not len(series.epochs):
        return img
    ex = np.asarray(series.epochs, np.float64)
    ey = np.asarray(series.values, np.float64)
    low, high = float(ey.min()), float(ey.max())
    pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0  # a flat series sits in the middle
    lo, hi = low - pad, high + pad
    first, last = float(ex.min()), float(ex.max())
    span = last - first or 1.0
    px = x0 + (ex - first) / span * (x1 - x0) if last > first else np.full_like(ex, (x0 + x1) / 2)
    py = y1 - (ey - lo) / (hi - lo) * (y1 - y0)
    points = np.round(np.stack([px, py], 1)).astype(np.int32)
    cv2.polylines(img, [points.reshape(-1, 1, 2)], False, LINE, 2, cv2.LINE_AA)
    for p in points:
        cv2.circle(img, (int(p[0]), int(p[1])), 3, LINE, -1, cv2.LINE_AA)
    for value in {high, low}:  # the data's range, written level with where it is drawn
        y = int(round(y1 - (value - lo) / (hi - lo) * (y1 - y0))) + 4
        cv2.putText(img, _label(value), (4, y), FONT, 0.4, INK, 1, cv2.LINE_AA)
    cv2.putText(img, f"epoch {int(first)}", (x0, y1 + 18), FONT, 0.4, INK, 1, cv2.LINE_AA)
    end = f"{int(last)}"
    (tw, _), _ = cv2.getTextSize(end, FONT, 0.4, 1)
    cv2.putText(img, end, (x1 - tw, y1 + 18), FONT, 0.4, INK, 1, cv2.LINE_AA)
    return img


def draw_curves(charts: Sequence[Series], path: Path, columns: int = 3) -> None:
    """Every chart in a grid of ``columns``, written to ``path`` (PNG)."""
    rows = -(-len(charts) // columns)
    w, h = PANEL
    grid = np.full((rows * h, columns * w, 3), 255, np.uint8)
    for k, series in enumerate(charts):
        r, c = divmod(k, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = draw_panel(series)
    if not cv2.imwrite(str(path), grid):
        raise OSError(f"{path}: cannot write the training curves")


def series_of(records: Sequence[dict], title: str, *keys: str) -> Series:
    """The value under ``keys`` (a path into each log record, e.g. "val", "synth", "ap50") of every record
    that has one."""
    epochs, values = [], []
    for record in records:
        value = record
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            epochs.append(int(record["epoch"]))
            values.append(float(value))
    return Series(title, epochs, values)


def draw_log(log: Path, charts: Sequence[tuple[str, ...]], path: Path) -> None:
    """The charts of a training log (runs/<name>/log.jsonl, one JSON record per epoch), each given as
    (title, *keys), written to ``path``."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    draw_curves([series_of(records, title, *keys) for title, *keys in charts], path)
