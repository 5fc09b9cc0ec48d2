"""nas_prune.config.space: the space schema, ``suggest`` against fixed picks (Optuna's
FixedTrial stands in for a sampler), ``parse_hidden``, ``check_method_params``."""
from __future__ import annotations

from typing import Any

import pytest
from optuna.trial import FixedTrial
from pydantic import ValidationError

from nas_prune.config.base import ConfigError, parse
from nas_prune.config.space import (
    SearchSpace,
    check_method_params,
    hidden_choices,
    parse_hidden,
    suggest,
)
from nas_prune.config.trial import TrialConfig, layer_sparsity

# the sweep's fixed part of a trial (Sweep.template): distillation settings included
BASE = TrialConfig.model_validate({
    "agent": {"name": "ppo", "train_steps": 1024}, "eval": {"episodes": 3}, "seed": 7,
    "pruning": {"finetune": {"lr": 0.01, "batch_size": 32}}})


def _space(**dims: Any) -> SearchSpace:
    return parse(SearchSpace, dims)  # type: ignore[no-any-return]


def _suggest(space: SearchSpace, params: dict[str, Any]) -> tuple[TrialConfig, set[str]]:
    trial = FixedTrial(params)
    cfg = suggest(trial, space, BASE)
    return cfg, set(trial.params)  # the names suggest asked for


# --- suggest: per-layer sparsity count ----------------------------------------------------

@pytest.mark.parametrize(("method", "hidden", "n_layers"), [
    ("magnitude", "16,16", 3),  # unstructured: every Linear, output layer included
    ("global_magnitude", "8", 2),
    ("random", "8,8,8", 4),
    ("l1", "16,16", 3),
    ("threshold", "16,16", 3),
    ("importance", "16,16", 2),  # structured: hidden layers only
    ("random_structured", "8", 1),
    ("hierarchical", "8,8,8", 3),
])
def test_per_layer_sparsity_count(method: str, hidden: str, n_layers: int) -> None:
    space = _space(method={"choices": [method]}, hidden=hidden,
                   sparsity={"low": 0.0, "high": 0.9, "log_density": False})
    picks = {f"sparsity_{i}": 0.1 * (i + 1) for i in range(n_layers)}
    cfg, asked = _suggest(space, picks)
    assert cfg.pruning.method == method
    assert cfg.agent.hidden == parse_hidden(hidden)
    assert cfg.pruning.sparsity == pytest.approx([0.1 * (i + 1) for i in range(n_layers)])
    assert asked == set(picks)  # one pick per prunable layer, no more
    assert layer_sparsity(cfg) == pytest.approx(cfg.pruning.sparsity)


def test_method_and_hidden_choices_are_picked() -> None:
    space = _space(method={"choices": ["magnitude", "importance"]},
                   hidden={"choices": ["16,16", "8"]},
                   sparsity={"per_layer": False, "log_density": False})
    cfg, asked = _suggest(space, {"method": "importance", "hidden": "8", "sparsity": 0.25})
    assert (cfg.pruning.method, cfg.agent.hidden, cfg.pruning.sparsity) == ("importance", [8],
                                                                            0.25)
    assert asked == {"method", "hidden", "sparsity"}


def test_shared_sparsity_is_one_scalar() -> None:
    space = _space(hidden="16,16", sparsity={"per_layer": False, "log_density": False})
    cfg, asked = _suggest(space, {"sparsity": 0.4})
    assert cfg.pruning.sparsity == 0.4
    assert layer_sparsity(cfg) == [0.4, 0.4, 0.4]
    assert asked == {"sparsity"}


@pytest.mark.parametrize(("density", "sparsity"), [
    (0.1, 0.9),
    (0.5, 0.5),
    (1.0, 0.0),
    (1 / 3, 0.666667),  # rounded to 6 decimals
    (0.05, 0.95),
    (0.0123456789, 0.987654),
])
def test_log_density_sparsity_rounding(density: float, sparsity: float) -> None:
    space = _space(hidden="8", sparsity={"low": 0.0, "high": 0.99, "per_layer": False})
    cfg, asked = _suggest(space, {"sparsity_density": density})
    assert cfg.pruning.sparsity == sparsity  # exact: the value is rounded, not approximate
    assert asked == {"sparsity_density"}


