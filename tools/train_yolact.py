"""Train our road YOLACT (pipeline.nets.yolact, config edgeseg_yolact_road: Car, Pedestrian, Bicyclist).

Data (pipeline.train.instance_data): CamVid train frames with instances from connected components and
copy-paste of real CamVid instances, mixed with frames of the synthetic road world (exact instances);
random window / flip / colour jitter, stretched to the square input like YOLACT. Losses:
pipeline.nets.yolact_loss (matching, box, class with OHEM, mask, semantic aux), official weights.

Validation runs what deployment runs: the eval-mode (export) forward -- softmax scores, tanh
coefficients -- on frames preprocessed by pipeline.preprocess from the same InputSpec the model card
gets, decoded by the numpy pipeline.decoders.yolact at the official evaluation threshold (0.05), scored
with mask AP by pipeline.eval.instances (pycocotools) on held-out synthetic seeds (their mask AP50 picks
best.pt) and on CamVid val instances.

Reproducible: everything comes from the YAML config and its seed; the config and the command are written
to runs/<name>/. Resumable: runs/<name>/last.pt after every epoch (model, optimiser, schedule position,
RNG states); `--resume` continues from it, and `--until N` stops after epoch N with the schedule unchanged,
so a long run can be trained in pieces. CPU training is slow, so run it in the background:

    nohup .venv/bin/python tools/train_yolact.py tools/train_configs/edgeseg_yolact_road.yaml > runs/train_yolact.log 2>&1 &

Optional config keys: `base` (another config, relative to this one, whose keys this one replaces one
by one: a later stage names only what it changes), `net_overrides` (YolactConfig fields replacing the
named net's, e.g. fewer aspect ratios for a first stage) and `init` (a checkpoint, relative to the
repository root, to start from instead of random weights: a run's .pt, or an exported model's card such as
engines/edgeseg_yolact_road.yaml, read back by pipeline.train.onnx_checkpoint; it may have fewer anchor
aspect ratios, or dense layers where the config's net factorises them: pipeline.train.warm_start) and
`factorise` ({images, steps}: fit those factorised layers to the checkpoint's dense ones first,
pipeline.train.factorise) and `distill` ({teacher: a checkpoint or card, plus
pipeline.train.distill.DistillConfig weights}: add losses towards the teacher's dense net run at this net's
input size, on every batch: pipeline.train.distill). `input.fovea` (a pipeline.modelcard.FoveaSpec) trains a
foveated model: every frame goes through that warp before the augmentation, validation runs through it and
back, and the exported card declares it (pipeline.foveate).

Per-epoch losses and validation AP go to runs/<name>/log.jsonl, their charts to runs/<name>/curves.png
after every epoch. `--limit N` (N frames of each source and validation set) with `--epochs 2` is a smoke
test of the whole loop.

Batches are prepared (rendering, copy-paste, augmentation, preprocessing) by `--workers N` processes
(default 0: in the training process). Each batch draws its randomness from a generator seeded by (config
seed, epoch, batch number), so the batches, and the run, are the same whatever the number of workers: on
a GPU, where a batch of 8 takes ~0.3 s to prepare on one core and a training step far less, workers are
what keeps the GPU busy.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from pydantic import ValidationError

from pipeline.decoders import Decoder, YolactDecoder
from pipeline.errors import EdgeSegError
from pipeline.eval.instances import InstanceAccumulator, InstanceScores
from pipeline.foveate import Foveation, unwarping
from pipeline.modelcard import InputSpec
from pipeline.nets.seeding import seed_all
from pipeline.nets.yolact import CONFIGS, Yolact, YolactConfig, config_by_name
from pipeline.nets.yolact_loss import GroundTruth, YolactLoss, YolactLossConfig
from pipeline.preprocess import Preprocessor
from pipeline.train.config import exported_model, read_checkpoint, read_with_base, save_checkpoint, training_device
from pipeline.train.curves import draw_log
from pipeline.train.distill import DistillConfig, DistillLoss, Teacher, dense_teacher
from pipeline.train.draws import epoch_order, reseed
from pipeline.train.factorise import LayerFit, fit_factorised
from pipeline.train.onnx_checkpoint import onnx_checkpoint
from pipeline.train.instance_data import (
    THING_CLASSES,
    Augmenter,
    CopyPaste,
    InstanceImage,
    PatchBank,
    SynthSource,
    TrainSample,
    foveated,
    load_camvid,
    synth_validation,
)
from pipeline.train.warm_start import warm_start
from pipeline.yamlfile import validation_message

REPO = Path(__file__).resolve().parent.parent
# Training images whose statistics the norms of a warm start from an exported model take (the export folded
# their running statistics away): at 896x496 even a stride-32 norm sees ~14 k values per channel.
NORM_IMAGES = 32
EVAL_SCORE_THRESHOLD = 0.05  # the official evaluation's: AP rewards low-confidence detections
CHARTS = [("synthetic val mask AP50", "val", "synth", "ap50"), ("CamVid val mask AP50", "val", "camvid", "ap50"),
          ("learning rate", "lr"), ("loss: total", "loss", "total"), ("loss: box", "loss", "box"),
          ("loss: class", "loss", "class"), ("loss: mask", "loss", "mask")]  # curves.png
DISTILL_CHARTS = [(f"distillation: {term}", "loss", f"distill_{term}") for term in ("conf", "box", "coeff", "proto")]
REQUIRED = {  # config keys (section -> keys), checked before any data is loaded
    "": ("name", "seed", "net", "camvid", "input", "instances", "synth", "copy_paste", "augment", "epochs",
         "batch_size", "lr", "warmup_epochs", "weight_decay", "grad_clip", "val"),
    "instances": ("camvid_min_area", "synth_min_area", "synth_min_visible"),
    "synth": ("seeds", "max_index", "size", "frames_per_epoch"),
    "copy_paste": ("prob", "max_objects", "horizon", "min_patch_area"),
    "augment": ("scale", "aspect", "flip", "min_box"),
    "val": ("every", "synth_seeds"),
}


def load_config(path: Path) -> dict:
    """The training config (with its ``base`` applied), checked for every key the run reads (one-line
    EdgeSegError otherwise)."""
    cfg = read_with_base(path)
    for section, keys in REQUIRED.items():
        part = cfg.get(section) if section else cfg
        missing = [k for k in keys if not isinstance(part, dict) or k not in part]
        if missing:
            raise EdgeSegError(f"{path}: key '{'.'.join(filter(None, (section, missing[0])))}' is missing")
    ignore = ignore_rest(cfg)
    if not isinstance(ignore, bool):
        raise EdgeSegError(f"{path}: key 'instances.ignore_rest': true or false, not {ignore!r}")
    if cfg["net"] not in CONFIGS:
        raise EdgeSegError(f"{path}: key 'net': unknown YOLACT config '{cfg['net']}'")
    return cfg


def ignore_rest(cfg: dict) -> bool:
    """``instances.ignore_rest`` (optional, default false): whether training keeps the objects the instance
    rules leave out (and boxes under ``augment.min_box``) as don't-care regions rather than background."""
    return cfg["instances"].get("ignore_rest", False)


