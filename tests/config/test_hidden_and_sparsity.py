"""The one hidden-width parser and the one sparsity check, wherever a config uses them."""

from __future__ import annotations

import math
from typing import Any

import pytest

from nas_prune.config.base import ConfigError, parse
from nas_prune.config.space import SearchSpace
from nas_prune.config.trial import AgentConfig, PruningConfig, parse_hidden
from nas_prune.pruning.base import check_sparsity


@pytest.mark.parametrize(
    ("value", "expected"),
    [("64,64", [64, 64]), ("8", [8]), (8, [8]), ([16, 4], [16, 4]), (" 4, 2 ,", [4, 2])],
)
def test_parse_hidden(value: Any, expected: list[int]) -> None:
    assert parse_hidden(value) == expected


@pytest.mark.parametrize("value", ["", "0,4", "a,b", "4.5", [], [4, 0], True])
def test_parse_hidden_rejects(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^space\.hidden: "):
        parse_hidden(value, "space.hidden")


def test_agent_config_and_space_use_the_one_parser() -> None:
    with pytest.raises(ValueError, match=r"agent\.hidden: \[0, 4\] needs one or more positive"):
        AgentConfig(hidden=[0, 4])
    with pytest.raises(ConfigError, match=r"^hidden: '0,4' needs one or more positive widths"):
        parse(SearchSpace, {"hidden": "0,4"})
    with pytest.raises(ConfigError, match=r"^hidden: 'x' is not a comma list of widths"):
        parse(SearchSpace, {"hidden": {"choices": ["8", "x"]}})


@pytest.mark.parametrize("value", [0.0, 0.5, 0.999])
def test_check_sparsity_accepts(value: float) -> None:
    assert check_sparsity(value) == value


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, math.nan])
def test_sparsity_is_checked_the_same_everywhere(value: float) -> None:
    with pytest.raises(ValueError, match=r"^pruning\.sparsity: .* is outside \[0, 1\)"):
        check_sparsity(value)
    with pytest.raises(ValueError, match=r"pruning\.sparsity: .* is outside \[0, 1\)"):
        PruningConfig(sparsity=[0.0, value])
    with pytest.raises(ConfigError, match=r"^sparsity\.high: .* is outside \[0, 1\)"):
        parse(SearchSpace, {"sparsity": {"low": 0.0, "high": value}})
