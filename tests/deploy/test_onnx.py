"""nas_prune.deploy.onnx: the exported graph computes what torch computes, for any batch."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from nas_prune.deploy.export import CHECK_ATOL, CHECK_RTOL  # noqa: E402
from nas_prune.deploy.onnx import INPUT, OUTPUT, DeployError, _export, obs_size, to_onnx  # noqa: E402
from nas_prune.deploy.session import session  # noqa: E402
from nas_prune.pruning import PruneContext, methods  # noqa: E402
from nas_prune.pruning.surgery import shrink  # noqa: E402
from nas_prune.rl.cnn import CNN  # noqa: E402
from nas_prune.rl.networks import MLP, PrunableNet, activations  # noqa: E402


def _pruned(sizes: list[int], *, shrunk: bool) -> MLP:
    torch.manual_seed(1)  # the same weights for the masked and the shrunk form
    net = MLP(sizes)
    methods.get("importance")().prune(net, [0.75] * (len(sizes) - 2),
                                      PruneContext(torch.Generator().manual_seed(0)))
    return shrink(net) if shrunk else net


def _cnn(*, channels_last: bool, pruned: bool) -> PrunableNet:
    torch.manual_seed(2)
    net = CNN((3, 10, 9), [8, 6], [3, 2], [1, 2], [16], 5, channels_last=channels_last)
    if not pruned:
        return net
    methods.get("importance")().prune(net, [0.5] * len(net.prunable_layers()[:-1]) + [0.0],
                                      PruneContext(torch.Generator().manual_seed(0)))
    return shrink(net)


def _nets() -> list[tuple[str, PrunableNet]]:
    torch.manual_seed(0)
    nets: list[tuple[str, PrunableNet]] = [
        (f"{act}-4x64x64x2", MLP([4, 64, 64, 2], act)) for act in activations.names()]
    nets += [("linear-3x1", MLP([3, 1])), ("deep-3x5x7x9x17", MLP([3, 5, 7, 9, 17], "tanh")),
             ("masked-8x32x32x4", _pruned([8, 32, 32, 4], shrunk=False)),
             ("shrunk-8x32x32x4", _pruned([8, 32, 32, 4], shrunk=True)),
             ("cnn-hwc", _cnn(channels_last=True, pruned=False)),
             ("cnn-chw-shrunk", _cnn(channels_last=False, pruned=True))]
    return nets


def _outputs(net: PrunableNet, model: bytes, batch: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(batch).standard_normal((batch, obs_size(net)), dtype=np.float32)
    got = session(model).run(None, {INPUT: x})[0]
    with torch.inference_mode():
        return got, net(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name,net", _nets(), ids=[n for n, _ in _nets()])
def test_onnx_outputs_equal_torch_for_every_batch(name: str, net: PrunableNet) -> None:
    model = to_onnx(net)
    for batch in (1, 7, 1024):  # one model: the batch axis is dynamic
        got, want = _outputs(net, model, batch)
        assert got.shape == want.shape and got.shape[0] == batch
        np.testing.assert_allclose(got, want, rtol=CHECK_RTOL, atol=CHECK_ATOL)


def test_shrunk_export_is_smaller_and_equal_to_the_masked_one() -> None:
    masked, small = _pruned([8, 32, 32, 4], shrunk=False), _pruned([8, 32, 32, 4], shrunk=True)
    assert len(to_onnx(small)) < 0.25 * len(to_onnx(masked))
    got, _ = _outputs(small, to_onnx(small), 64)
    _, want = _outputs(masked, to_onnx(masked), 64)
    np.testing.assert_allclose(got, want, rtol=CHECK_RTOL, atol=CHECK_ATOL)


def test_graph_names_and_dynamic_batch_axis(tmp_path) -> None:  # type: ignore[no-untyped-def]
    net = MLP([5, 16, 3])
    model = to_onnx(net, tmp_path / "sub" / "p.onnx")
    assert (tmp_path / "sub" / "p.onnx").read_bytes() == model
    proto = onnx.load_from_string(model)
    onnx.checker.check_model(proto)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == (INPUT, OUTPUT)
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # symbolic: any batch
    assert dims[1].dim_value == 5
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_export_leaves_training_mode_as_it_was() -> None:
    net = MLP([4, 8, 2]).train()
    to_onnx(net)
    assert net.training


def test_dynamo_exporter_matches_too() -> None:
    pytest.importorskip("onnxscript")
    net = _pruned([4, 32, 32, 2], shrunk=True)
    model = _export(net, dynamo=True)
    for batch in (1, 33):
        got, want = _outputs(net, model, batch)
        np.testing.assert_allclose(got, want, rtol=CHECK_RTOL, atol=CHECK_ATOL)


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(DeployError, match=r'pip install -e "\.\[deploy\]"'):
        to_onnx(MLP([4, 8, 2]))
