"""`edgeseg import ARCH CHECKPOINT`: official weights -> our implementation -> ONNX + model card.

Writes NAME.onnx and NAME.yaml into the output directory (default engines/imported/, which git
ignores: converted third-party weights are never committed). The card records where the weights
came from (repository, file name, sha256, licence), the preprocessing the official code used, the
class list (for semantic nets including the extra void/background channel), and one latency
measurement taken here. Semantic architectures go through an :class:`ArchitectureRecipe`; YOLACT
(instance segmentation, several outputs, a named config) has its own module, pipeline.importers.yolact.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from pipeline.errors import EdgeSegError
from pipeline.importers import espnet, espnetv2, yolact
from pipeline.importers.checkpoint import read_state_dict, sha256
from pipeline.importers.datasets import output_labels
from pipeline.importers.recipe import ArchitectureRecipe
from pipeline.modelcard import REPO_ENGINES, ModelCard, OutputSpec, SourceInfo, save_card
from pipeline.nets.export import count_params, export_onnx, measure_latency, onnx_gflops

RECIPES: dict[str, ArchitectureRecipe] = {espnet.NAME: espnet, espnetv2.NAME: espnetv2}
LICENCE = "MIT"  # both official repositories and their checkpoints
LATENCY_THREADS, LATENCY_RUNS, LATENCY_WARMUP = 2, 20, 3  # a first figure; benchmarks measure more


def _check_size(recipe: ArchitectureRecipe, size: tuple[int, int]) -> None:
    w, h = size
    m = recipe.SIZE_MULTIPLE
    if w % m or h % m:
        near = f"{-(-w // m) * m}x{-(-h // m) * m}"
        raise EdgeSegError(f"--size {w}x{h}: {recipe.NAME} needs width and height divisible by {m} (e.g. {near})")


def _command(args: argparse.Namespace) -> str:
    """The import invocation, rebuilt from the parsed arguments (recorded with the latency)."""
    words = ["edgeseg", "import", args.arch, args.checkpoint]
    for flag, value in (("--config", args.config), ("--dataset", args.dataset), ("--name", args.name),
                        ("--out", args.out)):
        if value:
            words += [flag, value]
    if args.size:
        words += ["--size", f"{args.size[0]}x{args.size[1]}"]
    return shlex.join(words)


def _check_flags(args: argparse.Namespace) -> None:
    """Flags that belong to one family of architectures only."""
    if args.arch == yolact.NAME:
        if args.dataset:
            raise EdgeSegError("--dataset: applies to semantic architectures; YOLACT's classes follow its --config")
        if args.size:
            raise EdgeSegError("--size: a YOLACT config fixes its input size (the anchors depend on it); "
                               "choose the config instead (e.g. --config yolact_im400)")
    elif args.config:
        raise EdgeSegError(f"--config: applies to yolact only, not {args.arch}")


def _model_name(args: argparse.Namespace) -> str:
    name = args.name or Path(args.checkpoint).stem
    if not name or Path(name).name != name:
        raise EdgeSegError(f"--name '{name}': must be a plain file name (no directories)")
    return name


def _make_output_dir(args: argparse.Namespace) -> Path:
    out_dir = Path(args.out) if args.out else REPO_ENGINES / "imported"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgeSegError(f"{out_dir}: cannot create output directory: {e.strerror}") from None
    return out_dir


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    if args.arch == yolact.NAME:
        loaded = yolact.load(args)
        name = _model_name(args)
        return yolact.write(loaded, _make_output_dir(args), name, _command(args))
    recipe = RECIPES[args.arch]
    checkpoint = Path(args.checkpoint)
    state = read_state_dict(checkpoint)
    built = recipe.build(state, checkpoint)
    labels = output_labels(built.output_channels, args.dataset, checkpoint)
    size = tuple(args.size) if args.size else recipe.default_size(labels.dataset, checkpoint)
    _check_size(recipe, size)
    spec = recipe.input_spec(labels.dataset, *size)

    name = _model_name(args)
    out_dir = _make_output_dir(args)
    onnx_path = out_dir / f"{name}.onnx"
    exported = export_onnx(built.model, onnx_path, spec, output_name="logits")
    latency = measure_latency(onnx_path, spec, threads=LATENCY_THREADS, runs=LATENCY_RUNS,
                              warmup=LATENCY_WARMUP, command=_command(args))
    card = ModelCard(
        name=name,
        task="semantic",
        file=onnx_path.name,
        architecture=built.architecture,
        label_set=labels.label_set.name,
        classes=labels.classes,
        palette=labels.palette,
        input=spec,
        output=OutputSpec(name="logits", kind="logits"),
        params=count_params(built.model),
        gflops=round(onnx_gflops(onnx_path, (1, 3, size[1], size[0])), 4),
        licence=LICENCE,
        description=(f"Official {built.architecture} {labels.dataset} checkpoint from {recipe.REPOSITORY}, "
                     f"converted by `edgeseg import` (ONNX Runtime vs torch max abs diff "
                     f"{exported.max_abs_diff:.2g}). Output channel {len(labels.classes) - 1} "
                     f"('{labels.extra_class}') is the label the official training mapped ignored pixels to."),
        source=SourceInfo(repository=recipe.REPOSITORY, checkpoint=checkpoint.name, sha256=sha256(checkpoint),
                          licence=LICENCE),
        latency=[latency],
    )
    card_path = save_card(card, out_dir / f"{name}.yaml")
    print(f"{card_path}: {card.architecture}, {labels.dataset} ({len(card.classes)} outputs), "
          f"{size[0]}x{size[1]}, {card.params / 1e6:.2f} M params, {card.gflops:.2f} GFLOPs, "
          f"{latency.median_ms:.1f} ms median on {latency.threads} threads; "
          f"ONNX vs torch max abs diff {exported.max_abs_diff:.2g}")
    return 0
