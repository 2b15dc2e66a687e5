"""From passes over an input to the one stream of frames a source yields, looping when asked.

Files, folders and synth clips start again at their end when ``options.loop`` is set (soak tests,
demos on a screen). Downstream must still see one unbroken stream: Frame.index keeps counting and
pts keeps increasing, each new pass shifted by the duration of the passes before it. Each source
writes only ``one_pass`` (images with pts relative to the start of the pass); the stop check, the
frame counter and the pts shift are done here once for all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing

import numpy as np

from pipeline.sources.base import SourceStats
from pipeline.types import Frame

Pass = Callable[[], Iterator[tuple[np.ndarray, float]]]


def frames_in_passes(one_pass: Pass, *, loop: bool, stop: threading.Event, source_id: str,
                     stats: SourceStats, frame_step: float) -> Iterator[Frame]:
    """Yield the frames of ``one_pass()``, again and again when ``loop``, until ``stop`` is set.

    ``frame_step`` (seconds, 1/fps) is how long the last frame of a pass lasts: the gap between it
    and the first frame of the next pass."""
    index, offset = 0, 0.0
    while not stop.is_set():
        last = None
        with closing(one_pass()) as images:
            for image, pts in images:
                if stop.is_set():
                    return
                stats.frames += 1
                yield Frame(image=image, index=index, pts=offset + pts, source_id=source_id)
                index += 1
                last = pts
        if not loop or last is None:
            return
        offset += last + frame_step
