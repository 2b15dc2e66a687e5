"""MOTChallenge and KITTI box files (pipeline.tracking.files) and `edgeseg track`, on hand-written and real
benchmark files: round trips, the PointRCNN score mapping, one-line errors naming file:line, and the
command end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.errors import EdgeSegError
from pipeline.tracking.files import (KITTI_CLASSES, BoxSequence, FrameBoxes, read_boxes, read_kitti, read_mot,
                                     write_kitti, write_mot)

TUD = "data/tracking/mot15_tud"
KITTI = "data/tracking/kitti"


def _frame(frame: int, boxes, scores, classes, ids) -> FrameBoxes:
    return FrameBoxes(frame, np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                      np.array(classes, np.int32), np.array(ids, np.int64))


def _sequence(fmt: str) -> BoxSequence:
    """Three frames, the middle one empty: readers must give it back, trackers step through it."""
    car, ped = KITTI_CLASSES.index("Car"), KITTI_CLASSES.index("Pedestrian")
    frames = (_frame(0, [[10.5, 20.25, 50.125, 80.0], [100, 110, 120, 190]], [0.9, 0.25], [car, ped], [1, 2]),
              FrameBoxes.empty(1),
              _frame(2, [[12, 21, 52, 81]], [0.875], [car], [1]))
    if fmt == "mot":
        frames = tuple(FrameBoxes(f.frame, f.boxes, f.scores, np.zeros_like(f.classes), f.ids) for f in frames)
    return BoxSequence(Path("mem"), fmt, KITTI_CLASSES, frames)


def _assert_same(read: BoxSequence, written: BoxSequence) -> None:
    assert len(read.frames) == len(written.frames)
    for r, w in zip(read.frames, written.frames):
        assert r.frame == w.frame
        np.testing.assert_allclose(r.boxes, w.boxes, atol=1e-3)
        np.testing.assert_allclose(r.scores, w.scores, atol=1e-6)
        np.testing.assert_array_equal(r.ids, w.ids)
        np.testing.assert_array_equal(r.classes, w.classes)


@pytest.mark.parametrize("fmt", ["mot", "kitti"])
def test_write_then_read_gives_the_same_boxes(tmp_path, fmt):
    seq = _sequence(fmt)
    path = tmp_path / "nested" / "out.txt"
    if fmt == "mot":
        write_mot(path, seq.frames)
    else:
        write_kitti(path, seq.frames)
    _assert_same(read_boxes(path, fmt), seq)


def test_mot_writer_counts_frames_from_one_and_writes_xywh(tmp_path):
    path = write_mot(tmp_path / "r.txt", _sequence("mot").frames)
    first = path.read_text().splitlines()[0].split(",")
    assert len(first) == 10 and first[:2] == ["1", "1"]
    assert [float(v) for v in first[2:6]] == pytest.approx([10.5, 20.25, 39.625, 59.75])


def test_kitti_writer_gives_the_devkit_columns(tmp_path):
    path = write_kitti(tmp_path / "r.txt", _sequence("kitti").frames)
    rows = [line.split(" ") for line in path.read_text().splitlines()]
    assert [len(r) for r in rows] == [18, 18, 18]
    assert [r[2] for r in rows] == ["Car", "Pedestrian", "Car"]
    assert [r[0] for r in rows] == ["0", "0", "2"]
    assert float(rows[1][17]) == pytest.approx(0.25)


def test_reads_real_mot_detections(shared_dir):
    path = shared_dir / TUD / "TUD-Campus" / "det" / "det.txt"
    lines = path.read_text().split()
    seq = read_mot(path)
    assert seq.num_boxes == len(lines) == 321
    assert len(seq.frames) == 71 and [f.frame for f in seq.frames] == list(range(71))
    first = [float(v) for v in lines[0].split(",")]  # 1,-1,281.931,187.466,79.93,209.537,0.997784,...
    np.testing.assert_allclose(seq.frames[0].boxes[0], [first[2], first[3], first[2] + first[4], first[3] + first[5]],
                               rtol=1e-6)
    assert seq.frames[0].scores[0] == pytest.approx(first[6])
    assert (seq.frames[0].ids == -1).all()


def test_mot_minus_one_score_reads_as_certain(shared_dir):
    seq = read_mot(shared_dir / TUD / "TUD-Campus" / "pymotmetrics_test_tracker_output" / "test.txt")
    assert all((f.scores == 1.0).all() for f in seq.frames)
    assert (seq.frames[0].ids > 0).all()


def test_pointrcnn_logits_become_probabilities_by_sigmoid(shared_dir):
    path = shared_dir / KITTI / "det_pointrcnn" / "Car" / "0000.txt"
    rows = [line.split(",") for line in path.read_text().splitlines()]
    seq = read_kitti(path)
    assert seq.num_boxes == len(rows)
    assert len(seq.frames) == max(int(r[0]) for r in rows) + 1
    logits = np.array([float(r[6]) for r in rows if r[0] == "0"])
    np.testing.assert_allclose(seq.frames[0].scores, 1 / (1 + np.exp(-logits)), rtol=1e-6)
    assert (seq.frames[0].classes == KITTI_CLASSES.index("Car")).all()
    assert min(f.scores.min() for f in seq.frames if len(f)) > 0.25  # logit -0.85 -> 0.30


def test_pointrcnn_pedestrian_type_is_pedestrian(shared_dir):
    seq = read_kitti(shared_dir / KITTI / "det_pointrcnn" / "Pedestrian" / "0000.txt")
    assert {int(c) for f in seq.frames for c in f.classes} == {KITTI_CLASSES.index("Pedestrian")}


def test_kitti_labels_read_as_detections_without_dontcare(shared_dir):
    path = shared_dir / KITTI / "label_02" / "0000.txt"
    rows = [line.split() for line in path.read_text().splitlines()]
    objects = [r for r in rows if r[2] != "DontCare"]
    seq = read_kitti(path)
    assert seq.num_boxes == len(objects)
    frame0 = [r for r in objects if r[0] == "0"]
    np.testing.assert_array_equal(seq.frames[0].ids, [int(r[1]) for r in frame0])
    assert [KITTI_CLASSES[c] for c in seq.frames[0].classes] == [r[2] for r in frame0]
    np.testing.assert_allclose(seq.frames[0].boxes, [[float(v) for v in r[6:10]] for r in frame0], rtol=1e-6)
    cars = seq.only_classes(["CAR"])
    assert cars.num_boxes == sum(r[2] == "Car" for r in objects)
    assert len(cars.frames) == len(seq.frames)


def test_num_frames_pads_trailing_empty_frames(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("2,-1,1,2,3,4,0.5\n")
    seq = read_mot(path, num_frames=5)
    assert [len(f) for f in seq.frames] == [0, 1, 0, 0, 0]


def test_empty_file_is_an_empty_sequence(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("\n")
    assert read_mot(path).frames == ()


BAD_ROWS = [
    ("mot", "1,-1,1,2,3,4,0.9\n1,-1,1,2\n", 2, "at least 6"),
    ("mot", "1,-1,1,2,3,4,0.9\n\n2,-1,1,two,3,4,0.9\n", 3, "not a number"),
    ("mot", "0,-1,1,2,3,4,0.9\n", 1, "start at 1"),
    ("mot", "1,-1,1,2,3,4,0.9\n1,-1,1,2,3,4,37.5\n", 2, "not a probability"),
    ("mot", "1,-1,1,2,-3,4,0.9\n", 1, "negative width"),
    ("mot", "1.5,-1,1,2,3,4,0.9\n", 1, "not an integer"),
    ("kitti", "0,2,1,2,3,4,1.5\n0,7,1,2,3,4,1.5\n", 2, "type must be"),
    ("kitti", "0,2,1,2,3,nan,1.5\n", 1, "finite"),
    ("kitti", "0,2,1,2,3\n", 1, "at least 7"),
    ("kitti", "0 1 Car 0 0 0 1 2 3 4\n0 2 Bus 0 0 0 1 2 3 4\n", 2, "unknown KITTI type"),
    ("kitti", "0 1 Car 0 0 0 1 2 3 4\n1 1 Car 0 0 0\n", 2, "at least 10"),
    ("kitti", "0 1 Car 0 0 0 5 2 3 4\n", 1, "negative width"),
]


@pytest.mark.parametrize(("fmt", "text", "line", "reason"), BAD_ROWS)
def test_bad_row_is_one_line_naming_file_and_line(tmp_path, fmt, text, line, reason):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(EdgeSegError) as info:
        read_boxes(path, fmt)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and reason in message
    assert "\n" not in message


def test_missing_file_and_unknown_class_are_one_line_errors(tmp_path):
    with pytest.raises(EdgeSegError, match=r"nope\.txt: no such file"):
        read_kitti(tmp_path / "nope.txt")
    with pytest.raises(EdgeSegError, match="unknown class 'bus'"):
        _sequence("kitti").only_classes(["bus"])


def test_track_command_on_tud_campus_writes_a_valid_mot_file(shared_dir, tmp_path, capsys):
    det_path = shared_dir / TUD / "TUD-Campus" / "det" / "det.txt"
    out = tmp_path / "res" / "TUD-Campus.txt"
    assert main(["track", "--det", str(det_path), "--format", "mot", "--out", str(out)]) == 0
    assert "71 frames, 321 detections" in capsys.readouterr().err
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows and all(len(r) == 10 for r in rows)
    result, det = read_mot(out), read_mot(det_path)
    assert len(result.frames) <= len(det.frames) and 0.5 * det.num_boxes < result.num_boxes <= det.num_boxes
    for r, d in zip(result.frames, det.frames):  # every written box is one of that frame's detections
        assert len(np.unique(r.ids)) == len(r)  # an id at most once per frame
        if len(r):
            assert (np.abs(r.boxes[:, None] - d.boxes[None]).max(-1).min(1) < 1e-3).all()
    ids = np.unique(np.concatenate([f.ids for f in result.frames]))
    assert ids.min() >= 1 and 5 <= len(ids) < 40  # people persist over frames: far fewer ids than boxes


def test_track_command_follows_kitti_ground_truth_without_merging_identities(shared_dir, tmp_path):
    """Ground truth fed as detections: each track must stay on one labelled object."""
    labels = shared_dir / KITTI / "label_02" / "0000.txt"
    out = tmp_path / "0000.txt"
    assert main(["track", "--det", str(labels), "--format", "kitti", "--classes", "car", "--out", str(out)]) == 0
    gt, result = read_kitti(labels).only_classes(["car"]), read_kitti(out)
    assert {KITTI_CLASSES[c] for f in result.frames for c in f.classes} == {"Car"}
    owner: dict[int, set[int]] = {}
    for r, g in zip(result.frames, gt.frames):
        for box, track_id in zip(r.boxes, r.ids):
            match = np.flatnonzero(np.abs(g.boxes - box).max(1) < 1e-3)
            assert match.size == 1
            owner.setdefault(int(track_id), set()).add(int(g.ids[match[0]]))
    assert all(len(objects) == 1 for objects in owner.values())
    gt_ids = {int(i) for f in gt.frames for i in f.ids}
    assert len(gt_ids) <= len(owner) <= 1.5 * len(gt_ids)
    assert result.num_boxes > 0.8 * gt.num_boxes


def test_track_command_reports_a_bad_row_in_one_line(tmp_path):
    det = tmp_path / "det.txt"
    det.write_text("1,-1,1,2,3,4,0.9\n2,-1,1,2,3\n")
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "track", "--det", str(det), "--format", "mot",
                           "--out", str(tmp_path / "out.txt")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"edgeseg track: error: {det}:2: expected 'frame,id,x,y,w,h,score,...' "
                                   f"(at least 6 comma-separated values), got 5")
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("fps", ["0", "-2", "nan"])
def test_track_command_rejects_a_bad_frame_rate(tmp_path, capsys, fps):
    det = tmp_path / "det.txt"
    det.write_text("1,-1,1,2,3,4,0.9\n")
    assert main(["track", "--det", str(det), "--format", "mot", "--fps", fps, "--out", str(tmp_path / "o.txt")]) == 2
    err = capsys.readouterr().err
    assert "--fps must be a positive number" in err and err.count("\n") == 1


def _three_frames(tmp_path: Path) -> Path:
    """One object detected at score 0.75 in three consecutive frames."""
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{k},-1,{10 + k},20,30,60,0.75\n" for k in (1, 2, 3)))
    return det


def test_track_command_takes_tracker_parameters_from_yaml(tmp_path):
    """--tracker changes what is tracked: a 0.75 detection starts a track by default, not when
    new_track_score is 0.8. A pipeline config's 'tracker' section is read the same way."""
    det = _three_frames(tmp_path)
    out = tmp_path / "out.txt"
    assert main(["track", "--det", str(det), "--format", "mot", "--out", str(out)]) == 0
    assert read_mot(out).num_boxes == 3
    strict = tmp_path / "strict.yaml"
    strict.write_text("new_track_score: 0.8\nhigh_score: 0.8\n")
    assert main(["track", "--det", str(det), "--format", "mot", "--tracker", str(strict), "--out", str(out)]) == 0
    assert read_mot(out).num_boxes == 0
    pipeline_config = tmp_path / "pipeline.yaml"
    pipeline_config.write_text("source: synth://\nmodels: {semantic: {}}\ntracker: {new_track_score: 0.8, high_score: 0.8}\n")
    assert main(["track", "--det", str(det), "--format", "mot", "--tracker", str(pipeline_config),
                 "--out", str(out)]) == 0
    assert read_mot(out).num_boxes == 0


def test_track_command_names_a_bad_tracker_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker:\n  lost_timeout: 2\n")
    assert main(["track", "--det", str(_three_frames(tmp_path)), "--format", "mot", "--tracker", str(bad),
                 "--out", str(tmp_path / "o.txt")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: key 'tracker.lost_timeout': Extra inputs are not permitted" in err and err.count("\n") == 1
