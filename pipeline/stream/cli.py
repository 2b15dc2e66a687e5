"""`edgeseg run` and `edgeseg demo`: a config through the streaming pipeline, with a progress bar and a
summary table."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

from pipeline.errors import EdgeSegError
from pipeline.stream.config import find_config
from pipeline.stream.pipeline import Pipeline
from pipeline.stream.report import PipelineReport


def run_pipeline(pipeline: Pipeline, console: Console, metrics_json: str | None = None,
                 progress: bool = True) -> PipelineReport:
    """Run with a progress bar on stderr (a bar when the length is known, a counter otherwise), then print
    the summary on ``console`` and write the metrics, also when a stage fails (then re-raise its one-line
    error)."""
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[fps]}"), TimeRemainingColumn()]
    error: EdgeSegError | None = None
    bar_console = Console(stderr=True)
    with Progress(*columns, console=bar_console, transient=True,
                  disable=not progress or not bar_console.is_terminal) as bar:
        task = bar.add_task("starting", total=None, fps="")

        def advance(result) -> None:
            done = int(bar.tasks[0].completed)  # frames shown so far (the task counts them, shown or not)
            if done == 0:  # sources are open now: their names and lengths are known
                bar.update(task, total=pipeline.total_frames(),
                           description=", ".join(s.source_id for s in pipeline.sources))
            elif done % 10 == 0:
                snap = pipeline.end_to_end.snapshot()
                bar.update(task, fps=f"{snap.fps:.1f} fps" if snap.fps else "")
            bar.advance(task)

        try:
            pipeline.run(on_result=advance)
        except EdgeSegError as e:
            error = e
    report = pipeline.report()
    if report.frames or error is None:
        report.print(console)
    if metrics_json:
        report.write_json(metrics_json)
    if error is not None:
        raise error
    return report


def summary_console() -> Console:
    """stdout; 120 columns when it is not a terminal (logs, pipes), where rich would assume 80 and
    squeeze the summary table's columns."""
    return Console() if sys.stdout.isatty() else Console(width=120)


def run(args: argparse.Namespace) -> int:
    pipeline = Pipeline.from_config(find_config(args.config), args.set or [], source=args.source, out=args.out,
                                    max_frames=args.max_frames)
    console = summary_console()
    run_pipeline(pipeline, console, args.metrics_json, progress=not args.no_progress)
    console.print(f"outputs in {pipeline.config.out}/")
    return 0


def demo(args: argparse.Namespace) -> int:
    if args.frames <= 0:
        raise EdgeSegError(f"--frames must be positive, got {args.frames}")
    overrides = [f"source.uri=synth://?seed={args.seed}&size=640x360&fps=30&frames={args.frames}",
                 f"models.semantic.model={args.model}"]
    pipeline = Pipeline.from_config(find_config("demo"), overrides, out=args.out)
    console = summary_console()
    run_pipeline(pipeline, console)
    console.print(f"demo: outputs in {pipeline.config.out}/ (video, JSON lines, masks/)")
    return 0