def net_config(cfg: dict, path: Path) -> YolactConfig:
    """The named net with the config's ``net_overrides`` applied (lists become tuples, as the dataclass
    holds them)."""
    base = config_by_name(cfg["net"])
    overrides = cfg.get("net_overrides") or {}
    known = {f.name for f in fields(YolactConfig)} - {"name"}
    for key, value in overrides.items():
        if key not in known:
            raise EdgeSegError(f"{path}: key 'net_overrides.{key}': not a YOLACT config field")
    try:
        return replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    except (TypeError, ValueError) as e:
        raise EdgeSegError(f"{path}: key 'net_overrides': {e}") from None


def load_checkpoint(path: Path) -> dict:
    """A tools/train_yolact.py checkpoint (one-line errors for a missing or wrong file)."""
    return read_checkpoint(path, "tools/train_yolact.py")


def checkpoint_of(source: str, net_cfg: YolactConfig, spec: InputSpec, images: Iterable[torch.Tensor] = ()) -> dict:
    """The checkpoint a config names (relative to the repository root), which must hold the net it trains and
    have been trained on inputs normalised as ``spec`` says: a run's ``.pt``, or an exported model's card or
    ``.onnx`` file (pipeline/train/onnx_checkpoint.py, whose norms take their statistics from ``images``)."""
    if exported_model(source):
        checkpoint = onnx_checkpoint(REPO / source, net_cfg, images)
    else:
        checkpoint = load_checkpoint(REPO / source)
        if checkpoint["net"]["name"] != net_cfg.name:
            raise EdgeSegError(f"{source}: a checkpoint of net {checkpoint['net']['name']}, the config trains "
                               f"{net_cfg.name}")
    if checkpoint.get("input"):  # older runs did not record it
        taught = InputSpec(**checkpoint["input"])
        if (taught.color_order, taught.mean, taught.std) != (spec.color_order, spec.mean, spec.std):
            raise EdgeSegError(f"{source}: trained on {taught.color_order} inputs normalised by mean "
                               f"{list(taught.mean)}, std {list(taught.std)}; the config normalises them otherwise")
    return checkpoint


