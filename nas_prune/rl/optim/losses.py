"""The gradients of the agents' losses with respect to the network outputs, by hand.

Training needs no autograd graph this way (see ``nas_prune.flatnet``). The arrays are small
(batch × actions), so this is numpy: a numpy call costs ~1-2 us against ~5-20 us for a
torch op on these CPUs, and a training step makes dozens. Each function names the loss it
differentiates; ``tests/rl/optim/test_losses.py`` checks every one against autograd on the torch
formula. Batch means divide by the batch size ``B``; arrays are float32.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Array", "LOG_2PI", "LOG_STD_MAX", "LOG_STD_MIN", "cross_entropy_grad", "huber_q_grad",
           "kl_grad", "log_softmax", "mse_grad", "normalized", "ppo_categorical_grad",
           "ppo_gaussian_grad", "sac_actor_grad", "squashed_mse_grad", "squashed_sample",
           "surrogate_grad"]

Array = np.ndarray
LOG_2PI = math.log(2 * math.pi)


def huber_q_grad(q_all: Array, action: Array, target: Array) -> Array:
    """d/d q_all of DQN's loss ``smooth_l1_loss(q_all[range(B), action], target)`` (beta 1,
    batch mean)."""
    rows = np.arange(len(q_all))
    d_q = np.zeros_like(q_all)
    d_q[rows, action] = np.clip(q_all[rows, action] - target, -1.0, 1.0) / len(q_all)
    return d_q


def log_softmax(logits: Array) -> Array:
    """log softmax over the last axis."""
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def ppo_categorical_grad(logits: Array, mb: dict[str, Array], *, clip: float,
                         ent_coef: float) -> Array:
    """d/d logits of PPO's clipped surrogate loss minus ``ent_coef`` × mean entropy, for a
    Categorical policy; ``mb`` holds ``actions``, ``logps`` (at collection) and ``adv``."""
    rows = np.arange(len(logits))
    logp_all = log_softmax(logits)
    p = np.exp(logp_all)
    d_logp = surrogate_grad(logp_all[rows, mb["actions"]], mb, clip)
    # d logp(a) / d logit_j = 1[j = a] - p_j
    d_logits = p * -d_logp[:, None]
    d_logits[rows, mb["actions"]] += d_logp
    if ent_coef:
        entropy = -(p * logp_all).sum(-1, keepdims=True)
        # d entropy / d logit_j = -p_j (log p_j + entropy)
        d_logits += (ent_coef / len(logits)) * p * (logp_all + entropy)
    return d_logits


def ppo_gaussian_grad(mean: Array, log_std: Array, mb: dict[str, Array], *, clip: float,
                      ent_coef: float) -> tuple[Array, Array]:
    """(d/d mean, d/d log_std) of PPO's clipped surrogate loss minus ``ent_coef`` × mean
    entropy, for a diagonal Gaussian policy with a state-independent ``log_std``."""
    inv_var = np.exp(-2 * log_std)
    dev = mb["actions"] - mean
    z2 = dev * dev * inv_var
    logp = (-0.5 * z2 - log_std - 0.5 * LOG_2PI).sum(-1)
    d_logp = surrogate_grad(logp, mb, clip)[:, None]
    d_mean = dev * inv_var * d_logp
    # entropy = sum(0.5 + 0.5 log(2 pi) + log_std): d/d log_std = 1 for every state
    d_log_std = ((z2 - 1) * d_logp).sum(0) - ent_coef
    return d_mean, d_log_std.astype(np.float32)


def surrogate_grad(logp: Array, mb: dict[str, Array], clip: float) -> Array:
    """d/d logp of PPO's ``-mean(min(r A, clip(r) A))``, r = exp(logp - logp_old).

    Where the clipped term is the smaller, r lies outside the clip range (clip's gradient
    is 0) or the two terms are equal; so the gradient flows through r A alone, where
    r A <= clip(r) A: d/d logp = -r A / B there.
    """
    adv = mb["adv"]
    ratio = np.exp(logp - mb["logps"])
    surr = ratio * adv
    clipped = np.clip(ratio, 1 - clip, 1 + clip) * adv
    return np.where(surr <= clipped, surr * (-1.0 / len(logp)), 0.0).astype(np.float32)


def normalized(adv: Array) -> Array:
    """Advantages scaled to mean 0, std 1 (std with Bessel's correction, as torch.std)."""
    if len(adv) < 2:
        return adv
    return ((adv - adv.mean()) / (adv.std(ddof=1) + 1e-8)).astype(np.float32)


def mse_grad(out: Array, target: Array, *, coef: float = 1.0) -> Array:
    """d/d out of ``coef * mse_loss(out, target)`` (mean over all elements)."""
    return (out - target) * (2.0 * coef / out.size)


def cross_entropy_grad(logits: Array, labels: Array) -> Array:
    """d/d logits of ``cross_entropy(logits, labels)`` (batch mean)."""
    p = np.exp(log_softmax(logits))
    p[np.arange(len(p)), labels] -= 1.0
    return p / len(logits)


def kl_grad(student_logits: Array, teacher_logits: Array) -> Array:
    """d/d student_logits of KL(teacher || student) between Categorical distributions
    (batch mean): softmax(student) - softmax(teacher), over B."""
    diff = np.exp(log_softmax(student_logits)) - np.exp(log_softmax(teacher_logits))
    return diff / len(student_logits)


# SAC's log-std clamp (SB3's LOG_STD_MIN / LOG_STD_MAX) and the epsilon inside its tanh
# correction log(1 - tanh(u)^2 + 1e-6)
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
SQUASH_EPS = 1e-6


def squashed_sample(out: Array, noise: Array) -> tuple[Array, Array]:
    """A reparameterised draw from SAC's tanh-squashed diagonal Gaussian and its log-density.

    ``out``: the actor's output, mean in the first ``A`` columns and log-std (clamped to
    [LOG_STD_MIN, LOG_STD_MAX]) in the last ``A``; ``noise``: standard normal, ``B × A``.
    Returns (action in (-1, 1), log-probability per row), the density by the change of
    variables a = tanh(u): log N(u) - sum log(1 - a^2 + 1e-6), as SB3 computes it.
    """
    n = noise.shape[1]
    log_std = np.clip(out[:, n:], LOG_STD_MIN, LOG_STD_MAX)
    action = np.tanh(out[:, :n] + np.exp(log_std) * noise)
    logp = (-0.5 * noise * noise - log_std - 0.5 * LOG_2PI
            - np.log(1.0 - action * action + SQUASH_EPS)).sum(-1)
    return action, logp.astype(np.float32)


def sac_actor_grad(out: Array, noise: Array, action: Array, d_q: Array, *,
                   alpha: float) -> Array:
    """d/d out of SAC's actor loss ``mean(alpha * logp(a) - min_i Q_i(s, a))``, a drawn by
    ``squashed_sample(out, noise)`` (reparameterised: ``noise`` fixed).

    ``d_q``: d min_i Q_i(s, a) / d a per row (from the critics). With u = mean + std *
    noise and a = tanh(u): da/du = 1 - a^2, d logp/du = 2a (1 - a^2) / (1 - a^2 + 1e-6),
    d u/d mean = 1, d u/d log_std = std * noise, and logp has a -log_std term; the clamp
    passes no gradient outside its range.
    """
    n, rows = noise.shape[1], len(out)
    raw = out[:, n:]
    log_std = np.clip(raw, LOG_STD_MIN, LOG_STD_MAX)
    one_minus = 1.0 - action * action
    d_u = (alpha * 2.0 * action * one_minus / (one_minus + SQUASH_EPS) - d_q * one_minus) / rows
    inside = (raw >= LOG_STD_MIN) & (raw <= LOG_STD_MAX)
    d_log_std = (d_u * np.exp(log_std) * noise - alpha / rows) * inside
    return np.concatenate([d_u, d_log_std], 1).astype(np.float32)


def squashed_mse_grad(student: Array, teacher: Array) -> Array:
    """d/d student of ``mse(tanh(student_mean), tanh(teacher_mean))`` (mean over all action
    elements) for SAC actor outputs (mean columns first, half of each row); the log-std
    columns get no gradient."""
    n = student.shape[1] // 2
    a_s, a_t = np.tanh(student[:, :n]), np.tanh(teacher[:, :n])
    d_mean = (a_s - a_t) * (1.0 - a_s * a_s) * (2.0 / a_s.size)
    return np.concatenate([d_mean, np.zeros_like(d_mean)], 1).astype(np.float32)
