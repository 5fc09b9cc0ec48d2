"""nas_prune.config.trial: TrialConfig defaults resolved per agent and method, the
per-layer sparsity plan, and one-line errors naming each field."""
from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from nas_prune.config.base import ConfigError, parse
from nas_prune.config.trial import TrialConfig, layer_sparsity
from tests.conftest import TINY_DQN, TINY_PPO


def _cfg(data: dict[str, Any]) -> TrialConfig:
    return parse(TrialConfig, data)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("agent", "hidden", "activation"), [
    ("dqn", [256, 256], "relu"), ("ppo", [64, 64], "tanh")])
def test_agent_defaults_are_resolved(agent: str, hidden: list[int], activation: str) -> None:
    cfg = _cfg({"agent": {"name": agent}})
    assert (cfg.agent.hidden, cfg.agent.activation) == (hidden, activation)
    # hyper holds every hyperparameter, defaults included, so the config says it all
    assert cfg.agent.hyper["gamma"] == {"dqn": 0.99, "ppo": 0.98}[agent]


def test_given_values_win_over_defaults() -> None:
    cfg = _cfg({"agent": {"name": "dqn", "hidden": [8], "activation": "tanh",
                          "hyper": {"gamma": 0.9}}})
    assert (cfg.agent.hidden, cfg.agent.activation, cfg.agent.hyper["gamma"]) == (
        [8], "tanh", 0.9)
    assert cfg.agent.hyper["batch_size"] == 64  # the rest still default


def test_method_params_are_resolved() -> None:
    cfg = _cfg({"pruning": {"method": "importance"}})
    assert cfg.pruning.method_params == {"criterion": "l1"}
    cfg = _cfg({"pruning": {"method": "l1", "method_params": {"l1_coef": 0.01}}})
    assert cfg.pruning.method_params == {"l1_coef": 0.01}


@pytest.mark.parametrize("base", [TINY_PPO, TINY_DQN, {}], ids=["ppo", "dqn", "defaults"])
def test_dumped_config_parses_to_itself(base: dict[str, Any]) -> None:
    cfg = _cfg(base)
    assert _cfg(cfg.model_dump(mode="json")) == cfg


@pytest.mark.parametrize(("method", "hidden", "sparsity", "plan"), [
    ("magnitude", [16, 16], 0.5, [0.5, 0.5, 0.5]),  # every Linear, output included
    ("importance", [16, 16], 0.5, [0.5, 0.5]),  # hidden layers only
    ("random_structured", [8, 8, 8], 0.25, [0.25] * 3),
    ("global_magnitude", [4], 0.0, [0.0, 0.0]),
    ("magnitude", [16, 16], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]),
    ("hierarchical", [16, 16], [0.9, 0.0], [0.9, 0.0]),
])
def test_layer_sparsity_plan(method: str, hidden: list[int], sparsity: Any,
                             plan: list[float]) -> None:
    cfg = _cfg({"agent": {"name": "ppo", "hidden": hidden},
                "pruning": {"method": method, "sparsity": sparsity}})
    assert layer_sparsity(cfg) == plan