def input_spec(cfg: dict, path: Path, size: tuple[int, int]) -> InputSpec:
    """The model card's InputSpec: the config's colour order, mean and std at the net's input (width, height)."""
    try:
        return InputSpec(width=size[0], height=size[1], **cfg["input"])
    except (ValidationError, TypeError) as e:
        detail = validation_message(path, e) if isinstance(e, ValidationError) else f"{path}: {e}"
        raise EdgeSegError(detail.replace("key '", "key 'input.", 1)) from None


class TrainData:
    """Each epoch: every CamVid training frame (copy-paste applied with probability ``copy_paste.prob``)
    plus ``synth.frames_per_epoch`` synthetic frames, shuffled, augmented on the fly. Every draw derives
    from the config's ``seed`` and the epoch (and batch), never from what was drawn before: the order from
    (seed, epoch), a batch from (seed, epoch, batch number), so any process can prepare any batch."""

    def __init__(self, cfg: dict, camvid: list[InstanceImage], spec: InputSpec, fill: tuple[int, int, int],
                 limit: int | None):
        inst, synth, cp, aug = cfg["instances"], cfg["synth"], cfg["copy_paste"], cfg["augment"]
        self.seed = int(cfg["seed"])
        rng = self.rng = np.random.default_rng(self.seed)  # shared by the parts below; re-seeded per batch
        self.camvid = camvid[:limit]
        self.n_synth = min(int(synth["frames_per_epoch"]), limit if limit is not None else math.inf)
        ignore = ignore_rest(cfg)
        self.synth = SynthSource(range(synth["seeds"][0], synth["seeds"][1] + 1), int(synth["max_index"]),
                                 tuple(synth["size"]), int(inst["synth_min_area"]), float(inst["synth_min_visible"]),
                                 rng, ignore)
        bank = PatchBank(camvid, int(cp["min_patch_area"]), float(cp["horizon"]))
        self.paste_prob = float(cp["prob"])
        self.paste = CopyPaste(bank, float(cp["horizon"]), int(cp["max_objects"]), int(inst["camvid_min_area"]), rng,
                               ignore_rest=ignore)
        self.fovea = Foveation(spec.fovea) if spec.fovea else None  # the card's warp, before the window
        self.augment = Augmenter((spec.width, spec.height), tuple(aug["scale"]), float(aug["aspect"]),
                                 float(aug["flip"]), fill, float(aug["min_box"]), rng, ignore_small=ignore)

    def __len__(self) -> int:
        return len(self.camvid) + self.n_synth

    def order(self, epoch: int) -> list[int]:
        """A shuffled epoch: indices < len(camvid) are CamVid frames, the rest stand for synthetic draws."""
        return epoch_order(self.seed, epoch, len(self))

    def sample(self, i: int) -> TrainSample:
        if i < len(self.camvid):
            frame = self.camvid[i]
            if self.rng.random() < self.paste_prob:
                frame = self.paste(frame)
        else:
            frame = self.synth.sample()
        return self.augment(foveated(frame, self.fovea) if self.fovea else frame)

    def batch(self, epoch: int, number: int, indices: list[int]) -> list[TrainSample]:
        """The samples of ``indices``, all their randomness from (seed, epoch, batch ``number``): the same
        batch in whichever process prepares it."""
        reseed(self.rng, self.seed, epoch, number)
        return [self.sample(i) for i in indices]


class EpochBatches(torch.utils.data.Dataset):
    """One epoch's batches for a DataLoader: item k is batch k of the epoch's order, preprocessed to the input
    (a tensor: workers hand it back through shared memory) with its samples, which carry the targets."""

    def __init__(self, data: TrainData, pre: Preprocessor, epoch: int, size: int):
        self.data, self.pre, self.epoch = data, pre, epoch
        order = data.order(epoch)
        self.chunks = [order[b:b + size] for b in range(0, len(order), size)]

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, list[TrainSample]]:
        samples = self.data.batch(self.epoch, k, self.chunks[k])
        return torch.from_numpy(self.pre([s.image for s in samples])), samples


