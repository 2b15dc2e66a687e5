"""`edgeseg eval synth:SEEDS --panoptic CONFIG`: PQ, SQ and RQ of a pipeline config's fused output.

A panoptic map comes out of three parts together (the semantic model, the instance model and the fusion
settings), so what is scored is a pipeline config rather than one model card: its ``models`` and
``panoptic`` sections are loaded exactly as `edgeseg run` loads them and applied frame by frame. Only the
synthetic world has panoptic ground truth (every agent is an exact segment with its id); CamVid's labels
cannot separate touching cars, so it is not offered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

from rich.table import Table

from pipeline.errors import EdgeSegError
from pipeline.eval.datasets import Dataset, SynthDataset
from pipeline.eval.panoptic import PanopticAccumulator, synth_ground_truth
from pipeline.modelcard import PanopticMetrics
from pipeline.panoptic import PanopticFuser
from pipeline.stream.config import find_config, load_config
from pipeline.stream.models import load_models, preprocessors
from pipeline.synth.frame import SynthFrame
from pipeline.types import FrameResult


def _synth_frames(dataset: SynthDataset, total: int) -> Iterator[SynthFrame]:
    """The frames SynthDataset scores (same seeds, same indices), with their instance ids."""
    from pipeline.synth import SynthWorld  # noqa: PLC0415  (rendering pulls in the world builder)

    for seed in dataset.seeds[:math.ceil(total / dataset.frames_per_seed)]:
        world = SynthWorld(seed=seed, size=dataset.size)
        for k in range(dataset.frames_per_seed):
            yield world.render(k * dataset.frame_step)


def evaluate_panoptic(config: str, dataset: Dataset, threads: int = 0, limit: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> PanopticMetrics:
    """Run the config's models and fusion on every frame of ``dataset`` (the first ``limit``) and score the
    panoptic maps against the exact ground truth. ``progress`` as in :func:`pipeline.eval.cli.evaluate_semantic`."""
    if not isinstance(dataset, SynthDataset):
        raise EdgeSegError(f"dataset '{dataset.name}': panoptic ground truth exists only for synth:SEEDS "
                           f"(CamVid labels do not separate touching objects)")
    path = find_config(config)
    cfg = load_config(path)
    if cfg.panoptic is None or set(cfg.models) != {"semantic", "instance"}:
        raise EdgeSegError(f"{path}: --panoptic needs a config with models.semantic, models.instance and a "
                           f"'panoptic' section")
    if threads:
        for model in cfg.models.values():
            model.threads = threads
    steps = load_models(cfg.models, str(path))
    prepare = preprocessors(steps)
    fuse = PanopticFuser(cfg.panoptic)
    labels = cfg.panoptic.labels
    if labels.classes != dataset.label_set.classes:
        raise EdgeSegError(f"{path}: key 'panoptic.label_set': {labels.name} maps cannot be scored against "
                           f"{dataset.name}, whose ground truth is {dataset.label_set.name}")
    accumulator = PanopticAccumulator(dataset.label_set.classes, cfg.panoptic.things.values())
    total = min(len(dataset), limit) if limit else len(dataset)
    if progress:
        progress(0, total)
    for done, synth in enumerate(islice(_synth_frames(dataset, total), total), start=1):
        frame = synth.frame
        inputs = {spec: run(frame.image) for spec, run in prepare.items()}
        result = FrameResult(frame)
        for step in steps:
            step.decode(step.session.run(inputs[step.spec]), frame, result)
        accumulator.update(synth_ground_truth(synth), fuse(result.semantic, result.instances))
        if progress:
            progress(done, total)
    s = accumulator.scores()
    command = f"edgeseg eval {dataset.name} --panoptic {config}" + (f" --limit {limit}" if limit else "")
    return PanopticMetrics(
        dataset=dataset.name, config=str(config), pq=s.all.pq, sq=s.all.sq, rq=s.all.rq,
        pq_things=s.things.pq, pq_stuff=s.stuff.pq,
        per_class_pq={c: float(v) for c, v in zip(s.classes, s.pq) if not math.isnan(v)},
        images=accumulator.images, command=command)


def panoptic_table(metrics: PanopticMetrics, classes: tuple[str, ...]) -> Table:
    table = Table(title=f"{Path(metrics.config).name} on {metrics.dataset} ({metrics.images} images)")
    table.add_column("class")
    table.add_column("PQ %", justify="right")
    for name in classes:
        pq = metrics.per_class_pq.get(name)
        table.add_row(name, "-" if pq is None else f"{pq * 100:.2f}")
    table.add_section()
    table.add_row("PQ", f"{metrics.pq * 100:.2f}", style="bold")
    table.add_row("SQ", f"{metrics.sq * 100:.2f}")
    table.add_row("RQ", f"{metrics.rq * 100:.2f}")
    table.add_row("PQ things", f"{metrics.pq_things * 100:.2f}")
    table.add_row("PQ stuff", f"{metrics.pq_stuff * 100:.2f}")
    return table
