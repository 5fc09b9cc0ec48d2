"""Opening a sweep's study for a run: pre-flight checks, the fingerprint guard, and what
the study records about its sweep (so a report needs only the storage)."""
from __future__ import annotations

import optuna

from nas_prune.config.sweep import Sweep
from nas_prune.results.study import SWEEP_ATTR
from nas_prune.rl.agents import agents
from nas_prune.rl.envs import act_dim, make_env, obs_dim
from nas_prune.search.fingerprint import check_fingerprint, record_fingerprint
from nas_prune.search.generations import population_size
from nas_prune.search.storage import create_study, find_study
from nas_prune.util.files import check_writable

__all__ = ["POPULATION_ATTR", "claim_study", "population_of", "prepare", "record_info"]

POPULATION_ATTR = "population"  # study user attr: the generation size, fixed at creation


def claim_study(sweep: Sweep, trials: int, *, owner: bool = True) -> optuna.Study:
    """Open the sweep's study for a run: refuse a changed sweep before anything is written,
    check the env and the out folder, then create or resume the study and record the sweep.

    Args:
        sweep: the resolved sweep.
        trials: the run's total (fixes the generation size of a new study).
        owner: False for a joining ``worker``: it only fills in the sweep info if missing.

    Raises:
        ValueError: a changed sweep (fields named), an env the agent cannot act in, an
            unwritable out folder.
    """
    existing = find_study(sweep.storage, sweep.study)
    if existing is not None:
        check_fingerprint(existing, sweep)
    prepare(sweep)
    study = existing or create_study(sweep.storage, sweep.study,
                                     optuna.samplers.RandomSampler(), sweep.objectives)
    record_fingerprint(study, sweep)
    if POPULATION_ATTR not in study.user_attrs:
        study.set_user_attr(POPULATION_ATTR, population_size(trials))
    record_info(study, sweep, overwrite=owner)
    return study


def population_of(study: optuna.Study) -> int:
    """The study's generation size (a study made before it was recorded: the default)."""
    return int(study.user_attrs.get(POPULATION_ATTR, population_size(len(study.trials))))


def record_info(study: optuna.Study, sweep: Sweep, *, overwrite: bool = True) -> None:
    """Store what reports need in the study itself (so a report needs only the storage);
    a joining worker (``overwrite`` False) only fills it in when missing."""
    c = sweep.config
    env = make_env(c.env.id, c.env.kwargs, max_episode_steps=c.env.max_episode_steps)
    # the deployed actor's outputs (SAC: its means, not its training-only log-stds), as
    # a trial counts its params
    cls = agents.get(c.agent.name)
    outputs = cls.deployed_outputs(act_dim(env.action_space) * cls.outputs_per_action)
    ref = sweep.reference_params(obs_dim(env.observation_space), outputs)
    env.close()
    info = {"name": c.name, "env": c.env.id, "agent": c.agent.name, "ref_params": ref,
            "return_floor": c.return_floor, "max_return": c.max_return,
            "reeval_seeds": c.reeval.seeds, "reeval_episodes": c.reeval.episodes,
            "objectives": sweep.objectives, "noise_std": c.eval.noise_std,
            "out": str(sweep.out.resolve()), "study_dir": str(sweep.study_dir.resolve())}
    current = study.user_attrs.get(SWEEP_ATTR)
    if current != info and (overwrite or current is None):
        study.set_user_attr(SWEEP_ATTR, info)


def prepare(sweep: Sweep) -> None:
    """Fail early, before the study is written: an env the agent cannot act in, or an
    unwritable output folder."""
    c = sweep.config
    env = make_env(c.env.id, c.env.kwargs, max_episode_steps=c.env.max_episode_steps)
    try:
        agents.get(c.agent.name).check_env(env)
    finally:
        env.close()
    check_writable(sweep.study_dir, "out")
