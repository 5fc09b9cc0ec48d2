"""nas_prune.trial.artifacts: safetensors + JSON checkpoints round-trip, and every malformed
or tampered checkpoint is a one-line CheckpointError."""
from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from nas_prune.pruning.surgery import deployed, shrink
from nas_prune.rl.cnn import CNN
from nas_prune.rl.heads import Head, act
from nas_prune.rl.networks import MLP
from nas_prune.trial.artifacts import (
    POLICY_SPEC,
    POLICY_WEIGHTS,
    CheckpointError,
    load_policy,
    load_tensors,
    save_policy,
    save_tensors,
    sha256_file,
)


def _net(sizes: list[int] | None = None, activation: str = "tanh") -> MLP:
    torch.manual_seed(0)
    return MLP(sizes or [4, 8, 6, 2], activation)


def test_tensors_round_trip_and_digest(tmp_path: Path) -> None:
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2, 3])}
    path = tmp_path / "sub" / "t.safetensors"  # the folder is created
    digest = save_tensors(path, tensors)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    loaded = load_tensors(path)
    assert loaded.keys() == tensors.keys()
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert [p.name for p in path.parent.iterdir()] == ["t.safetensors"]  # no temp left


def test_non_contiguous_tensors_are_saved(tmp_path: Path) -> None:
    t = torch.arange(12.0).reshape(3, 4).T  # a view, not contiguous
    save_tensors(tmp_path / "t.safetensors", {"t": t})
    assert torch.equal(load_tensors(tmp_path / "t.safetensors")["t"], t)


@pytest.mark.parametrize(("content", "needle"), [
    (None, "not found"),
    (b"", "is not a valid safetensors file"),
    (b"\x00" * 7, "is not a valid safetensors file"),
    (pickle.dumps({"w": [1.0, 2.0]}), "is not a valid safetensors file"),
])
def test_load_tensors_refuses_what_is_not_safetensors(tmp_path: Path, content: bytes | None,
                                                      needle: str) -> None:
    path = tmp_path / "w.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_tensors(path)
    assert str(info.value).startswith(f"checkpoint: {path} {needle}")
    assert "\n" not in str(info.value)


