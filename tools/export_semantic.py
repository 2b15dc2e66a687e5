"""Export a trained RoadNet checkpoint to engines/<name>.onnx with its model card, measured.

Between export and measurement, per-class logit offsets are fitted for mIoU on CamVid *train* and folded
into the ONNX classifier bias (:mod:`pipeline.nets.class_bias`: the ENet class weights of training make
rare classes over-predicted; ``--no-class-bias`` skips it). The card's numbers are produced here, by the
same code users run: CamVid val and synthetic-world mIoU through `pipeline.eval.cli.evaluate_semantic`
(our preprocessing, ONNX Runtime, our decoder), and ONNX Runtime CPU latency at 1 and 2 threads. Run
after training:

    .venv/bin/python tools/export_semantic.py tools/train_configs/edgeseg_road_s.yaml
"""

from __future__ import annotations

import argparse
import sys
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.progress import track

from pipeline import runtime
from pipeline.errors import EdgeSegError
from pipeline.eval.cli import evaluate_semantic
from pipeline.eval.datasets import open_dataset
from pipeline.labels import CAMVID
from pipeline.modelcard import (DataRef, InputSpec, LoadedCard, ModelCard, OutputSpec,
                                SemanticMetrics, TrainingInfo, save_card)
from pipeline.nets.class_bias import fit_class_bias, fold_class_bias, sample_pixels
from pipeline.nets.export import (count_params, export_argument_parser, export_onnx, machine_description,
                                  measure_latency, onnx_gflops)
from pipeline.nets.roadnet import RoadNet, RoadNetConfig
from pipeline.preprocess import Preprocessor
from pipeline.train.config import read_checkpoint, read_with_base, training_stages

REPO = Path(__file__).resolve().parent.parent
SYNTH_VAL = "synth:9000-9004"  # held-out seeds; training draws from 1000-1031

TRAINING_DATA = [
    DataRef(name="CamVid train (367 images, SegNet tutorial preparation, ../shared/data/camvid)",
            licence="CamVid: research use; not redistributed", role="train"),
    DataRef(name="EdgeSeg synthetic road world, seeds 1000-1031 (pipeline/synth)", licence="Apache-2.0 (ours)",
            role="train"),
    DataRef(name="CamVid val (101 images)", licence="CamVid: research use; not redistributed", role="val"),
]
CALIBRATION_DATA = DataRef(name="CamVid train (367 images): per-class logit offsets fitted for mIoU "
                                "(pipeline.nets.class_bias), folded into the classifier bias",
                           licence="CamVid: research use; not redistributed", role="calibration")
SAMPLE_STRIDE = 4  # every 4th pixel both ways: ~4 M training pixels, a ~10 s fit on 2 cores


def calibrate_class_bias(loaded: LoadedCard, camvid: str, console: Console, limit: int | None = None) -> LoadedCard:
    """Fit per-class logit offsets on CamVid train through the exported ONNX file (our preprocessing, ONNX
    Runtime), fold them into its classifier bias and record them in the card (summed with any earlier ones,
    so calibrating twice leaves a true record). ``limit``: only the first images (tests). Returns the updated,
    saved card."""
    card = loaded.card
    session = runtime.load(loaded, threads=2)
    preprocess = Preprocessor(card.input)
    dataset = open_dataset(f"camvid:{camvid}", "train")
    scores, truth = [], []
    total = min(len(dataset), limit or len(dataset))
    for sample in track(islice(dataset, total), total=total, description="class offsets: CamVid train",
                        console=console):
        logits = session.run(preprocess(sample.image))[card.output.name][0]
        labels = sample.labels
        if labels.shape != logits.shape[1:]:
            labels = cv2.resize(labels, logits.shape[:0:-1], interpolation=cv2.INTER_NEAREST_EXACT)
        x, y = sample_pixels(logits, labels, dataset.label_set.void_index, SAMPLE_STRIDE)
        scores.append(x)
        truth.append(y)
    bias = fit_class_bias(np.concatenate(scores), np.concatenate(truth))
    fold_class_bias(loaded.path.parent / card.file, card.output.name, bias)
    console.print("class offsets: " + ", ".join(f"{name} {b:+.2f}" for name, b in zip(card.classes, bias)))
    previous = np.asarray(card.training.class_bias or np.zeros(len(bias)), np.float32)
    data = card.training.data + ([CALIBRATION_DATA] if CALIBRATION_DATA not in card.training.data else [])
    training = card.training.model_copy(update={"data": data,
                                                "class_bias": [round(float(b), 3) for b in previous + bias]})
    card = card.model_copy(update={"training": training})
    save_card(card, loaded.path)
    return LoadedCard(card, loaded.path)


