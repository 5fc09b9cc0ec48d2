"""The hand-written loss gradients of ``nas_prune.losses`` against autograd on the torch
formulas the agents used before (written out here independently of the module)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Normal

from nas_prune.rl.optim.losses import (
    cross_entropy_grad,
    huber_q_grad,
    kl_grad,
    log_softmax,
    mse_grad,
    normalized,
    ppo_categorical_grad,
    ppo_gaussian_grad,
    surrogate_grad,
)

RTOL, ATOL = 1e-5, 1e-6
BATCH = 64


def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def randn(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def assert_close(got: np.ndarray, expected: torch.Tensor, *, atol: float = ATOL) -> None:
    assert got.shape == tuple(expected.shape)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=RTOL, atol=atol)


def ppo_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor,
                  clip: float) -> torch.Tensor:
    """PPO's clipped surrogate loss, as the agents wrote it in torch."""
    ratio = (logp - old_logp).exp()
    return -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()


def assert_ratios_both_sides(logp: np.ndarray, old_logp: np.ndarray, clip: float) -> None:
    # the test only means something when some ratios are clipped and some are not
    ratio = np.exp(logp - old_logp)
    outside = (ratio < 1 - clip) | (ratio > 1 + clip)
    assert outside.sum() >= 5 and (~outside).sum() >= 5


def ppo_batch(rng: np.random.Generator, logp: np.ndarray, actions: np.ndarray
              ) -> dict[str, np.ndarray]:
    """A minibatch whose old log-probabilities differ enough from ``logp`` that ratios land
    both inside and outside the clip range; advantages of both signs."""
    old = (logp + randn(rng, len(logp), scale=0.4)).astype(np.float32)
    return {"actions": actions, "logps": old, "adv": randn(rng, len(logp))}


# --- DQN ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_huber_q_grad(seed: int) -> None:
    rng = rng_for(seed)
    q_all = randn(rng, BATCH, 4, scale=2.0)
    action = rng.integers(0, 4, BATCH)
    # errors both inside (quadratic) and outside (linear) the Huber threshold of 1
    target = (q_all[np.arange(BATCH), action] + randn(rng, BATCH, scale=2.0)).astype(np.float32)
    err = np.abs(q_all[np.arange(BATCH), action] - target)
    assert (err < 1).sum() >= 5 and (err > 1).sum() >= 5

    q = torch.tensor(q_all, requires_grad=True)
    a = torch.as_tensor(action)
    loss = F.smooth_l1_loss(q.gather(1, a[:, None]).squeeze(1), torch.as_tensor(target))
    (expected,) = torch.autograd.grad(loss, q)
    assert_close(huber_q_grad(q_all, action, target), expected)


# --- PPO ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("clip", [0.1, 0.2, 0.3])
def test_surrogate_grad(seed: int, clip: float) -> None:
    rng = rng_for(seed)
    logp_np = randn(rng, BATCH, scale=0.5) - 1.0
    mb = ppo_batch(rng, logp_np, np.zeros(BATCH, np.int64))
    assert_ratios_both_sides(logp_np, mb["logps"], clip)

    logp = torch.tensor(logp_np, requires_grad=True)
    loss = ppo_surrogate(logp, torch.as_tensor(mb["logps"]), torch.as_tensor(mb["adv"]), clip)
    (expected,) = torch.autograd.grad(loss, logp)
    got = surrogate_grad(logp_np, mb, clip)
    assert_close(got, expected)
    assert (got == 0).any() and (got != 0).any()  # clipped rows carry no gradient


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("clip", [0.1, 0.2])
@pytest.mark.parametrize("ent_coef", [0.0, 0.01])
def test_ppo_categorical_grad(seed: int, clip: float, ent_coef: float) -> None:
    rng = rng_for(seed)
    logits_np = randn(rng, BATCH, 5, scale=1.5)
    actions = rng.integers(0, 5, BATCH)
    logp_np = log_softmax(logits_np)[np.arange(BATCH), actions]
    mb = ppo_batch(rng, logp_np, actions)
    assert_ratios_both_sides(logp_np, mb["logps"], clip)

    logits = torch.tensor(logits_np, requires_grad=True)
    dist = Categorical(logits=logits)
    loss = ppo_surrogate(dist.log_prob(torch.as_tensor(actions)), torch.as_tensor(mb["logps"]),
                         torch.as_tensor(mb["adv"]), clip) - ent_coef * dist.entropy().mean()
    (expected,) = torch.autograd.grad(loss, logits)
    assert_close(ppo_categorical_grad(logits_np, mb, clip=clip, ent_coef=ent_coef), expected)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("clip", [0.1, 0.2])