def first_batches(batches: EpochBatches, images: int) -> Iterator[torch.Tensor]:
    """The inputs of the epoch's first batches, as many as hold ``images`` images (all, if fewer), prepared as
    they are drawn."""
    for k in range(min(math.ceil(images / len(batches.chunks[0])), len(batches))):
        yield batches[k][0]


def fit_from_dense(model: Yolact, init: dict, layers: tuple[str, ...], batches: EpochBatches, fit: dict,
                   device: torch.device) -> None:
    """Fit ``model``'s factorised ``layers`` to the dense net of the ``init`` checkpoint (built at the model's
    input size) on the first ``fit['images']`` images of epoch 0's batches (pipeline/train/factorise.py)."""
    dense = dense_teacher(model.cfg, init, device)
    images = [x.to(device) for x in first_batches(batches, int(fit["images"]))]
    t0 = time.time()

    def report(f: LayerFit) -> None:
        print(f"fitted {f.layer} to the dense layer: R2 {f.r2_rank_one:.3f} (SVD start) -> {f.r2_fitted:.3f}",
              flush=True)

    fit_factorised(model, dense, layers, images, int(fit["steps"]), report=report)
    print(f"fitted {len(layers)} factorised layer(s) on {sum(len(x) for x in images)} images in "
          f"{time.time() - t0:.0f} s", flush=True)


