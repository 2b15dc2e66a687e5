"""`edgeseg eval KIND:DIR`: a model's scores on a labelled split, by the task its card declares.

Semantic models: mIoU, per-class IoU and accuracies. ``--panoptic CONFIG``: PQ of a pipeline config's fused
output (:mod:`pipeline.eval.panoptic_run`). Instance models: COCO mask AP and AP50 (and per-class
mask AP) against the instance ground truth the road YOLACT's training validates on, derived by the same
functions (pipeline.train.instance_data) with the same thresholds (:class:`InstanceRules`).

:func:`evaluate_semantic` and :func:`evaluate_instances` are the reusable parts (training and export tools
call them); :func:`run` adds the progress bar, the table, the ``--json`` dump, which is a :class:`SemanticMetrics` or
:class:`InstanceMetrics` so that a model card can embed it under ``metrics``, and the ``--plot`` picture
(:mod:`pipeline.eval.plots`).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pipeline import runtime
from pipeline.decoders import SemanticDecoder
from pipeline.decoders.yolact import YolactDecoder
from pipeline.errors import EdgeSegError
from pipeline.eval.datasets import Dataset, open_dataset
from pipeline.eval.instances import SIZES, InstanceAccumulator, InstanceScores
from pipeline.eval.panoptic_run import evaluate_panoptic, panoptic_table
from pipeline.eval.plots import confusion_image, pr_curves_image, write_png
from pipeline.eval.semantic import SemanticAccumulator
from pipeline.foveate import unwarping
from pipeline.labels import LABEL_SETS, LabelSet, mapping_lut
from pipeline.modelcard import ClassMetrics, InstanceMetrics, LoadedCard, SemanticMetrics, engines_dirs, find_card
from pipeline.preprocess import Preprocessor
from pipeline.train.instance_data import THING_CLASSES, InstanceImage, camvid_instances, synth_validation

VOID_NAMES = {"void", "background", "unlabelled", "unlabeled"}
EVAL_SCORE_THRESHOLD = 0.05  # the official YOLACT evaluation's: AP rewards low-confidence detections


def prediction_lut(loaded_card: LoadedCard, label_set: LabelSet) -> np.ndarray | None:
    """None when the model's class indices already mean the dataset's classes (one extra trailing void
    channel allowed: its predictions count as misses); else the declared mapping from the model's label set
    (pipeline.labels.CLASS_MAPS, e.g. Cityscapes -> CamVid) as a lookup table. No mapping: one-line error."""
    classes = tuple(loaded_card.card.classes)
    if classes == label_set.classes:
        return None
    if classes[:-1] == label_set.classes and classes[-1].lower() in VOID_NAMES:
        return None
    source = LABEL_SETS.get(loaded_card.card.label_set or "")
    lut = mapping_lut(source, label_set) if source and classes[: source.num_classes] == source.classes else None
    if lut is None:
        raise EdgeSegError(f"{loaded_card.path}: model classes ({', '.join(classes)}) do not match dataset "
                           f"label set {label_set.name} ({', '.join(label_set.classes)}) and no class mapping "
                           f"from {loaded_card.card.label_set or 'its classes'} is declared")
    return lut


def _command(loaded_card: LoadedCard, dataset: Dataset, limit: int | None,
             decoder_overrides: Mapping[str, Any] | None = None) -> str:
    """The `edgeseg eval` command that reproduces these metrics (threads do not change them)."""
    in_engines = loaded_card.path.parent.resolve() in {d.resolve() for d in engines_dirs()}
    model = loaded_card.card.name if in_engines else str(loaded_card.path)
    split = f" --split {dataset.split}" if dataset.kind != "synth" else ""
    command = f"edgeseg eval {dataset.kind}:{dataset.root}{split} --model {model}"
    command += "".join(f" --{key.replace('_', '-')} {value}" for key, value in (decoder_overrides or {}).items())
    return command + (f" --limit {limit}" if limit else "")


def evaluate_semantic(loaded_card: LoadedCard, dataset: Dataset, threads: int = 0, limit: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> SemanticMetrics:
    """Run the model on every image of ``dataset`` (the first ``limit``) and score it against the labels
    at the labels' resolution (through the declared class mapping when the model was trained on another
    label set, e.g. Cityscapes models on CamVid). Logits are resized bilinearly to the image before the argmax (the more
    accurate choice where model and image sizes differ). ``progress(done, total)`` once the model is
    loaded (done 0) and after each image."""
    return _semantic_metrics(semantic_confusion(loaded_card, dataset, threads, limit, progress), loaded_card,
                             dataset, limit)


def semantic_confusion(loaded_card: LoadedCard, dataset: Dataset, threads: int = 0, limit: int | None = None,
                       progress: Callable[[int, int], None] | None = None) -> SemanticAccumulator:
    """The pass of :func:`evaluate_semantic`: its confusion matrix over the dataset's classes."""
    lut = prediction_lut(loaded_card, dataset.label_set)
    card = loaded_card.card
    session = runtime.load(loaded_card, threads=threads)
    preprocess = Preprocessor(card.input)
    decode = unwarping(SemanticDecoder(card, resize="bilinear"), card.input)
    accumulator = SemanticAccumulator(dataset.label_set.num_classes)
    total = min(len(dataset), limit) if limit else len(dataset)
    if progress:
        progress(0, total)
    for done, sample in enumerate(islice(dataset, total), start=1):
        outputs = session.run(preprocess(sample.image))
        semantic = decode(outputs, [(sample.image.shape[1], sample.image.shape[0])])[0]
        accumulator.update(sample.labels, semantic.labels if lut is None else lut[semantic.labels])
        if progress:
            progress(done, total)
    return accumulator


