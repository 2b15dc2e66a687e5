"""`edgeseg import yolact`: official YOLACT / YolactEdge checkpoints -> our Yolact -> ONNX + instance card.

The config is named on the command line or read from the file name the way the official eval.py does
(``SavePath.from_str``: drop ``.pth`` and a trailing ``_interrupt``, then the last two ``_`` fields,
epoch and iteration: ``yolact_base_54_800000.pth`` -> ``yolact_base``). Before the strict load the
state_dict gets the official loaders' own clean-ups: keys ``backbone.layer*`` that are not
``backbone.layers.*`` (pre-1.0 names) and ``fpn.downsample_layers.N`` beyond the config's count (v1.0
files) are dropped, as dbolya/yolact's ``Yolact.load_weights`` drops them; YolactEdge's
``fpn_phase_1.`` / ``fpn_phase_2.`` halves are renamed back to ``fpn.``, the reverse of its own loader.
"""

from __future__ import annotations

import argparse
import colorsys
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.errors import EdgeSegError
from pipeline.importers.checkpoint import load_strict, read_state_dict, sha256
from pipeline.modelcard import InputSpec, ModelCard, OutputSpec, PostprocessSpec, SourceInfo, save_card
from pipeline.nets.export import measure_latency, onnx_gflops
from pipeline.nets.yolact import CONFIGS, UNSUPPORTED, Yolact, YolactConfig
from pipeline.nets.yolact_export import export_yolact_onnx

NAME = "yolact"
LICENCE = "MIT"  # both repositories and their released checkpoints
REPOSITORIES = {"yolact": "https://github.com/dbolya/yolact", "yolact_edge": "https://github.com/haotian-liu/yolact_edge"}
# Fewer runs than the semantic importer: the ResNet-101 net takes over a second per call on 2 cores.
LATENCY_THREADS, LATENCY_RUNS, LATENCY_WARMUP = 2, 10, 2

# data/config.py: MEANS / STD are BGR and applied before the flip to RGB (FastBaseTransform). In our
# InputSpec (model colour order) that is the RGB-ordered values; DarkNet only divides by 255.
IMAGENET_MEAN_RGB = (123.68, 116.78, 103.94)
IMAGENET_STD_RGB = (58.40, 57.12, 57.38)
BACKBONE_NAMES = {"resnet50": "ResNet-50", "resnet101": "ResNet-101", "mobilenetv2": "MobileNetV2",
                  "darknet53": "DarkNet-53"}

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)
PASCAL_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
CLASS_NAMES = {"yolact_resnet50_pascal": PASCAL_CLASSES}  # every other official config: COCO

_LEGACY_BACKBONE = re.compile(r"^backbone\.layer(?!s\.)")
_DOWNSAMPLE = re.compile(r"^fpn\.downsample_layers\.(\d+)\.")
_SHOW = 3


def config_from_file_name(path: Path) -> str | None:
    """The official tools' parse of ``<config>_<epoch>_<iteration>[_interrupt].pth``; None if it does not fit."""
    parts = path.name.removesuffix(".pth").split("_")
    if parts[-1] == "interrupt":
        parts = parts[:-1]
    if len(parts) < 3 or not (parts[-1].isdigit() and parts[-2].isdigit()):
        return None
    return "_".join(parts[:-2])


def choose_config(requested: str | None, checkpoint: Path) -> YolactConfig:
    known = ", ".join(CONFIGS)
    name = requested or config_from_file_name(checkpoint)
    if name is None:
        raise EdgeSegError(f"{checkpoint}: cannot tell the YOLACT config from the file name (official files are "
                           f"named <config>_<epoch>_<iteration>.pth); pass --config NAME ({known})")
    if name in CONFIGS:
        return CONFIGS[name]
    source = f"--config '{name}'" if requested else f"{checkpoint}: config '{name}' from the file name"
    reason = next((why for prefix, why in UNSUPPORTED.items() if name.startswith(prefix)), None)
    if reason:
        raise EdgeSegError(f"{source}: not supported: {reason}")
    hint = "" if requested else "; pass --config NAME"
    raise EdgeSegError(f"{source}: not a known YOLACT config ({known}){hint}")


def official_cleanup(state: dict[str, torch.Tensor], cfg: YolactConfig) -> dict[str, torch.Tensor]:
    """The official loaders' key clean-ups (see the module docstring), as a new dict."""
    out = {}
    for key, value in state.items():
        if _LEGACY_BACKBONE.match(key):
            continue
        key = key.replace("fpn_phase_1.", "fpn.", 1).replace("fpn_phase_2.", "fpn.", 1)
        down = _DOWNSAMPLE.match(key)
        if down and int(down.group(1)) >= cfg.num_downsample:
            continue
        out[key] = value
    return out


