"""Helpers of the sweep verbs (sweep_run.py): the study's sweep info, the per-trial progress
line, writing the chosen front point's config, and pre-flight checks."""
from __future__ import annotations

from typing import Callable

import optuna

from nas_prune.config.sweep import Sweep
from nas_prune.results.study import (
    SWEEP_ATTR,
)
from nas_prune.rl.agents import agents
from nas_prune.rl.envs import act_dim, make_env, obs_dim
from nas_prune.util.files import check_writable

Log = Callable[[str], None]


def record_info(study: optuna.Study, sweep: Sweep, *, overwrite: bool = True) -> None:
    """Store what reports need in the study itself (so a report needs only the storage);
    a joining worker (``overwrite`` False) only fills it in when missing."""
    c = sweep.config
    env = make_env(c.env.id, c.env.kwargs, max_episode_steps=c.env.max_episode_steps)
    ref = sweep.reference_params(obs_dim(env.observation_space), act_dim(env.action_space))
    env.close()
    info = {"name": c.name, "env": c.env.id, "agent": c.agent.name, "ref_params": ref,
            "return_floor": c.return_floor, "max_return": c.max_return,
            "reeval_seeds": c.reeval.seeds, "reeval_episodes": c.reeval.episodes,
            "out": str(sweep.out.resolve())}
    current = study.user_attrs.get(SWEEP_ATTR)
    if current != info and (overwrite or current is None):
        study.set_user_attr(SWEEP_ATTR, info)








def prepare(sweep: Sweep) -> None:
    """Fail early, before storage is touched: an env the agent cannot act in, or an
    unwritable output folder."""
    c = sweep.config
    env = make_env(c.env.id, c.env.kwargs, max_episode_steps=c.env.max_episode_steps)
    try:
        agents.get(c.agent.name).check_env(env)
    finally:
        env.close()
    check_writable(sweep.out, "out")