def test_log_density_is_asked_on_a_log_scale_over_the_kept_fraction() -> None:
    class Recorder(FixedTrial):
        calls: list[tuple[str, float, float, bool]] = []

        def suggest_float(self, name: str, low: float, high: float, *, step: Any = None,
                          log: bool = False) -> float:
            self.calls.append((name, low, high, log))
            return super().suggest_float(name, low, high, step=step, log=log)

    space = _space(hidden="8", sparsity={"low": 0.2, "high": 0.99})
    suggest(Recorder({"sparsity_0_density": 0.5, "sparsity_1_density": 0.5}), space, BASE)
    assert [c[0] for c in Recorder.calls] == ["sparsity_0_density", "sparsity_1_density"]
    for _, low, high, log in Recorder.calls:
        assert (low, high, log) == (pytest.approx(0.01), pytest.approx(0.8), True)


def test_fixed_sparsity_asks_nothing() -> None:
    space = _space(hidden="8", sparsity={"low": 0.3, "high": 0.3})
    cfg, asked = _suggest(space, {})
    assert cfg.pruning.sparsity == [0.3, 0.3]
    assert asked == set()


# --- suggest: method params, schedule, finetune, base -------------------------------------

PARAMS_SPACE: dict[str, Any] = {
    "method": {"choices": ["l1", "magnitude", "importance"]}, "hidden": "8",
    "sparsity": {"low": 0.5, "high": 0.5},
    "method_params": {"l1_coef": {"low": 1e-5, "high": 1e-2, "log": True},
                      "criterion": {"choices": ["l1", "taylor"]}},
}


@pytest.mark.parametrize(("picks", "expected_params"), [
    ({"method": "l1", "l1.l1_coef": 1e-3}, {"l1_coef": 1e-3}),
    ({"method": "importance", "importance.criterion": "taylor"}, {"criterion": "taylor"}),
    ({"method": "magnitude"}, {}),  # accepts neither: nothing asked, nothing passed
])
def test_method_params_only_for_methods_that_accept_them(
        picks: dict[str, Any], expected_params: dict[str, Any]) -> None:
    cfg, asked = _suggest(_space(**PARAMS_SPACE), picks)
    assert asked == set(picks)
    # the config holds the method's validated params: given values over its defaults
    defaults = {"l1": {"l1_coef": 1e-4}, "importance": {"criterion": "l1"}, "magnitude": {}}
    assert cfg.pruning.method_params == {**defaults[picks["method"]], **expected_params}


def test_schedule_finetune_and_base_fields() -> None:
    space = _space(hidden="8", sparsity={"low": 0.5, "high": 0.5},
                   schedule={"choices": ["oneshot", "gradual"]},
                   pruning_steps={"low": 2, "high": 6, "int": True},
                   finetune_mode={"choices": ["rl", "distill"]},
                   finetune_steps={"choices": [256, 512]})
    cfg, asked = _suggest(space, {"schedule": "gradual", "pruning_steps": 4,
                                  "finetune_mode": "distill", "finetune_steps": 512})
    assert asked == {"schedule", "pruning_steps", "finetune_mode", "finetune_steps"}
    assert (cfg.pruning.schedule, cfg.pruning.steps) == ("gradual", 4)
    ft = cfg.pruning.finetune
    assert (ft.mode, ft.steps, ft.lr, ft.batch_size) == ("distill", 512, 0.01, 32)
    assert (cfg.agent.name, cfg.agent.train_steps, cfg.eval.episodes, cfg.seed) == (
        "ppo", 1024, 3, 7)


def test_defaults_ask_for_nothing_but_sparsity() -> None:
    cfg, asked = _suggest(SearchSpace(), {"sparsity_0_density": 1.0, "sparsity_1_density": 0.5,
                                          "sparsity_2_density": 0.1})
    assert asked == {"sparsity_0_density", "sparsity_1_density", "sparsity_2_density"}
    assert (cfg.pruning.method, cfg.agent.hidden, cfg.pruning.schedule) == (
        "magnitude", [64, 64], "oneshot")
    assert cfg.pruning.sparsity == [0.0, 0.5, 0.9]
    assert (cfg.pruning.finetune.mode, cfg.pruning.finetune.steps) == ("rl", 10_000)


def test_suggest_does_not_change_the_template() -> None:
    before = BASE.model_dump()
    cfg = suggest(FixedTrial({}), _space(hidden="8", sparsity={"low": 0.5, "high": 0.5}), BASE)
    assert BASE.model_dump() == before and cfg.agent.hidden == [8] != BASE.agent.hidden


# --- check_method_params ------------------------------------------------------------------

