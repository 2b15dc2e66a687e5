"""`edgeseg demo`: segment the synthetic road world with the shipped model and write every sink.

source (SynthWorld) -> Preprocessor -> runtime session -> SemanticDecoder -> sinks (annotated
H.264 video, JSON lines, palette PNG masks). A plain loop, one frame at a time: the streaming
runtime will replace the loop, not the stages.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline import runtime
from pipeline.decoders import SemanticDecoder
from pipeline.errors import EdgeSegError
from pipeline.modelcard import LoadedCard, find_card
from pipeline.preprocess import Preprocessor
from pipeline.sinks import JsonlSink, MaskSink, VideoSink
from pipeline.synth import SynthWorld
from pipeline.types import Frame, FrameResult

SIZE = (640, 360)
FPS = 30.0


class SemanticSegmenter:
    """Frame -> FrameResult with a SemanticMap at the frame's size and per-stage timings (ms)."""

    def __init__(self, loaded_card: LoadedCard, threads: int = 0):
        card = loaded_card.card
        if card.task != "semantic":
            raise EdgeSegError(f"{loaded_card.path}: key 'task': the demo needs a semantic model, got {card.task}")
        self.name = card.name
        self.session = runtime.load(loaded_card, threads=threads)
        self.preprocess = Preprocessor(card.input)
        self.decode = SemanticDecoder(card, resize="nearest")  # the cheap way back to frame size; see decoders

    def __call__(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        batch = self.preprocess(frame.image)
        t1 = time.perf_counter()
        outputs = self.session.run(batch)
        t2 = time.perf_counter()
        semantic = self.decode(outputs, [frame.size])[0]
        t3 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3}
        return FrameResult(frame, semantic=semantic, timings_ms=timings)


def run(args: argparse.Namespace) -> int:
    if args.frames <= 0:
        raise EdgeSegError(f"--frames must be positive, got {args.frames}")
    segmenter = SemanticSegmenter(find_card(args.model))
    out = Path(args.out)
    mask_dir = out / "masks"
    for stale in mask_dir.glob("*_labelIds.png"):  # the demo owns this folder: keep it to this run's frames
        stale.unlink()
    world = SynthWorld(args.seed, size=SIZE, fps=FPS)
    console = Console()
    start = time.perf_counter()
    with (VideoSink(out / "demo.mp4", FPS) as video, JsonlSink(out / "demo.jsonl", segmenter.name) as jsonl,
          MaskSink(mask_dir) as masks,
          Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=console, transient=True) as bar):
        task = bar.add_task(f"demo: {segmenter.name} on synthetic world seed {args.seed}", total=args.frames)
        for synth_frame in world.frames(args.frames):
            result = segmenter(synth_frame.frame)
            for sink in (video, jsonl, masks):
                sink.write(result)
            bar.advance(task)
        frames = video.frames_written
    seconds = time.perf_counter() - start
    console.print(f"demo: {frames} frames in {seconds:.1f} s ({frames / seconds:.1f} fps, {segmenter.name}, "
                  f"{segmenter.session.provider} x{segmenter.session.threads}) -> {out}/demo.mp4, demo.jsonl, masks/",
                  soft_wrap=True)
    return 0
