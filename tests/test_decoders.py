"""SemanticDecoder: logits or labels at model resolution -> SemanticMap at the frame's size."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.decoders import SemanticDecoder
from pipeline.decoders.semantic import argmax_channels


def test_argmax_channels_equals_numpy_argmax_including_ties(rng):
    logits = rng.integers(-3, 3, (12, 30, 40)).astype(np.float32)  # small integers: many exact ties
    labels, best = argmax_channels(logits)
    np.testing.assert_array_equal(labels, logits.argmax(0))
    np.testing.assert_array_equal(best, logits.max(0))


def test_same_size_logits_give_argmax_and_softmax_confidence(tiny_card, rng):
    logits = rng.normal(size=(1, 12, 72, 96)).astype(np.float32)
    semantic = SemanticDecoder(tiny_card.card, confidence=True)({"logits": logits}, [(96, 72)])[0]
    np.testing.assert_array_equal(semantic.labels, logits[0].argmax(0))
    e = np.exp(logits[0].astype(np.float64))
    np.testing.assert_allclose(semantic.confidence, (e / e.sum(0)).max(0), rtol=1e-5)
    assert semantic.classes == tuple(tiny_card.card.classes)
    assert semantic.labels.dtype == np.uint8


def test_nearest_upscale_by_an_integer_factor_repeats_pixels(tiny_card, rng):
    """Nearest-neighbour x2 / x3 with pixel-centre alignment is plain repetition of every pixel."""
    logits = rng.normal(size=(1, 12, 72, 96)).astype(np.float32)
    semantic = SemanticDecoder(tiny_card.card)({"logits": logits}, [(288, 144)])[0]  # x3 wide, x2 high
    assert semantic.labels.shape == (144, 288)
    expected = logits[0].argmax(0).repeat(2, axis=0).repeat(3, axis=1)
    np.testing.assert_array_equal(semantic.labels, expected)
    assert semantic.confidence is None


def test_bilinear_matches_torch_interpolate_then_argmax(tiny_card, tiny_torch_net, rng):
    """cv2's INTER_LINEAR and torch's bilinear (align_corners=False) sample at the same pixel centres."""
    torch, _ = tiny_torch_net
    logits = rng.normal(size=(1, 12, 72, 96)).astype(np.float32)
    semantic = SemanticDecoder(tiny_card.card, resize="bilinear", confidence=True)({"logits": logits}, [(160, 90)])[0]
    up = torch.nn.functional.interpolate(torch.from_numpy(logits), size=(90, 160), mode="bilinear",
                                         align_corners=False)[0]
    expected = up.argmax(0).numpy()
    assert semantic.labels.shape == (90, 160)
    assert np.mean(semantic.labels == expected) > 0.999  # float rounding may flip a near-tie
    # Confidence is the max softmax at model resolution, bilinearly resized.
    conf = torch.from_numpy(logits).softmax(1).max(1, keepdim=True).values
    conf_up = torch.nn.functional.interpolate(conf, size=(90, 160), mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(semantic.confidence, conf_up.numpy(), rtol=1e-4, atol=1e-5)


def test_bilinear_moves_a_boundary_smoothly():
    """Two classes whose scores cross in the middle of a 4-pixel row: x4 upscaling with nearest
    puts the boundary on a model-pixel edge; bilinear puts it where the interpolated scores cross.
    Class 1 score: [-3, -1, 1, 3] (class 0 fixed at 0). Interpolated linearly between pixel centres,
    it crosses 0 exactly at the middle of the row, so exactly half of the 16 output pixels are class 1."""
    logits = np.zeros((1, 2, 1, 4), np.float32)
    logits[0, 1, 0] = [-3, -1, 1, 3]
    from pipeline.modelcard import ModelCard
    card = ModelCard(name="two", task="semantic", file="x.onnx", architecture="test", classes=["a", "b"],
                     palette=[(0, 0, 0), (255, 255, 255)],
                     input=dict(width=4, height=1, color_order="RGB", mean=(0, 0, 0), std=(1, 1, 1)),
                     output=dict(name="logits", kind="logits"), params=0, gflops=0, licence="test")
    labels = SemanticDecoder(card, resize="bilinear")({"logits": logits}, [(16, 2)])[0].labels
    assert labels[0].tolist() == [0] * 8 + [1] * 8


def test_labels_output_kind(tiny_labels_card, rng):
    labels = rng.integers(0, 12, (2, 72, 96)).astype(np.int64)
    maps = SemanticDecoder(tiny_labels_card.card)({"labels": labels}, [(96, 72), (192, 144)])
    np.testing.assert_array_equal(maps[0].labels, labels[0])
    np.testing.assert_array_equal(maps[1].labels, labels[1].repeat(2, 0).repeat(2, 1))
    assert maps[0].confidence is None and maps[0].labels.dtype == np.uint8


def test_batch_and_frame_count_must_agree(tiny_card):
    with pytest.raises(ValueError, match="2 outputs for 1 frames"):
        SemanticDecoder(tiny_card.card)({"logits": np.zeros((2, 12, 4, 4), np.float32)}, [(4, 4)])
