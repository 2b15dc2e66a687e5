"""`edgeseg bench`: how much of the model's speed the whole pipeline keeps, measured in one process.

On the same frames and with the same session settings (threads, providers, no spinning):
1. the model alone: back-to-back runtime calls on inputs preprocessed beforehand;
2. the whole pipeline: capture, preprocess, model, decode, sinks (overlay, H.264, JSON lines, masks)
   into a temporary directory;
3. the model alone again, so that a machine whose speed drifts during the run (other jobs, clocks)
   shows up as two different model numbers instead of a skewed ratio; the ratio uses their mean.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console

from pipeline.errors import EdgeSegError
from pipeline.sources import open_source
from pipeline.stream.cli import run_pipeline
from pipeline.stream.config import find_config, load_config
from pipeline.stream.models import ModelStep, load_models, preprocessors
from pipeline.stream.pipeline import Pipeline

WARMUP = 10


def model_only_fps(steps: list[ModelStep], batches: list[dict]) -> float:
    """Frames per second of back-to-back runs of every model on preprocessed inputs."""
    for inputs in batches[:WARMUP]:
        for step in steps:
            step.session.run(inputs[step.spec])
    start = time.perf_counter()
    for inputs in batches:
        for step in steps:
            step.session.run(inputs[step.spec])
    return len(batches) / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    if args.frames <= 0:
        raise EdgeSegError(f"--frames must be positive, got {args.frames}")
    path = find_config(args.config)
    overrides = list(args.set or [])
    if args.source:
        overrides.insert(0, f"source.uri={args.source}")
    config = load_config(path, overrides)
    if len(config.sources) != 1:
        raise EdgeSegError(f"{path}: key 'sources': bench measures one source, the config has {len(config.sources)}")
    console = Console(stderr=True)
    source_cfg = config.sources[0]
    source = open_source(source_cfg.uri, source_cfg.id, source_cfg.options())
    if source.live:
        source.close()
        raise EdgeSegError(f"{source_cfg.uri}: bench needs the same frames twice: use a file, folder or synth:// "
                           f"source, not a live one")
    steps = load_models(config.models, str(path))
    prep = preprocessors(steps)
    batches = []
    try:
        for frame in source.frames(threading.Event()):
            batches.append({spec: p(frame.image) for spec, p in prep.items()})
            if len(batches) == args.frames:
                break
    finally:
        source.close()
    if not batches:
        raise EdgeSegError(f"{source_cfg.uri}: no frames")
    n = len(batches)
    console.print(f"bench: {n} frames of {source_cfg.uri}; models "
                  + ", ".join(f"{s.name} ({s.session.provider} x{s.session.threads})" for s in steps))
    before = model_only_fps(steps, batches)
    with tempfile.TemporaryDirectory(prefix="edgeseg-bench-") as out:
        pipeline = Pipeline.from_config(path, overrides, out=out, max_frames=n)
        report = run_pipeline(pipeline, console)
    after = model_only_fps(steps, batches)
    model_fps = (before + after) / 2
    pipeline_fps = report.fps
    result = {"model_fps": round(model_fps, 2), "pipeline_fps": round(pipeline_fps, 2),
              "ratio": round(pipeline_fps / model_fps, 3),
              "latency_ms_p50": report.end_to_end.latency_ms_p50, "latency_ms_p99": report.end_to_end.latency_ms_p99,
              "frames": report.frames, "model_fps_before": round(before, 2), "model_fps_after": round(after, 2)}
    console.print(f"model alone: {model_fps:.1f} fps (before {before:.1f}, after {after:.1f})\n"
                  f"pipeline:    {pipeline_fps:.1f} fps\n"
                  f"ratio:       {result['ratio']:.3f}\n"
                  f"end-to-end latency: p50 {result['latency_ms_p50']:.1f} ms, p99 {result['latency_ms_p99']:.1f} ms")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0
