"""nas_prune.deploy.runtime: an exported file acts as ``rl.heads.act`` does, for each head."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from nas_prune.config.base import ConfigError  # noqa: E402
from nas_prune.config.trial import TrialConfig  # noqa: E402
from nas_prune.deploy.onnx import DeployError, to_onnx  # noqa: E402
from nas_prune.deploy.runtime import META_CONFIG, embed, load_onnx_policy, onnx_act  # noqa: E402
from nas_prune.rl.heads import Head, act  # noqa: E402
from nas_prune.rl.networks import MLP  # noqa: E402

HEADS = {"q": Head("q"), "categorical": Head("categorical"),
         # bounds inside the outputs' range, so clipping is exercised
         "gaussian": Head("gaussian", [-0.05, -0.1], [0.05, 0.1]),
         # one action: the second output is a log-std the deployed action ignores
         "squashed": Head("squashed", [-2.0], [1.0])}


def _write(tmp: Path, net: MLP, head: Head, cfg: TrialConfig | None = None) -> Path:
    spec = {**net.spec(), "head": head.to_json()}
    path = tmp / "p.onnx"
    path.write_bytes(embed(to_onnx(net), spec, cfg or TrialConfig()))
    return path


@pytest.mark.parametrize("kind", list(HEADS))
def test_onnx_act_equals_torch_act(kind: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net, head = MLP([4, 32, 16, 2], "tanh"), HEADS[kind]
    policy = load_onnx_policy(_write(tmp_path, net, head))
    assert policy.head == head and policy.config == TrialConfig()
    obs = np.random.default_rng(0).standard_normal((256, 4), dtype=np.float32)
    got, got_q = onnx_act(policy)(obs)
    want, want_q = act(net, head, obs)
    if kind == "gaussian":
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert (np.abs(want) == 0.1).any()  # some actions were clipped
    elif kind == "squashed":
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert got.shape == (256, 1) and got.min() >= -2.0 and got.max() <= 1.0
    else:
        assert np.array_equal(got, want)
    assert (got_q is None) == (want_q is None) == (kind != "q")
    if got_q is not None and want_q is not None:
        np.testing.assert_allclose(got_q, want_q, atol=1e-5)


def test_bad_head_kind_in_metadata_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, MLP([4, 8, 2]), Head("softmax"))
    with pytest.raises(DeployError,
                       match="head.kind must be one of q, categorical, gaussian, squashed"):
        load_onnx_policy(path)


def test_bad_config_in_metadata_is_one_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, MLP([4, 8, 2]), Head("q"))
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == META_CONFIG:
            prop.value = json.dumps({"eval": {"episodes": 0}})
    onnx.save(proto, str(path))
    with pytest.raises(ConfigError, match="eval.episodes"):
        load_onnx_policy(path)