@pytest.mark.parametrize(("methods", "params", "error"), [
    (["l1"], {"l1_coef": 1e-4}, None),
    (["l1", "magnitude"], {"l1_coef": 1e-4}, None),  # one method taking it is enough
    (["importance", "hierarchical"], {"criterion": "l2"}, None),
    (["magnitude"], {"l1_coef": 1e-4},
     "space.method_params.l1_coef: applies to none of ['magnitude']"),
    (["magnitude", "importance"], {"criterion": "l2", "l1_coef": 1e-4},
     "space.method_params.l1_coef: applies to none of ['magnitude', 'importance']"),
])
def test_check_method_params(methods: list[str], params: dict[str, Any],
                             error: str | None) -> None:
    space = _space(method={"choices": methods}, method_params=params)
    if error is None:
        check_method_params(space)
    else:
        with pytest.raises(ValueError) as info:
            check_method_params(space)
        assert str(info.value) == error


@pytest.mark.xfail(strict=True, reason="a space's method_params values are scalars, choices of "
                   "scalars or ranges: a list-valued method param (hierarchical's `order`) "
                   "cannot be fixed in a sweep at all")
def test_list_valued_method_param_can_be_fixed() -> None:
    space = _space(method="hierarchical", hidden="8,8", sparsity={"low": 0.5, "high": 0.5},
                   method_params={"order": [1, 0]})
    cfg, _ = _suggest(space, {})
    assert cfg.pruning.method_params["order"] == [1, 0]


def test_check_method_params_with_a_fixed_method() -> None:
    with pytest.raises(ValueError, match="applies to none of \\['random'\\]"):
        check_method_params(_space(method="random", method_params={"criterion": "l1"}))


# --- parse_hidden and hidden_choices ------------------------------------------------------

@pytest.mark.parametrize(("value", "widths"), [
    ("64,64", [64, 64]), ("8", [8]), (8, [8]), ("16, 32", [16, 32]), ("16,32,", [16, 32]),
    (" 4 ,4,4", [4, 4, 4]),
])
def test_parse_hidden_good(value: Any, widths: list[int]) -> None:
    assert parse_hidden(value) == widths


