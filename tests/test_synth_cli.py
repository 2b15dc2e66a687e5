"""`edgeseg synth` as a user runs it: a subprocess, byte-identical reruns, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EDGESEG = Path(sys.executable).parent / "edgeseg"


def _synth(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EDGESEG), "synth", *args], capture_output=True, text=True, timeout=300)


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    args = ["--frames", "6", "--seed", "11", "--size", "128x72", "--fps", "12"]
    a, b = _synth("--out", str(tmp_path / "a"), *args), _synth("--out", str(tmp_path / "b"), *args)
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(fa) >= {"video.mp4", "mots.txt", "gt/gt.txt", "coco.json", "meta.json", "semantic/000005.png",
                       "instances/000000.png"}
    assert fa == fb
    c = _synth("--out", str(tmp_path / "c"), *args[:3], "12", *args[4:])  # another seed
    assert c.returncode == 0, c.stderr
    assert _files(tmp_path / "c")["video.mp4"] != fa["video.mp4"]
    shorter = _synth("--out", str(tmp_path / "a"), "--frames", "3", *args[2:])  # rerun into a, shorter
    assert shorter.returncode == 0, shorter.stderr
    assert sorted(p.name for p in (tmp_path / "a" / "semantic").iterdir()) == [f"{i:06d}.png" for i in range(3)]


@pytest.mark.parametrize("case", ["frames", "out_is_file"])
def test_user_errors_are_one_line(tmp_path: Path, case: str) -> None:
    target = tmp_path / "clip"
    if case == "out_is_file":
        target.write_text("not a directory")
        args = ["--out", str(target), "--frames", "3"]
    else:
        args = ["--out", str(target), "--frames", "0"]
    r = _synth(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeseg synth: error:")
    assert ("--frames" in lines[0]) if case == "frames" else (str(target) in lines[0])
    assert "Traceback" not in r.stderr
