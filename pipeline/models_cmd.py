"""`edgeseg models`: what is in engines/, at a glance."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from pipeline.modelcard import InstanceMetrics, SemanticMetrics, engines_dirs, list_cards


def _quality(metrics: SemanticMetrics | InstanceMetrics) -> str:
    """mIoU for semantic models, mask AP / AP50 for instance models, in percent."""
    if isinstance(metrics, InstanceMetrics):
        return f"mask AP {metrics.mask_ap * 100:.1f} / AP50 {metrics.mask_ap50 * 100:.1f}"
    return f"mIoU {metrics.miou * 100:.1f}"


def run(args: argparse.Namespace) -> int:
    cards = list_cards()
    table = Table(title=f"model cards in {', '.join(str(d) for d in engines_dirs())}")
    for col in ("name", "task", "architecture", "input", "classes", "params", "GFLOPs", "quality", "CPU ms"):
        table.add_column(col)
    for lc in cards:
        c = lc.card
        quality = ", ".join(_quality(m) + f" ({k})" for k, m in c.metrics.items()) or "-"
        lat = ", ".join(f"{l.median_ms:.1f} ({l.threads}t)" for l in c.latency) or "-"
        table.add_row(c.name, c.task, c.architecture, f"{c.input.width}x{c.input.height}", str(len(c.classes)),
                      f"{c.params / 1e6:.2f} M", f"{c.gflops:.2f}", quality, lat)
    Console().print(table)
    if not cards:
        print("no model cards found")
    return 0
