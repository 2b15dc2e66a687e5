"""Pipeline configs: the shipped files validate, overrides and environment variables land where they
should, and every mistake is one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import EdgeSegError
from pipeline.stream.config import REPO_CONFIGS, apply_override, find_config, load_config
from pipeline.tracking import TrackerConfig
from pipeline.tracking.cli import load_tracker_config

SHIPPED = ["demo", "video_file", "rtsp_camera", "usb_camera", "folder_batch", "road_panoptic"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_validate(name, monkeypatch):
    for var in ("EDGESEG_SOURCE", "CAMERA_URL", "CAMERA_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    config = load_config(REPO_CONFIGS / f"{name}.yaml")
    assert len(config.sources) == 1 and "semantic" in config.models
    assert find_config(name) == REPO_CONFIGS / f"{name}.yaml"


def test_every_shipped_config_is_checked():
    assert sorted(p.stem for p in REPO_CONFIGS.glob("*.yaml")) == sorted(SHIPPED)


@pytest.mark.parametrize("path", sorted((REPO_CONFIGS / "trackers").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_tracker_configs_validate(path):
    config = load_tracker_config(path)
    assert config != TrackerConfig()  # a tracker file that changes nothing is a mistake


def test_live_configs_keep_only_the_newest_frames():
    for name in ("rtsp_camera", "usb_camera"):
        assert load_config(REPO_CONFIGS / f"{name}.yaml").sources[0].buffer.policy == "drop_oldest"


def test_defaults_and_shorthand(tmp_path):
    config = load_config(write(tmp_path, "source: clip.mp4\nmodels: {semantic: {}}\n"))
    assert config.sources[0].uri == "clip.mp4" and config.sources[0].buffer.policy == "auto"
    assert config.sinks.video is None and config.max_frames is None
    assert config.models["semantic"].model == "edgeseg_road_s"


def test_overrides_are_typed_and_reach_nested_keys(tmp_path):
    path = write(tmp_path, "source: {uri: a.mp4}\nmodels: {semantic: {threads: 2}}\n")
    config = load_config(path, ["models.semantic.threads=1", "models.semantic.threshold=0.4",
                                "source.uri=b.mp4", "sinks.jsonl.path={out}/x.jsonl", "max_frames=5"])
    assert config.models["semantic"].threads == 1 and config.models["semantic"].threshold == 0.4
    assert config.sources[0].uri == "b.mp4" and config.sinks.jsonl.path == "{out}/x.jsonl"
    assert config.max_frames == 5


def test_several_sources_by_index(tmp_path):
    path = write(tmp_path, "sources: [a.mp4, {uri: b.mp4, id: cam}]\nmodels: {semantic: {}}\n")
    config = load_config(path, ["sources.1.uri=c.mp4"])
    assert [s.uri for s in config.sources] == ["a.mp4", "c.mp4"] and config.sources[1].id == "cam"


def test_environment_variables(tmp_path, monkeypatch):
    path = write(tmp_path, "source: ${CAM_URL}\nout: ${OUT_DIR:-out/default}\nmodels: {semantic: {}}\n")
    monkeypatch.setenv("CAM_URL", "rtsp://10.0.0.7/stream")
    config = load_config(path)
    assert config.sources[0].uri == "rtsp://10.0.0.7/stream" and config.out == "out/default"
    monkeypatch.delenv("CAM_URL")
    with pytest.raises(EdgeSegError, match=r"c\.yaml: key 'sources\.0\.uri': environment variable CAM_URL is not set"):
        load_config(path)


@pytest.mark.parametrize("text, overrides, message", [
    ("source: a.mp4\nmodels: {semantic: {treshold: 0.3}}\n", [],
     r"c\.yaml: key 'models\.semantic\.treshold': Extra inputs are not permitted"),
    ("source: a.mp4\nmodels: {semantic: {threads: many}}\n", [],
     r"c\.yaml: key 'models\.semantic\.threads': Input should be a valid integer"),
    ("source: a.mp4\nmodels: {semantic: {}}\n", ["sinks.video.crf=99"],
     r"c\.yaml: key 'sinks\.video\.crf': Input should be less than or equal to 51"),
    ("source: a.mp4\nmodels: {panoptic: {}}\n", [], r"c\.yaml: key 'models\.panoptic\.\[key\]'"),
    ("models: {semantic: {}}\n", [], r"c\.yaml: key 'sources': Field required"),
    ("source: a.mp4\nmodels: {semantic: {}}\npanoptic: {}\n", [], r"panoptic fusion needs both models"),
    ("source: a.mp4\nmodels: {semantic: {}, instance: {}}\npanoptic: {things: {car: Truck}}\n", [],
     r"key 'panoptic': .*'car' maps to 'Truck', not a class of camvid"),
    ("source: a.mp4\nsources: [b.mp4]\nmodels: {semantic: {}}\n", [], r"give either 'source' or 'sources'"),
    ("source: [a.mp4\n", [], r"c\.yaml: line \d+ not valid YAML"),
    ("- a\n- b\n", [], r"c\.yaml: a config must be a YAML mapping"),
    ("source: a.mp4\nmodels: {semantic: {}}\n", ["models.semantic.threads"], r"--set 'models\.semantic\.threads': expected KEY=VALUE"),
    ("sources: [a.mp4]\nmodels: {semantic: {}}\n", ["sources.3.uri=x"], r"key 'sources\.3': no such list item"),
])
def test_mistakes_are_one_line(tmp_path, text, overrides, message):
    with pytest.raises(EdgeSegError, match=message) as info:
        load_config(write(tmp_path, text), overrides)
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(EdgeSegError, match=r"nope\.yaml: config not found"):
        load_config(tmp_path / "nope.yaml")


def test_apply_override_builds_missing_sections():
    data: dict = {}
    apply_override(data, "sinks.video.alpha=0.3")
    assert data == {"sinks": {"video": {"alpha": 0.3}}}
