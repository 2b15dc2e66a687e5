"""Train our semantic net (pipeline.nets.roadnet) on CamVid train mixed with the synthetic road world.

Reproducible: everything comes from the YAML config and its seed; the command and config are written
into runs/<name>/ and later into the model card. Resumable: a checkpoint is written after every epoch
(runs/<name>/last.pt, best.pt by CamVid val mIoU); `--resume` continues from last.pt with the same
schedule, RNG states included. CPU training is slow, so this is meant to run in the background:

    nohup .venv/bin/python tools/train_semantic.py tools/train_configs/edgeseg_road_s.yaml > runs/train.log 2>&1 &

Per-epoch logs (loss, CamVid val mIoU and per-class IoU) go to runs/<name>/log.jsonl.
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

from pipeline.eval.semantic import SemanticAccumulator
from pipeline.labels import CAMVID
from pipeline.nets.seeding import seed_all
from pipeline.nets.roadnet import RoadNet, RoadNetConfig

REPO = Path(__file__).resolve().parent.parent
IGNORE = 255


def load_split(camvid: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All images (N,H,W,3 uint8 RGB) and labels (N,H,W uint8, void -> 255) of a CamVid split, in memory:
    367 frames are 190 MB, and decoding JPEGs every epoch would cost more than the training step."""
    images, labels = [], []
    for img_path in sorted((camvid / split).glob("*.*")):
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
    """Random rescale, crop, flip and photometric jitter on one RGB image + label map (numpy/cv2)."""

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


class SynthPool:
    """Synthetic frames drawn at random (seed, index) from the synthetic world, rendered on demand at the
    training resolution. Imported lazily so CamVid-only epochs run without it."""

    def __init__(self, seeds: tuple[int, int], max_index: int, size: tuple[int, int], rng: np.random.Generator):
        from pipeline.synth import SynthWorld  # noqa: PLC0415  (optional until synth epochs start)

        self.worlds = [SynthWorld(seed=s, size=size, fps=30.0) for s in range(seeds[0], seeds[1] + 1)]
        self.max_index = max_index
        self.rng = rng

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        world = self.worlds[self.rng.integers(len(self.worlds))]
        f = world.render(int(self.rng.integers(self.max_index)))
        label = f.semantic.copy()
        label[label >= CAMVID.num_classes] = IGNORE
        return cv2.cvtColor(f.frame.image, cv2.COLOR_BGR2RGB), label


def normalise(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """NHWC float/uint8 RGB -> NCHW float32 normalised, matching the model card's InputSpec."""
    x = (np.asarray(images, np.float32) - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (1 - (step - warmup) / max(1, total - warmup)) ** 0.9


@torch.no_grad()
def validate(model: RoadNet, images: np.ndarray, labels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-class IoU on CamVid val (void ignored), as a quick training signal; the model card's numbers come
    from `edgeseg eval` on the exported ONNX."""
    model.eval()
    acc = SemanticAccumulator(CAMVID.num_classes)
    for i in range(0, len(images), 4):
        pred = model(normalise(images[i:i + 4], mean, std)).argmax(1).numpy()
        for p, t in zip(pred, labels[i:i + 4]):
            acc.update(t, p)
    model.train()
    return acc.scores().iou


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="training config YAML (tools/train_configs/*.yaml)")
    ap.add_argument("--resume", action="store_true", help="continue from runs/<name>/last.pt")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--runs", default=str(REPO / "runs"), help="where checkpoints and logs go (default runs/)")
    args = ap.parse_args()

    cfg = yaml.safe_load(Path(args.config).read_text())
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    out = Path(args.runs) / cfg["name"]
    out.mkdir(parents=True, exist_ok=True)

    seed = int(cfg["seed"])
    rng = seed_all(seed)

    camvid = (REPO / cfg["camvid"]).resolve()
    train_x, train_y = load_split(camvid, "train")
    val_x, val_y = load_split(camvid, "val")
    spec = cfg["input"]
    mean, std = np.float32(spec["mean"]), np.float32(spec["std"])
    net_cfg = RoadNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg["net"].items()})
    model = RoadNet(net_cfg)
    weights = torch.from_numpy(enet_class_weights(train_y, net_cfg.num_classes))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    augment = Augment(tuple(cfg["crop"]), tuple(cfg["scale"]), rng)

    synth_cfg = cfg.get("synth") or {}
    n_synth = int(synth_cfg.get("frames_per_epoch", 0))
    bs = int(cfg["batch_size"])
    steps_per_epoch = math.ceil((len(train_x) + n_synth) / bs)
    total_steps = steps_per_epoch * int(cfg["epochs"])
    warmup = steps_per_epoch * int(cfg["warmup_epochs"])

    start_epoch, step, best = 0, 0, -1.0
    if args.resume and (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start_epoch, step, best = ck["epoch"] + 1, ck["step"], ck["best_miou"]
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from epoch {ck['epoch']} (best mIoU {best:.4f})", flush=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (out / "command.txt").write_text(" ".join([".venv/bin/python", "tools/train_semantic.py", args.config]) + "\n")

    pool = None
    model.train()
    for epoch in range(start_epoch, int(cfg["epochs"])):
        t0 = time.time()
        use_synth = n_synth > 0 and epoch >= int(synth_cfg.get("start_epoch", 0))
        if use_synth and pool is None:
            pool = SynthPool(tuple(synth_cfg["seeds"]), int(synth_cfg["max_index"]), (spec["width"], spec["height"]), rng)
        order = [("camvid", int(i)) for i in rng.permutation(len(train_x))]
        if use_synth:
            order += [("synth", -1)] * n_synth
            order = [order[i] for i in rng.permutation(len(order))]
        losses = []
        for b in range(0, len(order), bs):
            xs, ys = [], []
            for kind, i in order[b:b + bs]:
                img, lab = (train_x[i], train_y[i]) if kind == "camvid" else pool.sample()
                img, lab = augment(img, lab)
                xs.append(img)
                ys.append(lab)
            x = normalise(np.stack(xs), mean, std)
            y = torch.from_numpy(np.stack(ys).astype(np.int64))
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
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": opt.param_groups[0]["lr"],
                  "synth": use_synth, "seconds": round(time.time() - t0, 1)}
        if (epoch + 1) % int(cfg["val_every"]) == 0 or epoch + 1 == int(cfg["epochs"]):
            iou = validate(model, val_x, val_y, mean, std)
            record["val_miou"] = float(np.nanmean(iou))
            record["val_iou"] = {n: round(float(v), 4) for n, v in zip(CAMVID.classes, iou)}
            if record["val_miou"] > best:
                best = record["val_miou"]
                torch.save({"model": model.state_dict(), "net": net_cfg.__dict__, "epoch": epoch,
                            "val_miou": best}, out / "best.pt")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "step": step,
                    "best_miou": best, "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "net": net_cfg.__dict__}, out / "last.pt")
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k != "val_iou"}), flush=True)


if __name__ == "__main__":
    main()
