"""Export a trained RoadNet checkpoint to engines/<name>.onnx with its model card, measured.

The card's numbers are produced here, by the same code users run: CamVid val and synthetic-world
mIoU through `pipeline.eval.cli.evaluate_semantic` (our preprocessing, ONNX Runtime, our decoder),
and ONNX Runtime CPU latency at 1 and 2 threads. Run after training:

    .venv/bin/python tools/export_semantic.py tools/train_configs/edgeseg_road_s.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from rich.console import Console

from pipeline.eval.cli import evaluate_semantic
from pipeline.eval.datasets import open_dataset
from pipeline.labels import CAMVID
from pipeline.modelcard import (REPO_ENGINES, DataRef, InputSpec, LoadedCard, ModelCard, OutputSpec,
                                TrainingInfo, save_card)
from pipeline.nets.export import count_params, export_onnx, machine_description, measure_latency, onnx_gflops
from pipeline.nets.roadnet import RoadNet, RoadNetConfig

REPO = Path(__file__).resolve().parent.parent
SYNTH_VAL = "synth:9000-9004"  # held-out seeds; training draws from 1000-1031

TRAINING_DATA = [
    DataRef(name="CamVid train (367 images, SegNet tutorial preparation, ../shared/data/camvid)",
            licence="CamVid: research use; not redistributed", role="train"),
    DataRef(name="EdgeSeg synthetic road world, seeds 1000-1031 (pipeline/synth)", licence="Apache-2.0 (ours)",
            role="train"),
    DataRef(name="CamVid val (101 images)", licence="CamVid: research use; not redistributed", role="val"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="the training config the checkpoint was trained with")
    ap.add_argument("--checkpoint", help="default runs/<name>/best.pt")
    ap.add_argument("--out", default=str(REPO_ENGINES), help="directory for the ONNX file and card (default engines/)")
    ap.add_argument("--camvid", default=str(REPO.parent / "shared" / "data" / "camvid"), help="CamVid root for val mIoU")
    ap.add_argument("--latency-runs", type=int, default=50)
    args = ap.parse_args()
    console = Console()

    cfg = yaml.safe_load(Path(args.config).read_text())
    name = cfg["name"]
    ckpt_path = Path(args.checkpoint or REPO / "runs" / name / "best.pt")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    net_cfg = RoadNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ckpt["net"].items()})
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
    config_rel = Path(args.config).resolve().relative_to(REPO)
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
            command=f".venv/bin/python tools/train_semantic.py {config_rel} && "
                    f".venv/bin/python tools/export_semantic.py {config_rel}",
            seed=int(cfg["seed"]),
            config=str(config_rel),
            epochs=epochs_done,
            hardware="2 CPU cores (" + machine_description() + "), no GPU",
        ),
    )
    save_card(card, out / f"{name}.yaml")  # evaluate_semantic reads the card from disk
    loaded = LoadedCard(card, out / f"{name}.yaml")

    metrics = {}
    for key, spec_str, split in (("camvid_val", f"camvid:{args.camvid}", "val"), ("synth_val", SYNTH_VAL, "val")):
        m = evaluate_semantic(loaded, open_dataset(spec_str, split), threads=2)
        # Record the command with a repo-relative CamVid path so it reads the same on every machine.
        metrics[key] = m.model_copy(update={"command": m.command.replace(str(args.camvid), "../shared/data/camvid")})
        console.print(f"{key}: mIoU {m.miou * 100:.2f}, pixel accuracy {m.pixel_accuracy * 100:.2f}")
    latency = [measure_latency(onnx_path, spec, threads=t, runs=args.latency_runs,
                               command=f".venv/bin/python tools/export_semantic.py {config_rel}") for t in (1, 2)]
    for lat in latency:
        console.print(f"latency {lat.threads} thread(s): median {lat.median_ms} ms, p90 {lat.p90_ms} ms")
    card = card.model_copy(update={"metrics": metrics, "latency": latency})
    save_card(card, out / f"{name}.yaml")
    console.print(f"wrote {out / f'{name}.yaml'}")


if __name__ == "__main__":
    main()