def test_truncated_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_tensors(path, {"w": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match="is not a valid safetensors file"):
        load_tensors(path)


# --- policies -----------------------------------------------------------------------------

@pytest.mark.parametrize(("sizes", "activation", "head"), [
    ([4, 8, 6, 2], "tanh", Head("categorical")),
    ([4, 16, 2], "relu", Head("q")),
    ([3, 5, 1], "elu", Head("gaussian", [-2.0], [2.0])),
    ([2, 3], "relu", Head("q")),  # no hidden layer
])
def test_policy_round_trip_acts_the_same(tmp_path: Path, sizes: list[int], activation: str,
                                         head: Head) -> None:
    net = _net(sizes, activation)
    digest = save_policy(tmp_path, net, head)
    assert digest == sha256_file(tmp_path / POLICY_WEIGHTS)
    spec = json.loads((tmp_path / POLICY_SPEC).read_text())
    assert spec == {"type": "mlp", "sizes": sizes, "activation": activation,
                    "head": head.to_json(), "weights": POLICY_WEIGHTS, "sha256": digest}
    loaded, loaded_head = load_policy(tmp_path)
    assert loaded_head == head
    assert (loaded.sizes, loaded.activation) == (sizes, activation)
    obs = torch.randn(32, sizes[0]).numpy()
    a, q = act(net, head, obs)
    b, q2 = act(loaded, loaded_head, obs)
    assert (a == b).all()
    assert (q is None and q2 is None) or (q == q2).all()


def test_a_sac_policy_saved_with_its_log_std_rows_loads_and_acts_as_its_mean_rows(
        tmp_path: Path) -> None:
    """A study written before deployed SAC policies dropped their log-std rows saved 2A
    outputs: it still loads, and acts as the same net cut to its A mean rows."""
    torch.manual_seed(0)
    old = MLP([3, 8, 4], "relu")  # A = 2: two means, then two log-stds
    head = Head("squashed", [-2.0, 0.0], [2.0, 1.0])
    save_policy(tmp_path, old, head)
    loaded, loaded_head = load_policy(tmp_path)
    assert loaded.sizes == [3, 8, 4] and loaded_head == head
    means = deployed(old, 2, remove_units=False)
    obs = torch.randn(32, 3, generator=torch.Generator().manual_seed(1)).numpy()
    want = act(means, head, obs)[0]
    assert want.shape == (32, 2)
    np.testing.assert_allclose(act(loaded, loaded_head, obs)[0], want, rtol=0, atol=1e-6)


def _cnn() -> CNN:
    torch.manual_seed(0)
    net = CNN((2, 7, 6), [5, 4], [3, 2], [2, 1], [6], 3, "relu", channels_last=True)
    keep = torch.tensor([True, False, True, True, False])
    net.set_unit_mask("convs.0", keep)
    return shrink(net)


def test_cnn_policy_round_trip(tmp_path: Path) -> None:
    net = _cnn()
    save_policy(tmp_path, net, Head("q"))
    spec = json.loads((tmp_path / POLICY_SPEC).read_text())
    assert spec["type"] == "cnn" and spec["channels"] == [3, 4] and spec["image"] == [2, 7, 6]
    loaded, head = load_policy(tmp_path)
    assert isinstance(loaded, CNN) and head == Head("q")
    obs = torch.randn(16, 2 * 7 * 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(obs), net(obs))


@pytest.mark.parametrize(("changes", "needle"), [
    ({"channels": [3, 5]}, "do not fit the CNN spec"),
    ({"image": [2, 7]}, "needs image (3 positive ints)"),
    ({"kernels": [30, 2]}, "agent.kernels: conv layer 0"),
    ({"channels": [100000, 100000], "hidden": [100000]}, "do not fit the CNN spec"),
    ({"channels_last": "yes"}, "needs image (3 positive ints)"),
])
def test_bad_cnn_specs_are_one_line_errors(tmp_path: Path, changes: dict[str, Any],
                                           needle: str) -> None:
    save_policy(tmp_path, _cnn(), Head("q"))
    _tamper_spec(**changes)(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_policy(tmp_path, verify=False)
    assert str(info.value).startswith("checkpoint: ") and needle in str(info.value)
    assert "\n" not in str(info.value)


def test_pruned_zeros_survive_the_round_trip(tmp_path: Path) -> None:
    net = _net()
    mask = (torch.arange(32).reshape(8, 4) % 3 == 0).float()
    net.set_mask("layers.0", mask)
    save_policy(tmp_path, net, Head("q"))
    loaded, _ = load_policy(tmp_path)
    assert torch.equal(loaded.layers[0].weight == 0, mask == 0)


_DROP = object()  # a spec change that deletes the key


def _tamper_spec(**changes: Any) -> Callable[[Path], None]:
    def tamper(d: Path) -> None:
        spec = json.loads((d / POLICY_SPEC).read_text())
        spec.update(changes)
        for k, v in changes.items():
            if v is _DROP:
                del spec[k]
        (d / POLICY_SPEC).write_text(json.dumps(spec))
    return tamper


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(data)


def _flip_a_weight(d: Path) -> None:
    tensors = load_tensors(d / POLICY_WEIGHTS)
    tensors["layers.0.weight"][0, 0] += 1.0
    save_tensors(d / POLICY_WEIGHTS, tensors)


def _resave_with_spec_digest(d: Path) -> None:
    # a consistent forgery: new weights of another shape with a matching digest
    digest = save_tensors(d / POLICY_WEIGHTS, _net([4, 9, 6, 2]).state_dict())
    _tamper_spec(sha256=digest)(d)


@pytest.mark.parametrize(("tamper", "needle"), [
    (lambda d: (d / POLICY_SPEC).unlink(), "policy.json not found"),
    (lambda d: (d / POLICY_WEIGHTS).unlink(), "policy.safetensors not found"),
    (_write(POLICY_SPEC, b"{not json"), "is not valid JSON"),
    (_write(POLICY_SPEC, b"[1, 2]"), "is not an MLP or CNN policy spec"),
    (_tamper_spec(type="rnn"), "is not an MLP or CNN policy spec"),
    (_tamper_spec(type="cnn"), "needs image (3 positive ints), channels, kernels"),
    (_tamper_spec(sizes=_DROP), "is not an MLP or CNN policy spec"),
    (_tamper_spec(sizes=[4]), "needs sizes (positive ints), activation and head"),
    (_tamper_spec(sizes=[4, 0, 2]), "needs sizes (positive ints), activation and head"),
    (_tamper_spec(sizes=[4, "8", 6, 2]), "needs sizes (positive ints), activation and head"),
    (_tamper_spec(activation=None), "needs sizes (positive ints), activation and head"),
    (_tamper_spec(head="q"), "needs sizes (positive ints), activation and head"),
    (_tamper_spec(head={"kind": "beta"}),
     "head.kind must be one of q, categorical, gaussian, squashed"),
    (_tamper_spec(sha256="0" * 64), "does not match the SHA-256 in its spec"),
    (_flip_a_weight, "does not match the SHA-256 in its spec"),
    (_write(POLICY_WEIGHTS, pickle.dumps({"w": 1})), "is not a valid safetensors file"),
    (_resave_with_spec_digest, "do not fit sizes [4, 8, 6, 2]"),
    (_tamper_spec(sizes=[4, 8, 6, 3]), "do not fit sizes [4, 8, 6, 3]"),
    (_tamper_spec(sizes=[4, 100000, 100000, 2]), "do not fit sizes"),  # nothing allocated
])
def test_bad_checkpoints_are_one_line_errors(tmp_path: Path, tamper: Callable[[Path], None],
                                             needle: str) -> None:
    save_policy(tmp_path, _net(), Head("categorical"))
    tamper(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_policy(tmp_path)
    msg = str(info.value)
    assert msg.startswith("checkpoint: ")
    assert needle in msg
    assert "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_verify_off_skips_only_the_digest(tmp_path: Path) -> None:
    save_policy(tmp_path, _net(), Head("q"))
    _flip_a_weight(tmp_path)
    net, _ = load_policy(tmp_path, verify=False)
    flipped, original = net.layers[0].weight[0, 0], _net().layers[0].weight[0, 0]
    assert flipped.item() == pytest.approx(original.item() + 1.0)
    _tamper_spec(sizes=[4, 8, 6, 3])(tmp_path)
    with pytest.raises(CheckpointError, match="do not fit sizes"):  # shapes still checked
        load_policy(tmp_path, verify=False)


def test_bias_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    save_policy(tmp_path, _net(), Head("q"))
    tensors = load_tensors(tmp_path / POLICY_WEIGHTS)
    tensors["layers.1.bias"] = torch.zeros(7)
    _tamper_spec(sha256=save_tensors(tmp_path / POLICY_WEIGHTS, tensors))(tmp_path)
    with pytest.raises(CheckpointError, match="weights do not fit the spec"):
        load_policy(tmp_path)


def test_unknown_activation_in_the_spec_is_a_checkpoint_error(tmp_path: Path) -> None:
    save_policy(tmp_path, _net(), Head("q"))
    _tamper_spec(activation="bogus")(tmp_path)
    with pytest.raises(CheckpointError, match=r"^checkpoint: .*policy\.json"):
        load_policy(tmp_path)
