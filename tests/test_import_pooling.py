"""The ONNX-exportable adaptive average pooling used by ESPNetv2's pyramid pool equals torch's."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from pipeline.modelcard import InputSpec  # noqa: E402
from pipeline.nets.espnetv2 import adaptive_avg_pool2d_static  # noqa: E402
from pipeline.nets.export import export_onnx  # noqa: E402

# (input h, w) -> (output h, w): windows of mixed lengths (23 -> 12, 23 -> 5), overlapping windows
# (output larger than input, as when the pyramid's minimum side 5 exceeds a 4-pixel map), the
# 1.5x branch pooled back (36 -> 24, 35 -> 23), evenly dividing sizes, and sizes seen in ESPNetv2 at
# 480x368 (1/16: 23x30, 1/2: 184x240 with its 1.5x map 276x360).
CASES = [((23, 30), (12, 15)), ((23, 30), (5, 5)), ((4, 7), (5, 5)), ((36, 35), (24, 23)),
         ((32, 64), (16, 32)), ((7, 3), (7, 3)), ((276, 360), (184, 240)), ((1, 9), (5, 2))]


@pytest.mark.parametrize(("size_in", "size_out"), CASES)
def test_static_pooling_equals_torch_adaptive_pooling(size_in, size_out):
    x = torch.randn(2, 3, *size_in, generator=torch.Generator().manual_seed(0))
    want = F.adaptive_avg_pool2d(x, size_out)
    got = adaptive_avg_pool2d_static(x, size_out)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


class _Pool(torch.nn.Module):
    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return adaptive_avg_pool2d_static(x, self.size)


def test_static_pooling_exports_to_onnx_and_matches_torch_adaptive_pooling(tmp_path):
    """At the 1/16 scale of a 480x368 input (23x30), pooled to the 0.5x branch's size."""
    spec = InputSpec(width=30, height=23, color_order="RGB", mean=(128, 128, 128), std=(64, 64, 64))
    path = export_onnx(_Pool((12, 15)), tmp_path / "pool.onnx", spec, output_name="pooled").path
    x = np.random.default_rng(3).standard_normal((1, 3, 23, 30)).astype(np.float32)
    got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    want = F.adaptive_avg_pool2d(torch.from_numpy(x), (12, 15)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
