"""Running observation normalisation and reward scaling (SB3's ``VecNormalize``).

``ObsNorm`` is a network's input stage: ``clip((x - mean) / sqrt(var + eps), -clip, clip)``
with the running mean and variance as buffers. It sits inside the policy network
(``PrunableNet.obs_norm``), so everything that runs or saves the policy (evaluation,
``rl.heads.act``, the fast training path, ``policy.safetensors`` / ``policy.json``, ONNX,
int8, latency, surgery's copies, the dense cache through ``state_dict``) applies the same
statistics without knowing about them: there is one copy, the policy's buffers. It has no
parameters: pruning and ``pruning.counting`` do not see it (its ``2 n_obs + 1`` numbers are
in the deployed file's ``bytes``, not in ``params``).

How an agent adopts it (PPO does; ``rl.agents.ppo``):

1. ``attach_obs_norm(policy, n_obs)`` when ``hyper.normalize_obs`` (before building its trainer).
2. ``policy.obs_norm.update(obs)`` with observations it collects while training; a frozen
   stage ignores updates. PPO updates after each rollout's gradient epochs, so the
   probability ratio of one iteration starts at 1 (the rollout was acted on with the same
   statistics).
3. Training-only networks that read observations (critics) get ``normalize(obs)`` of the
   policy's stage; the policy itself normalises inside its forward (``FlatMLP`` included).
4. ``freeze_obs_norm(policy)`` in ``Agent.begin_finetune``: the statistics are fixed while
   the policy is pruned, fine-tuned, distilled and evaluated, and copies made from then on
   (the teacher, a shrunk policy) are frozen too.

``RewardScaler`` divides rewards by the running std of the discounted return (SB3's
``norm_reward``), for training only; its statistics are in the agent's ``state_tensors``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["CLIP", "EPS", "ObsNorm", "RewardScaler", "RunningMeanStd", "attach_obs_norm",
           "freeze_obs_norm", "is_statistic"]

Tensor = torch.Tensor
# SB3 VecNormalize's defaults (clip_obs, clip_reward, epsilon); rl-zoo keeps them for MuJoCo
CLIP = 10.0
EPS = 1e-8


def is_statistic(key: str) -> bool:
    """Whether a state-tensor key (``actor.obs_norm.mean``, ``reward_norm.var``) names a
    normalisation statistic rather than a parameter (``params_training_only`` skips them)."""
    return "obs_norm." in key or key.startswith("reward_norm.")


class RunningMeanStd(nn.Module):
    """Mean and (population) variance of every sample seen, as buffers.

    Batches are merged with Chan et al.'s parallel update (SB3's ``RunningMeanStd``),
    computed in float64 and stored as float32 (``mean``, ``var``: what a forward uses,
    exported as they are) with the float64 ``count``. Before the first update the stats are
    (0, 1): the identity. ``frozen``: updates are ignored (copied along by deepcopy).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.frozen = False

    mean: Tensor
    var: Tensor
    count: Tensor

    def update(self, batch: np.ndarray) -> None:
        """Merge a batch of samples (rows; the trailing dims are the stats' shape)."""
        if self.frozen:
            return
        x = np.asarray(batch, dtype=np.float64).reshape(-1, *self.mean.shape)
        n = len(x)
        if n == 0:
            return
        # written through numpy views of the buffers: torch's per-op overhead made this
        # 84 us per call, which reward scaling pays every env step
        mean_v, var_v, count_v = self.mean.numpy(), self.var.numpy(), self.count.numpy()
        b_mean = x.sum(0) / n  # np.mean / np.var cost ~10 us each on a few rows
        dev = x - b_mean
        b_var = (dev * dev).sum(0) / n
        count = float(count_v)
        if count == 0:
            mean, var = b_mean, b_var
        else:
            delta, total = b_mean - mean_v, count + n
            mean = mean_v + delta * n / total
            var = (var_v * count + b_var * n + delta * delta * count * n / total) / total
        mean_v[...], var_v[...], count_v[...] = mean, var, count + n


class ObsNorm(RunningMeanStd):
    """The input stage ``clip((x - mean) / sqrt(var + eps), -clip, clip)`` over flat
    observations of ``n_obs`` numbers (its JSON form: ``spec``)."""

    def __init__(self, n_obs: int, *, clip: float = CLIP, eps: float = EPS) -> None:
        super().__init__((n_obs,))
        self.clip, self.eps = float(clip), float(eps)

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp((x - self.mean) / torch.sqrt(self.var + self.eps),
                           -self.clip, self.clip)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """The same transform on float32 numpy rows (acting, a critic's input)."""
        scale = np.sqrt(self.var.numpy() + np.float32(self.eps))
        out = (x - self.mean.numpy()) / scale
        return np.clip(out, -self.clip, self.clip, out=out).astype(np.float32, copy=False)

    def spec(self) -> dict[str, object]:
        """What ``policy.json`` records: clip, eps and the statistics (the safetensors file
        holds the same numbers as ``obs_norm.mean`` / ``obs_norm.var``)."""
        return {"clip": self.clip, "eps": self.eps, "count": float(self.count),
                "mean": self.mean.tolist(), "var": self.var.tolist()}


def attach_obs_norm(net: nn.Module, n_obs: int) -> ObsNorm:
    """Give a ``PrunableNet`` an input stage over its ``n_obs`` flat inputs; return it."""
    norm = ObsNorm(n_obs)
    net.obs_norm = norm
    return norm


def freeze_obs_norm(net: nn.Module) -> None:
    """Fix ``net``'s observation statistics (nothing without an input stage)."""
    norm = getattr(net, "obs_norm", None)
    if norm is not None:
        norm.frozen = True


class RewardScaler:
    """Reward / sqrt(var of the discounted return + eps), clipped to +-``clip`` (SB3's
    ``norm_reward``): per env the return ``ret = gamma * ret + r`` restarts at each
    episode's end, and its running variance (``stats``) scales the rewards.

    Args:
        n_envs: parallel envs (one running return each).
        gamma: the agent's discount.
    """

    def __init__(self, n_envs: int, gamma: float, *, clip: float = CLIP) -> None:
        self.stats = RunningMeanStd(())
        self.gamma, self.clip = gamma, clip
        self.returns = np.zeros(n_envs, np.float64)

    def __call__(self, reward: np.ndarray, valid: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Scale one step's rewards; ``valid``: the envs whose step was a real transition
        (not an autoreset step), ``done``: the envs whose episode ended at this step."""
        keep = valid.astype(bool)
        self.returns = np.where(keep, self.returns * self.gamma + reward, 0.0)
        self.stats.update(self.returns[keep])
        scaled = reward / np.sqrt(self.stats.var.numpy() + EPS)
        self.returns[done.astype(bool)] = 0.0
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def state_tensors(self) -> dict[str, Tensor]:
        """The statistics, to store with the agent's weights."""
        return {f"reward_norm.{k}": v.clone() for k, v in self.stats.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Load what ``state_tensors`` returned."""
        self.stats.load_state_dict({k.removeprefix("reward_norm."): v
                                    for k, v in tensors.items()
                                    if k.startswith("reward_norm.")})
