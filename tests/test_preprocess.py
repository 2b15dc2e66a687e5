"""Preprocessor: BGR uint8 frames -> NCHW float32 as the card's InputSpec says."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.modelcard import InputSpec
from pipeline.preprocess import Preprocessor

IMAGENET = dict(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))


def test_rgb_normalisation_matches_the_definition(rng):
    """Same size (no resize): out[0, c] = (image[..., 2 - c] - mean[c]) / std[c] for an RGB model."""
    image = rng.integers(0, 256, (36, 48, 3), dtype=np.uint8)
    out = Preprocessor(InputSpec(width=48, height=36, color_order="RGB", **IMAGENET))(image)
    assert out.shape == (1, 3, 36, 48) and out.dtype == np.float32 and out.flags.c_contiguous
    rgb = image[..., ::-1].astype(np.float64)
    for c in range(3):
        expected = (rgb[..., c] - IMAGENET["mean"][c]) / IMAGENET["std"][c]
        np.testing.assert_allclose(out[0, c], expected, rtol=1e-5, atol=1e-5)


def test_bgr_model_keeps_channel_order():
    """ESPNet-style BGR input: a pure blue pixel (BGR 255, 0, 0) stays in channel 0.
    With mean 0 and std 255: channel 0 = 255 / 255 = 1, channels 1 and 2 = 0."""
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 255
    out = Preprocessor(InputSpec(width=6, height=4, color_order="BGR", mean=(0, 0, 0), std=(255, 255, 255)))(image)
    np.testing.assert_allclose(out[0, 0], 1.0)
    np.testing.assert_allclose(out[0, 1:], 0.0)


def test_resizes_to_input_size_and_a_flat_image_stays_flat():
    """Bilinear resizing of a constant image gives the constant, so every output value is known:
    BGR (10, 20, 30) for an RGB model with mean 0, std 2 -> channels (30/2, 20/2, 10/2) = (15, 10, 5)."""
    image = np.empty((360, 640, 3), np.uint8)
    image[:] = (10, 20, 30)
    pre = Preprocessor(InputSpec(width=96, height=72, color_order="RGB", mean=(0, 0, 0), std=(2, 2, 2)))
    out = pre(image)
    assert out.shape == (1, 3, 72, 96)
    for c, value in enumerate((15.0, 10.0, 5.0)):
        np.testing.assert_array_equal(out[0, c], value)


def test_same_size_frame_is_not_resized(rng):
    image = rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)
    pre = Preprocessor(InputSpec(width=96, height=72, color_order="RGB", **IMAGENET))
    assert pre.resize(image) is image
    assert pre.resize(image[:36]).shape == (72, 96, 3)


def test_batch_of_frames_with_different_sizes(rng):
    pre = Preprocessor(InputSpec(width=32, height=24, color_order="RGB", **IMAGENET))
    a = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    batch = pre([a, b])
    assert batch.shape == (2, 3, 24, 32)
    np.testing.assert_array_equal(batch[0], pre(a)[0])
    np.testing.assert_array_equal(batch[1], pre(b)[0])


def test_each_call_returns_a_new_array(rng):
    """A streaming runtime may still hold the previous batch when the next frame is preprocessed."""
    pre = Preprocessor(InputSpec(width=8, height=8, color_order="RGB", **IMAGENET))
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    first = pre(image)
    kept = first.copy()
    pre(np.zeros_like(image))
    np.testing.assert_array_equal(first, kept)


def test_rejects_non_bgr_uint8():
    pre = Preprocessor(InputSpec(width=8, height=8, color_order="RGB", **IMAGENET))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        pre(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        pre([np.zeros((8, 8), np.uint8)])
