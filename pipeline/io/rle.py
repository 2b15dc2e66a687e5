"""COCO run-length encoding of binary masks, without pycocotools.

COCO (and KITTI MOTS, which reuses it) stores a HxW mask as the lengths of alternating runs of 0s
and 1s over the pixels in column-major order, starting with a (possibly empty) run of 0s. The
compressed string form writes each count, after subtracting the count two places earlier (from
the fourth on), as little-endian groups of 5 bits, 6 bits per character: bit 5 says another
group follows, the last group's bit 4 is the sign, and 48 is added to stay printable.

Everything here is vectorised: runs come from one comparison of the flattened mask with itself
shifted, and the string form from a fixed-width matrix of 5-bit groups.
"""

from __future__ import annotations

import numpy as np

_GROUPS = 13  # 5-bit groups needed for any int64


def encode(mask: np.ndarray) -> dict:
    """``{"size": [h, w], "counts": str}`` for a HxW boolean (or 0/1) mask, as pycocotools gives."""
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(mask_to_counts(mask))}


def encode_columns(block: np.ndarray, width: int, col0: int) -> dict:
    """The RLE of a ``H x width`` mask that is empty outside columns ``col0 .. col0 + K`` and equal
    to the ``H x K`` ``block`` inside: the same result as :func:`encode` on the full mask, at the
    cost of the block only (an object's box is usually a small part of the frame)."""
    h, k = block.shape
    counts = mask_to_counts(block)
    if counts.size == 0:
        counts = np.zeros(1, np.int64)
    counts[0] += col0 * h  # columns before the block extend the leading run of 0s
    after = (width - col0 - k) * h
    if after:
        if len(counts) % 2:  # the block ends with 0s: extend them
            counts[-1] += after
        else:
            counts = np.concatenate((counts, [after]))
    return {"size": [int(h), int(width)], "counts": counts_to_string(counts)}


def decode(rle: dict) -> np.ndarray:
    """The HxW bool mask of an RLE in string or list form."""
    h, w = rle["size"]
    counts = rle["counts"]
    counts = string_to_counts(counts) if isinstance(counts, (str, bytes)) else np.asarray(counts, np.int64)
    return counts_to_mask(counts, h, w)


def area(rle: dict) -> int:
    counts = rle["counts"]
    counts = string_to_counts(counts) if isinstance(counts, (str, bytes)) else np.asarray(counts, np.int64)
    return int(counts[1::2].sum())


def mask_to_counts(mask: np.ndarray) -> np.ndarray:
    """Alternating run lengths (0s first) of the mask in column-major order."""
    flat = np.asarray(mask, bool).ravel(order="F")
    n = flat.size
    if n == 0:
        return np.zeros(0, np.int64)
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], edges, [n]))
    counts = np.diff(bounds).astype(np.int64)
    if flat[0]:
        counts = np.concatenate(([0], counts))
    return counts


def counts_to_mask(counts: np.ndarray, h: int, w: int) -> np.ndarray:
    counts = np.asarray(counts, np.int64)
    if counts.sum() != h * w:
        raise ValueError(f"RLE counts sum to {int(counts.sum())}, expected {h}x{w} = {h * w}")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(w, h).T


def counts_to_string(counts: np.ndarray) -> str:
    """The compressed (LEB128-like) string form of run lengths."""
    counts = np.asarray(counts, np.int64)
    if counts.size == 0:
        return ""
    delta = counts.copy()
    delta[3:] -= counts[1:-2]
    # groups[i, j] = bits 5j..5j+4 of delta[i]; a value needs the fewest groups whose sign-extended
    # top bit reproduces it: it fits in 5k signed bits
    shifts = 5 * np.arange(_GROUPS, dtype=np.int64)
    groups = (delta[:, None] >> shifts[None, :]) & 0x1F
    k = np.ones(len(delta), np.int64)
    for j in range(1, _GROUPS):
        lim = np.int64(1) << (5 * j - 1)
        k += (delta >= lim) | (delta < -lim)
    used = np.arange(_GROUPS)[None, :] < k[:, None]
    more = np.arange(_GROUPS)[None, :] < (k - 1)[:, None]
    chars = (groups | (more * 0x20)) + 48
    return chars[used].astype(np.uint8).tobytes().decode("ascii")


def string_to_counts(s: str | bytes) -> np.ndarray:
    """Run lengths from the compressed string form."""
    b = np.frombuffer(s.encode("ascii") if isinstance(s, str) else s, np.uint8).astype(np.int64) - 48
    if b.size == 0:
        return np.zeros(0, np.int64)
    last = (b & 0x20) == 0
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    group = np.repeat(np.arange(len(ends)), ends - starts + 1)
    pos = np.arange(len(b)) - starts[group]
    values = np.zeros(len(ends), np.int64)
    np.add.at(values, group, (b & 0x1F) << (5 * pos))
    nbits = 5 * (ends - starts + 1)
    negative = (b[ends] & 0x10) != 0
    values[negative] -= np.left_shift(np.int64(1), nbits[negative])
    counts = values.copy()
    counts[1::2] = np.cumsum(values[1::2])  # c[i] = d[i] + c[i-2] for i >= 3 ...
    counts[2::2] = np.cumsum(values[2::2])  # ... with c[0] and c[2] stored as they are
    return counts
