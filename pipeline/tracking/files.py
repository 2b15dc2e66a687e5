"""Box files of the public tracking benchmarks: MOTChallenge and KITTI tracking, read and written.

They let the tracker run alone on published detections (``edgeseg track``) and its output be scored by the
benchmarks' own tools. A file becomes a :class:`BoxSequence`: one :class:`FrameBoxes` per frame, empty frames
included, because a tracker must be stepped through the frames where the detector found nothing too.
Frames are 0-based inside; MOT files count from 1 and the readers/writers convert.

Scores are probabilities in [0, 1] inside, because every tracker's thresholds are set on that scale:
- MOT: the score column as is; -1 (MOT's "no score", in ground truth and tracker results) reads as 1.
- KITTI PointRCNN detections (comma separated, numeric type): the score is a logit-like value (about -0.9
  to 16), mapped by the logistic sigmoid 1 / (1 + e^-s). It is monotonic and fixes 0 at 0.5, so every
  tracker compared on these files sees the same numbers and no detection's rank changes.
- KITTI label_02 / tracking results (space separated, type name): column 18 if present, else 1.
A score outside [0, 1] where a probability is expected is an error naming the line, not a silent clip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline.errors import EdgeSegError

FORMATS = ("mot", "kitti")
DEFAULT_FPS = {"mot": 25.0, "kitti": 10.0}  # MOT15 TUD sequences are 25 fps, KITTI is 10 fps
MOT_CLASSES = ("Pedestrian",)  # MOTChallenge tracks people only
# KITTI's object types, Car/Pedestrian/Cyclist first as in PointRCNN's files; DontCare regions are no objects.
KITTI_CLASSES = ("Car", "Pedestrian", "Cyclist", "Van", "Truck", "Person_sitting", "Tram", "Misc")
_POINTRCNN_TYPE = {1: KITTI_CLASSES.index("Pedestrian"), 2: KITTI_CLASSES.index("Car"),
                   3: KITTI_CLASSES.index("Cyclist")}
_KITTI_TYPE = {name.lower(): i for i, name in enumerate(KITTI_CLASSES)}


@dataclass(frozen=True)
class FrameBoxes:
    """The boxes of one frame: detections to track, ground truth, or a tracker's output.

    ``frame`` is 0-based; ``boxes`` (N, 4) float32 x1y1x2y2 pixels; ``scores`` (N,) float32 in [0, 1];
    ``classes`` (N,) int32 indices into the sequence's ``class_names``; ``ids`` (N,) int64 track ids, -1
    where the file has none (detections).
    """

    frame: int
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def take(self, keep: np.ndarray) -> FrameBoxes:
        """The rows selected by ``keep`` (boolean mask or indices), in that order."""
        return FrameBoxes(self.frame, self.boxes[keep], self.scores[keep], self.classes[keep], self.ids[keep])

    @classmethod
    def empty(cls, frame: int) -> FrameBoxes:
        return cls(frame, np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                   np.zeros(0, np.int64))


@dataclass(frozen=True)
class BoxSequence:
    """A whole file: ``frames[i].frame == i`` for every frame up to the last one with a box (or
    ``num_frames`` given to the reader), so iterating steps through time without gaps."""

    path: Path
    format: str
    class_names: tuple[str, ...]
    frames: tuple[FrameBoxes, ...]

    @property
    def num_boxes(self) -> int:
        return sum(len(f) for f in self.frames)

    def only_classes(self, names: Iterable[str]) -> BoxSequence:
        """Keep the boxes of the named classes (case-insensitive); an unknown name is a user error."""
        lookup = {n.lower(): i for i, n in enumerate(self.class_names)}
        wanted = []
        for name in names:
            if name.strip().lower() not in lookup:
                raise EdgeSegError(f"{self.path}: unknown class '{name.strip()}' for {self.format} files "
                                   f"(known: {', '.join(c.lower() for c in self.class_names)})")
            wanted.append(lookup[name.strip().lower()])
        wanted_ids = np.array(wanted, np.int32)
        return replace(self, frames=tuple(f.take(np.isin(f.classes, wanted_ids)) for f in self.frames))


# ----------------------------------------------------------------------------------------------- reading

_Row = tuple[int, int, int, float, float, float, float, float]  # frame, id, class, x1, y1, x2, y2, score


def _int(text: str) -> int:
    """Frame numbers and ids are integers, though some tools write them as 12.0."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"'{text.strip()}' is not an integer")
    return int(value)


