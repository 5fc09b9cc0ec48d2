"""FlatMLP's hand-written backward and FlatTrainer's clip + Adam + mask step against autograd
and ``torch.optim.Adam`` on a deep copy of the same network."""
from __future__ import annotations

import copy
from typing import Callable, cast

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_prune.rl.cnn import CNN
from nas_prune.rl.networks import MLP, activations
from nas_prune.rl.optim.flatcnn import FlatCNN
from nas_prune.rl.optim.flatnet import AutogradNet, FlatMLP, FlatTrainer, Penalty, fast_net

SIZES = [5, 16, 12, 3]
ATOL = 1e-6


def seeded(activation: str = "relu", seed: int = 0, sizes: list[int] | None = None) -> MLP:
    torch.manual_seed(seed)
    return MLP(list(sizes or SIZES), activation)


def linears(net: MLP) -> list[nn.Linear]:
    return [cast(nn.Linear, layer) for layer in net.layers]


def snapshot(net: MLP) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_same_weights(net: MLP, ref: MLP, atol: float = ATOL) -> None:
    got, expected = net.state_dict(), ref.state_dict()
    assert got.keys() == expected.keys()
    for key in got:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=atol, msg=key)


def mse_d_out(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d/d out of F.mse_loss(out, target)."""
    return 2 * (out - target) / out.numel()


class Batches:
    """The same inputs and target for the trainer and the reference loop."""

    def __init__(self, seed: int = 1, rows: int = 16) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.target = torch.randn(rows, SIZES[-1], generator=gen)
        self.xs = [torch.randn(rows, SIZES[0], generator=gen) for _ in range(6)]


def flat_step(trainer: FlatTrainer, net: MLP, x: torch.Tensor, target: torch.Tensor, *,
              penalty: Penalty | None = None) -> None:
    out = trainer[net].forward(x, record=True)
    trainer.step({net: mse_d_out(out, target)}, what="test loss", penalty=penalty)


def ref_step(ref: MLP, opt: torch.optim.Optimizer, x: torch.Tensor, target: torch.Tensor, *,
             max_grad_norm: float | None = None,
             penalty: Callable[[MLP], torch.Tensor] | None = None) -> float:
    """One step of the loop the agents ran before FlatTrainer; returns the unclipped norm."""
    opt.zero_grad()
    loss = F.mse_loss(ref(x), target)
    if penalty is not None:
        loss = loss + penalty(ref)
    loss.backward()
    params = [p for group in opt.param_groups for p in group["params"]]
    norm = float(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in params])))
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()
    ref.apply_masks()
    return norm


# --- activations and backward --------------------------------------------------------------

@pytest.mark.parametrize("activation", activations.names())
def test_activation_record_agrees_with_its_module(activation: str) -> None:
    # one record per activation: its function and numpy form compute what its module does
    record = activations.get(activation)
    z = torch.randn(64, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(record.fn(z), record.module()(z), rtol=0, atol=0)
    if record.numpy is not None:
        np.testing.assert_allclose(record.numpy(z.numpy().copy()), record.fn(z).numpy(),
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", activations.names())
@pytest.mark.parametrize("rows", [10, 5])
def test_backward_matches_autograd(activation: str, rows: int) -> None:
    net = seeded(activation)
    ref = copy.deepcopy(net)
    trainer = FlatTrainer([net], lr=1e-3)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(10, SIZES[0], generator=gen)
    d_out = torch.randn(rows, SIZES[-1], generator=gen)

    out = trainer[net].forward(x, record=True)
    ref_out = ref(x)
    torch.testing.assert_close(out, ref_out.detach(), rtol=1e-6, atol=ATOL)
    # only the first ``rows`` recorded rows enter the loss
    expected = torch.autograd.grad((ref_out[:rows] * d_out).sum(), list(ref.parameters()))
    trainer[net].backward(d_out)
    for (name, p), g in zip(net.named_parameters(), expected, strict=True):
        assert p.grad is not None
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=ATOL, msg=name)


def test_backward_needs_a_recorded_forward() -> None:
    net = seeded()
    trainer = FlatTrainer([net], lr=1e-3)
    trainer[net].forward(torch.randn(4, SIZES[0]))  # not recorded
    with pytest.raises(RuntimeError, match="record=True"):
        trainer[net].backward(torch.randn(4, SIZES[-1]))


# --- the trainer's step against torch.optim.Adam -------------------------------------------

@pytest.mark.parametrize("mask", ["none", "weight", "neuron"])
@pytest.mark.parametrize("max_grad_norm", [None, 0.05])
def test_step_matches_adam_with_clipping_and_masks(mask: str, max_grad_norm: float | None
                                                   ) -> None:
    net = seeded("tanh")
    gen = torch.Generator().manual_seed(7)
    if mask == "weight":
        for i, layer in enumerate(linears(net)):
            net.set_mask(f"layers.{i}", (torch.rand(layer.weight.shape, generator=gen) > 0.5))
    elif mask == "neuron":
        net.set_unit_mask("layers.0", torch.arange(SIZES[1]) % 3 != 0)
    ref = copy.deepcopy(net)
    lr, eps = 1e-2, 1e-5
    opt = torch.optim.Adam(ref.parameters(), lr=lr, eps=eps)
    trainer = FlatTrainer([net], lr=lr, eps=eps, max_grad_norm=max_grad_norm)
    start = snapshot(net)
    data = Batches()
    norms = []
    for x in data.xs:
        norms.append(ref_step(ref, opt, x, data.target, max_grad_norm=max_grad_norm))
        flat_step(trainer, net, x, data.target)
    assert_same_weights(net, ref)
    if max_grad_norm is not None:
        assert min(norms) > 2 * max_grad_norm  # clipping really was active every step
    moved = [not torch.equal(start[k], v) for k, v in net.state_dict().items()]
    assert all(moved)
    for layer, (wm, bm) in zip(linears(net), net.effective_masks(), strict=True):
        assert torch.all(layer.weight[wm == 0] == 0)
        if bm is not None:
            assert torch.all(layer.bias[bm == 0] == 0)
    if mask != "none":
        assert any(bool((wm == 0).any()) for wm, _ in net.effective_masks())


def test_step_trains_several_nets_in_one_buffer() -> None:
    actor, critic = seeded("relu", 0), seeded("relu", 1, [5, 8, 1])
    ref_actor, ref_critic = copy.deepcopy(actor), copy.deepcopy(critic)
    opt = torch.optim.Adam([*ref_actor.parameters(), *ref_critic.parameters()], lr=1e-2)
    trainer = FlatTrainer([actor, critic], lr=1e-2, max_grad_norm=0.1)
    data = Batches()
    value_target = data.target[:, :1]
    for x in data.xs[:3]:
        opt.zero_grad()
        (F.mse_loss(ref_actor(x), data.target) + F.mse_loss(ref_critic(x), value_target)).backward()
        torch.nn.utils.clip_grad_norm_([*ref_actor.parameters(), *ref_critic.parameters()], 0.1)
        opt.step()
        a_out = trainer[actor].forward(x, record=True)
        c_out = trainer[critic].forward(x, record=True)
        trainer.step({actor: mse_d_out(a_out, data.target), critic: mse_d_out(c_out, value_target)},
                     what="test loss")
    assert_same_weights(actor, ref_actor)
    assert_same_weights(critic, ref_critic)


def test_extra_parameter_is_updated_like_adam() -> None:
    net = seeded("relu")
    log_std = nn.Parameter(torch.full((SIZES[-1],), -0.5))
    ref, ref_log_std = copy.deepcopy(net), nn.Parameter(log_std.detach().clone())
    opt = torch.optim.Adam([*ref.parameters(), ref_log_std], lr=1e-2, eps=1e-5)
    trainer = FlatTrainer([net], [log_std], lr=1e-2, eps=1e-5, max_grad_norm=0.5)
    pull = torch.tensor([1.0, -2.0, 0.5])

    def extra_loss(s: torch.Tensor) -> torch.Tensor:
        return (pull * s).sum() + (s * s).sum()

    data = Batches()
    start = log_std.detach().clone()
    for x in data.xs[:4]:
        opt.zero_grad()
        (F.mse_loss(ref(x), data.target) + extra_loss(ref_log_std)).backward()
        torch.nn.utils.clip_grad_norm_([*ref.parameters(), ref_log_std], 0.5)
        opt.step()
        out = trainer[net].forward(x, record=True)
        extra_grad = (pull + 2 * log_std.detach()).numpy()  # d extra_loss / d log_std
        trainer.step({net: mse_d_out(out, data.target)}, what="test loss",
                     extra={log_std: extra_grad})
    torch.testing.assert_close(log_std.detach(), ref_log_std.detach(), rtol=0, atol=ATOL)
    assert not torch.equal(log_std.detach(), start)
    assert_same_weights(net, ref)


def test_extra_parameter_without_a_gradient_stays() -> None:
    net = seeded("relu")
    log_std = nn.Parameter(torch.zeros(SIZES[-1]))
    trainer = FlatTrainer([net], [log_std], lr=1e-2)
    before = snapshot(net)
    data = Batches()
    flat_step(trainer, net, data.xs[0], data.target)
    assert torch.equal(log_std.detach(), torch.zeros(SIZES[-1]))
    assert not torch.equal(before["layers.0.weight"], net.state_dict()["layers.0.weight"])


def l1_penalty(coef: float) -> Callable[[MLP], torch.Tensor]:
    def penalty(net: MLP) -> torch.Tensor:
        return coef * sum((layer.weight.abs().sum() for layer in linears(net)),
                          torch.zeros(()))
    return penalty


def test_l1_penalty_adds_coef_times_sign_to_the_gradient() -> None:
    coef = 0.01
    net = seeded("elu")
    net.set_mask("layers.1", torch.rand(SIZES[2], SIZES[1],
                                        generator=torch.Generator().manual_seed(0)) > 0.3)
    ref = copy.deepcopy(net)
    trainer = FlatTrainer([net], lr=1e-3)
    data = Batches()
    weights_before = [layer.weight.detach().clone() for layer in linears(net)]
    loss_grads = torch.autograd.grad(F.mse_loss(ref(data.xs[0]), data.target),
                                     [layer.weight for layer in linears(ref)])
    flat_step(trainer, net, data.xs[0], data.target, penalty=l1_penalty(coef))
    for layer, w, g in zip(linears(net), weights_before, loss_grads, strict=True):
        assert layer.weight.grad is not None
        torch.testing.assert_close(layer.weight.grad, g + coef * torch.sign(w),
                                   rtol=1e-5, atol=ATOL)


@pytest.mark.parametrize("max_grad_norm", [None, 0.05])
def test_penalty_steps_match_adam(max_grad_norm: float | None) -> None:
    penalty = l1_penalty(0.01)
    net = seeded("silu")
    ref = copy.deepcopy(net)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    trainer = FlatTrainer([net], lr=1e-2, max_grad_norm=max_grad_norm)
    data = Batches()
    for x in data.xs[:4]:
        ref_step(ref, opt, x, data.target, max_grad_norm=max_grad_norm, penalty=penalty)
        flat_step(trainer, net, x, data.target, penalty=penalty)
    assert_same_weights(net, ref)


def test_penalty_returning_none_adds_nothing() -> None:
    net = seeded("relu")
    ref = copy.deepcopy(net)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    trainer = FlatTrainer([net], lr=1e-2)
    data = Batches()
    ref_step(ref, opt, data.xs[0], data.target)
    flat_step(trainer, net, data.xs[0], data.target, penalty=lambda _: None)
    assert_same_weights(net, ref)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_gradient_raises_and_leaves_weights(bad: float) -> None:
    net = seeded("relu")
    ref = copy.deepcopy(net)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    trainer = FlatTrainer([net], lr=1e-2, max_grad_norm=0.5)
    before = snapshot(net)
    data = Batches()
    out = trainer[net].forward(data.xs[0], record=True)
    d_out = mse_d_out(out, data.target)
    d_out[3, 1] = bad
    with pytest.raises(FloatingPointError, match="test loss"):
        trainer.step({net: d_out}, what="test loss")
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the failed step left no trace in Adam's state: the next step is Adam's first step
    ref_step(ref, opt, data.xs[1], data.target, max_grad_norm=0.5)
    flat_step(trainer, net, data.xs[1], data.target)
    assert_same_weights(net, ref)


def test_non_finite_extra_gradient_raises() -> None:
    net = seeded("relu")
    log_std = nn.Parameter(torch.zeros(SIZES[-1]))
    trainer = FlatTrainer([net], [log_std], lr=1e-2)
    before = snapshot(net)
    data = Batches()
    out = trainer[net].forward(data.xs[0], record=True)
    with pytest.raises(FloatingPointError):
        trainer.step({net: mse_d_out(out, data.target)}, what="test loss",
                     extra={log_std: np.array([0.0, np.nan, 0.0], np.float32)})
    assert torch.equal(log_std.detach(), torch.zeros(SIZES[-1]))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_unsupported_activation_is_refused() -> None:
    net = seeded("relu")
    net.activation = "softsign"  # not in the one activation registry
    with pytest.raises(ValueError, match="agent.activation: unknown activation 'softsign'"):
        FlatTrainer([net], lr=1e-3)


# --- the nn.Module interface keeps working -------------------------------------------------

def test_state_dict_round_trip_through_the_buffer() -> None:
    net = seeded("tanh")
    original = snapshot(net)
    trainer = FlatTrainer([net], lr=1e-2)
    assert all(torch.equal(original[k], v) for k, v in net.state_dict().items())
    x = torch.randn(4, SIZES[0])

    other = seeded("tanh", seed=5)
    net.load_state_dict(other.state_dict())
    expected = other(x).detach()
    torch.testing.assert_close(trainer[net].forward(x), expected, rtol=1e-6, atol=ATOL)
    torch.testing.assert_close(net(x).detach(), expected, rtol=1e-6, atol=ATOL)
    np.testing.assert_allclose(trainer[net].act_forward(x.numpy()), expected.numpy(),
                               rtol=1e-5, atol=1e-5)

    # a step after loading starts from the loaded weights, and state_dict shows its result
    ref = copy.deepcopy(other)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    data = Batches()
    ref_step(ref, opt, data.xs[0], data.target)
    flat_step(trainer, net, data.xs[0], data.target)
    assert_same_weights(net, ref)
    reloaded = seeded("tanh", seed=9)
    reloaded.load_state_dict(net.state_dict())
    torch.testing.assert_close(reloaded(x), trainer[net].forward(x), rtol=1e-6, atol=ATOL)


def test_second_trainer_over_the_same_net_is_reclaimed() -> None:
    net = seeded("relu")
    ref = copy.deepcopy(net)
    opt_a = torch.optim.Adam(ref.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(ref.parameters(), lr=1e-2)
    trainer_a = FlatTrainer([net], lr=1e-2)
    data = Batches()
    x = data.xs[5]

    ref_step(ref, opt_a, data.xs[0], data.target)
    flat_step(trainer_a, net, data.xs[0], data.target)
    trainer_b = FlatTrainer([net], lr=1e-2)  # e.g. distillation's, over the same policy
    ref_step(ref, opt_b, data.xs[1], data.target)
    flat_step(trainer_b, net, data.xs[1], data.target)
    assert_same_weights(net, ref)

    before = snapshot(net)
    torch.testing.assert_close(trainer_a[net].forward(x), net(x).detach(), rtol=0, atol=0)
    ref_step(ref, opt_a, data.xs[2], data.target)  # A's Adam state carries on
    flat_step(trainer_a, net, data.xs[2], data.target)
    after = net.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    assert_same_weights(net, ref)
    torch.testing.assert_close(trainer_a[net].forward(x), net(x).detach(), rtol=0, atol=0)
    np.testing.assert_allclose(trainer_a[net].act_forward(x.numpy()), net(x).detach().numpy(),
                               rtol=1e-5, atol=1e-5)

    # and back to B
    ref_step(ref, opt_b, data.xs[3], data.target)
    flat_step(trainer_b, net, data.xs[3], data.target)
    assert_same_weights(net, ref)
    torch.testing.assert_close(trainer_b[net].forward(x), net(x).detach(), rtol=0, atol=0)


# --- acting --------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", activations.names())
@pytest.mark.parametrize("rows", [1, 6])
def test_act_forward_matches_forward(activation: str, rows: int) -> None:
    net = seeded(activation)
    trainer = FlatTrainer([net], lr=1e-2)
    data = Batches()
    flat_step(trainer, net, data.xs[0], data.target)  # acting sees the updated weights
    obs = np.random.default_rng(0).standard_normal((rows, SIZES[0])).astype(np.float32)
    obs_copy = obs.copy()
    got = trainer[net].act_forward(obs)
    expected = trainer[net].forward(torch.from_numpy(obs_copy)).numpy()
    assert got.shape == (rows, SIZES[-1])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, net(torch.from_numpy(obs_copy)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(obs, obs_copy)  # the observations are not overwritten


def test_second_trainer_over_a_later_net_is_reclaimed() -> None:
    actor, critic = seeded("relu", 0), seeded("relu", 1, [5, 8, 1])
    trainer_a = FlatTrainer([actor, critic], lr=1e-2)
    trainer_b = FlatTrainer([critic], lr=1e-2)
    data = Batches()
    value_target = data.target[:, :1]
    flat_step(trainer_b, critic, data.xs[0], value_target)
    before = snapshot(critic)
    a_out = trainer_a[actor].forward(data.xs[1], record=True)
    c_out = trainer_a[critic].forward(data.xs[1], record=True)
    trainer_a.step({actor: mse_d_out(a_out, data.target),
                    critic: mse_d_out(c_out, value_target)}, what="test loss")
    after = critic.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)


def test_trainer_flushes_denormals_so_decayed_adam_moments_become_zero() -> None:
    # a parameter whose gradient stays 0 (a dead ReLU unit) has exp_avg *= 0.9 per step: it
    # reaches denormal floats after ~800 steps, which x86 computes ~100x slower
    torch.set_flush_denormal(False)
    tiny = torch.tensor([1e-37])
    assert (tiny * 0.01).item() > 0  # a denormal, as without the trainer
    FlatTrainer([MLP([2, 3, 1])], lr=1e-3)
    try:
        assert (tiny * 0.01).item() == 0.0
    finally:
        torch.set_flush_denormal(False)


def test_moments_are_views_of_adams_state_and_steps_are_counted() -> None:
    from nas_prune.rl.optim.flatnet import gradient_steps_taken

    net = seeded()
    ref = copy.deepcopy(net)
    trainer = FlatTrainer([net], lr=1e-2)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    batches = Batches()
    before = gradient_steps_taken()
    for x in batches.xs[:3]:
        flat_step(trainer, net, x, batches.target)
        opt.zero_grad()
        F.mse_loss(ref(x), batches.target).backward()
        opt.step()
    assert gradient_steps_taken() - before == 3
    for p, q in zip(net.parameters(), ref.parameters()):
        m1, m2 = trainer.moments(p)
        torch.testing.assert_close(m1, opt.state[q]["exp_avg"], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(m2, opt.state[q]["exp_avg_sq"], rtol=1e-5, atol=1e-9)
        m1.zero_()  # a view: writing it writes the trainer's state
    assert all(float(trainer.moments(p)[0].abs().sum()) == 0 for p in net.parameters())


def test_hook_sees_the_gradient_before_the_update_and_runs_after_it() -> None:
    net = seeded()
    trainer = FlatTrainer([net], lr=1e-2)
    seen: list[str] = []

    class Hook:
        def before_update(self, t: FlatTrainer) -> None:
            seen.append(f"before {float(t.grad.abs().sum()) > 0}")
            t.grad.zero_()  # a zero gradient: Adam moves nothing

        def after_update(self, t: FlatTrainer) -> None:
            seen.append("after")

    trainer.hook = Hook()
    start = snapshot(net)
    batches = Batches()
    flat_step(trainer, net, batches.xs[0], batches.target)
    assert seen == ["before True", "after"]
    assert all(torch.equal(v, start[k]) for k, v in snapshot(net).items())


# --- a CNN through autograd, directly and through a device mirror ---------------------------

def _cnn(seed: int = 0) -> CNN:
    torch.manual_seed(seed)
    return CNN((2, 6, 5), [4, 3], [3, 2], [1, 2], [8], 3)


def test_cnn_device_mirror_trains_exactly_like_the_direct_path() -> None:
    # The path a CUDA device takes (weights copied into a mirror per forward, gradients
    # copied back), run on the CPU: the same weights bit for bit, masks kept, and the
    # mirror follows weights changed outside training (a target sync, a mask, a load).
    direct, mirrored = _cnn(), _cnn()
    for net in (direct, mirrored):
        net.set_mask("convs.0", (torch.arange(4 * 2 * 9).reshape(4, 2, 3, 3) % 3 != 0).float())
    trainer_a = FlatTrainer([direct], lr=1e-2, max_grad_norm=0.5)
    trainer_b = FlatTrainer([mirrored], lr=1e-2, max_grad_norm=0.5)
    trainer_a.mlps[id(direct)] = AutogradNet(direct)
    trainer_b.mlps[id(mirrored)] = AutogradNet(mirrored, mirror=True)
    gen = torch.Generator().manual_seed(3)
    for i in range(5):
        x, target = torch.randn(7, 60, generator=gen), torch.randn(5, 3, generator=gen)
        for trainer, net in ((trainer_a, direct), (trainer_b, mirrored)):
            out = trainer[net].forward(x, record=True)
            trainer.step({net: mse_d_out(out[:5], target)}, what="test loss")
        if i == 2:  # a weight changed between steps reaches the mirror
            for net in (direct, mirrored):
                with torch.no_grad():
                    net.fc[0].weight.mul_(0.5)
    mirror = cast(AutogradNet, trainer_b[mirrored])._mirror  # noqa: SLF001
    assert mirror is not None and mirror is not mirrored
    for key, value in direct.state_dict().items():
        assert torch.equal(mirrored.state_dict()[key], value), key
    assert bool((mirrored.convs[0].weight[direct.effective_masks()[0][0] == 0] == 0).all())
    x = torch.randn(4, 60, generator=gen)
    assert torch.equal(trainer_b[mirrored].forward(x), trainer_a[direct].forward(x))


def test_fast_net_puts_only_cnns_on_the_device() -> None:
    assert isinstance(fast_net(MLP([3, 4, 2]), "cuda"), FlatMLP)
    assert isinstance(fast_net(_cnn(), "cpu"), FlatCNN)
    cnn = fast_net(_cnn(), "cuda")
    assert isinstance(cnn, AutogradNet) and cnn.device.type == "cuda"
