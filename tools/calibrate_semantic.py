"""Fit per-class logit offsets for an already exported semantic net of ours, fold them into its ONNX file,
and re-measure its card.

`tools/export_semantic.py` runs the same step between export and measurement; this script applies it to
an ONNX file and card that already exist (for instance one exported before the step existed, whose
training checkpoint is gone). The ONNX file is changed in place; the card gets the offsets, a
``calibration`` data entry and fresh CamVid val / synthetic mIoU (the graph is unchanged, so latency is
kept). Run:

    .venv/bin/python tools/calibrate_semantic.py engines/edgeseg_road_s.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export_semantic import calibrate_class_bias, measure_metrics  # tools/ is on sys.path here
from rich.console import Console

from pipeline.errors import EdgeSegError
from pipeline.labels import CAMVID
from pipeline.modelcard import load_card, save_card
from pipeline.nets.export import DEFAULT_CAMVID


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("card", help="model card YAML of a semantic net trained by tools/train_semantic.py")
    ap.add_argument("--camvid", default=str(DEFAULT_CAMVID),
                    help="CamVid root: train fits the offsets, val is re-measured")
    ap.add_argument("--limit", type=int, help="use only the first N images of each split (quick checks, tests)")
    args = ap.parse_args()
    console = Console()
    try:
        loaded = load_card(Path(args.card))
        card = loaded.card
        if card.task != "semantic" or card.label_set != CAMVID.name or card.training is None:
            raise EdgeSegError(f"{args.card}: offsets are fitted only for semantic nets trained here on CamVid "
                               f"(this card: task {card.task}, label set {card.label_set or 'none'}"
                               f"{', no training record' if card.training is None else ''})")
        before = card.metrics.get("camvid_val")
        loaded = calibrate_class_bias(loaded, args.camvid, console, args.limit)
        metrics = measure_metrics(loaded, args.camvid, console, args.limit)
    except EdgeSegError as exc:
        sys.exit(f"error: {exc}")
    save_card(loaded.card.model_copy(update={"metrics": {**loaded.card.metrics, **metrics}}), loaded.path)
    if before is not None:
        console.print(f"CamVid val mIoU {before.miou * 100:.2f} -> {metrics['camvid_val'].miou * 100:.2f}")
    console.print(f"wrote {loaded.path} and {loaded.path.parent / loaded.card.file}")


if __name__ == "__main__":
    main()
