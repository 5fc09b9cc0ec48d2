"""Generation-synchronous sampling: the same sweep file gives the same trials and the same
front for any number of workers, and a resumed sweep the trials of one longer run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from nas_prune.cli import app
from nas_prune.config.sweep import load_sweep
from nas_prune.search.generations import GENERATION_ATTR, population_size, sample_generation
from nas_prune.search.record import read as trial_attrs
from nas_prune.search.storage import load_study

runner = CliRunner()
# measured, not computed: they differ between runs (and which worker trained the shared
# dense agent first is timing too: its cost, not its result)
# latency is a measurement too: same seed, same weights, not the same microseconds
TIMING = {"wall_s", "dense_wall_s", "dense_cached", "out_dir", "latency_us", "latency_iqr_us"}


def _sweep(tmp: Path, out: str, **extra: Any) -> Path:
    data = yaml.safe_load((tmp / "sweep.yaml").read_text())
    data.update(out=str(tmp / out), trials=8, **extra)
    path = tmp / f"{out}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _record(sweep: Path) -> list[tuple[Any, ...]]:
    sw = load_sweep(sweep)
    rows = []
    for t in load_study(sw.storage, sw.study).trials:
        metrics = {k: v for k, v in trial_attrs(t).items() if k not in TIMING}
        rows.append((t.number, t.state.name, t.params, t.values, metrics))
    return rows


def test_one_and_two_workers_and_a_resume_give_identical_trials(tiny_sweep: Path) -> None:
    tmp = tiny_sweep.parent
    # early stopping on (a rung every trial reports): its decisions must not break it
    es = {"early_stop": {"rungs": [0.5], "min_dominators": 1, "episodes": 2}}
    one = _sweep(tmp, "one", **es)
    two = _sweep(tmp, "two", **es)
    res = runner.invoke(app, ["sweep", str(one), "--workers", "1"])
    assert res.exit_code == 0, res.output
    for trials in ("3", "8"):  # two workers, stopped after 3 trials and resumed
        res = runner.invoke(app, ["sweep", str(two), "--workers", "2", "--trials", trials])
        assert res.exit_code == 0, res.output
    a, b = _record(one), _record(two)
    assert len(a) == len(b) == 8
    assert [r[:2] for r in a] == [r[:2] for r in b]
    for ra, rb in zip(a, b):
        assert ra == rb, (ra[0], ra[4].keys() ^ rb[4].keys())
    assert {r[4][GENERATION_ATTR] for r in a} == {0, 1}  # population 4: two generations
    front_a = pd.read_csv(tmp / "one" / "tiny" / "report" / "pareto.csv")
    front_b = pd.read_csv(tmp / "two" / "tiny" / "report" / "pareto.csv")
    cols = ["number", "params_nonzero", "return_mean", "reeval_mean"]
    pd.testing.assert_frame_equal(front_a[cols], front_b[cols])


def _finished(number: int, generation: int, value: float) -> optuna.trial.FrozenTrial:
    dist = optuna.distributions.FloatDistribution(0.05, 1.0, log=True)
    trial = optuna.trial.create_trial(
        params={"sparsity_0_density": 0.1 + 0.1 * (number % 8), "sparsity_1_density":
                0.9 - 0.1 * (number % 8), "sparsity_2_density": 0.5,
                "method": ["importance", "magnitude"][number % 2], "hidden": "8",
                "finetune_mode": ["rl", "distill"][number // 2 % 2]},
        distributions={"sparsity_0_density": dist, "sparsity_1_density": dist,
                       "sparsity_2_density": dist,
                       "method": optuna.distributions.CategoricalDistribution(
                           ["importance", "magnitude"]),
                       "hidden": optuna.distributions.CategoricalDistribution(["16,16", "8"]),
                       "finetune_mode": optuna.distributions.CategoricalDistribution(
                           ["rl", "distill"])},
        values=[value, 10.0 + number], user_attrs={GENERATION_ATTR: generation})
    trial.number = number
    return trial


@pytest.mark.parametrize("sampler", ["nsga2", "tpe", "random"])
def test_a_generation_depends_on_earlier_generations_only(tiny_sweep: Path,
                                                          sampler: str) -> None:
    data = yaml.safe_load(tiny_sweep.read_text())
    tiny_sweep.write_text(yaml.safe_dump({**data, "sampler": sampler}))
    sw = load_sweep(tiny_sweep)
    history = [_finished(n, n // 4, float(n)) for n in range(8)]  # generations 0 and 1
    later = [_finished(n, 2, 100.0 + n) for n in range(8, 10)]  # generation 2, done early
    first = sample_generation(sw, history, 2, 4, 4)
    assert sample_generation(sw, history + later, 2, 4, 4) == first
    assert sample_generation(sw, list(reversed(history)), 2, 4, 4) == first
    assert len(first) == 4 and len({str(p) for p in first}) > 1
    if sampler == "nsga2":  # the elite of generations 0 and 1 are generation 2's parents
        # (TPE samples at random for its first 10 trials: 8 finished ones do not steer it)
        flipped = [_finished(n, n // 4, float(-n)) for n in range(8)]
        assert sample_generation(sw, flipped, 2, 4, 4) != first
    assert sample_generation(sw, history, 3, 4, 4) != first  # each generation its own draw


@pytest.mark.parametrize("trials, expected", [(1, 4), (12, 4), (20, 6), (60, 20),
                                              (600, 50)])
def test_population_is_a_third_of_the_budget_within_4_to_50(trials: int,
                                                            expected: int) -> None:
    assert population_size(trials) == expected
