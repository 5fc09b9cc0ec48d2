"""The Agent interface every DRL algorithm implements, and the agent registry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import gymnasium as gym
import torch
from pydantic import BaseModel

from nas_prune.rl.cnn import CNN, image_layout
from nas_prune.rl.envs import check_spaces, observation_shape
from nas_prune.rl.evaluation import EnvSpec
from nas_prune.rl.heads import Head
from nas_prune.rl.networks import MLP, PrunableNet
from nas_prune.rl.optim.flatnet import FlatTrainer, Penalty
from nas_prune.util.registry import Registry

__all__ = ["Agent", "AgentSpec", "Penalty", "Progress", "agents", "prefixed", "unprefixed"]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class AgentSpec:
    """Everything an agent is built from (resolved: no None left)."""

    env: EnvSpec
    hidden: list[int]
    activation: str
    hyper: BaseModel
    seed: int
    train_steps: int  # the dense budget; schedules (epsilon, learning rate) span it
    # the conv torso (network "cnn"): channels, kernels and strides per conv layer
    network: str = "mlp"
    channels: tuple[int, ...] = ()
    kernels: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    device: str = "cpu"  # where a CNN's training passes run (resolved: cpu or cuda)

    def build_net(self, n_obs: int, n_out: int, hidden: list[int] | None = None) -> PrunableNet:
        """A fresh network of this spec's family from ``n_obs`` flat inputs to ``n_out``
        outputs (``hidden``: other hidden widths, e.g. a critic's)."""
        hidden = list(self.hidden if hidden is None else hidden)
        if self.network != "cnn":
            return MLP([n_obs, *hidden, n_out], self.activation)
        image, channels_last = image_layout(observation_shape(self.env.id, self.env.kwargs))
        return CNN(image, list(self.channels), list(self.kernels), list(self.strides), hidden,
                   n_out, self.activation, channels_last)


class Agent:
    """A DRL agent whose deployed policy is one masked MLP (``policy``).

    ``train`` continues training for a number of env steps, re-applying the policy's masks
    after every optimizer step, so pruned weights stay exactly zero.
    """

    Hyper: ClassVar[type[BaseModel]]
    # the action spaces this agent acts in; check_env names the registered agents that fit
    action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Discrete,
                                                           gym.spaces.Box)
    trainer: FlatTrainer  # updates the policy (and any training-only nets); set_policy sets it
    default_hidden: ClassVar[list[int]]
    default_activation: ClassVar[str]
    # the policy's outputs per action dimension (SAC: a mean and a log-std) and, of those,
    # how many the deployed policy keeps (None: all; SAC: 1, the mean; ``deployed_outputs``)
    outputs_per_action: ClassVar[int] = 1
    deployed_per_action: ClassVar[int | None] = None

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.env_steps = 0

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Raise ValueError naming ``agent.name`` when this agent cannot act in ``env``
        (and, for its action space, the registered agents that can)."""
        check_spaces(env.observation_space, env.action_space)
        space = env.action_space
        if not isinstance(space, cls.action_spaces):
            name = next((n for n in agents.names() if agents.get(n) is cls), cls.__name__)
            kinds = " or ".join(kind.__name__ for kind in cls.action_spaces)
            fit = [n for n in agents.names() if isinstance(space, agents.get(n).action_spaces)]
            raise ValueError(f"agent.name: {name} needs a {kinds} action space, env has "
                             f"{space}; allowed agents for it: {', '.join(fit)}")

    @classmethod
    def deployed_outputs(cls, n_outputs: int) -> int:
        """Of a policy with ``n_outputs`` outputs, how many the deployed policy keeps: its
        first ones (all unless ``deployed_per_action`` says otherwise; the rest are
        training-only: SAC's log-stds). The trial saves, exports and counts a policy cut
        to these (``pruning.surgery.deployed``); training keeps them all."""
        if cls.deployed_per_action is None:
            return n_outputs
        return n_outputs // cls.outputs_per_action * cls.deployed_per_action

    @property
    def policy(self) -> PrunableNet:
        """The network acting needs (DQN: Q-network; PPO: actor)."""
        raise NotImplementedError

    @property
    def head(self) -> Head:
        """How ``policy``'s output becomes an action."""
        raise NotImplementedError

    def begin_finetune(self) -> None:
        """Switch schedules (exploration, learning rate) to their end values: the agent
        continues from trained weights rather than starting to learn. An agent that
        normalises freezes its statistics here (``rl.normalization``)."""

    def close(self) -> None:
        """Release the agent's envs."""

    def set_policy(self, net: PrunableNet) -> None:
        """Replace the policy (after surgery or a snapshot restore); resets its optimizer."""
        raise NotImplementedError

    def train(self, steps: int, *, penalty: Penalty | None = None,
              progress: Progress | None = None) -> None:
        """Train for ``steps`` env steps; ``progress(env_steps)`` is called along the way."""
        raise NotImplementedError

    def distill_grad(self, student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
        """d/d student_out of the policy-distillation loss between student and teacher
        outputs on the same states (``nas_prune.losses``)."""
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every network's weights, by name (what the dense cache stores)."""
        raise NotImplementedError

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load what ``state_tensors`` returned."""
        raise NotImplementedError


agents: Registry[type[Agent]] = Registry("agent", "agent.name")


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Prefix state-dict keys (``actor.layers.0.weight``)."""
    return {f"{prefix}.{k}": v.detach().clone() for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of ``prefixed`` for one prefix."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