@pytest.mark.parametrize(("data", "error"), [
    ({"agent": {"name": "a2c"}}, "agent.name: unknown agent 'a2c'; allowed: dqn, ppo, sac"),
    ({"agent": {"hyper": {"lrr": 1}}}, "agent.hyper.lrr: unknown key"),
    ({"agent": {"hyper": {"gamma": 2}}},
     "agent.hyper.gamma: Input should be less than or equal to 1"),
    ({"agent": {"name": "ppo", "hyper": {"buffer_size": 10}}},  # a DQN hyper on PPO
     "agent.hyper.buffer_size: unknown key"),
    ({"agent": {"activation": "sigmoid"}},
     "agent.activation: unknown activation 'sigmoid'; allowed: elu, gelu, leaky_relu, relu, "
     "silu, tanh"),
    ({"agent": {"hidden": []}}, "agent.hidden: [] needs one or more positive widths"),
    ({"agent": {"hidden": [16, 0]}}, "agent.hidden: [16, 0] needs one or more positive widths"),
    ({"agent": {"train_steps": 0}},
     "agent.train_steps: Input should be greater than or equal to 1"),
    ({"pruning": {"method": "l1", "method_params": {"l1_coef": -1}}},
     "pruning.method_params.l1_coef: Input should be greater than 0"),
    ({"pruning": {"method": "magnitude", "method_params": {"l1_coef": 1}}},
     "pruning.method_params.l1_coef: unknown key"),
    ({"pruning": {"sparsity": [0.5, 0.5]}},
     "pruning.sparsity: 2 values given; method 'magnitude' on hidden [256, 256] has 3 "
     "prunable layers"),
    ({"pruning": {"method": "importance", "sparsity": [0.5, 0.5, 0.5]}},
     "pruning.sparsity: 3 values given; method 'importance' on hidden [256, 256] has 2 "
     "prunable layers"),
    ({"pruning": {"sparsity": -0.1}}, "pruning.sparsity: -0.1 is outside [0, 1)"),
    ({"pruning": {"sparsity": 1.0}}, "pruning.sparsity: 1.0 is outside [0, 1)"),
    ({"pruning": {"sparsity": [0.5, 1.5, 0.5]}}, "pruning.sparsity: 1.5 is outside [0, 1)"),
    ({"pruning": {"schedule": "cubic"}},
     "pruning.schedule: Input should be 'oneshot', 'gradual', 'iterative', 'during' or 'sparse'"),
    ({"pruning": {"finetune": {"mode": "sft"}}},
     "pruning.finetune.mode: Input should be 'rl' or 'distill'"),
    ({"pruning": {"tolerance": 0}}, "pruning.tolerance: Input should be greater than 0"),
    ({"env": {"max_episode_steps": 0}},
     "env.max_episode_steps: Input should be greater than or equal to 1"),
    ({"eval": {"episodes": 0}}, "eval.episodes: Input should be greater than or equal to 1"),
    ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
    ({"agent": {"snapshot": {"every_steps": -5}}},
     "agent.snapshot.every_steps: Input should be greater than or equal to 0"),
    ({"pruning": {"sparisty": 0.5}}, "pruning.sparisty: unknown key"),
])
def test_errors_are_one_line_naming_the_field(data: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(data)
    assert str(info.value) == error


def test_env_id_error_names_env_id() -> None:
    with pytest.raises(ConfigError) as info:
        _cfg({"env": {"id": "Nope-v0"}})
    assert str(info.value).startswith("env.id: unknown gymnasium id 'Nope-v0' (")
    assert "\n" not in str(info.value)


def test_config_is_frozen_and_copies_are_independent() -> None:
    cfg = _cfg(TINY_PPO)
    with pytest.raises(ValidationError, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]
    other = cfg.model_copy(update={"seed": 3})
    assert (cfg.seed, other.seed) == (0, 3)


# --- the network family: chosen from the observation, presets, conv-layer plans ----------

IMAGE_ENV = "tests.rl.toy_envs:BoolImageEnv"  # (4, 4, 2) bool frames


@pytest.mark.parametrize(("env", "agent", "expected"), [
    (IMAGE_ENV, {}, ("cnn", [16], [3], [1])),  # an image: the minatar torso
    ("tests.rl.toy_envs:TableObsEnv", {}, ("mlp", None, None, None)),  # (3, 4): flattened
    ("CartPole-v1", {}, ("mlp", None, None, None)),
    (IMAGE_ENV, {"network": "mlp"}, ("mlp", None, None, None)),
    (IMAGE_ENV, {"channels": [8, 4], "kernels": [2, 2]}, ("cnn", [8, 4], [2, 2], [1, 1])),
    ("CartPole-v1", {"network": "nature"}, ("cnn", [32, 64, 64], [8, 4, 3], [4, 2, 1])),
])
def test_network_is_resolved(env: str, agent: dict[str, Any], expected: tuple[Any, ...]
                             ) -> None:
    cfg = TrialConfig.model_validate({"env": {"id": env}, "agent": agent})
    a = cfg.agent
    assert (a.network, a.channels, a.kernels, a.strides) == expected


def test_preset_fills_the_dense_part_unless_given() -> None:
    assert TrialConfig.model_validate(
        {"env": {"id": IMAGE_ENV}, "agent": {"network": "minatar"}}).agent.hidden == [128]
    assert TrialConfig.model_validate(
        {"env": {"id": IMAGE_ENV},
         "agent": {"network": "minatar", "hidden": [7]}}).agent.hidden == [7]


def test_conv_layers_are_prunable_layers_of_the_plan() -> None:
    base = {"env": {"id": IMAGE_ENV}, "agent": {"channels": [4, 4], "kernels": [2, 2],
                                                 "hidden": [8]}}
    structured = {**base, "pruning": {"method": "importance", "sparsity": [0.5, 0.25, 0.5]}}
    assert layer_sparsity(TrialConfig.model_validate(structured)) == [0.5, 0.25, 0.5]
    unstructured = {**base, "pruning": {"method": "magnitude", "sparsity": [0.1] * 4}}
    assert len(layer_sparsity(TrialConfig.model_validate(unstructured))) == 4
    with pytest.raises(ValidationError, match=r"channels \[4, 4\] \+ hidden \[8\] has 3"):
        TrialConfig.model_validate({**base, "pruning": {"method": "importance",
                                                        "sparsity": [0.5, 0.5]}})


@pytest.mark.parametrize(("agent", "needle"), [
    ({"network": "cnn", "channels": [4, 4], "kernels": [3]}, "agent.kernels: [3] needs 2"),
    ({"network": "cnn", "strides": [0]}, "agent.strides: [0] needs 1 positive"),
    ({"network": "mlp", "channels": [4]}, "agent.channels: channels, kernels and strides are "
                                          "for network cnn; allowed networks: mlp, cnn"),
    ({"network": "resnet"}, "agent.network"),
    ({"channels": [0]}, "agent.channels"),
])
def test_bad_network_settings_name_the_field(agent: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(needle)):
        TrialConfig.model_validate({"env": {"id": IMAGE_ENV}, "agent": agent})


def test_int8_without_onnxruntime_is_refused_when_the_config_loads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ValidationError, match=r'eval\.deploy_int8: needs onnx and onnxruntime; '
                                              r'install them with pip install -e "\.\[deploy\]"'):
        TrialConfig.model_validate({"eval": {"deploy_int8": True}})
    TrialConfig.model_validate({"eval": {"deploy_int8": False}})  # off: nothing needed
