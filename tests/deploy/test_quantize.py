"""nas_prune.deploy.quantize: int8 models run, stay close to fp32, and shrink wide nets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from nas_prune.deploy.onnx import INPUT, to_onnx  # noqa: E402
from nas_prune.deploy.quantize import int8_onnx  # noqa: E402
from nas_prune.deploy.session import session  # noqa: E402
from nas_prune.rl.networks import MLP  # noqa: E402

MODES = ["dynamic", "static"]


@pytest.fixture(scope="module")
def wide() -> tuple[MLP, np.ndarray]:
    torch.manual_seed(0)
    obs = np.random.default_rng(0).standard_normal((512, 4), dtype=np.float32)
    return MLP([4, 256, 256, 3]), obs


def _int8(net: MLP, obs: np.ndarray, mode: str) -> bytes:
    return int8_onnx(net, obs if mode == "static" else None)


@pytest.mark.parametrize("mode", MODES)
def test_int8_is_close_to_fp32_and_a_quarter_of_its_weights(
        mode: str, wide: tuple[MLP, np.ndarray]) -> None:
    net, obs = wide
    model = _int8(net, obs, mode)
    got = session(model).run(None, {INPUT: obs})[0]
    with torch.inference_mode():
        want = net(torch.from_numpy(obs)).numpy()
    scale = np.abs(want).max()
    # 8-bit weights (and activations for static): errors of a few 1/256 of the range
    assert np.abs(got - want).max() < 0.05 * scale
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.9
    # weights dominate a 4-256-256-3 net: int8 is about a quarter of fp32's bytes
    assert len(model) < 0.35 * len(to_onnx(net))


@pytest.mark.parametrize("mode", MODES)
def test_int8_keeps_names_and_dynamic_batch(mode: str, wide: tuple[MLP, np.ndarray]) -> None:
    net, obs = wide
    proto = onnx.load_from_string(_int8(net, obs, mode))
    ops = {n.op_type for n in proto.graph.node}
    assert ("DynamicQuantizeLinear" in ops) == (mode == "dynamic")
    assert ("QuantizeLinear" in ops) == (mode == "static")
    sess = session(proto.SerializeToString())
    for batch in (1, 9):
        assert sess.run(None, {INPUT: obs[:batch]})[0].shape == (batch, 3)


def test_int8_leaves_no_temp_files(wide: tuple[MLP, np.ndarray], tmp_path,  # type: ignore[no-untyped-def]
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    int8_onnx(wide[0], wide[1][:64])
    assert not any(tmp_path.iterdir())


def _q_like(seed: int = 0) -> tuple[MLP, np.ndarray]:
    """A net whose outputs share one large state value and differ by small advantages, as
    a trained Q head's do (CartPole DQN: Q-values 15-104, median gap 0.3)."""
    torch.manual_seed(seed)
    net = MLP([4, 64, 64, 3])
    with torch.no_grad():
        last = net.linears()[-1]
        common = torch.randn(1, 64) * 2
        last.weight.copy_(common + 0.01 * torch.randn(3, 64))
        last.bias.fill_(50.0)
    return net, np.random.default_rng(seed).standard_normal((512, 4), dtype=np.float32)


@pytest.mark.parametrize("mode", MODES)
def test_output_layer_stays_fp32_so_greedy_actions_survive(mode: str) -> None:
    net, obs = _q_like()
    with torch.inference_mode():
        want = net(torch.from_numpy(obs)).numpy().argmax(1)
    agree = {}
    for keep in (True, False):
        model = int8_onnx(net, obs if mode == "static" else None, keep_output_fp32=keep)
        agree[keep] = (session(model).run(None, {INPUT: obs})[0].argmax(1) == want).mean()
        # the output layer's weights: 3 x 64 (or its transpose) stored as float or int8
        dtypes = {i.data_type for i in onnx.load_from_string(model).graph.initializer
                  if sorted(i.dims) == [3, 64]}
        assert dtypes == {onnx.TensorProto.FLOAT if keep else onnx.TensorProto.INT8}
    assert agree[True] > 0.9 and agree[True] > agree[False] + 0.1, agree
