"""The per-trial progress line a sweep prints."""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

from nas_prune.config.trial import TrialConfig
from nas_prune.search import record
from nas_prune.search.progress import ProgressLine
from nas_prune.trial.metrics import TrialMetrics
from tests.trial.test_metrics import BASE


def test_one_line_per_trial_with_state_front_and_budgets() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    lines: list[str] = []
    line = ProgressLine(total=4, ref_params=100, log=lines.append)
    ok = TrialMetrics(**BASE, params_nonzero=4, return_mean=200.0)
    record.add_finished(study, state=TrialState.COMPLETE, config=TrialConfig(), out_dir="/a",
                        metrics=ok, values=record.objective_values(ok))
    line(study, study.trials[-1])  # as the backend calls it: after each finished trial
    stopped = TrialMetrics(**BASE, params_nonzero=30, stopped_at="final size (x)",
                           stopped_at_rung=-1)
    record.add_finished(study, state=TrialState.PRUNED, config=TrialConfig(), out_dir="/b",
                        metrics=stopped)
    line(study, study.trials[-1])
    record.add_finished(study, state=TrialState.FAIL, config=TrialConfig(), out_dir=None,
                        attrs={record.FAIL_REASON: "RuntimeError: boom"})
    line(study, study.trials[-1])
    assert len(lines) == 3
    assert lines[0].startswith("[1/4] trial 0 COMPLETE return=200.0 params=4 | front 1")
    assert "<=5%:200" in lines[0] and "<=1%:-" in lines[0]  # 4 params: 4% of 100
    assert lines[1].startswith("[2/4] trial 1 PRUNED stopped at final size (x) (params=30)")
    assert lines[2].startswith("[2/4] trial 2 FAIL RuntimeError: boom")  # not counted
