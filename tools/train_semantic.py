"""Train our semantic net (pipeline.nets.roadnet) on CamVid train mixed with the synthetic road world.

Reproducible: everything comes from the YAML config and its seed; the command and config are written
into runs/<name>/ and later into the model card. Resumable: a checkpoint is written after every epoch
(runs/<name>/last.pt, best.pt by CamVid val mIoU); `--resume` continues from last.pt with the same
schedule, RNG states included. CPU training is slow, so this is meant to run in the background:

    nohup .venv/bin/python tools/train_semantic.py tools/train_configs/edgeseg_road_s.yaml > runs/train.log 2>&1 &

and in pieces if need be: `--until N` stops after epoch N (the learning-rate schedule still spans the
config's epochs), a later `--resume` goes on. Per-epoch logs (loss, CamVid val mIoU and per-class IoU)
go to runs/<name>/log.jsonl, and their charts to runs/<name>/curves.png after every epoch.

On a GPU (`--device cuda`), batches are prepared (synthetic rendering, augmentation, normalisation) by
`--workers N` processes. Each batch draws its randomness from a generator seeded by (config seed, epoch,
batch number) and each epoch's order from (seed, epoch), so the batches, and the run, are the same
whatever the number of workers, and a resumed run continues the stream it left. `--limit N` (N frames of
each split and of synthetic frames per epoch) is a smoke test of the whole loop.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from torch.nn import functional as F

from pipeline.errors import EdgeSegError
from pipeline.eval.semantic import SemanticAccumulator
from pipeline.labels import CAMVID
from pipeline.nets.roadnet import RoadNet, RoadNetConfig
from pipeline.nets.seeding import seed_all
from pipeline.train.config import read_checkpoint, read_with_base, save_checkpoint, training_device
from pipeline.train.curves import draw_log
from pipeline.train.draws import epoch_order, reseed
from pipeline.train.synth_frames import SynthFrames

REPO = Path(__file__).resolve().parent.parent
IGNORE = 255
CHARTS = [("training loss", "loss"), ("CamVid val mIoU", "val_miou"), ("learning rate", "lr")]  # curves.png


def load_split(camvid: Path, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All images (N,H,W,3 uint8 RGB) and labels (N,H,W uint8, void -> 255) of a CamVid split (its first
    ``limit``), in memory: 367 frames are 190 MB, and decoding JPEGs every epoch would cost more than the
    training step."""
    images, labels = [], []
    for img_path in sorted((camvid / split).glob("*.*"))[:limit]:
        lab = cv2.imread(str(camvid / f"{split}annot" / f"{img_path.stem}.png"), cv2.IMREAD_UNCHANGED)
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if img is None or lab is None:
            sys.exit(f"train_semantic: cannot read {img_path} or its label")
        lab = lab.copy()
        lab[lab >= CAMVID.num_classes] = IGNORE
        images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        labels.append(lab)
    if not images:
        sys.exit(f"train_semantic: no images in {camvid / split}")
    return np.stack(images), np.stack(labels)


def enet_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """ENet's weighting 1/ln(1.02 + p): rare classes (poles, signs, cyclists) count more, bounded at ~50."""
    counts = np.bincount(labels[labels != IGNORE].ravel(), minlength=num_classes)[:num_classes].astype(np.float64)
    return (1.0 / np.log(1.02 + counts / counts.sum())).astype(np.float32)


class Augment:
    """Random rescale, crop, flip and photometric jitter on one RGB image + label map (numpy/cv2), drawn
    from ``rng`` (the training data's generator, re-seeded per batch)."""

    def __init__(self, crop: tuple[int, int], scale: tuple[float, float], rng: np.random.Generator):
        self.crop_w, self.crop_h = crop
        self.scale = scale
        self.rng = rng

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        s = rng.uniform(*self.scale)
        h, w = label.shape
        nw, nh = max(self.crop_w, round(w * s)), max(self.crop_h, round(h * s))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
        x = rng.integers(0, nw - self.crop_w + 1)
        y = rng.integers(0, nh - self.crop_h + 1)
        image = image[y:y + self.crop_h, x:x + self.crop_w]
        label = label[y:y + self.crop_h, x:x + self.crop_w]
        if rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        gain = rng.uniform(0.75, 1.25) * rng.uniform(0.92, 1.08, size=3)  # contrast and colour cast
        bias = rng.uniform(-25, 25)
        image = np.clip(image.astype(np.float32) * gain + bias, 0, 255)
        if rng.random() < 0.2:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
        return image, np.ascontiguousarray(label)


