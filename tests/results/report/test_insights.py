"""The insights data: the winner per parameter budget (table-driven), Optuna importances
per objective, the reuse commands."""
from __future__ import annotations

import math
import shlex

import optuna
import pandas as pd
import pytest

from nas_prune.results.report.insights import (
    BUDGETS,
    budget_wins,
    importance_evaluator,
    param_importances,
    reuse_commands,
)

REF = 1000  # reference parameters: budgets of 10, 50, 100, 250


def _front(rows: list[tuple[int, float, str]], reeval: list[float] | None = None
           ) -> pd.DataFrame:
    df = pd.DataFrame([{"number": i, "params_nonzero": p, "return_mean": r, "method": m,
                        "schedule": "gradual", "finetune_mode": "distill",
                        "hidden": "64,64", "hidden_pruned": f"{i},{i}"}
                       for i, (p, r, m) in enumerate(rows)])
    if reeval is not None:
        df["reeval_mean"] = reeval
    return df.iloc[::-1]  # unsorted on purpose


@pytest.mark.parametrize(("rows", "reeval", "winners"), [
    # one point per budget band: each budget takes the best return that fits
    ([(8, 10.0, "a"), (40, 50.0, "b"), (90, 90.0, "c"), (240, 200.0, "d")], None,
     [0, 1, 2, 3]),
    # nothing fits under 1%; a larger point beats a smaller one only where it fits
    ([(30, 20.0, "a"), (200, 150.0, "b"), (900, 300.0, "c")], None, [None, 0, 0, 1]),
    # the budget is inclusive: exactly 5% of 1000 fits under 5%
    ([(50, 80.0, "a"), (51, 90.0, "b")], None, [None, 0, 1, 1]),
    # re-evaluated means decide where the rows have them
    ([(40, 100.0, "a"), (45, 120.0, "b")], [110.0, 95.0], [None, 0, 0, 0]),
    # a tie in return goes to the smaller point
    ([(60, 70.0, "a"), (20, 70.0, "b")], None, [None, 1, 1, 1]),
    # a non-finite return never wins
    ([(5, math.nan, "a"), (9, 3.0, "b")], None, [1, 1, 1, 1]),
    # no trial at all (a study whose trials all failed)
    ([], None, [None, None, None, None]),
])
def test_budget_winners(rows: list[tuple[int, float, str]], reeval: list[float] | None,
                        winners: list[int | None]) -> None:
    front = _front(rows, reeval)
    wins = budget_wins(front, REF)
    assert list(wins["budget"]) == list(BUDGETS)
    assert list(wins["max_params"]) == [f * REF for f in BUDGETS]
    col = "reeval_mean" if reeval is not None else "return_mean"
    for (_, win), want in zip(wins.iterrows(), winners):
        if want is None:
            assert math.isnan(win["number"]) and math.isnan(win["return"])
            continue
        src = front[front["number"] == want].iloc[0]
        assert win["number"] == want
        assert win["return"] == src[col]
        assert win["params_nonzero"] == src["params_nonzero"] <= win["max_params"]
        assert (win["method"], win["hidden_pruned"]) == (src["method"], f"{want},{want}")


def _study(n: int, value: object) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(value, n_trials=n)  # type: ignore[arg-type]
    return study


def _objective(t: optuna.Trial) -> tuple[float, float]:
    # return: only x > 0.8 scores, y adds a tie-breaking trickle; params: z alone
    x, y = t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)
    z = t.suggest_float("z", 0, 1)
    return 10 * max(x - 0.8, 0.0) + 0.01 * y, 100 * z


def test_importances_name_each_objectives_driver() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = [("return_mean", "maximize"), ("params_nonzero", "minimize")]
    got = param_importances(_study(60, _objective), objectives)
    assert [g.objective for g in got] == ["return_mean", "params_nonzero"]
    _, name = importance_evaluator()
    for imp, driver in zip(got, ["x", "z"]):
        assert imp.evaluator == name and imp.note == ""
        assert set(imp.values) == {"x", "y", "z"}
        assert max(imp.values, key=imp.values.__getitem__) == driver
        assert sum(imp.values.values()) == pytest.approx(1.0)


def test_too_few_trials_give_a_note_not_figures() -> None:
    objectives = [("return_mean", "maximize"), ("params_nonzero", "minimize")]
    got = param_importances(_study(3, _objective), objectives, min_trials=5)
    assert [g.values for g in got] == [{}, {}]
    assert all("too few complete trials (3" in g.note for g in got)


def test_an_empty_study_gives_notes() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    got = param_importances(study, [("return_mean", "maximize"), ("params", "minimize")])
    assert len(got) == 2 and all(g.values == {} and g.note for g in got)


def test_reuse_commands_quote_paths_and_hide_passwords() -> None:
    knee = {"number": 3, "out_dir": "/runs/my out/s/trials/00003"}
    cmds = reuse_commands(knee, storage="postgresql+psycopg://me:s3cret@db:5432/x", study="s",
                          dense_cache="/runs/my out/dense")
    assert len(cmds) == 3 and "s3cret" not in " ".join(cmds)
    best = shlex.split(cmds[0])
    assert best[:2] == ["nas-prune", "best"] and best[-3:] == ["--knee", "--out", "best.yaml"]
    assert best[best.index("--storage") + 1] == "postgresql+psycopg://me:***@db:5432/x"
    assert best[best.index("--study") + 1] == "s"
    assert shlex.split(cmds[1]) == ["nas-prune", "trial", "best.yaml", "--cache",
                                    "/runs/my out/dense"]
    assert shlex.split(cmds[2]) == ["nas-prune", "export", knee["out_dir"], "--format", "onnx"]
    assert reuse_commands(None, storage="x.journal", study="s") == []
    assert reuse_commands({"out_dir": None}, storage="x.journal", study="s")[1:] == [
        "nas-prune trial best.yaml"]  # no cache recorded, no trial folder: no export


def test_trials_without_searched_parameters_give_a_note() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for v in range(6):  # recorded results without parameters (as a backend may add them)
        study.add_trial(optuna.trial.create_trial(values=[float(v), 10.0 - v]))
    got = param_importances(study, [("return_mean", "maximize"), ("params", "minimize")])
    assert all(g.values == {} and "no searched parameter" in g.note for g in got)