def _semantic_metrics(accumulator: SemanticAccumulator, loaded_card: LoadedCard, dataset: Dataset,
                      limit: int | None) -> SemanticMetrics:
    s = accumulator.scores()
    per_class = {name: ClassMetrics(iou=float(iou), accuracy=None if math.isnan(acc) else float(acc))
                 for name, iou, acc in zip(dataset.label_set.classes, s.iou, s.class_accuracy) if not math.isnan(iou)}
    card = loaded_card.card
    return SemanticMetrics(
        dataset=dataset.name,
        resolution=f"{card.input.width}x{card.input.height}",
        miou=s.miou,
        pixel_accuracy=s.pixel_accuracy,
        mean_accuracy=s.mean_accuracy,
        per_class=per_class,
        images=accumulator.images,
        command=_command(loaded_card, dataset, limit),
    )


@dataclass(frozen=True)
class InstanceRules:
    """Which objects count as ground-truth instances. The defaults are the ``instances`` section of
    tools/train_configs/edgeseg_yolact_road*.yaml (written in stage 1, the others' base), so `edgeseg eval`
    scores what training validation scores (a test keeps them equal)."""

    camvid_min_area: int = 50  # pixels of a CamVid connected component
    synth_min_area: int = 30  # visible pixels at 640x360
    synth_min_visible: float = 0.15  # visible share of the unoccluded object


def _camvid_truth(dataset: Dataset, rules: InstanceRules, total: int) -> Iterator[InstanceImage]:
    for sample in islice(dataset, total):
        yield camvid_instances(sample.image, sample.labels, rules.camvid_min_area)


def _synth_truth(dataset: Dataset, rules: InstanceRules, total: int) -> Iterator[InstanceImage]:
    seeds = dataset.seeds[:math.ceil(total / dataset.frames_per_seed)]  # render only the seeds needed
    yield from synth_validation(seeds, rules.synth_min_area, rules.synth_min_visible)[:total]


INSTANCE_TRUTH: dict[str, Callable[[Dataset, InstanceRules, int], Iterator[InstanceImage]]] = {
    "camvid": _camvid_truth,  # connected components of the thing classes
    "synth": _synth_truth,  # the renderer's exact objects
}


def evaluate_instances(loaded_card: LoadedCard, dataset: Dataset, threads: int = 0, limit: int | None = None,
                       progress: Callable[[int, int], None] | None = None,
                       rules: InstanceRules = InstanceRules()) -> InstanceMetrics:
    """Mask AP of an instance model on ``dataset`` (the first ``limit`` images): ONNX Runtime, the card's
    preprocessing and YOLACT decoder at the official evaluation threshold (0.05), pycocotools' COCOeval over
    Car, Pedestrian and Bicyclist (matched by name). ``progress`` as in :func:`evaluate_semantic`."""
    return evaluate_decoder_variants(loaded_card, dataset, [{}], threads, limit, progress, rules)[0]


def evaluate_decoder_variants(loaded_card: LoadedCard, dataset: Dataset, variants: Sequence[Mapping[str, Any]],
                              threads: int = 0, limit: int | None = None,
                              progress: Callable[[int, int], None] | None = None,
                              rules: InstanceRules = InstanceRules()) -> list[InstanceMetrics]:
    """:func:`evaluate_instances` once per decoder variant (keyword overrides of the card's postprocess,
    e.g. ``{"mask_threshold": 0.4}``), from one pass of the model: what calibrating post-processing needs."""
    scores = score_decoder_variants(loaded_card, dataset, variants, threads, limit, progress, rules)
    return [_instance_metrics(s, loaded_card, dataset, limit, variant) for s, variant in zip(scores, variants)]


