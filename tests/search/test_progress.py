"""A sweep's progress: the per-trial line log, and the live bar on a terminal."""
from __future__ import annotations

import io

import optuna
from optuna.trial import TrialState
from rich.console import Console

from nas_prune.config.trial import TrialConfig
from nas_prune.search import record
from nas_prune.search.progress import ProgressBar, ProgressLine, sweep_progress, use_bar
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


def _three_trials(study: optuna.Study, callback: object) -> None:
    """A COMPLETE, a PRUNED and a FAIL trial, each handed to ``callback`` as it finishes."""
    ok = TrialMetrics(**BASE, params_nonzero=4, return_mean=200.0)
    record.add_finished(study, state=TrialState.COMPLETE, config=TrialConfig(), out_dir="/a",
                        metrics=ok, values=record.objective_values(ok))
    callback(study, study.trials[-1])  # type: ignore[operator]
    stopped = TrialMetrics(**BASE, params_nonzero=30, stopped_at="final size (x)",
                           stopped_at_rung=-1)
    record.add_finished(study, state=TrialState.PRUNED, config=TrialConfig(), out_dir="/b",
                        metrics=stopped)
    callback(study, study.trials[-1])  # type: ignore[operator]
    record.add_finished(study, state=TrialState.FAIL, config=TrialConfig(), out_dir=None,
                        attrs={record.FAIL_REASON: "RuntimeError: boom"})
    callback(study, study.trials[-1])  # type: ignore[operator]


def test_a_terminal_gets_the_bar_anything_else_the_lines() -> None:
    assert use_bar(Console(file=io.StringIO(), force_terminal=True))
    assert not use_bar(Console(file=io.StringIO()))  # a pipe, a log file, CI
    assert not use_bar(Console(file=io.StringIO(), force_terminal=False))


def test_a_pipe_gets_the_line_log() -> None:
    out, lines = io.StringIO(), list[str]()
    with sweep_progress(4, 100, lines.append, console=Console(file=out)) as progress:
        assert isinstance(progress, ProgressLine)
        _three_trials(optuna.create_study(directions=["maximize", "minimize"]), progress)
    assert [ln.split(" | ")[0] for ln in lines] == [
        "[1/4] trial 0 COMPLETE return=200.0 params=4", "[2/4] trial 1 PRUNED stopped at "
        "final size (x) (params=30)", "[2/4] trial 2 FAIL RuntimeError: boom"]
    assert out.getvalue() == ""  # no bar drawn


def test_a_terminal_gets_a_live_bar_with_done_total_eta_and_front() -> None:
    out, lines = io.StringIO(), list[str]()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    with sweep_progress(4, 100, lines.append, console=console) as progress:
        assert isinstance(progress, ProgressBar)
        _three_trials(optuna.create_study(directions=["maximize", "minimize"]), progress)
        task = progress.progress.tasks[0]
        assert (task.completed, task.total) == (2, 4)  # the FAIL is retried: not done
        assert task.fields["front"] == 1
        assert task.fields["best"] == "<=1%:- <=5%:200 <=10%:200 <=25%:200"
        assert task.fields["eta"].endswith(" min")
    text = out.getvalue()
    assert lines == []  # no line log on a terminal
    assert "2/4" in text and "front 1" in text and "ETA " in text
    assert "trial 2 FAIL RuntimeError: boom" in text  # failures still say why
