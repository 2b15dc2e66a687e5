"""`edgeseg models`: what is in engines/, at a glance."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from pipeline.modelcard import engines_dirs, list_cards


def run(args: argparse.Namespace) -> int:
    cards = list_cards()
    table = Table(title=f"model cards in {', '.join(str(d) for d in engines_dirs())}")
    for col in ("name", "task", "architecture", "input", "classes", "params", "GFLOPs", "mIoU", "CPU ms"):
        table.add_column(col)
    for lc in cards:
        c = lc.card
        miou = ", ".join(f"{m.miou * 100:.1f} ({k})" for k, m in c.metrics.items()) or "-"
        lat = ", ".join(f"{l.median_ms:.1f} ({l.threads}t)" for l in c.latency) or "-"
        table.add_row(c.name, c.task, c.architecture, f"{c.input.width}x{c.input.height}", str(len(c.classes)),
                      f"{c.params / 1e6:.2f} M", f"{c.gflops:.2f}", miou, lat)
    Console().print(table)
    if not cards:
        print("no model cards found")
    return 0
