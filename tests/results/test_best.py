"""nas_prune.results.best: which front point ``write_best`` picks (knee, --max-params,
--min-return), the YAML it writes, and its errors naming the flag."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nas_prune.config.base import load_yaml, parse
from nas_prune.config.trial import TrialConfig
from nas_prune.results.best import write_best
from tests.conftest import TINY_PPO

# (trial number, params_nonzero, return_mean, reeval_mean). On a log10-params axis the
# front is (2, 10), (3, 400), (4, 450), (5, 500): scaled to the unit square the points sit
# 0, 0.46, 0.23, 0 above the line joining the extremes, so the knee is trial 11.
ROWS = [(10, 100, 10.0, 12.0), (11, 1_000, 400.0, 380.0), (12, 10_000, 450.0, 430.0),
        (13, 100_000, 500.0, 495.0),
        (14, 5_000, 300.0, 290.0)]  # dominated by trial 11: never picked


def _config(seed: int) -> dict[str, Any]:
    data = copy.deepcopy(TINY_PPO)
    data["seed"] = seed  # tells the trials' configs apart
    return parse(TrialConfig, data).model_dump(mode="json")  # type: ignore[no-any-return]


def _front(rows: list[tuple[int, int, float, float]] = ROWS) -> pd.DataFrame:
    return pd.DataFrame({
        "number": [r[0] for r in rows], "params_nonzero": [r[1] for r in rows],
        "return_mean": [r[2] for r in rows], "reeval_mean": [r[3] for r in rows],
        "config": [json.dumps(_config(r[0]), sort_keys=True) for r in rows],
        "eval_seed": [0] * len(rows), "episodes": [5] * len(rows)})


@pytest.mark.parametrize(("max_params", "min_return", "knee", "trial"), [
    (None, None, False, 11),  # no constraint: the knee
    (None, None, True, 11),
    (100, None, True, 11),  # --knee wins over the constraints
    (5_000, None, False, 11),  # highest return within the budget
    (100, None, False, 10),
    (99_999, None, False, 12),
    (10**6, None, False, 13),
    (None, 440.0, False, 12),  # fewest parameters reaching the return
    (None, 10.0, False, 10),
    (None, 500.0, False, 13),
    (None, 300.0, False, 11),  # trial 14 reaches 300 too, but 11 is smaller
    (50_000, 300.0, False, 12),  # both: highest return meeting both
])
def test_picks_the_front_point(tmp_path: Path, max_params: int | None,
                               min_return: float | None, knee: bool, trial: int) -> None:
    out = tmp_path / "best.yaml"
    info = write_best(_front(), "return_mean", max_params=max_params, min_return=min_return,
                      knee=knee, out=out)
    row = {r[0]: r for r in ROWS}[trial]
    assert info == {"trial": trial, "params_nonzero": row[1], "return_mean": row[2],
                    "config": str(out)}
    assert parse(TrialConfig, load_yaml(out)).seed == trial


@pytest.mark.parametrize(("min_return", "trial"), [(440.0, 13), (380.0, 11), (390.0, 12)])
def test_picks_on_the_return_column_given(tmp_path: Path, min_return: float,
                                          trial: int) -> None:
    # on re-evaluated returns trial 12 (430) no longer reaches 440
    info = write_best(_front(), "reeval_mean", max_params=None, min_return=min_return,
                      knee=False, out=tmp_path / "best.yaml")
    row = {r[0]: r for r in ROWS}[trial]
    assert (info["trial"], info["reeval_mean"], info["return_mean"]) == (trial, row[3], row[2])


def test_written_yaml_is_a_standalone_trial_config(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "er" / "best.yaml"  # folders are created
    write_best(_front(), "return_mean", max_params=5_000, min_return=None, knee=False, out=out)
    lines = out.read_text().splitlines()
    assert lines[0] == ("# nas-prune best: trial 11, params_nonzero 1000, return_mean 400.00 "
                        "(eval seed 0, 5 episodes)")
    assert lines[1] == f"# re-run: nas-prune trial {out}"
    cfg = parse(TrialConfig, load_yaml(out))
    assert cfg.model_dump(mode="json") == _config(11)


def test_single_point_front(tmp_path: Path) -> None:
    info = write_best(_front(ROWS[:1]), "return_mean", max_params=None, min_return=None,
                      knee=False, out=tmp_path / "best.yaml")
    assert info["trial"] == 10


@pytest.mark.parametrize(("max_params", "min_return", "start"), [
    (99, None, "--max-params: no trial has params <= 99; closest: params=100, return=10.0"),
    (None, 501.0, "--min-return: no trial has return >= 501.0; closest: params=100000, "
                  "return=500.0"),
    (50, 10.0, "--max-params: no trial has params <= 50 and return >= 10.0"),
])
def test_unreachable_constraint_names_the_flag(tmp_path: Path, max_params: int | None,
                                               min_return: float | None, start: str) -> None:
    out = tmp_path / "best.yaml"
    with pytest.raises(ValueError) as info:
        write_best(_front(), "return_mean", max_params=max_params, min_return=min_return,
                   knee=False, out=out)
    assert str(info.value).startswith(start)
    assert "\n" not in str(info.value)
    assert not out.exists()


def test_unreachable_min_return_with_a_met_budget_names_min_return(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        write_best(_front(), "return_mean", max_params=10**6, min_return=900.0, knee=False,
                   out=tmp_path / "best.yaml")
    assert str(info.value).startswith("--min-return: ")


def test_empty_front(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="^best: the study has no completed trial$"):
        write_best(_front([]), "return_mean", max_params=None, min_return=None, knee=True,
                   out=tmp_path / "best.yaml")


def test_a_config_that_no_longer_validates_is_refused(tmp_path: Path) -> None:
    front = _front(ROWS[:1])
    stale = {**_config(10), "removed_field": 1}
    front["config"] = [json.dumps(stale)]
    with pytest.raises(ValueError):
        write_best(front, "return_mean", max_params=None, min_return=None, knee=True,
                   out=tmp_path / "best.yaml")