def _sigmoid(logit: float) -> float:
    """The logistic function, in the form that cannot overflow for large negative logits."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    z = math.exp(logit)
    return z / (1.0 + z)


def _probability(value: float, where: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise EdgeSegError(f"{where}: score {value:g} is not a probability in [0, 1]")
    return value


def _check_box(x1: float, y1: float, x2: float, y2: float, where: str) -> None:
    """Zero-size boxes occur in real files (PointRCNN clips some to the image border) and are kept;
    inverted or non-finite ones mean a wrong column order or a corrupt file."""
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise EdgeSegError(f"{where}: box coordinates must be finite numbers")
    if x2 < x1 or y2 < y1:
        raise EdgeSegError(f"{where}: box has negative width or height")


def _parse_mot(fields: list[str], where: str) -> _Row:
    if len(fields) < 6:
        raise EdgeSegError(f"{where}: expected 'frame,id,x,y,w,h,score,...' (at least 6 comma-separated "
                           f"values), got {len(fields)}")
    frame, track_id = _int(fields[0]), _int(fields[1])
    x, y, w, h = (float(v) for v in fields[2:6])
    if frame < 1:
        raise EdgeSegError(f"{where}: MOT frame numbers start at 1, got {frame}")
    _check_box(x, y, x + w, y + h, where)
    score = float(fields[6]) if len(fields) > 6 else 1.0
    score = 1.0 if score == -1 else _probability(score, where)
    return frame - 1, track_id, 0, x, y, x + w, y + h, score


def _parse_pointrcnn(fields: list[str], where: str) -> _Row:
    if len(fields) < 7:
        raise EdgeSegError(f"{where}: expected 'frame,type,x1,y1,x2,y2,score,...' (at least 7 comma-separated "
                           f"values), got {len(fields)}")
    frame, kind = _int(fields[0]), _int(fields[1])
    if kind not in _POINTRCNN_TYPE:
        raise EdgeSegError(f"{where}: type must be 1 (Pedestrian), 2 (Car) or 3 (Cyclist), got {kind}")
    x1, y1, x2, y2, logit = (float(v) for v in fields[2:7])
    if frame < 0:
        raise EdgeSegError(f"{where}: KITTI frame numbers start at 0, got {frame}")
    _check_box(x1, y1, x2, y2, where)
    if not math.isfinite(logit):
        raise EdgeSegError(f"{where}: score must be a finite number")
    return frame, -1, _POINTRCNN_TYPE[kind], x1, y1, x2, y2, _sigmoid(logit)


def _parse_kitti_label(fields: list[str], where: str) -> _Row | None:
    if len(fields) < 10:
        raise EdgeSegError(f"{where}: expected 'frame track_id type truncated occluded alpha x1 y1 x2 y2 ...' "
                           f"(at least 10 space-separated values), got {len(fields)}")
    kind = fields[2].lower()
    if kind == "dontcare":
        return None
    if kind not in _KITTI_TYPE:
        raise EdgeSegError(f"{where}: unknown KITTI type '{fields[2]}' (known: {', '.join(KITTI_CLASSES)}, DontCare)")
    frame, track_id = _int(fields[0]), _int(fields[1])
    x1, y1, x2, y2 = (float(v) for v in fields[6:10])
    if frame < 0:
        raise EdgeSegError(f"{where}: KITTI frame numbers start at 0, got {frame}")
    _check_box(x1, y1, x2, y2, where)
    score = _probability(float(fields[17]), where) if len(fields) > 17 else 1.0
    return frame, track_id, _KITTI_TYPE[kind], x1, y1, x2, y2, score


def _read_rows(path: Path, parse_for: Callable[[str], tuple[Callable[[list[str], str], _Row | None], str | None]]
               ) -> list[_Row]:
    """Parse every non-blank line; ``parse_for(first_line)`` picks the row parser and its separator once per
    file. Any malformed value becomes one line naming file and line number."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise EdgeSegError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EdgeSegError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    first = next((line for line in lines if line.strip()), "")
    parse, sep = parse_for(first)
    rows: list[_Row] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = parse(line.split(sep), where)
        except ValueError as e:
            raise EdgeSegError(f"{where}: not a number ({e})") from None
        if row is not None:
            rows.append(row)
    return rows


