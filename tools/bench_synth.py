"""Rendering speed of the synthetic world on one core: frames/s for image + all ground truth.

    .venv/bin/python tools/bench_synth.py [--size 640x360] [--frames 150] [--seeds 0,1,2,3,4,5,6,7]

Each seed's world is built first (not timed: a one-off per clip), then frames 0..N-1 are rendered
in order, which is how `edgeseg synth` and training loaders use it. Both wall-clock and process
CPU time are reported: on a shared machine the CPU figure is the one-core speed.
"""

from __future__ import annotations

import argparse
import time

import cv2

from pipeline.synth import SynthWorld


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="640x360")
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--seeds", default="0,1,2,3,4,5,6,7")
    args = p.parse_args()
    cv2.setNumThreads(1)
    size = tuple(int(v) for v in args.size.split("x"))
    total_frames, total_wall, total_cpu = 0, 0.0, 0.0
    for seed in (int(s) for s in args.seeds.split(",")):
        world = SynthWorld(seed, size)
        t0, c0 = time.perf_counter(), time.process_time()
        for f in world.frames(args.frames):
            pass
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        total_frames += args.frames
        total_wall += wall
        total_cpu += cpu
        kind = "dashcam" if world.moving else "static"
        print(f"seed {seed:3d} ({kind:7s}): {args.frames / wall:6.1f} frames/s wall, {args.frames / cpu:6.1f} "
              f"frames/s CPU, {len(f.objects)} objects in last frame")
    print(f"overall at {size[0]}x{size[1]}, one thread: {total_frames / total_wall:.1f} frames/s wall, "
          f"{total_frames / total_cpu:.1f} frames/s CPU")


if __name__ == "__main__":
    main()