def _listing(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOW]) + (", ..." if len(keys) > _SHOW else "")


def build(state: dict[str, torch.Tensor], checkpoint: Path, cfg: YolactConfig) -> Yolact:
    """Our Yolact for ``cfg`` with the checkpoint's weights, in eval mode; every mismatch is one line."""
    state = official_cleanup(state, cfg)
    model = Yolact(cfg)
    own = model.state_dict()
    if not any(k in own for k in state):
        raise EdgeSegError(f"{checkpoint}: not a YOLACT checkpoint: none of its {len(state)} keys is a YOLACT key "
                           f"({_listing(list(state))})")
    missing = [k for k in own if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = [f"{len(missing)} missing keys ({_listing(missing)})"] if missing else []
        parts += [f"{len(unexpected)} unexpected keys ({_listing(unexpected)})"] if unexpected else []
        raise EdgeSegError(f"{checkpoint}: does not match YOLACT config '{cfg.name}' "
                           f"({BACKBONE_NAMES[cfg.backbone]}): {'; '.join(parts)}; pass --config NAME of the "
                           f"config it was trained with")
    load_strict(model, state, checkpoint, f"YOLACT config {cfg.name}")  # shapes
    return model.eval()


def input_spec(cfg: YolactConfig) -> InputSpec:
    w, h = cfg.input_size
    if cfg.backbone == "darknet53":
        return InputSpec(width=w, height=h, color_order="RGB", mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
    return InputSpec(width=w, height=h, color_order="RGB", mean=IMAGENET_MEAN_RGB, std=IMAGENET_STD_RGB)


def distinct_palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` saturated colours with hues spread by the golden ratio, so neighbouring classes differ."""
    colours = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.95 - 0.25 * (i % 3) / 2)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


@dataclass(frozen=True)
class LoadedYolact:
    checkpoint: Path
    cfg: YolactConfig
    model: Yolact  # with the checkpoint's weights, eval mode


def load(args: argparse.Namespace) -> LoadedYolact:
    """Everything that can fail because of the user's file or flags, before anything is written."""
    checkpoint = Path(args.checkpoint)
    state = read_state_dict(checkpoint)
    cfg = choose_config(args.config, checkpoint)
    return LoadedYolact(checkpoint, cfg, build(state, checkpoint, cfg))


def write(loaded: LoadedYolact, out_dir: Path, name: str, command: str) -> int:
    """ONNX file, latency and card into ``out_dir`` (which exists); ``command`` is recorded with the latency."""
    checkpoint, cfg, model = loaded.checkpoint, loaded.cfg, loaded.model
    classes = list(CLASS_NAMES.get(cfg.name, COCO_CLASSES))
    spec = input_spec(cfg)
    onnx_path = out_dir / f"{name}.onnx"
    exported = export_yolact_onnx(model, onnx_path, spec)
    latency = measure_latency(onnx_path, spec, threads=LATENCY_THREADS, runs=LATENCY_RUNS, warmup=LATENCY_WARMUP,
                              command=command)
    repository = REPOSITORIES[cfg.checkpoint_layout]
    w, h = cfg.input_size
    diffs = ", ".join(f"{k} {v:.1g}" for k, v in exported.max_abs_diff.items() if k != "priors")
    card = ModelCard(
        name=name,
        task="instance",
        file=onnx_path.name,
        architecture=f"YOLACT {cfg.name} ({BACKBONE_NAMES[cfg.backbone]}-FPN, {w}x{h}, {exported.num_priors} priors)",
        classes=classes,
        palette=distinct_palette(len(classes)),
        input=spec,
        output=OutputSpec(name="conf", kind="yolact"),
        postprocess=PostprocessSpec(),
        params=model.inference_parameters(),
        gflops=round(onnx_gflops(onnx_path, (1, 3, h, w)), 3),
        licence=LICENCE,
        description=(f"Official {cfg.name} checkpoint from {repository}, converted by `edgeseg import yolact` "
                     f"(ONNX Runtime vs torch max abs diff: {diffs}). Outputs loc, conf (softmax, background "
                     f"first), mask (tanh coefficients), proto (HWC) and the constant priors; the image is "
                     f"stretched to {w}x{h} as the official code does."),
        source=SourceInfo(repository=repository, checkpoint=checkpoint.name, sha256=sha256(checkpoint), licence=LICENCE),
        latency=[latency],
    )
    card_path = save_card(card, out_dir / f"{name}.yaml")
    print(f"{card_path}: {card.architecture}, {len(classes)} classes, {card.params / 1e6:.2f} M params, "
          f"{card.gflops:.1f} GFLOPs, {latency.median_ms:.1f} ms median on {latency.threads} threads; "
          f"ONNX vs torch max abs diff {max(exported.max_abs_diff.values()):.2g}")
    return 0
