"""Model cards: a bad card is one line naming the file and the key; a good one round-trips."""

from __future__ import annotations

import shutil

import pytest
import yaml

from pipeline.errors import EdgeSegError
from pipeline.modelcard import find_card, load_card, save_card


@pytest.fixture
def card_dir(tmp_path, tiny_card):
    shutil.copy(tiny_card.onnx_path, tmp_path / tiny_card.card.file)
    return tmp_path


def write(card_dir, raw) -> str:
    path = card_dir / "card.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return str(path)


def one_line_error(path: str) -> str:
    with pytest.raises(EdgeSegError) as err:
        load_card(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(path)
    return message


def test_good_card_round_trips(card_dir, tiny_card):
    loaded = load_card(save_card(tiny_card.card, card_dir / "copy.yaml"))
    assert loaded.card == tiny_card.card
    assert loaded.onnx_path == card_dir / tiny_card.card.file


@pytest.mark.parametrize("edit, key", [
    (lambda raw: raw["input"].pop("width"), "input.width"),
    (lambda raw: raw["input"].update(color_order="YUV"), "input.color_order"),
    (lambda raw: raw["input"].update(height=0), "input.height"),
    (lambda raw: raw["output"].update(kind="boxes"), "output.kind"),
    (lambda raw: raw.update(task="depth"), "task"),
    (lambda raw: raw.update(colour="red"), "colour"),  # unknown keys are refused (typos)
    (lambda raw: raw["palette"].pop(), "(top level)"),  # cross-field check: palette vs classes
])
def test_invalid_values_name_file_and_key(card_dir, tiny_card, edit, key):
    raw = yaml.safe_load(tiny_card.path.read_text())
    edit(raw)
    message = one_line_error(write(card_dir, raw))
    assert f"key '{key}'" in message


def test_palette_class_count_mismatch_says_so(card_dir, tiny_card):
    raw = yaml.safe_load(tiny_card.path.read_text())
    raw["palette"].pop()
    assert "palette has 11 colours for 12 classes" in one_line_error(write(card_dir, raw))


def test_missing_onnx_file_names_key_file(card_dir, tiny_card):
    raw = yaml.safe_load(tiny_card.path.read_text())
    raw["file"] = "absent.onnx"
    assert "key 'file'" in one_line_error(write(card_dir, raw))


def test_invalid_yaml_names_the_line(card_dir):
    assert "line 2" in one_line_error(write(card_dir, "name: x\n\tinput: 1\n"))  # a tab cannot indent YAML


def test_yaml_that_is_not_a_mapping(card_dir):
    assert "must be a YAML mapping" in one_line_error(write(card_dir, "- a\n- b\n"))


def test_missing_card_and_unknown_model_name(tmp_path, monkeypatch):
    with pytest.raises(EdgeSegError, match="model card not found"):
        load_card(tmp_path / "nope.yaml")
    monkeypatch.setenv("EDGESEG_ENGINES", str(tmp_path))
    with pytest.raises(EdgeSegError, match="model 'no_such_model' not found") as err:
        find_card("no_such_model")
    assert "\n" not in str(err.value)
