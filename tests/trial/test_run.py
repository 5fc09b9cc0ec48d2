"""The core trial: determinism, metrics, masks, structured shrinking, seeds."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from nas_prune import TrialConfig, run_trial
from nas_prune.config.base import ConfigError, parse
from tests.conftest import TINY_DQN, TINY_PPO, TINY_SAC


def _cfg(base: dict[str, Any], **pruning: Any) -> TrialConfig:
    data = copy.deepcopy(base)
    data["pruning"].update(pruning)
    return parse(TrialConfig, data)


@pytest.mark.parametrize("base", [TINY_PPO, TINY_DQN, TINY_SAC], ids=["ppo", "dqn", "sac"])
def test_same_seed_same_weights_and_returns(base: dict[str, Any]) -> None:
    a = run_trial(_cfg(base)).metrics.as_dict()
    b = run_trial(_cfg(base)).metrics.as_dict()
    assert a["weights_hash"] == b["weights_hash"]
    assert a["returns"] == b["returns"]


@pytest.mark.parametrize("agent", ["dqn", "ppo"])
def test_cnn_same_seed_same_weights_and_returns(agent: str) -> None:
    """A CNN trial on MinAtar (train, prune channels, fine-tune, evaluate) repeats per seed."""
    pytest.importorskip("minatar")
    hyper = ({"learning_starts": 100, "batch_size": 16, "buffer_size": 1000, "train_freq": 4}
             if agent == "dqn" else {"n_envs": 2, "n_steps": 64, "batch_size": 64,
                                     "n_epochs": 2})
    data = {"env": {"id": "MinAtar/Breakout-v1", "max_episode_steps": 200},
            "agent": {"name": agent, "network": "cnn", "channels": [4], "hidden": [16],
                      "train_steps": 400, "hyper": hyper},
            "pruning": {"method": "importance", "sparsity": 0.5, "finetune": {"steps": 128}},
            "eval": {"episodes": 2}}
    runs = [run_trial(parse(TrialConfig, {**data, "seed": seed})).metrics for seed in (0, 0, 1)]
    assert runs[0].channels_pruned == [2]
    assert (runs[0].weights_hash, runs[0].returns) == (runs[1].weights_hash, runs[1].returns)
    assert runs[2].weights_hash != runs[0].weights_hash


def test_different_seed_differs() -> None:
    a = run_trial(_cfg(TINY_PPO)).metrics.as_dict()
    cfg = _cfg(TINY_PPO).model_copy(update={"seed": 1})
    b = run_trial(cfg).metrics.as_dict()
    assert a["weights_hash"] != b["weights_hash"]


def test_metrics_have_the_contract_fields() -> None:
    m = run_trial(_cfg(TINY_DQN)).metrics.as_dict()
    needed = {"env_id", "agent", "method", "schedule", "layer_sparsity", "params_dense",
              "params", "params_nonzero", "sparsity", "macs", "return_mean", "return_std",
              "return_iqm", "returns", "episodes", "dense_return_mean", "q_mean", "env_steps",
              "wall_s", "seed"}
    assert needed <= set(m)
    assert len(m["returns"]) == m["episodes"] == 5
    assert m["q_mean"] is not None  # DQN reports mean max-Q
    assert m["params_nonzero"] < m["params_dense"]


def test_structured_trial_shrinks_the_policy() -> None:
    r = run_trial(_cfg(TINY_PPO, sparsity=0.5))
    assert r.policy.hidden == [8, 8]
    assert r.metrics.params == r.metrics.params_nonzero < r.metrics.params_dense
    # 4 -> 8 -> 8 -> 2 with biases
    assert r.metrics.params == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2


@pytest.mark.parametrize("schedule", ["gradual", "iterative"])
@pytest.mark.parametrize("mode", ["rl", "distill"])
def test_schedules_keep_pruned_weights_zero(schedule: str, mode: str) -> None:
    cfg = _cfg(TINY_DQN, method="magnitude", sparsity=0.6, schedule=schedule, steps=3,
               finetune={"steps": 300, "mode": mode})
    r = run_trial(cfg)
    net = r.policy
    for layer in net.prunable_layers():
        assert layer.mask is not None
        assert (layer.weight[layer.mask == 0] == 0).all()
    if schedule == "gradual":
        assert r.metrics.layer_sparsity == pytest.approx([0.6] * 3, abs=0.01)
    else:  # iterative may stop early, never beyond the plan
        # per layer, round(s * n) / n may exceed s by rounding
        assert all(s <= 0.6 + 0.01 for s in r.metrics.layer_sparsity)


@pytest.mark.parametrize(("schedule", "method", "mode"), [
    ("oneshot", "magnitude", "distill"), ("gradual", "magnitude", "rl"),
    ("iterative", "importance", "rl"), ("oneshot", "l1", "rl")])
def test_sac_prunes_and_finetunes_its_actor(schedule: str, method: str, mode: str) -> None:
    cfg = _cfg(TINY_SAC, method=method, sparsity=0.5, schedule=schedule, steps=2,
               finetune={"steps": 200, "mode": mode})
    r = run_trial(cfg)
    for layer in r.policy.prunable_layers():
        if layer.mask is not None:
            assert (layer.weight[layer.mask == 0] == 0).all()
    assert r.metrics.params_nonzero < r.metrics.params_dense
    # twin critics 4 -> 16 -> 16 -> 1 and their targets, log(alpha), and the actor's
    # log-std row (16 weights and a bias: the deployed policy keeps the mean row only)
    assert r.metrics.params_training_only == (
        4 * (4 * 16 + 16 + 16 * 16 + 16 + 16 + 1) + 1 + 16 + 1)
    assert r.policy.prunable_layers()[-1].n_units == 1


def test_l1_method_runs_with_penalty() -> None:
    cfg = _cfg(TINY_DQN, method="l1", sparsity=0.7, method_params={"l1_coef": 1e-3})
    m = run_trial(cfg).metrics.as_dict()
    numels = [4 * 16, 16 * 16, 16 * 2]  # weights of 4 -> 16 -> 16 -> 2
    assert m["layer_sparsity"] == pytest.approx([round(0.7 * n) / n for n in numels])


def test_snapshot_keeping_runs_on_selection_seeds() -> None:
    data = copy.deepcopy(TINY_PPO)
    data["agent"]["snapshot"] = {"every_steps": 256, "episodes": 3}
    a = run_trial(parse(TrialConfig, data)).metrics.as_dict()
    b = run_trial(parse(TrialConfig, data)).metrics.as_dict()
    assert a["returns"] == b["returns"]


@pytest.mark.parametrize("data, field", [
    ({"pruning": {"sparsity": 1.0}}, "pruning.sparsity"),
    ({"pruning": {"method": "nope"}}, "pruning.method"),
    ({"agent": {"name": "a2c"}}, "agent.name"),
    ({"agent": {"hyper": {"lrr": 1}}}, "agent.hyper.lrr"),
    ({"pruning": {"method": "importance", "method_params": {"criterion": "l3"}}},
     "pruning.method_params.criterion"),
    ({"pruning": {"schedule": "weekly"}}, "pruning.schedule"),
    ({"env": {"id": "NoSuchEnv-v9"}}, "env.id"),
    ({"envv": {}}, "envv"),
    ({"pruning": {"method": "importance", "sparsity": [0.1, 0.2, 0.3]},
      "agent": {"hidden": [8, 8]}}, "pruning.sparsity"),
])
def test_bad_config_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(TrialConfig, data)
    assert field in str(err.value)
    assert "\n" not in str(err.value)


def test_unsupported_spaces_are_named() -> None:
    with pytest.raises(ValueError, match="action space"):
        run_trial(parse(TrialConfig, {"env": {"id": "Pendulum-v1"}, "agent": {
            "name": "dqn", "hidden": [8], "train_steps": 10}, "eval": {"episodes": 1}}))


# --- training schedules: during / sparse train from scratch ------------------------------

TRAINING_CASES = [("during", "magnitude", {}), ("during", "importance", {}),
                  ("sparse", "random", {}), ("sparse", "set", {"update_every": 4}),
                  ("sparse", "rigl", {"update_every": 4})]


@pytest.mark.parametrize("base", [TINY_PPO, TINY_DQN, TINY_SAC], ids=["ppo", "dqn", "sac"])
@pytest.mark.parametrize(("schedule", "method", "params"), TRAINING_CASES,
                         ids=[f"{s}-{m}" for s, m, _ in TRAINING_CASES])
def test_training_schedules_pay_their_whole_training(
        base: dict[str, Any], schedule: str, method: str, params: dict[str, Any],
        tmp_path: Any) -> None:
    cfg = _cfg(base, method=method, schedule=schedule, sparsity=0.5, method_params=params,
               steps=3)
    r = run_trial(cfg, cache_dir=tmp_path)
    m = r.metrics
    train = cfg.agent.train_steps
    assert not any(tmp_path.iterdir())  # no dense agent trained, loaded or cached
    assert m.dense_env_steps == 0 and not m.dense_cached
    assert m.train_env_steps is not None and m.finetune_env_steps is not None
    assert train - 256 < m.train_env_steps <= train  # PPO: whole rollouts of 256 steps
    assert m.env_steps == m.train_env_steps + m.finetune_env_steps
    assert m.finetune_env_steps > 0 and m.gradient_steps is not None and m.gradient_steps > 0
    assert m.layer_sparsity == pytest.approx([0.5] * len(m.layer_sparsity), abs=0.02)
    if method == "importance":  # structured during: neurons removed physically at the end
        assert r.policy.hidden == [8, 8]


def test_during_at_sparsity_zero_is_the_dense_agent() -> None:
    from nas_prune.trial.dense_cache import build_agent, train_dense

    cfg = _cfg(TINY_DQN, schedule="during", sparsity=0.0, finetune={"steps": 0})
    agent = build_agent(cfg, 0)
    agent.load_state_tensors(train_dense(cfg))
    from nas_prune.rl.networks import weights_hash

    assert run_trial(cfg).metrics.weights_hash == weights_hash(agent.policy)
    agent.close()


def test_gradient_steps_count_what_the_trial_paid(tmp_path: Any) -> None:
    cfg = _cfg(TINY_DQN)
    first = run_trial(cfg, cache_dir=tmp_path).metrics  # trains the dense agent
    second = run_trial(cfg, cache_dir=tmp_path).metrics  # reuses it
    assert first.dense_env_steps > 0 and second.dense_env_steps == 0
    assert first.gradient_steps is not None and second.gradient_steps is not None
    assert 0 < second.gradient_steps < first.gradient_steps


@pytest.mark.parametrize(("pruning", "field"), [
    ({"method": "set", "schedule": "gradual"}, "pruning.schedule"),
    ({"method": "rigl", "schedule": "sparse", "finetune": {"mode": "distill"}},
     "pruning.finetune.mode"),
    ({"method": "importance", "schedule": "sparse", "distribution": "erk"},
     "pruning.distribution"),
    ({"schedule": "during", "start": 0.8, "end": 0.5}, "pruning.start"),
])
def test_training_schedule_config_errors(pruning: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}"):
        _cfg(TINY_DQN, **pruning)


def test_erk_plan_reaches_the_total_sparsity() -> None:
    m = run_trial(_cfg(TINY_PPO, method="random", schedule="sparse", sparsity=0.8,
                       distribution="erk")).metrics
    plan = m.layer_sparsity_plan
    assert len(set(plan)) > 1  # not uniform
    weights = [4 * 16, 16 * 16, 16 * 2]
    kept = sum((1 - s) * n for s, n in zip(m.layer_sparsity or [], weights))
    assert kept == pytest.approx(0.2 * sum(weights), abs=2)