def _to_sequence(path: Path, fmt: str, class_names: tuple[str, ...], rows: list[_Row],
                 num_frames: int | None) -> BoxSequence:
    """Group rows by frame once (a stable sort and a split), keeping each frame's file order."""
    table = np.array(rows, np.float64).reshape(-1, 8)
    frame_of = table[:, 0].astype(np.int64)
    count = max(int(frame_of.max()) + 1 if len(table) else 0, num_frames or 0)
    order = np.argsort(frame_of, kind="stable")
    table, frame_of = table[order], frame_of[order]
    bounds = np.searchsorted(frame_of, np.arange(count + 1))
    frames = tuple(
        FrameBoxes(i, table[a:b, 3:7].astype(np.float32), table[a:b, 7].astype(np.float32),
                   table[a:b, 2].astype(np.int32), table[a:b, 1].astype(np.int64))
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])))
    return BoxSequence(path, fmt, class_names, frames)


def read_mot(path: str | Path, num_frames: int | None = None) -> BoxSequence:
    """MOTChallenge ``frame,id,x,y,w,h,score,...`` (det.txt, gt.txt or tracker results)."""
    path = Path(path)
    rows = _read_rows(path, lambda first: (_parse_mot, ","))
    return _to_sequence(path, "mot", MOT_CLASSES, rows, num_frames)


def read_kitti(path: str | Path, num_frames: int | None = None) -> BoxSequence:
    """KITTI tracking: PointRCNN detections (comma separated, numeric type) or label_02 / tracking results
    (space separated, type name), told apart by the file's first line."""
    path = Path(path)

    def parser(first: str):
        return (_parse_pointrcnn, ",") if "," in first else (_parse_kitti_label, None)

    rows = _read_rows(path, parser)
    return _to_sequence(path, "kitti", KITTI_CLASSES, rows, num_frames)


def read_boxes(path: str | Path, fmt: str, num_frames: int | None = None) -> BoxSequence:
    """Read a box file of format ``fmt`` ('mot' or 'kitti')."""
    if fmt == "mot":
        return read_mot(path, num_frames)
    if fmt == "kitti":
        return read_kitti(path, num_frames)
    raise EdgeSegError(f"unknown box file format '{fmt}' (known: {', '.join(FORMATS)})")


# ----------------------------------------------------------------------------------------------- writing

def _stack(frames: Iterable[FrameBoxes]) -> tuple[np.ndarray, ...]:
    frames = [f for f in frames if len(f)]
    if not frames:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int32)
    return (np.concatenate([np.full(len(f), f.frame, np.int64) for f in frames]),
            np.concatenate([f.ids for f in frames]), np.concatenate([f.boxes for f in frames]).astype(np.float64),
            np.concatenate([f.scores for f in frames]).astype(np.float64),
            np.concatenate([f.classes for f in frames]))


def _open_for_writing(path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgeSegError(f"{path}: cannot create its folder ({e.strerror})") from None
    return path


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    try:
        path.write_text("".join(lines))
    except OSError as e:
        raise EdgeSegError(f"{path}: cannot write ({e.strerror})") from None


def write_mot(path: str | Path, frames: Iterable[FrameBoxes]) -> Path:
    """MOTChallenge results: ``frame,id,x,y,w,h,score,-1,-1,-1`` with 1-based frames."""
    path = _open_for_writing(path)
    frame, ids, boxes, scores, _ = _stack(frames)
    wh = boxes[:, 2:] - boxes[:, :2]
    lines = [f"{f + 1},{i},{x:.3f},{y:.3f},{w:.3f},{h:.3f},{s:.6f},-1,-1,-1\n"
             for f, i, (x, y), (w, h), s in zip(frame.tolist(), ids.tolist(), boxes[:, :2].tolist(), wh.tolist(),
                                                scores.tolist())]
    _write_lines(path, lines)
    return path


def write_kitti(path: str | Path, frames: Iterable[FrameBoxes], class_names: Sequence[str] = KITTI_CLASSES) -> Path:
    """KITTI tracking results: ``frame id type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry score``, the
    3D fields marked unknown (-1, -1000, -10) as the KITTI devkit expects of 2D trackers."""
    path = _open_for_writing(path)
    frame, ids, boxes, scores, classes = _stack(frames)
    lines = [f"{f} {i} {class_names[c]} -1 -1 -10 {x1:.3f} {y1:.3f} {x2:.3f} {y2:.3f} -1 -1 -1 -1000 -1000 -1000 "
             f"-10 {s:.6f}\n"
             for f, i, c, (x1, y1, x2, y2), s in zip(frame.tolist(), ids.tolist(), classes.tolist(), boxes.tolist(),
                                                     scores.tolist())]
    _write_lines(path, lines)
    return path


def write_boxes(path: str | Path, sequence: BoxSequence) -> Path:
    """Write ``sequence`` in its own format."""
    if sequence.format == "mot":
        return write_mot(path, sequence.frames)
    return write_kitti(path, sequence.frames, sequence.class_names)
