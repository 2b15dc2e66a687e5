"""pipeline.nets.export on small torch modules whose parameter and multiply-add counts are known by hand."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from pipeline.modelcard import InputSpec, Latency  # noqa: E402
from pipeline.nets.export import (  # noqa: E402
    ExportMismatchError,
    count_params,
    export_onnx,
    measure_latency,
    onnx_gflops,
)

SPEC = InputSpec(width=32, height=24, color_order="RGB", mean=(120, 110, 100), std=(60, 60, 60))


class _Tiny(nn.Module):
    """Conv (stride 2, grouped second conv), BN, PReLU, ConvTranspose, and a MatMul over the width."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.PReLU(8)
        self.group = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.up = nn.ConvTranspose2d(8, 5, 2, stride=2, bias=False)
        self.mix = nn.Parameter(torch.randn(32, 32) / 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.group(self.act(self.bn(self.conv(x))))
        return self.up(y) @ self.mix


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = _Tiny().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding errors would show
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    return model, export_onnx(model, path, SPEC)


def test_export_is_one_self_contained_file_with_dynamic_batch(exported):
    model, result = exported
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["tiny.onnx"]
    proto = onnx.load(str(result.path))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    assert result.output_shape == (2, 5, 24, 32)
    assert result.max_abs_diff < 1e-4

    x = np.random.default_rng(1).standard_normal((3, 3, 24, 32)).astype(np.float32)
    got = ort.InferenceSession(str(result.path)).run(None, {"input": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_count_params_counts_learnable_weights_only(exported):
    model, _ = exported
    by_hand = (8 * 3 * 9 + 8) + (8 + 8) + 8 + (8 * 2 * 9) + (8 * 5 * 4) + 32 * 32
    assert count_params(model) == by_hand


def test_onnx_gflops_counts_conv_transpose_and_matmul_macs(exported):
    _, result = exported
    macs = (
        8 * 12 * 16 * (3 * 9)  # conv: every output value needs Cin*k*k MACs
        + 8 * 12 * 16 * (2 * 9)  # grouped conv: Cin/groups = 2
        + 8 * 12 * 16 * (5 * 4)  # transposed conv: every input value meets Cout*k*k weights
        + 5 * 24 * 32 * 32  # matmul over the width
    )
    assert onnx_gflops(result.path, (1, 3, 24, 32)) == pytest.approx(2 * macs / 1e9)
    assert onnx_gflops(result.path, (4, 3, 24, 32)) == pytest.approx(4 * 2 * macs / 1e9)


def test_measure_latency_reports_median_and_p90(exported):
    _, result = exported
    lat = measure_latency(result.path, SPEC, threads=1, runs=7, warmup=1, command="pytest")
    assert isinstance(lat, Latency)
    assert 0 < lat.median_ms <= lat.p90_ms
    assert (lat.threads, lat.input, lat.provider, lat.command) == (1, "1x3x24x32", "CPUExecutionProvider", "pytest")
    assert lat.runtime == f"onnxruntime {ort.__version__}"
    assert "cores" in lat.machine


class _CountsCalls(nn.Module):
    """Output depends on how often forward ran, so the traced graph (a later call) differs from the
    eager reference output: the export check must notice."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * float(self.calls)


def test_export_raises_when_onnx_disagrees_with_torch(tmp_path):
    with pytest.raises(ExportMismatchError, match="differs from torch"):
        export_onnx(_CountsCalls(), tmp_path / "bad.onnx", SPEC)
