"""`edgeseg eval --plot`: the precision-recall curves behind mask AP50 (worked out by hand), the charts drawn
where their values say, and the confusion matrix shaded by each row's shares."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_instances import evaluate, insts, square

from pipeline.eval.plots import (CELL, COLUMN_LABELS, CURVE_COLOURS, DARK, HEAD, IOU_COLUMN, PR_MARGIN, PR_PANEL,
                                 ROW_LABELS, Curve, confusion_image, draw_pr_panel, pr_curves_image)
from pipeline.eval.instances import RECALL_POINTS

pytest.importorskip("pycocotools", reason="mask AP is computed by pycocotools (the `eval` extra)")


def test_pr_curve_of_a_hand_case():
    """Two cars; detections: one found (0.9), a false alarm (0.8), the other found (0.7). Precision after
    each: 1 at recall 1/2, 1/2 at 1/2, 2/3 at 1. COCO interpolates (the best precision at any higher recall)
    and reads it at 101 recall points: 1 up to recall 0.50, 2/3 above."""
    gt = insts([square(0, 0), square(20, 40)], ["Car", "Car"])
    pred = insts([square(0, 0), square(0, 20), square(20, 40)], ["Car"] * 3, [0.9, 0.8, 0.7])
    s = evaluate([(gt, pred)])
    car = s.pr50_per_class["Car"]
    assert car.shape == RECALL_POINTS.shape
    np.testing.assert_allclose(car[:51], 1.0)
    np.testing.assert_allclose(car[51:], 2 / 3)
    assert s.ap50 == pytest.approx(car.mean())  # AP50 is the curve's mean
    assert np.isnan(s.pr50_per_class["Pedestrian"]).all()  # no ground truth: no curve
    np.testing.assert_allclose(s.pr50_by_size["small"], car)  # 400-px objects are small
    assert np.isnan(s.pr50_by_size["medium"]).all()


def curve_rows(panel: np.ndarray, recall: float, colour: tuple[int, int, int]) -> np.ndarray:
    left, _, right, _ = PR_MARGIN
    x = int(round(left + recall * (PR_PANEL[0] - right - left)))
    return np.flatnonzero(np.all(panel[:, x] == colour, axis=1))


def test_pr_panel_draws_precision_up_and_recall_right():
    precision = np.where(RECALL_POINTS <= 0.5, 1.0, 0.0)
    panel = draw_pr_panel("t", [Curve("found half", precision), Curve("no ground truth", np.full(101, np.nan))])
    assert panel.shape == (PR_PANEL[1], PR_PANEL[0], 3)
    _, top, _, bottom = PR_MARGIN
    high, low = curve_rows(panel, 0.25, CURVE_COLOURS[0]), curve_rows(panel, 0.75, CURVE_COLOURS[0])
    assert len(high) and abs(high.mean() - top) <= 2  # precision 1 at recall 0.25
    assert len(low) and abs(low.mean() - (PR_PANEL[1] - bottom)) <= 2  # 0 past the recall reached
    assert len(curve_rows(panel, 0.5, CURVE_COLOURS[1])) == 0  # the undefined curve is only in the legend


def test_instance_picture_has_both_charts():
    gt = insts([square(0, 0)], ["Pedestrian"])
    s = evaluate([(gt, insts([square(0, 0)], ["Pedestrian"], [0.5]))])
    image = pr_curves_image(s, "title")
    assert image.shape == (30 + PR_PANEL[1], 2 * PR_PANEL[0], 3)
    per_class, per_size = image[30:, :PR_PANEL[0]], image[30:, PR_PANEL[0]:]
    assert len(curve_rows(per_class, 0.8, CURVE_COLOURS[1])) > 0  # Pedestrian, the second class: precision 1
    assert len(curve_rows(per_size, 0.8, CURVE_COLOURS[0])) > 0  # small, the first size


def cell(image: np.ndarray, row: int, column: int) -> np.ndarray:
    """A corner pixel of a cell, clear of its text."""
    return image[HEAD + COLUMN_LABELS + row * CELL + 2, ROW_LABELS + column * CELL + 2]


def test_confusion_matrix_shades_each_rows_shares():
    matrix = np.array([[10, 0, 0, 0], [0, 5, 5, 0], [0, 0, 8, 0]])
    image = confusion_image(matrix, ("a", "b", "c"), "title")
    assert image.shape[1] == ROW_LABELS + 3 * CELL + IOU_COLUMN  # nothing predicted outside the classes
    np.testing.assert_array_equal(cell(image, 0, 0), DARK)
    np.testing.assert_array_equal(cell(image, 0, 1), (255, 255, 255))
    np.testing.assert_array_equal(cell(image, 1, 1), cell(image, 1, 2))  # half and half
    assert (cell(image, 1, 1) < 255).all() and (cell(image, 1, 1) > DARK).all()
    with_void = confusion_image(np.array([[6, 0, 4], [0, 3, 0]]), ("a", "b"), "title")
    assert with_void.shape[1] == ROW_LABELS + 3 * CELL + IOU_COLUMN  # a "none" column
    assert (cell(with_void, 0, 2) < cell(with_void, 0, 1)).all() and (cell(with_void, 0, 2) > DARK).all()
