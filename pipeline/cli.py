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
from pipeline.modelcard import DEFAULT_SEMANTIC_MODEL


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
        "eval", help="measure a model on a labelled dataset (mIoU, per-class IoU)",
        description="Evaluate a semantic model on a dataset given as KIND:DIR. Supported: camvid:DIR "
                    "(DIR/<split>/*.png|*.jpg with labels in DIR/<split>annot/) and synth:SEEDS (the synthetic "
                    "road world, e.g. synth:9000-9004: 20 frames per seed at 640x360; training uses 1000-1031).")
    e.add_argument("dataset", help="dataset as KIND:DIR, e.g. camvid:../shared/data/camvid or synth:9000-9004")
    e.add_argument("--split", default="val", choices=["train", "val", "test"], help="split (default val)")
    e.add_argument("--model", default=DEFAULT_SEMANTIC_MODEL,
                   help=f"model name in engines/ or path to a model card (default {DEFAULT_SEMANTIC_MODEL})")
    e.add_argument("--json", metavar="PATH", help="also write the metrics as JSON")
    e.add_argument("--limit", type=int, help="evaluate only the first N images")
    e.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = all cores)")
    e.set_defaults(handler="pipeline.eval.cli:run")

    i = sub.add_parser(
        "import", help="convert an official pretrained checkpoint to ONNX + model card",
        description="Build our implementation of an official architecture, load the official state_dict "
                    "by key name (strict), and export ONNX plus a model card. Needs the `train` extra "
                    "(torch).")
    i.add_argument("arch", choices=["espnet", "espnetv2"], help="architecture of the checkpoint")
    i.add_argument("checkpoint", help="path to the official .pth file")
    i.add_argument("--out", default=None,
                   help="output directory (default engines/imported/, which git ignores)")
    i.add_argument("--name", help="model name (default derived from the checkpoint file name)")
    i.add_argument("--dataset", choices=["camvid", "cityscapes"],
                   help="label set the checkpoint was trained on (default inferred from its output channels)")
    i.add_argument("--size", type=_size, help="input size WxH (default: the dataset's usual size)")
    i.set_defaults(handler="pipeline.importers.cli:run")

    d = sub.add_parser(
        "demo", help="segment the synthetic road world and write video, JSON lines and masks",
        description="Run the default pipeline on the embedded synthetic road world with the shipped model.")
    d.add_argument("--out", default="out/demo", help="output directory (default out/demo)")
    d.add_argument("--frames", type=int, default=150, help="number of frames (default 150)")
    d.add_argument("--seed", type=int, default=7, help="synthetic world seed (default 7)")
    d.add_argument("--model", default=DEFAULT_SEMANTIC_MODEL, help="semantic model name or card path")
    d.set_defaults(handler="pipeline.demo:run")

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
