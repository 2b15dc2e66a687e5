"""`edgeseg` command line.

Every subcommand's arguments are declared here; its work lives in the module named beside it and
is imported only when that subcommand runs, so `edgeseg --help` stays fast and `edgeseg import`
is the only command that needs torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from pipeline import __version__
from pipeline.errors import EdgeSegError
from pipeline.modelcard import DEFAULT_SEMANTIC_MODEL, MASK_CROPS


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block before its error; a user's typo deserves one line that says what is
    wrong and where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, got '{text}'") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size must be positive and even (H.264), got '{text}'")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog="edgeseg",
        description="Streaming road-scene segmentation for edge devices.",
        epilog="Run `edgeseg COMMAND --help` for the options of each command.",
    )
    p.add_argument("--version", action="version", version=f"edgeseg {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser(
        "synth", help="render the synthetic road world with exact ground truth",
        description="Render a seeded synthetic road scene: H.264 video plus ground truth as PNG label and "
                    "instance maps, KITTI MOTS txt, MOTChallenge gt.txt and COCO instance JSON. "
                    "The same seed gives the same bytes.")
    s.add_argument("--out", required=True, help="output directory (created)")
    s.add_argument("--frames", type=int, default=300, help="number of frames (default 300)")
    s.add_argument("--seed", type=int, default=0, help="world seed: layout, colours, traffic (default 0)")
    s.add_argument("--size", type=_size, default=(640, 360), help="frame size WxH (default 640x360)")
    s.add_argument("--fps", type=float, default=30.0, help="frame rate of the clip (default 30)")
    s.set_defaults(handler="pipeline.synth.cli:run")

    e = sub.add_parser(
        "eval", help="measure a model on a labelled dataset (mIoU, or mask AP for instance models)",
        description="Evaluate a model on a dataset given as KIND:DIR. Supported: camvid:DIR "
                    "(DIR/<split>/*.png|*.jpg with labels in DIR/<split>annot/) and synth:SEEDS (the synthetic "
                    "road world, e.g. synth:9000-9004: 20 frames per seed at 640x360; training uses 1000-1031). "
                    "Semantic models: mIoU and per-class IoU. Instance models (task 'instance' in the card): "
                    "COCO mask AP and AP50 over Car, Pedestrian and Bicyclist; CamVid instances are connected "
                    "components of each class, synthetic ones the renderer's objects. With --panoptic CONFIG: "
                    "PQ/SQ/RQ of that pipeline config's panoptic output against the synthetic world's exact "
                    "panoptic ground truth.")
    e.add_argument("dataset", help="dataset as KIND:DIR, e.g. camvid:../shared/data/camvid or synth:9000-9004")
    e.add_argument("--split", default="val", choices=["train", "val", "test"], help="split (default val)")
    e.add_argument("--model", default=DEFAULT_SEMANTIC_MODEL,
                   help=f"model name in engines/ or path to a model card (default {DEFAULT_SEMANTIC_MODEL})")
    e.add_argument("--json", metavar="PATH", help="also write the metrics as JSON")
    e.add_argument("--plot", metavar="PATH",
                   help="also draw the result as a PNG: mask precision-recall curves at IoU 0.5 per class and per "
                        "object size (instance models), or the confusion matrix, rows normalised (semantic models)")
    e.add_argument("--limit", type=int, help="evaluate only the first N images")
    e.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = all cores)")
    e.add_argument("--panoptic", metavar="CONFIG",
                   help="score panoptic quality (PQ, SQ, RQ) instead: the fused output of a pipeline config's "
                        "semantic and instance models and its 'panoptic' section (synth:SEEDS only), e.g. "
                        "--panoptic demo")
    e.add_argument("--mask-threshold", type=float, metavar="T",
                   help="instance models: cut masks at T instead of the card's postprocess.mask_threshold")
    e.add_argument("--mask-crop", choices=MASK_CROPS,
                   help="instance models: 'prototype' (YOLACT's official crop, one prototype pixel of padding) or "
                        "'box' (also clear pixels outside the box) instead of the card's postprocess.mask_crop")
    e.add_argument("--maskness-power", type=float, metavar="P",
                   help="instance models: scale scores by mask confidence ** P (0 = the official scores) instead "
                        "of the card's postprocess.maskness_power")
    e.set_defaults(handler="pipeline.eval.cli:run")

    i = sub.add_parser(
        "import", help="convert an official pretrained checkpoint to ONNX + model card",
        description="Build our implementation of an official architecture, load the official state_dict "
                    "by key name (strict), and export ONNX plus a model card. Semantic: espnet, espnetv2; "
                    "instance: yolact (YOLACT and YolactEdge checkpoints). Needs the `train` extra (torch).")
    i.add_argument("arch", choices=["espnet", "espnetv2", "yolact"], help="architecture of the checkpoint")
    i.add_argument("checkpoint", help="path to the official .pth file")
    i.add_argument("--out", default=None,
                   help="output directory (default engines/imported/, which git ignores)")
    i.add_argument("--name", help="model name (default derived from the checkpoint file name)")
    i.add_argument("--dataset", choices=["camvid", "cityscapes"],
                   help="label set the checkpoint was trained on (default inferred from its output channels)")
    i.add_argument("--size", type=_size, help="input size WxH (default: the dataset's usual size; not for yolact)")
    i.add_argument("--config", metavar="NAME",
                   help="yolact only: the official config the checkpoint was trained with, e.g. yolact_base, "
                        "yolact_resnet50, yolact_edge_mobilenetv2 (default: read from the file name as the "
                        "official tools do: yolact_base_54_800000.pth -> yolact_base)")
    i.set_defaults(handler="pipeline.importers.cli:run")

    r = sub.add_parser(
        "run", help="run a pipeline config: source -> models -> sinks, streaming",
        description="Run the streaming pipeline described by a YAML config: every source through the models "
                    "to the sinks, a thread per stage. Files, folders and synth:// never drop a frame; live "
                    "sources (cameras, rtsp://) keep the newest frames and count the drops. Ctrl-C or SIGTERM "
                    "stops cleanly: in-flight frames are written and the video is finalised.",
        epilog="Sources: file.mp4|.avi|.mkv, DIR or 'DIR/*.png', rtsp://HOST/PATH, /dev/videoN or camera:N, "
               "synth://?seed=3&size=640x360&frames=300. Example: edgeseg run configs/video_file.yaml "
               "--source ../shared/data/videos/solidWhiteRight.mp4 --out out/video")
    r.add_argument("config", help="config file, or a name in configs/ (demo, video_file, rtsp_camera, ...)")
    r.add_argument("--source", metavar="URI", help="replace the config's source")
    r.add_argument("--out", metavar="DIR", help="output directory (replaces the config's 'out')")
    r.add_argument("--max-frames", type=int, metavar="N", help="stop each source after N frames")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set models.semantic.threads=1 (repeatable; "
                        "the value is read as YAML)")
    r.add_argument("--metrics-json", metavar="PATH", help="write per-stage metrics and latency as JSON")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    r.set_defaults(handler="pipeline.stream.cli:run")

    b = sub.add_parser(
        "bench", help="measure pipeline throughput against the model alone, in one run",
        description="On the same frames, in one process: the model alone (back-to-back runtime calls on "
                    "preprocessed inputs, the pipeline's own session settings) and the whole pipeline (capture, "
                    "preprocess, model, decode, overlay, H.264, JSON lines, masks). Prints both throughputs, "
                    "their ratio and end-to-end latency.")
    b.add_argument("config", help="config file or a name in configs/")
    b.add_argument("--source", metavar="URI", help="replace the config's source")
    b.add_argument("--frames", type=int, default=300, help="frames to use (default 300, fewer if the source is shorter)")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    b.add_argument("--json", metavar="PATH", help="write the numbers as JSON")
    b.set_defaults(handler="pipeline.stream.bench:run")

    d = sub.add_parser(
        "demo", help="segment the synthetic road world and write video, JSON lines and masks",
        description="Run configs/demo.yaml through the streaming pipeline: the embedded synthetic road world "
                    "with the shipped model, to an annotated H.264 video, JSON lines and palette PNG masks.")
    d.add_argument("--out", default="out/demo", help="output directory (default out/demo)")
    d.add_argument("--frames", type=int, default=150, help="number of frames (default 150)")
    d.add_argument("--seed", type=int, default=7, help="synthetic world seed (default 7)")
    d.add_argument("--model", default=DEFAULT_SEMANTIC_MODEL, help="semantic model name or card path")
    d.set_defaults(handler="pipeline.stream.cli:demo")

    t = sub.add_parser(
        "track", help="run the tracker alone on a detection file and write tracking results",
        description="Track the detections of a public benchmark file with edgeseg's tracker (default "
                    "parameters, or --tracker) and write the results in the same benchmark's format, ready for its "
                    "evaluation tools. mot: MOTChallenge 'frame,id,x,y,w,h,score,...' (1-based frames; det.txt, "
                    "gt.txt), written as MOTChallenge results. kitti: KITTI tracking, either PointRCNN detection "
                    "files 'frame,type,x1,y1,x2,y2,score,...' (type 1 Pedestrian, 2 Car, 3 Cyclist; the logit-like "
                    "score is mapped to [0,1] by a sigmoid) or label_02 files 'frame track_id type ... x1 y1 x2 y2 "
                    "...', written as KITTI tracking results. Frame k is at time k / fps.",
        epilog="Example: edgeseg track --det ../shared/data/tracking/kitti/det_pointrcnn/Car/0000.txt "
               "--format kitti --out out/track/0000.txt")
    t.add_argument("--det", required=True, metavar="FILE", help="detection file")
    t.add_argument("--format", required=True, choices=["mot", "kitti"], help="format of the detection file")
    t.add_argument("--classes", metavar="A,B",
                   help="track only these classes, comma separated (kitti: car, pedestrian, cyclist, van, truck, "
                        "person_sitting, tram, misc; mot: pedestrian). Default: all")
    t.add_argument("--fps", type=float, metavar="F",
                   help="frame rate of the sequence (default 25 for mot, as MOT15 TUD; 10 for kitti)")
    t.add_argument("--tracker", metavar="YAML",
                   help="tracker parameters: a YAML mapping of TrackerConfig keys (high_score, lost_timeout_s, ...; "
                        "see pipeline/tracking/config.py), or a pipeline config whose 'tracker' section is used")
    t.add_argument("--out", required=True, metavar="FILE", help="results file to write (folders are created)")
    t.set_defaults(handler="pipeline.tracking.cli:run")

    m = sub.add_parser("models", help="list the model cards found in engines/",
                       description="List model cards with their task, input size, params and measured quality.")
    m.set_defaults(handler="pipeline.models_cmd:run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = args.handler.split(":")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        return int(handler(args) or 0)
    except EdgeSegError as e:
        print(f"edgeseg {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgeseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
