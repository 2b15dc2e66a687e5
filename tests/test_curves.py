"""pipeline.train.curves: the training-curves PNG draws each series where its values say, and reads a
training log's nested records."""

from __future__ import annotations

import json

import cv2
import numpy as np

from pipeline.train.curves import LINE, PANEL, Series, draw_log, draw_panel, series_of


def line_rows(panel: np.ndarray, x: int) -> np.ndarray:
    """Rows of column ``x`` painted in the line's colour."""
    return np.flatnonzero(np.all(panel[:, x] == LINE, axis=1))


def line_columns(panel: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.all(panel == LINE, axis=2).any(0))


def test_a_rising_series_is_drawn_rising_from_its_first_to_its_last_epoch():
    panel = draw_panel(Series("val mIoU", [1, 3, 5, 7], [0.2, 0.3, 0.5, 0.6]))
    assert panel.shape == (PANEL[1], PANEL[0], 3)
    xs = line_columns(panel)
    assert len(xs) > PANEL[0] // 2  # spans the chart
    first, last = line_rows(panel, xs[0] + 4), line_rows(panel, xs[-1] - 4)
    assert first.mean() > last.mean() + 100  # image rows grow downwards


def test_flat_single_and_empty_series():
    flat = draw_panel(Series("lr", [0, 1, 2], [1e-3, 1e-3, 1e-3]))
    xs = line_columns(flat)
    rows = line_rows(flat, int(xs.mean()))
    assert abs(rows.mean() - (34 + PANEL[1] - 30) / 2) < 4  # mid-height between the margins
    single = draw_panel(Series("loss", [4], [2.0]))
    assert abs(line_columns(single).mean() - (56 + PANEL[0] - 14) / 2) < 2  # one dot, centred
    assert len(line_columns(draw_panel(Series("nothing yet", [], [])))) == 0


def test_series_of_follows_nested_keys_and_skips_records_without_the_value():
    records = [{"epoch": 0, "loss": {"total": 3.0}},
               {"epoch": 1, "loss": {"total": 2.0}, "val": {"synth": {"ap50": 0.4}}},
               {"epoch": 2, "loss": {"total": 1.5}, "val": {"synth": {"ap50": None}}}]
    assert series_of(records, "t", "loss", "total") == Series("t", [0, 1, 2], [3.0, 2.0, 1.5])
    assert series_of(records, "a", "val", "synth", "ap50") == Series("a", [1], [0.4])
    assert series_of(records, "m", "missing") == Series("m", [], [])


def test_draw_log_writes_a_grid_of_charts(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"epoch": e, "loss": 1.0 / (e + 1), "lr": 0.1}) + "\n" for e in range(5)))
    draw_log(log, [("loss", "loss"), ("lr", "lr"), ("val", "val_miou"), ("again", "loss")], tmp_path / "c.png")
    image = cv2.imread(str(tmp_path / "c.png"))
    assert image.shape == (2 * PANEL[1], 3 * PANEL[0], 3)
    assert len(line_columns(image[:PANEL[1], :PANEL[0]])) > 0 and len(line_columns(image[PANEL[1]:, :PANEL[0]])) > 0
    assert len(line_columns(image[:PANEL[1], 2 * PANEL[0]:])) == 0  # no val_miou in this log yet