def score_decoder_variants(loaded_card: LoadedCard, dataset: Dataset, variants: Sequence[Mapping[str, Any]],
                           threads: int = 0, limit: int | None = None,
                           progress: Callable[[int, int], None] | None = None,
                           rules: InstanceRules = InstanceRules()) -> list[InstanceScores]:
    """The pass of :func:`evaluate_decoder_variants`: COCOeval's scores, precision-recall curves included."""
    card = loaded_card.card
    truth = INSTANCE_TRUTH.get(dataset.kind)
    if truth is None:
        raise EdgeSegError(f"dataset '{dataset.name}': no instance ground truth for kind '{dataset.kind}' "
                           f"(instance models are evaluated on: {', '.join(INSTANCE_TRUTH)})")
    if not set(card.classes) & set(THING_CLASSES):
        raise EdgeSegError(f"{loaded_card.path}: model classes ({', '.join(card.classes[:5])}"
                           f"{', ...' if len(card.classes) > 5 else ''}) include none of the instance ground "
                           f"truth's classes ({', '.join(THING_CLASSES)})")
    session = runtime.load(loaded_card, threads=threads)
    preprocess = Preprocessor(card.input)
    decoders = [unwarping(YolactDecoder.from_card(card, **({"score_threshold": EVAL_SCORE_THRESHOLD} | dict(v))),
                          card.input) for v in variants]
    accumulators = [InstanceAccumulator(THING_CLASSES) for _ in decoders]
    total = min(len(dataset), limit) if limit else len(dataset)
    if progress:
        progress(0, total)
    for done, frame in enumerate(truth(dataset, rules, total), start=1):
        outputs = session.run(preprocess(frame.image))
        gt = frame.to_instances()
        for decode, accumulator in zip(decoders, accumulators):
            accumulator.update(gt, decode(outputs, [(frame.image.shape[1], frame.image.shape[0])])[0])
        if progress:
            progress(done, total)
    return [accumulator.scores() for accumulator in accumulators]


def _instance_metrics(s: InstanceScores, loaded_card: LoadedCard, dataset: Dataset, limit: int | None,
                      decoder_overrides: Mapping[str, Any]) -> InstanceMetrics:
    if s.ground_truth == 0:
        raise EdgeSegError(f"dataset '{dataset.name}': no ground-truth instances in {s.images} images, "
                           f"so mask AP is undefined (evaluate more images)")
    card = loaded_card.card
    return InstanceMetrics(
        dataset=dataset.name,
        resolution=f"{card.input.width}x{card.input.height}",
        mask_ap=s.ap,
        mask_ap50=s.ap50,
        per_class_mask_ap={name: float(ap) for name, ap in s.ap_per_class.items() if not math.isnan(ap)},
        per_class_mask_ap50={name: float(ap) for name, ap in s.ap50_per_class.items() if not math.isnan(ap)},
        instances_per_class=s.ground_truth_per_class,
        mask_ap50_by_size={name: float(ap) for name, ap in s.ap50_by_size.items() if not math.isnan(ap)},
        instances_by_size=s.ground_truth_by_size,
        images=s.images,
        instances=s.ground_truth,
        command=_command(loaded_card, dataset, limit, decoder_overrides),
    )


def _table(metrics: SemanticMetrics, label_set: LabelSet, model: str) -> Table:
    table = Table(title=f"{model} on {metrics.dataset} ({metrics.images} images, input {metrics.resolution})")
    table.add_column("class")
    table.add_column("IoU %", justify="right")
    table.add_column("accuracy %", justify="right")
    for name in label_set.classes:
        m = metrics.per_class.get(name)
        iou = f"{m.iou * 100:.2f}" if m else "-"
        acc = f"{m.accuracy * 100:.2f}" if m and m.accuracy is not None else "-"
        table.add_row(name, iou, acc)
    table.add_section()
    table.add_row("mIoU", f"{metrics.miou * 100:.2f}", "", style="bold")
    table.add_row("pixel accuracy", "", f"{metrics.pixel_accuracy * 100:.2f}")
    table.add_row("mean accuracy", "", f"{metrics.mean_accuracy * 100:.2f}")
    return table


