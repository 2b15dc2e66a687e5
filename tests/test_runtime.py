"""ONNX Runtime sessions: real sessions on the tiny exported nets, checked against torch."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import yaml

from conftest import export_tiny_model
from pipeline import runtime
from pipeline.errors import EdgeSegError
from pipeline.modelcard import load_card
from pipeline.runtime.onnxruntime import physical_cores, resolve_providers


def test_outputs_match_torch(tiny_card, tiny_torch_net, rng):
    """The same weights run by ORT (with its graph fusions) and by torch agree to float tolerance."""
    torch, net = tiny_torch_net
    batch = rng.normal(size=(2, 3, 72, 96)).astype(np.float32)
    session = runtime.load(tiny_card)
    outputs = session.run(batch)
    assert list(outputs) == ["logits"]
    with torch.no_grad():
        expected = net(torch.from_numpy(batch)).numpy()
    assert outputs["logits"].shape == (2, 12, 72, 96)
    np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-4, atol=1e-4)


def test_session_describes_what_runs(tiny_card):
    session = runtime.load(tiny_card)
    assert session.input_name == "input"
    assert session.output_names == ("logits",)
    assert session.provider == "CPUExecutionProvider"
    assert session.runtime.startswith("onnxruntime ")
    assert session.threads == physical_cores()
    assert runtime.load(tiny_card, threads=1).threads == 1


def test_fixed_batch_graph_runs_any_batch(tmp_path, tiny_card, rng):
    """A graph exported with batch 1 is fed image by image; results equal the dynamic-batch graph's."""
    fixed = export_tiny_model(tmp_path, batch=1)
    batch = rng.normal(size=(3, 3, 72, 96)).astype(np.float32)
    got = runtime.load(fixed).run(batch)["logits"]
    assert got.shape == (3, 12, 72, 96)
    np.testing.assert_allclose(got, runtime.load(tiny_card).run(batch)["logits"], rtol=1e-5, atol=1e-5)


def test_corrupt_onnx_is_a_one_line_error_naming_the_file(tmp_path, tiny_card):
    shutil.copy(tiny_card.path, tmp_path / "card.yaml")
    (tmp_path / tiny_card.card.file).write_bytes(b"this is not a protobuf")
    with pytest.raises(EdgeSegError) as err:
        runtime.load(load_card(tmp_path / "card.yaml"))
    message = str(err.value)
    assert str(tmp_path / tiny_card.card.file) in message and "\n" not in message


def test_truncated_onnx_is_a_one_line_error(tmp_path, tiny_card):
    shutil.copy(tiny_card.path, tmp_path / "card.yaml")
    data = tiny_card.onnx_path.read_bytes()
    (tmp_path / tiny_card.card.file).write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgeSegError, match="not a loadable ONNX model"):
        runtime.load(load_card(tmp_path / "card.yaml"))


@pytest.mark.parametrize("key, value, words", [
    ("input.name", "images", "key 'input.name'"),
    ("output.name", "scores", "key 'output.name'"),
    ("input.width", 128, "key 'input.width'"),
])
def test_card_that_disagrees_with_its_network_is_refused(tmp_path, tiny_card, key, value, words):
    raw = yaml.safe_load(tiny_card.path.read_text())
    section, field = key.split(".")
    raw[section][field] = value
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(tiny_card.onnx_path, tmp_path / tiny_card.card.file)
    with pytest.raises(EdgeSegError) as err:
        runtime.load(load_card(tmp_path / "card.yaml"))
    assert words in str(err.value) and str(tmp_path / "card.yaml") in str(err.value)


def test_provider_selection():
    """Providers this ORT build lacks are skipped; CPU is always the fallback; typos are errors."""
    assert resolve_providers(None) == ["CPUExecutionProvider"]
    assert resolve_providers(["cuda", "tensorrt", "cpu"])[-1] == "CPUExecutionProvider"
    import onnxruntime as ort
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert resolve_providers(["cuda"]) == ["CPUExecutionProvider"]
    with pytest.raises(EdgeSegError, match="unknown ONNX Runtime provider 'cudaa'"):
        resolve_providers(["cudaa"])


def test_physical_cores_is_within_the_logical_count():
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