class TrainData:
    """Each epoch: every CamVid training frame, plus ``synth.frames_per_epoch`` synthetic frames from epoch
    ``synth.start_epoch`` on (once the net has learnt real textures), shuffled, augmented on the fly. Every
    draw derives from the config's seed and the epoch (the order) or the epoch and batch number (a batch's
    frames and augmentation), never from what was drawn before, so any process can prepare any batch."""

    def __init__(self, cfg: dict, images: np.ndarray, labels: np.ndarray, size: tuple[int, int], limit: int | None):
        self.seed = int(cfg["seed"])
        self.rng = np.random.default_rng(self.seed)  # shared by the parts below; re-seeded per batch
        self.images, self.labels = images, labels
        synth = cfg.get("synth") or {}
        self.n_synth = min(int(synth.get("frames_per_epoch", 0)), limit if limit is not None else math.inf)
        self.synth_start = int(synth.get("start_epoch", 0))
        self.synth = SynthFrames(range(synth["seeds"][0], synth["seeds"][1] + 1), int(synth["max_index"]), size,
                                 self.rng) if self.n_synth else None
        self.augment = Augment(tuple(cfg["crop"]), tuple(cfg["scale"]), self.rng)

    def epoch_size(self, epoch: int) -> int:
        return len(self.images) + (self.n_synth if epoch >= self.synth_start else 0)

    def chunks(self, epoch: int, size: int) -> list[list[int]]:
        """The epoch's batches: a shuffled order (indices < len(images) are CamVid frames, the rest stand for
        synthetic draws) cut into ``size``s; a last batch of one frame joins the one before, as batch norm
        cannot train on a single frame's pooled context."""
        order = epoch_order(self.seed, epoch, self.epoch_size(epoch))
        chunks = [order[b:b + size] for b in range(0, len(order), size)]
        if len(chunks) > 1 and len(chunks[-1]) == 1:
            last = chunks.pop()
            chunks[-1] += last
        return chunks

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i < len(self.images):
            return self.augment(self.images[i], self.labels[i])
        frame = self.synth.sample()
        label = frame.semantic.copy()
        label[label >= CAMVID.num_classes] = IGNORE
        return self.augment(cv2.cvtColor(frame.frame.image, cv2.COLOR_BGR2RGB), label)

    def batch(self, epoch: int, number: int, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Images (N,h,w,3 float32 RGB) and labels (N,h,w uint8) of ``indices``, all their randomness from
        (seed, epoch, batch ``number``): the same batch in whichever process prepares it."""
        reseed(self.rng, self.seed, epoch, number)
        images, labels = zip(*(self.sample(i) for i in indices))
        return np.stack(images), np.stack(labels)


class EpochBatches(torch.utils.data.Dataset):
    """One epoch's batches for a DataLoader: item k is batch k of the epoch's order as tensors (normalised
    NCHW input, int64 labels), which workers hand back through shared memory."""

    def __init__(self, data: TrainData, epoch: int, size: int, mean: np.ndarray, std: np.ndarray):
        self.data, self.epoch, self.mean, self.std = data, epoch, mean, std
        self.chunks = data.chunks(epoch, size)

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.data.batch(self.epoch, k, self.chunks[k])
        return normalise(images, self.mean, self.std), torch.from_numpy(labels.astype(np.int64))


def normalise(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """NHWC float/uint8 RGB -> NCHW float32 normalised, matching the model card's InputSpec."""
    x = (np.asarray(images, np.float32) - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (1 - (step - warmup) / max(1, total - warmup)) ** 0.9


@torch.no_grad()
def validate(model: RoadNet, images: np.ndarray, labels: np.ndarray, mean: np.ndarray, std: np.ndarray,
             device: torch.device) -> np.ndarray:
    """Per-class IoU on CamVid val (void ignored), as a quick training signal; the model card's numbers come
    from `edgeseg eval` on the exported ONNX."""
    model.eval()
    acc = SemanticAccumulator(CAMVID.num_classes)
    for i in range(0, len(images), 4):
        pred = model(normalise(images[i:i + 4], mean, std).to(device)).argmax(1).cpu().numpy()
        for p, t in zip(pred, labels[i:i + 4]):
            acc.update(t, p)
    model.train()
    return acc.scores().iou


def main() -> None:
    try:
        train()
    except EdgeSegError as e:  # a missing file or a bad config: one line, no traceback
        sys.exit(f"train_semantic: {e}")


def train() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="training config YAML (tools/train_configs/*.yaml)")
    ap.add_argument("--resume", action="store_true", help="continue from runs/<name>/last.pt")
    ap.add_argument("--until", type=int, metavar="N",
                    help="stop after epoch N (1-based; the schedule still spans the config's epochs; --resume goes on)")
    ap.add_argument("--limit", type=int,
                    help="use only N frames of each split and N synthetic frames per epoch (smoke tests)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes preparing batches (default 0: the training process; same batches either way)")
    ap.add_argument("--runs", default=str(REPO / "runs"), help="where checkpoints and logs go (default runs/)")
    args = ap.parse_args()
    device = training_device(args.device)

    cfg = read_with_base(Path(args.config))
    epochs = int(cfg["epochs"])
    until = min(epochs, args.until or epochs)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    out = Path(args.runs) / cfg["name"]
    out.mkdir(parents=True, exist_ok=True)

    seed_all(int(cfg["seed"]))  # torch's generator (initial weights); data draws: TrainData

    camvid = (REPO / cfg["camvid"]).resolve()
    train_x, train_y = load_split(camvid, "train", args.limit)
    val_x, val_y = load_split(camvid, "val", args.limit)
    spec = cfg["input"]
    mean, std = np.float32(spec["mean"]), np.float32(spec["std"])
    net_cfg = RoadNetConfig.from_dict(cfg["net"])
    model = RoadNet(net_cfg).to(device)
    weights = torch.from_numpy(enet_class_weights(train_y, net_cfg.num_classes)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    data = TrainData(cfg, train_x, train_y, (spec["width"], spec["height"]), args.limit)

    bs = int(cfg["batch_size"])
    steps = [len(data.chunks(e, bs)) for e in range(epochs)]
    total_steps, warmup = sum(steps), sum(steps[:int(cfg["warmup_epochs"])])

    start_epoch, step, best = 0, 0, -1.0
    if args.resume:
        if (out / "last.pt").is_file():
            ck = read_checkpoint(out / "last.pt", "tools/train_semantic.py")
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            start_epoch, step, best = ck["epoch"] + 1, ck["step"], ck["best_miou"]
            torch.set_rng_state(ck["torch_rng"])
            if device.type == "cuda" and ck.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(ck["cuda_rng"], device)
            print(f"resumed from epoch {ck['epoch']} (best mIoU {best:.4f})", flush=True)
        else:
            print(f"no {out / 'last.pt'} to resume from: starting at epoch 0", flush=True)
    if start_epoch == 0 and cfg.get("init"):
        init = read_checkpoint(REPO / cfg["init"], "tools/train_semantic.py")
        if RoadNetConfig.from_dict(init["net"]) != net_cfg:
            raise EdgeSegError(f"{cfg['init']}: a checkpoint of another net ({init['net']}); the config trains "
                               f"{net_cfg}")
        model.load_state_dict(init["model"])
        print(f"initialised from {cfg['init']} (epoch {init['epoch']})", flush=True)
    if start_epoch == 0:  # a fresh run replaces an earlier one's config and log
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        (out / "log.jsonl").write_text("")
    if args.workers and data.synth is not None:
        data.synth.build_all()  # before the workers fork, so that they share the worlds
    with open(out / "command.txt", "a" if start_epoch else "w") as f:  # the first line started the run
        f.write(" ".join([".venv/bin/python", "tools/train_semantic.py", *sys.argv[1:]]) + "\n")

    model.train()
    for epoch in range(start_epoch, until):
        t0 = time.time()
        batches = torch.utils.data.DataLoader(EpochBatches(data, epoch, bs, mean, std), batch_size=None,
                                              num_workers=args.workers)
        losses, data_s, step_end = [], 0.0, time.time()
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            data_s += time.time() - step_end  # waiting for the batch (all of its preparation without workers)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, warmup, cfg["lr"])
            logits, aux = model(x)
            loss = F.cross_entropy(logits, y, weight=weights, ignore_index=IGNORE) + \
                cfg["aux_weight"] * F.cross_entropy(aux, y, weight=weights, ignore_index=IGNORE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            step_end = time.time()
        seconds = time.time() - t0
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": opt.param_groups[0]["lr"],
                  "synth": epoch >= data.synth_start and data.n_synth > 0, "seconds": round(seconds, 1),
                  "data_s_per_iter": round(data_s / max(1, len(losses)), 3)}
        if (epoch + 1) % int(cfg["val_every"]) == 0 or epoch + 1 == epochs:
            iou = validate(model, val_x, val_y, mean, std, device)
            record["val_miou"] = float(np.nanmean(iou))
            record["val_iou"] = {n: round(float(v), 4) for n, v in zip(CAMVID.classes, iou)}
            if record["val_miou"] > best:
                best = record["val_miou"]
                save_checkpoint({"model": model.state_dict(), "net": net_cfg.__dict__, "epoch": epoch,
                                 "val_miou": best}, out / "best.pt")
        save_checkpoint({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "step": step,
                         "best_miou": best, "torch_rng": torch.get_rng_state(),
                         "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                         "net": net_cfg.__dict__}, out / "last.pt")
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        draw_log(out / "log.jsonl", CHARTS, out / "curves.png")
        print(json.dumps({k: v for k, v in record.items() if k != "val_iou"}), flush=True)


if __name__ == "__main__":
    main()