def _instance_table(metrics: InstanceMetrics, model: str) -> Table:
    table = Table(title=f"{model} on {metrics.dataset} ({metrics.images} images, {metrics.instances} instances, "
                        f"input {metrics.resolution})")
    table.add_column("")
    table.add_column("mask AP %", justify="right")
    table.add_column("mask AP50 %", justify="right")
    table.add_column("objects", justify="right")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.2f}"

    for name in THING_CLASSES:
        table.add_row(name, pct(metrics.per_class_mask_ap.get(name)), pct(metrics.per_class_mask_ap50.get(name)),
                      str(metrics.instances_per_class.get(name, "")))
    table.add_section()
    for size, bound in zip(SIZES, ("< 32x32 px", "< 96x96 px", ">= 96x96 px")):
        table.add_row(f"{size} ({bound})", "", pct(metrics.mask_ap50_by_size.get(size)),
                      str(metrics.instances_by_size.get(size, "")))
    table.add_section()
    table.add_row("all", f"{metrics.mask_ap * 100:.2f}", f"{metrics.mask_ap50 * 100:.2f}", str(metrics.instances),
                  style="bold")
    return table


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit <= 0:
        raise EdgeSegError(f"--limit must be a positive number of images, got {args.limit}")
    if args.threads < 0:
        raise EdgeSegError(f"--threads must be 0 (all cores) or more, got {args.threads}")
    overrides = {key: value for key, value in (("mask_threshold", args.mask_threshold), ("mask_crop", args.mask_crop),
                                               ("maskness_power", args.maskness_power)) if value is not None}
    if args.mask_threshold is not None and not 0 < args.mask_threshold < 1:
        raise EdgeSegError(f"--mask-threshold must be between 0 and 1, got {args.mask_threshold}")
    if args.maskness_power is not None and not 0 <= args.maskness_power <= 4:
        raise EdgeSegError(f"--maskness-power must be between 0 and 4, got {args.maskness_power}")
    if args.plot and args.panoptic:
        raise EdgeSegError("--plot draws a semantic or an instance model's evaluation, not --panoptic")
    if args.plot and not cv2.haveImageWriter(args.plot):
        raise EdgeSegError(f"--plot {args.plot}: not an image file name OpenCV can write (use .png)")
    dataset = open_dataset(args.dataset, args.split)
    loaded_card = None if args.panoptic else find_card(args.model)
    if overrides and (loaded_card is None or loaded_card.card.task != "instance"):
        target = "--panoptic" if loaded_card is None else f"{loaded_card.card.name} ({loaded_card.card.task})"
        raise EdgeSegError(f"--mask-threshold, --mask-crop and --maskness-power apply to an instance model, "
                           f"not to {target}")
    console = Console()
    bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=console, transient=True)
    what = f"panoptic {args.panoptic}" if args.panoptic else loaded_card.card.name
    task = bar.add_task(f"eval {what} on {dataset.name}", total=None, start=False)

    def progress(done: int, total: int) -> None:
        if done == 0:  # the model loaded: show the bar only now, so that load errors print alone
            bar.start()
            bar.start_task(task)
        bar.update(task, completed=done, total=total)

    instance = loaded_card is not None and loaded_card.card.task == "instance"
    start = time.perf_counter()
    try:
        if args.panoptic:
            metrics = evaluate_panoptic(args.panoptic, dataset, threads=args.threads, limit=args.limit,
                                        progress=progress)
        elif instance:
            scores = score_decoder_variants(loaded_card, dataset, [overrides], threads=args.threads,
                                            limit=args.limit, progress=progress)[0]
            metrics = _instance_metrics(scores, loaded_card, dataset, args.limit, overrides)
        else:
            confusion = semantic_confusion(loaded_card, dataset, threads=args.threads, limit=args.limit,
                                           progress=progress)
            metrics = _semantic_metrics(confusion, loaded_card, dataset, args.limit)
    finally:
        if bar.live.is_started:
            bar.stop()
    seconds = time.perf_counter() - start
    if args.panoptic:
        console.print(panoptic_table(metrics, dataset.label_set.classes))
        console.print(f"{metrics.images} images in {seconds:.1f} s; PQ {metrics.pq * 100:.2f} "
                      f"(things {metrics.pq_things * 100:.2f}, stuff {metrics.pq_stuff * 100:.2f})")
    elif instance:
        console.print(_instance_table(metrics, loaded_card.card.name))
        console.print(f"{metrics.images} images in {seconds:.1f} s; mask AP {metrics.mask_ap * 100:.2f}, "
                      f"AP50 {metrics.mask_ap50 * 100:.2f}")
    else:
        console.print(_table(metrics, dataset.label_set, loaded_card.card.name))
        console.print(f"{metrics.images} images in {seconds:.1f} s; mIoU {metrics.miou * 100:.2f}")
    if args.json:
        path = Path(args.json)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(metrics.model_dump_json(indent=2) + "\n")
        except OSError as e:
            raise EdgeSegError(f"{path}: cannot write metrics JSON: {e.strerror}") from None
        console.print(f"metrics written to {path}")
    if args.plot:
        title = f"{loaded_card.card.name} on {dataset.name} ({metrics.images} images, input {metrics.resolution})"
        image = (pr_curves_image(scores, title) if instance
                 else confusion_image(confusion.matrix, dataset.label_set.classes, f"{title}: mIoU "
                                      f"{metrics.miou * 100:.2f}"))
        write_png(image, Path(args.plot))
        console.print(f"plot written to {args.plot}")
    return 0
