"""`edgeseg eval KIND:DIR`: a semantic model's mIoU, per-class IoU and accuracies on a labelled split.

:func:`evaluate_semantic` is the reusable part (training tools call it); :func:`run` adds the
progress bar, the table and the ``--json`` dump, which is a :class:`SemanticMetrics` so that a
model card can embed it under ``metrics``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pipeline import runtime
from pipeline.decoders import SemanticDecoder
from pipeline.errors import EdgeSegError
from pipeline.eval.datasets import Dataset, open_dataset
from pipeline.eval.semantic import SemanticAccumulator
from pipeline.labels import LABEL_SETS, LabelSet, mapping_lut
from pipeline.modelcard import ClassMetrics, LoadedCard, SemanticMetrics, engines_dirs, find_card
from pipeline.preprocess import Preprocessor

VOID_NAMES = {"void", "background", "unlabelled", "unlabeled"}


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


def _command(loaded_card: LoadedCard, dataset: Dataset, limit: int | None) -> str:
    """The `edgeseg eval` command that reproduces these metrics (threads do not change them)."""
    in_engines = loaded_card.path.parent.resolve() in {d.resolve() for d in engines_dirs()}
    model = loaded_card.card.name if in_engines else str(loaded_card.path)
    split = f" --split {dataset.split}" if dataset.kind != "synth" else ""
    command = f"edgeseg eval {dataset.kind}:{dataset.root}{split} --model {model}"
    return command + (f" --limit {limit}" if limit else "")


def evaluate_semantic(loaded_card: LoadedCard, dataset: Dataset, threads: int = 0, limit: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> SemanticMetrics:
    """Run the model on every image of ``dataset`` (the first ``limit``) and score it against the labels
    at the labels' resolution (through the declared class mapping when the model was trained on another
    label set, e.g. Cityscapes models on CamVid). Logits are resized bilinearly to the image before the argmax (the more
    accurate choice where model and image sizes differ). ``progress(done, total)`` once the model is
    loaded (done 0) and after each image."""
    lut = prediction_lut(loaded_card, dataset.label_set)
    card = loaded_card.card
    session = runtime.load(loaded_card, threads=threads)
    preprocess = Preprocessor(card.input)
    decode = SemanticDecoder(card, resize="bilinear")
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
    s = accumulator.scores()
    per_class = {name: ClassMetrics(iou=float(iou), accuracy=None if math.isnan(acc) else float(acc))
                 for name, iou, acc in zip(dataset.label_set.classes, s.iou, s.class_accuracy) if not math.isnan(iou)}
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


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit <= 0:
        raise EdgeSegError(f"--limit must be a positive number of images, got {args.limit}")
    if args.threads < 0:
        raise EdgeSegError(f"--threads must be 0 (all cores) or more, got {args.threads}")
    dataset = open_dataset(args.dataset, args.split)
    loaded_card = find_card(args.model)
    console = Console()
    bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=console, transient=True)
    task = bar.add_task(f"eval {loaded_card.card.name} on {dataset.name}", total=None, start=False)

    def progress(done: int, total: int) -> None:
        if done == 0:  # the model loaded: show the bar only now, so that load errors print alone
            bar.start()
            bar.start_task(task)
        bar.update(task, completed=done, total=total)

    start = time.perf_counter()
    try:
        metrics = evaluate_semantic(loaded_card, dataset, threads=args.threads, limit=args.limit, progress=progress)
    finally:
        if bar.live.is_started:
            bar.stop()
    seconds = time.perf_counter() - start
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
    return 0