@pytest.mark.parametrize("ent_coef", [0.0, 0.01])
def test_ppo_gaussian_grad(seed: int, clip: float, ent_coef: float) -> None:
    rng = rng_for(seed)
    n_act = 3
    mean_np = randn(rng, BATCH, n_act)
    log_std_np = randn(rng, n_act, scale=0.3) - 0.5
    actions = (mean_np + np.exp(log_std_np) * randn(rng, BATCH, n_act)).astype(np.float32)
    mean = torch.tensor(mean_np, requires_grad=True)
    log_std = torch.tensor(log_std_np, requires_grad=True)
    dist = Normal(mean, log_std.exp())
    logp = dist.log_prob(torch.as_tensor(actions)).sum(-1)
    mb = ppo_batch(rng, logp.detach().numpy(), actions)
    assert_ratios_both_sides(logp.detach().numpy(), mb["logps"], clip)

    loss = ppo_surrogate(logp, torch.as_tensor(mb["logps"]), torch.as_tensor(mb["adv"]),
                         clip) - ent_coef * dist.entropy().sum(-1).mean()
    exp_mean, exp_log_std = torch.autograd.grad(loss, [mean, log_std])
    d_mean, d_log_std = ppo_gaussian_grad(mean_np, log_std_np, mb, clip=clip,
                                          ent_coef=ent_coef)
    assert_close(d_mean, exp_mean)
    # d_log_std sums BATCH terms of order 1/BATCH: float32 summation error ~1e-6
    assert_close(d_log_std, exp_log_std, atol=5e-6)


# --- advantages ----------------------------------------------------------------------------

@pytest.mark.parametrize(("seed", "n"), [(0, 2), (1, 7), (2, 64), (3, 500)])
def test_normalized_matches_torch(seed: int, n: int) -> None:
    rng = rng_for(seed)
    adv = randn(rng, n, scale=3.0) + 1.5
    a = torch.as_tensor(adv)
    expected = (a - a.mean()) / (a.std() + 1e-8)
    got = normalized(adv)
    assert_close(got, expected)
    assert abs(float(got.mean())) < 1e-5 and abs(float(got.std(ddof=1)) - 1) < 1e-4


def test_normalized_single_row_is_unchanged() -> None:
    adv = np.array([2.5], np.float32)
    np.testing.assert_array_equal(normalized(adv), adv)


# --- value loss and distillation ------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("shape", "coef"), [((BATCH, 1), 0.5), ((BATCH, 3), 1.0), ((9,), 2.0)])
def test_mse_grad(seed: int, shape: tuple[int, ...], coef: float) -> None:
    rng = rng_for(seed)
    out_np, target = randn(rng, *shape), randn(rng, *shape)
    out = torch.tensor(out_np, requires_grad=True)
    (expected,) = torch.autograd.grad(coef * F.mse_loss(out, torch.as_tensor(target)), out)
    assert_close(mse_grad(out_np, target, coef=coef), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_entropy_grad(seed: int) -> None:
    rng = rng_for(seed)
    logits_np = randn(rng, BATCH, 6, scale=2.0)
    labels = rng.integers(0, 6, BATCH)
    logits = torch.tensor(logits_np, requires_grad=True)
    (expected,) = torch.autograd.grad(F.cross_entropy(logits, torch.as_tensor(labels)), logits)
    assert_close(cross_entropy_grad(logits_np, labels), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_grad(seed: int) -> None:
    rng = rng_for(seed)
    student_np, teacher_np = randn(rng, BATCH, 4, scale=2.0), randn(rng, BATCH, 4, scale=2.0)
    student = torch.tensor(student_np, requires_grad=True)
    loss = F.kl_div(F.log_softmax(student, -1), F.log_softmax(torch.as_tensor(teacher_np), -1),
                    log_target=True, reduction="batchmean")
    (expected,) = torch.autograd.grad(loss, student)
    assert_close(kl_grad(student_np, teacher_np), expected)


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_log_softmax_matches_torch(scale: float) -> None:
    # large logits check the max-shift: a naive exp would overflow float32
    logits = randn(rng_for(0), 8, 5, scale=scale)
    assert_close(log_softmax(logits), F.log_softmax(torch.as_tensor(logits), -1))