def distillation(cfg: dict, path: Path, net_cfg: YolactConfig, spec: InputSpec, workdir: Path, device: torch.device,
                 threads: int) -> tuple[DistillLoss, Teacher]:
    """The config's ``distill`` key: the loss with its weights, and the teacher checkpoint's dense net built at
    this net's input size (its ONNX file, on a CPU, goes to ``workdir``)."""
    if not isinstance(cfg["distill"], dict):
        raise EdgeSegError(f"{path}: key 'distill': a mapping ({{teacher: CHECKPOINT, ...}}), not {cfg['distill']!r}")
    options = dict(cfg["distill"])
    source = options.pop("teacher", None)
    if not source:
        raise EdgeSegError(f"{path}: key 'distill.teacher' is missing")
    known = {f.name for f in fields(DistillConfig)}
    for key, value in options.items():
        if key not in known:
            raise EdgeSegError(f"{path}: key 'distill.{key}': not one of teacher, {', '.join(sorted(known))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EdgeSegError(f"{path}: key 'distill.{key}': a number, not {value!r}")
    checkpoint = checkpoint_of(source, net_cfg, spec)
    try:
        net = dense_teacher(net_cfg, checkpoint, device)
    except EdgeSegError as e:
        raise EdgeSegError(f"{source}: not a teacher for this net: {e}") from None
    loss = DistillLoss(DistillConfig(**{k: float(v) for k, v in options.items()}))
    return loss, Teacher(net, spec, workdir, device, threads)


def keep_batch(item: tuple[torch.Tensor, list[TrainSample]]) -> tuple[torch.Tensor, list[TrainSample]]:
    """DataLoader collate function: the batch is already assembled."""
    return item


def to_device(x: torch.Tensor, samples: list[TrainSample],
              device: torch.device) -> tuple[torch.Tensor, list[GroundTruth]]:
    targets = [GroundTruth(boxes=torch.from_numpy(s.boxes).to(device), classes=torch.from_numpy(s.classes).to(device),
                           masks=torch.from_numpy(s.masks).to(device, torch.float32),
                           ignore=torch.from_numpy(s.ignore).to(device)) for s in samples]
    return x.to(device), targets


@torch.no_grad()
def validate(model: Yolact, frames: list[InstanceImage], pre: Preprocessor, decoder: Decoder,
             device: torch.device, batch: int = 4) -> InstanceScores:
    """Mask AP of the export-mode outputs decoded by the numpy decoder, against the frames' instances (``pre``
    and ``decoder`` as the exported card will run: through its warp and back where it declares a fovea)."""
    model.eval()
    acc = InstanceAccumulator(THING_CLASSES)
    priors = model.priors.cpu().numpy()
    for i in range(0, len(frames), batch):
        chunk = frames[i:i + batch]
        x = torch.from_numpy(pre([f.image for f in chunk])).to(device)
        loc, conf, mask, proto = (t.cpu().numpy() for t in model(x))
        outputs = {"loc": loc, "conf": conf, "mask": mask, "proto": proto, "priors": priors}
        sizes = [(f.image.shape[1], f.image.shape[0]) for f in chunk]
        for frame, pred in zip(chunk, decoder(outputs, sizes)):
            acc.update(frame.to_instances(), pred)
    model.train()
    return acc.scores()


def score_record(s: InstanceScores) -> dict:
    """JSON-safe summary (NaN -> null: a class without ground truth has no AP)."""
    def num(v: float) -> float | None:
        return None if math.isnan(v) else round(float(v), 4)

    return {"ap": num(s.ap), "ap50": num(s.ap50), "ap75": num(s.ap75),
            "ap50_per_class": {k: num(v) for k, v in s.ap50_per_class.items()},
            "ap50_by_size": {k: num(v) for k, v in s.ap50_by_size.items()},
            "images": s.images, "instances": s.ground_truth, "detections": s.detections}


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up, then polynomial (0.9) decay to zero, as the semantic training."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (1 - (step - warmup) / max(1, total - warmup)) ** 0.9


def main() -> None:
    try:
        train()
    except EdgeSegError as e:  # a missing file or a bad config: one line, no traceback
        sys.exit(f"train_yolact: {e}")


def train() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="training config YAML (tools/train_configs/*.yaml)")
    ap.add_argument("--resume", action="store_true", help="continue from runs/<name>/last.pt")
    ap.add_argument("--epochs", type=int, help="override the config's number of epochs")
    ap.add_argument("--until", type=int, metavar="N",
                    help="stop after epoch N (1-based; the schedule still spans all epochs; --resume goes on)")
    ap.add_argument("--limit", type=int, help="use only N frames of each data source and validation set (smoke tests)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes preparing batches (default 0: the training process; same batches either way)")
    ap.add_argument("--runs", default=str(REPO / "runs"), help="where checkpoints and logs go (default runs/)")
    args = ap.parse_args()
    device = training_device(args.device)

    cfg = load_config(Path(args.config))
    epochs = int(args.epochs or cfg["epochs"])
    until = min(epochs, args.until or epochs)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    out = Path(args.runs) / cfg["name"]
    out.mkdir(parents=True, exist_ok=True)

    seed_all(int(cfg["seed"]))  # torch's generator (initial weights); data draws: TrainData

    net_cfg = net_config(cfg, Path(args.config))
    size = net_cfg.input_size
    spec = input_spec(cfg, Path(args.config), size)  # the exported card's
    # training frames come warped (TrainData) and augmented to the input size: only normalised here
    pre = Preprocessor(spec.model_copy(update={"fovea": None}))
    bgr_mean = spec.mean[::-1] if spec.color_order == "RGB" else spec.mean
    fill = tuple(int(round(v)) for v in bgr_mean)  # padding that normalises to zero

    inst = cfg["instances"]
    camvid = (REPO / cfg["camvid"]).resolve()
    data = TrainData(cfg, load_camvid(camvid, "train", int(inst["camvid_min_area"]), ignore_rest(cfg)), spec, fill,
                     args.limit)
    val = cfg["val"]
    val_sets = {
        "synth": synth_validation(range(val["synth_seeds"][0], val["synth_seeds"][1] + 1), int(inst["synth_min_area"]),
                                  float(inst["synth_min_visible"]))[:args.limit],
        "camvid": load_camvid(camvid, "val", int(inst["camvid_min_area"]))[:args.limit],
    }
    val_pre = Preprocessor(spec)
    decoder = unwarping(YolactDecoder(classes=THING_CLASSES, score_threshold=EVAL_SCORE_THRESHOLD, input_size=size),
                        spec)

    model = Yolact(net_cfg).to(device).train()
    criterion = YolactLoss(YolactLossConfig(**cfg.get("loss", {})))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    bs = int(cfg["batch_size"])
    steps_per_epoch = math.ceil(len(data) / bs)
    total_steps = steps_per_epoch * epochs
    warmup = steps_per_epoch * int(cfg["warmup_epochs"])

    # before a resume restores torch's generator: building the teacher draws from it, in a straight run too
    distill, teacher = distillation(cfg, Path(args.config), net_cfg, spec, out, device, args.threads) \
        if cfg.get("distill") else (None, None)
    charts = CHARTS + DISTILL_CHARTS if distill else CHARTS
    start_epoch, step, best = 0, 0, -1.0
    if args.resume:
        if (out / "last.pt").is_file():
            ck = read_checkpoint(out / "last.pt", "tools/train_yolact.py")
            if ck["net"]["name"] != net_cfg.name:
                raise EdgeSegError(f"{out / 'last.pt'}: a checkpoint of net {ck['net']['name']}, the config "
                                   f"trains {net_cfg.name}")
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            start_epoch, step, best = ck["epoch"] + 1, ck["step"], ck["best_ap50"]
            torch.set_rng_state(ck["torch_rng"])
            if device.type == "cuda":
                torch.cuda.set_rng_state(ck["cuda_rng"], device)
            print(f"resumed from epoch {ck['epoch']} (best synth mask AP50 {best:.4f})", flush=True)
        else:
            print(f"no {out / 'last.pt'} to resume from: starting at epoch 0", flush=True)
    if start_epoch == 0 and cfg.get("init"):
        batches = EpochBatches(data, pre, 0, bs)
        init = checkpoint_of(cfg["init"], net_cfg, spec, first_batches(batches, NORM_IMAGES))
        started = warm_start(model, init["model"], tuple(init["net"]["aspect_ratios"]))
        trained = f"epoch {init['epoch']}" if init["epoch"] is not None else \
            f"an exported model, its norms' statistics from {init['norm_images']} training images"
        print(f"initialised from {cfg['init']} ({trained}; {started.new_anchors} new anchor(s) copied "
              f"from their nearest aspect ratio; {len(started.fresh_layers)} dense layer(s) factorised)", flush=True)
        if started.fresh_layers and cfg.get("factorise"):
            fit_from_dense(model, init, started.fresh_layers, batches, cfg["factorise"], device)
    if start_epoch == 0:  # a fresh run replaces an earlier one's config and log
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        (out / "log.jsonl").write_text("")
    if args.workers:
        data.synth.build_all()  # before the workers fork, so that they share the worlds
    with open(out / "command.txt", "a" if start_epoch else "w") as f:  # the first line started the run
        f.write(" ".join([".venv/bin/python", "tools/train_yolact.py", *sys.argv[1:]]) + "\n")

    for epoch in range(start_epoch, until):
        t0 = time.time()
        sums: dict[str, float] = {}
        batches = torch.utils.data.DataLoader(EpochBatches(data, pre, epoch, bs), batch_size=None,
                                              num_workers=args.workers, collate_fn=keep_batch)
        iters, skipped, data_s = 0, 0, 0.0
        step_end = time.time()
        for x, samples in batches:
            x, targets = to_device(x, samples, device)
            data_s += time.time() - step_end  # waiting for the batch (all of its preparation without workers)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, warmup, cfg["lr"])
            output = model(x)
            losses = criterion(output, targets)
            if distill:
                extra = distill(output, teacher(x))
                losses = {**losses, **extra, "total": losses["total"] + sum(extra.values())}
            step += 1
            iters += 1
            if torch.isfinite(losses["total"]):
                opt.zero_grad(set_to_none=True)
                losses["total"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg["grad_clip"]))
                opt.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v.item()
            else:
                skipped += 1  # one bad batch must not poison a day-long run
            step_end = time.time()
        seconds = time.time() - t0
        record = {"epoch": epoch, "loss": {k: round(v / max(1, iters - skipped), 5) for k, v in sums.items()},
                  "lr": opt.param_groups[0]["lr"], "iters": iters, "skipped": skipped, "seconds": round(seconds, 1),
                  "s_per_iter": round(seconds / max(1, iters), 3), "data_s_per_iter": round(data_s / max(1, iters), 3)}
        if (epoch + 1) % int(val["every"]) == 0 or epoch + 1 == epochs:
            tv = time.time()
            record["val"] = {name: score_record(validate(model, frames, val_pre, decoder, device))
                             for name, frames in val_sets.items()}
            record["val_seconds"] = round(time.time() - tv, 1)
            ap50 = record["val"]["synth"]["ap50"] or 0.0
            if ap50 > best:
                best = ap50
                save_checkpoint({"model": model.state_dict(), "net": asdict(net_cfg), "epoch": epoch,
                                 "val": record["val"], "input": spec.model_dump()}, out / "best.pt")
        save_checkpoint({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "step": step,
                         "best_ap50": best, "torch_rng": torch.get_rng_state(),
                         "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                         "net": asdict(net_cfg), "input": spec.model_dump()}, out / "last.pt")
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        draw_log(out / "log.jsonl", charts, out / "curves.png")
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
