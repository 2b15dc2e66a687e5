"""Memory over a long run: does the pipeline's resident memory stay flat?

Runs a config (default: the demo pipeline on the synthetic world, every sink on) for many frames,
samples the process's RSS every ``--every`` frames, and reports the growth of the peak after warm-up
(models loaded, encoder and queues filled). The issue's bar: < 50 MB over 20,000 frames.

    python tools/bench_memory.py --frames 20000 --json out/bench/memory.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from pipeline.stream.config import find_config
from pipeline.stream.pipeline import Pipeline


def rss_mb() -> float:
    """Resident set size of this process now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="demo")
    p.add_argument("--frames", type=int, default=20_000)
    p.add_argument("--warmup", type=int, default=1_000, help="frames before the baseline sample")
    p.add_argument("--every", type=int, default=250, help="sample RSS every N frames")
    p.add_argument("--json", help="write samples and the verdict as JSON")
    args = p.parse_args()

    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="edgeseg-memory-") as out:
        source = f"synth://?seed=7&size=640x360&fps=30&frames={args.frames}"
        pipeline = Pipeline.from_config(find_config(args.config), source=source, out=out)
        count = 0
        start = time.perf_counter()

        def sample(_result) -> None:
            nonlocal count
            count += 1
            if count % args.every == 0 or count == args.warmup:
                samples.append((count, rss_mb()))
                print(f"{count:6d} frames  {samples[-1][1]:7.1f} MiB  {count / (time.perf_counter() - start):5.1f} fps",
                      file=sys.stderr, flush=True)

        pipeline.run(on_result=sample)
    baseline = next(mb for n, mb in samples if n >= args.warmup)
    after = [mb for n, mb in samples if n >= args.warmup]
    growth = max(after) - baseline
    result = {"frames": count, "warmup": args.warmup, "rss_mb_at_warmup": round(baseline, 1),
              "rss_mb_peak_after_warmup": round(max(after), 1), "rss_mb_final": round(samples[-1][1], 1),
              "peak_growth_mb": round(growth, 1), "flat": growth < 50.0, "samples": samples}
    print(f"RSS at frame {args.warmup}: {baseline:.1f} MiB; peak after: {max(after):.1f} MiB; "
          f"growth {growth:.1f} MiB over {count} frames ({'flat' if growth < 50 else 'NOT flat'}: bar < 50 MiB)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if growth < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
