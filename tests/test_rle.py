"""Our COCO RLE against pycocotools, the reference implementation."""

import zlib

import numpy as np
import pytest

from pipeline.io import rle

mask_api = pytest.importorskip("pycocotools.mask")


def _reference(m: np.ndarray) -> dict:
    return mask_api.encode(np.asfortranarray(m.astype(np.uint8)))


def _check(m: np.ndarray) -> None:
    ref = _reference(m)
    ours = rle.encode(m)
    assert ours["size"] == list(ref["size"])
    assert ours["counts"] == ref["counts"].decode("ascii")
    assert np.array_equal(rle.decode(ours), m)
    assert np.array_equal(rle.decode(ref), m)  # we also read what pycocotools writes
    assert rle.area(ours) == int(mask_api.area(ref))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (3, 5), (13, 17), (360, 640)])
@pytest.mark.parametrize("fill", ["empty", "full", "single", "random", "blocks"])
def test_matches_pycocotools(shape: tuple[int, int], fill: str) -> None:
    rng = np.random.default_rng(zlib.crc32(repr((shape, fill)).encode()))
    h, w = shape
    m = np.zeros(shape, bool)
    if fill == "full":
        m[:] = True
    elif fill == "single":
        m[rng.integers(h), rng.integers(w)] = True
    elif fill == "random":
        m = rng.random(shape) < 0.5
    elif fill == "blocks":
        m[h // 4: h // 2 + 1, w // 3: w - 1] = True
    _check(m)


def test_random_masks_of_odd_sizes() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 80, 2))
        _check(rng.random((h, w)) < rng.random())


def test_long_runs_need_many_groups() -> None:
    """Counts in the millions and large negative deltas exercise multi-group and sign handling."""
    m = np.zeros((1500, 1400), bool)
    m[:, 700:] = True
    m[3, 3] = True
    _check(m)


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(ValueError):
        rle.decode({"size": [2, 2], "counts": [1, 2]})


@pytest.mark.parametrize("cols", [(0, 5), (3, 9), (7, 12), (0, 12), (4, 5)])
def test_encode_columns_equals_full_encode(cols: tuple[int, int]) -> None:
    rng = np.random.default_rng(cols[0] * 100 + cols[1])
    m = np.zeros((9, 12), bool)
    a, b = cols
    m[:, a:b] = rng.random((9, b - a)) < 0.5
    m[0, a] = True  # a block that starts with a 1-run ...
    m[-1, b - 1] = True  # ... and ends with one
    assert rle.encode_columns(m[:, a:b], 12, a) == rle.encode(m)
    m[:, a:b] = False
    assert rle.encode_columns(m[:, a:b], 12, a) == rle.encode(m)  # an empty block
