"""Label sets and the declared Cityscapes -> CamVid mapping used to score Cityscapes models on CamVid."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import EdgeSegError
from pipeline.eval.cli import prediction_lut
from pipeline.labels import CAMVID, CITYSCAPES, CITYSCAPES_TO_CAMVID, mapping_lut
from pipeline.modelcard import LoadedCard, ModelCard


def _card(classes, label_set):
    card = ModelCard(name="m", task="semantic", file="m.onnx", architecture="a", label_set=label_set,
                     classes=list(classes), palette=[(0, 0, 0)] * len(classes),
                     input=dict(width=8, height=8, color_order="RGB", mean=(0, 0, 0), std=(1, 1, 1)),
                     output=dict(name="logits", kind="logits"), params=1, gflops=0.0, licence="x")
    return LoadedCard(card, Path("/nowhere/m.yaml"))


def test_every_cityscapes_class_has_a_camvid_counterpart():
    assert set(CITYSCAPES_TO_CAMVID) == set(CITYSCAPES.classes)
    assert set(CITYSCAPES_TO_CAMVID.values()) == set(CAMVID.classes)  # and every CamVid class is reachable


def test_mapping_lut_maps_indices_and_drops_background():
    lut = mapping_lut(CITYSCAPES, CAMVID)
    assert lut[CITYSCAPES.index("truck")] == CAMVID.index("Car")
    assert lut[CITYSCAPES.index("sidewalk")] == CAMVID.index("Pavement")
    assert lut[19] == 255  # the official nets' 20th "background" channel is a miss, not a class
    assert mapping_lut(CAMVID, CITYSCAPES) is None  # no mapping declared that way


def test_prediction_lut_for_models_of_each_kind():
    assert prediction_lut(_card(CAMVID.classes, "camvid11"), CAMVID) is None
    assert prediction_lut(_card([*CAMVID.classes, "void"], "camvid11"), CAMVID) is None
    lut = prediction_lut(_card([*CITYSCAPES.classes, "background"], "cityscapes19"), CAMVID)
    pred = np.array([[CITYSCAPES.index("road"), CITYSCAPES.index("person"), 19]], np.uint8)
    assert lut[pred].tolist() == [[CAMVID.index("Road"), CAMVID.index("Pedestrian"), 255]]
    with pytest.raises(EdgeSegError, match="no class mapping"):
        prediction_lut(_card(["a", "b"], None), CAMVID)