@pytest.mark.parametrize(("value", "why"), [
    ("a,b", "is not a comma list of widths"), ("16;16", "is not a comma list of widths"),
    ("1.5", "is not a comma list of widths"), ("", "needs one or more positive widths"),
    (",", "needs one or more positive widths"), ("0", "needs one or more positive widths"),
    ("16,-1", "needs one or more positive widths"), (0, "needs one or more positive widths"),
])
def test_parse_hidden_bad(value: Any, why: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_hidden(value, "hidden")  # the space's field (the CLI names --hidden)
    assert str(info.value) == f"hidden: {value!r} {why}"


def test_hidden_choices() -> None:
    assert hidden_choices(_space(hidden={"choices": ["16,16", "8", 32]})) == [
        [16, 16], [8], [32]]
    assert hidden_choices(_space(hidden="4,4")) == [[4, 4]]


# --- schema -------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "needle"), [
    ({"method": {"choices": ["magnitud"]}},
     "method: unknown pruning method 'magnitud'; allowed: "),
    ({"method": {"low": 0, "high": 1}}, "must be a name or {choices: [...]}, not a range"),
    ({"hidden": "16,x"}, "hidden: '16,x' is not a comma list of widths"),
    ({"hidden": {"choices": ["8", "0"]}}, "hidden: '0' needs one or more positive widths"),
    ({"sparsity": {"low": 0.5, "high": 0.2}}, "sparsity: low 0.5 > high 0.2"),
    ({"sparsity": {"high": 1.0}}, "sparsity.high: 1.0 is outside [0, 1)"),
    ({"pruning_steps": {"low": 3, "high": 1}}, "low 3.0 > high 1.0"),
    ({"finetune_steps": {"low": 0, "high": 10, "log": True}}, "log ranges need low > 0"),
    ({"methods": {"choices": ["magnitude"]}}, "methods: unknown key"),
    ({"method": {"choices": []}}, "method.Choice.choices: List should have at least 1 item"),
])
def test_space_validation_errors(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(SearchSpace, data)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dim", ["finetune_steps", "pruning_steps"])
def test_float_range_for_an_integer_dimension_is_refused_at_load(dim: str) -> None:
    with pytest.raises(ConfigError, match=dim):
        _space(**{dim: {"low": 100, "high": 300}})


def test_space_is_frozen() -> None:
    with pytest.raises(ValidationError):
        SearchSpace().hidden = "8"  # type: ignore[misc]


# --- spaces mixing post-training and training schedules ------------------------------------

MIXED = {"method": {"choices": ["magnitude", "importance"]},
         "sparse_method": {"choices": ["random", "set", "rigl"]},
         "distribution": {"choices": ["uniform", "erk"]},
         "schedule": {"choices": ["gradual", "during", "sparse"]},
         "hidden": "16,16", "pruning_steps": {"choices": [3, 5]},
         "finetune_mode": {"choices": ["rl", "distill"]},
         "sparsity": {"log_density": False},
         "method_params": {"update_every": {"choices": [50, 100]}}}


@pytest.mark.parametrize(("picks", "asked"), [
    ({"schedule": "gradual", "method": "magnitude", "pruning_steps": 3,
      "finetune_mode": "distill", "sparsity_0": 0.5, "sparsity_1": 0.5, "sparsity_2": 0.5},
     {"schedule", "method", "pruning_steps", "finetune_mode", "sparsity_0", "sparsity_1",
      "sparsity_2"}),
    ({"schedule": "during", "method": "importance", "pruning_steps": 5, "sparsity_0": 0.5,
      "sparsity_1": 0.5},
     {"schedule", "method", "pruning_steps", "sparsity_0", "sparsity_1"}),
    ({"schedule": "sparse", "sparse_method": "rigl", "distribution": "erk", "sparsity": 0.9,
      "rigl.update_every": 50},
     {"schedule", "sparse_method", "distribution", "sparsity", "rigl.update_every"}),
    ({"schedule": "sparse", "sparse_method": "random", "distribution": "uniform",
      "sparsity_0": 0.9, "sparsity_1": 0.9, "sparsity_2": 0.9},
     {"schedule", "sparse_method", "distribution", "sparsity_0", "sparsity_1", "sparsity_2"}),
])
def test_mixed_space_asks_only_the_dimensions_that_apply(picks: dict[str, Any],
                                                          asked: set[str]) -> None:
    cfg, names = _suggest(_space(**MIXED), picks)
    assert names == asked
    assert cfg.pruning.schedule == picks["schedule"]
    assert cfg.pruning.method == picks.get("method", picks.get("sparse_method"))
    if picks["schedule"] != "gradual":
        assert cfg.pruning.finetune.mode == "rl"
    assert cfg.pruning.distribution == picks.get("distribution", "uniform")


def test_unknown_sparse_method_is_refused() -> None:
    with pytest.raises(ConfigError, match="sparse_method: unknown pruning method 'sett'"):
        _space(sparse_method="sett")


# --- a CNN's conv channels are searched as widths are --------------------------------------

CNN_BASE = TrialConfig.model_validate({
    "env": {"id": "tests.rl.toy_envs:BoolImageEnv"},  # (4, 4, 2) frames: a CNN
    "agent": {"name": "dqn", "channels": [3], "kernels": [2], "hidden": [8]}, "seed": 1})


@pytest.mark.parametrize(("picked", "method", "n_layers"), [
    ("4,4", "importance", 3),  # structured: two conv layers + one hidden layer
    ("6", "importance", 2),
    ("4,4", "magnitude", 4),  # unstructured: every layer, the head included
])
def test_channels_are_picked_and_count_in_the_plan(picked: str, method: str,
                                                    n_layers: int) -> None:
    space = _space(channels={"choices": ["6", "4,4"]}, hidden="8", method=method)
    params = {"channels": picked, **{f"sparsity_{i}_density": 0.5 for i in range(n_layers)}}
    cfg = suggest(FixedTrial(params), space, CNN_BASE)
    assert cfg.agent.channels == parse_hidden(picked)
    assert len(layer_sparsity(cfg)) == n_layers
    # the template's kernel fits one conv layer; another depth falls back to the defaults
    assert cfg.agent.kernels == ([2] if picked == "6" else [3, 3])


def test_without_a_channels_dim_the_template_torso_counts() -> None:
    cfg, asked = _suggest_with(CNN_BASE, _space(hidden="8", method="importance"),
                               {"sparsity_0_density": 0.5, "sparsity_1_density": 0.5})
    assert cfg.agent.channels == [3] and "channels" not in asked
    assert len(layer_sparsity(cfg)) == 2


def test_bad_channels_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"channels"):
        _space(channels={"choices": ["4", "0"]})


def _suggest_with(base: TrialConfig, space: SearchSpace,
                  params: dict[str, Any]) -> tuple[TrialConfig, set[str]]:
    trial = FixedTrial(params)
    return suggest(trial, space, base), set(trial.params)


def test_dynamic_sparse_methods_belong_in_sparse_method() -> None:
    with pytest.raises(ConfigError, match=r"method: rigl train a sparse network from scratch: "
                                          r"put them in sparse_method"):
        _space(method={"choices": ["magnitude", "rigl"]})
    # in sparse_method they are fine
    _space(schedule={"choices": ["gradual", "sparse"]}, sparse_method={"choices": ["set", "rigl"]})
