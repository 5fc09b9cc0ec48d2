"""Reinforcement learning: envs, networks, action heads, evaluation, agents, the fast
training path (optim)."""
