"""DRL agents, registered by name (one module each)."""
from __future__ import annotations

from nas_prune.rl.agents import dqn, ppo, sac  # noqa: F401  (registration)
from nas_prune.rl.agents.base import Agent, AgentSpec, agents

__all__ = ["Agent", "AgentSpec", "agents"]
