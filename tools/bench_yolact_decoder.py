"""Cost of the numpy YOLACT decoder per frame: whole decode and its split (NMS, mask assembly, upsampling).

    .venv/bin/python tools/bench_yolact_decoder.py [--size 960x540] [--objects 100] [--runs 200]

Synthetic head outputs shaped like yolact_base (550 input): 19,248 priors (FPN P3-P7 at 69/35/18/9/5,
aspect ratios 1, 1/2, 2, square anchors, scales 24-384 px), 80 classes, 138x138x32 prototypes.
``--objects`` non-overlapping detections (every FPN level, i.e. object size, equally likely) score
0.5-0.99, each with up to 5 lower-scoring duplicates that NMS must remove, over a background where every
prior has some weak (< 0.2) foreground score, so thresholding, NMS and the global top-k all see a
realistic load and ``--objects`` survive. Medians over ``--runs`` runs. BLAS runs on one thread unless
OPENBLAS_NUM_THREADS says otherwise: the decoder's matrices are small, and in the pipeline the other
core is busy with the model.
"""

from __future__ import annotations

import argparse
import os
import time
from itertools import product

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read when numpy loads, so before the import

import numpy as np  # noqa: E402

from pipeline.decoders.yolact import (YolactDecoder, bilinear_weights, box_iou, crop_bounds_all,  # noqa: E402
                                      decode_boxes, prototype_masks, upsample_masks)


def yolact_550_priors() -> np.ndarray:
    """(19248, 4) cx, cy, w, h normalised, in the official order (level, y, x, aspect ratio)."""
    rows = []
    for side, scale in zip((69, 35, 18, 9, 5), (24, 48, 96, 192, 384)):
        for j, i in product(range(side), range(side)):
            for ar in (1, 0.5, 2):
                w = scale * np.sqrt(ar) / 550
                rows.append(((i + 0.5) / side, (j + 0.5) / side, w, w))  # h = w: the official square anchors
    return np.asarray(rows, np.float32)


def synthetic_outputs(objects: int, classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    priors = yolact_550_priors()
    count = len(priors)
    boxes = decode_boxes(np.zeros((count, 4), np.float32), priors)
    fg = rng.uniform(0, 0.2 / classes, (count, classes)).astype(np.float32)  # weak everywhere, below 0.05
    noisy = rng.choice(count, 2000, replace=False)  # some priors with one class at 0.05-0.2 (candidates)
    fg[noisy, rng.integers(0, classes, len(noisy))] = rng.uniform(0.05, 0.2, len(noisy))
    chosen: list[int] = []
    level = np.repeat(np.arange(5), [3 * side * side for side in (69, 35, 18, 9, 5)])
    weight = 1 / np.bincount(level)[level]  # every FPN level (object size) equally likely
    for p in rng.choice(count, count, replace=False, p=weight / weight.sum()):  # objects that do not suppress
        if not chosen or box_iou(boxes[p:p + 1], boxes[chosen]).max() < 0.3:
            chosen.append(p)
        if len(chosen) == objects:
            break
    for p in chosen:
        c = rng.integers(classes)
        fg[p, c] = rng.uniform(0.5, 0.99)
        overlap = box_iou(boxes[p:p + 1], boxes)[0]
        duplicates = np.argsort(-overlap)[1:6]
        duplicates = duplicates[overlap[duplicates] > 0.65]  # up to 5 priors that NMS will surely suppress
        fg[duplicates, c] = fg[p, c] * rng.uniform(0.6, 0.95, len(duplicates))
    conf = np.concatenate([1 - fg.sum(1, keepdims=True), fg], axis=1)
    return {
        "loc": (rng.normal(size=(1, count, 4)) * 0.1).astype(np.float32),
        "conf": conf[None],
        "mask": np.tanh(rng.normal(size=(1, count, 32))).astype(np.float32),
        "proto": np.maximum(rng.normal(size=(1, 138, 138, 32)), 0).astype(np.float32),
        "priors": priors,
    }


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="960x540")
    p.add_argument("--objects", type=int, default=100)
    p.add_argument("--runs", type=int, default=200)
    args = p.parse_args()

    size = tuple(int(v) for v in args.size.split("x"))
    outputs = synthetic_outputs(args.objects, 80)
    decoder = YolactDecoder(classes=[f"class{i}" for i in range(80)], score_threshold=0.3)
    loc, conf, coeffs, proto = (outputs[n][0] for n in ("loc", "conf", "mask", "proto"))
    priors = outputs["priors"]
    result = decoder(outputs, [size])[0]  # warm-up: builds the cached interpolation weights for this size
    index, _, _, boxes = decoder.nms_survivors(loc, conf, priors)
    crops = crop_bounds_all(boxes, proto.shape)
    inside = prototype_masks(proto, coeffs[index], crops)
    area = (result.boxes[:, 2] - result.boxes[:, 0]) * (result.boxes[:, 3] - result.boxes[:, 1])

    whole = median_ms(lambda: decoder(outputs, [size]), args.runs)
    nms = median_ms(lambda: decoder.nms_survivors(loc, conf, priors), args.runs)
    assembly = median_ms(lambda: prototype_masks(proto, coeffs[index], crop_bounds_all(boxes, proto.shape)),
                         args.runs)
    upsampling = median_ms(lambda: upsample_masks(inside, crops, proto.shape, size, 0.5), args.runs)
    shape = (len(result), size[1], size[0])
    output = median_ms(lambda: np.zeros(shape, bool).reshape(-1)[::4096].fill(True), args.runs)
    first = median_ms(lambda: (bilinear_weights.cache_clear(), bilinear_weights(size[1], proto.shape[0]),
                               bilinear_weights(size[0], proto.shape[1])), 20)
    print(f"{len(result)} detections at {size[0]}x{size[1]} (box area median {np.median(area):.0f} px, "
          f"mean {area.mean():.0f} px, max {area.max():.0f} px), {len(priors)} priors, "
          f"proto {proto.shape[0]}x{proto.shape[1]}x{proto.shape[2]}, "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(f"whole decode      {whole:7.2f} ms  (median of {args.runs})")
    print(f"  NMS             {nms:7.2f} ms  (candidates, box decode, Fast NMS, top-k)")
    print(f"  mask assembly   {assembly:7.2f} ms  (crop bounds, proto @ coeffs + sigmoid inside crops)")
    print(f"  upsampling      {upsampling:7.2f} ms  (bilinear inside boxes, threshold, into (N,H,W) bool)")
    print(f"    of which {output:.2f} ms is paging in the {np.prod(shape) / 1e6:.0f} MB (N,H,W) bool output alone")
    print(f"once per frame size: interpolation weights {first:.2f} ms")


if __name__ == "__main__":
    main()