def measure_metrics(loaded: LoadedCard, camvid: str, console: Console,
                    limit: int | None = None) -> dict[str, SemanticMetrics]:
    """The card's CamVid val and synthetic mIoU, measured through `edgeseg eval`'s code (on the first
    ``limit`` images only, for tests)."""
    metrics = {}
    for key, spec_str, split in (("camvid_val", f"camvid:{camvid}", "val"), ("synth_val", SYNTH_VAL, "val")):
        m = evaluate_semantic(loaded, open_dataset(spec_str, split), threads=2, limit=limit)
        # Record the command with a repo-relative CamVid path so it reads the same on every machine.
        metrics[key] = m.model_copy(update={"command": m.command.replace(str(camvid), "../shared/data/camvid")})
        console.print(f"{key}: mIoU {m.miou * 100:.2f}, pixel accuracy {m.pixel_accuracy * 100:.2f}")
    return metrics


def export(args: argparse.Namespace, console: Console) -> None:
    """Export, calibrate, measure and write the card (EdgeSegError on a missing checkpoint or data)."""
    cfg = read_with_base(Path(args.config))
    name = cfg["name"]
    ckpt_path = Path(args.checkpoint or REPO / "runs" / name / "best.pt")
    if not ckpt_path.is_file():
        raise EdgeSegError(f"{ckpt_path}: no such checkpoint (tools/train_semantic.py {args.config} writes it)")
    for split in ("val",) if args.no_class_bias else ("train", "val"):  # fail before writing anything
        open_dataset(f"camvid:{args.camvid}", split)
    ckpt = read_checkpoint(ckpt_path, "tools/train_semantic.py")
    config_rel = Path(args.config).resolve().relative_to(REPO)
    stages = training_stages(cfg, config_rel, REPO, read_with_base)  # the card's command; every config must exist
    net_cfg = RoadNetConfig.from_dict(ckpt["net"])
    model = RoadNet(net_cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()

    spec = InputSpec(**cfg["input"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{name}.onnx"
    result = export_onnx(model, onnx_path, spec)
    console.print(f"exported {onnx_path} (ONNX Runtime vs torch max abs diff {result.max_abs_diff:.2e})")

    epochs_done = ckpt["epoch"] + 1
    card = ModelCard(
        name=name,
        task="semantic",
        file=onnx_path.name,
        architecture="RoadNet (pipeline/nets/roadnet.py): conv-BN-ReLU encoder to 1/16 with dilated residual "
                     "blocks, global context, 1/8 and 1/4 decoder",
        label_set=CAMVID.name,
        classes=list(CAMVID.classes),
        palette=[tuple(c) for c in CAMVID.palette],
        input=spec,
        output=OutputSpec(name="logits", kind="logits"),
        params=count_params(model) - count_params(model.aux),  # the aux head is training-only, not exported
        gflops=round(onnx_gflops(onnx_path, (1, 3, spec.height, spec.width)), 3),
        licence="Apache-2.0 (code); weights trained on CamVid, whose research-use terms apply",
        description="Our real-time road-scene segmentation net, trained from scratch on CamVid and the "
                    "synthetic road world. 11 CamVid classes.",
        training=TrainingInfo(
            data=TRAINING_DATA,
            command=" && ".join([*(f".venv/bin/python tools/train_semantic.py {c}" for c in stages),
                                 f".venv/bin/python tools/export_semantic.py {config_rel}"]),
            seed=int(cfg["seed"]),
            config=str(config_rel),
            epochs=epochs_done,
            hardware="2 CPU cores (" + machine_description() + "), no GPU",
        ),
    )
    save_card(card, out / f"{name}.yaml")  # evaluate_semantic reads the card from disk
    loaded = LoadedCard(card, out / f"{name}.yaml")
    if not args.no_class_bias:
        loaded = calibrate_class_bias(loaded, args.camvid, console, args.limit)
        card = loaded.card

    metrics = measure_metrics(loaded, args.camvid, console, args.limit)
    latency = [measure_latency(onnx_path, spec, threads=t, runs=args.latency_runs,
                               command=f".venv/bin/python tools/export_semantic.py {config_rel}") for t in (1, 2)]
    for lat in latency:
        console.print(f"latency {lat.threads} thread(s): median {lat.median_ms} ms, p90 {lat.p90_ms} ms")
    card = card.model_copy(update={"metrics": metrics, "latency": latency})
    save_card(card, out / f"{name}.yaml")
    console.print(f"wrote {out / f'{name}.yaml'}")


def main() -> None:
    ap = export_argument_parser(__doc__.split("\n\n")[0], "train fits the class offsets, val is measured")
    ap.add_argument("--no-class-bias", action="store_true",
                    help="skip fitting per-class logit offsets on CamVid train (export the net as trained)")
    args = ap.parse_args()
    try:
        export(args, Console())
    except EdgeSegError as e:  # missing data or a bad file: one line, no traceback
        sys.exit(f"export_semantic: {e}")


if __name__ == "__main__":
    main()
