"""One writer and one reader of a trial's record, for the Optuna backend, the Ray backend
and the baseline alike; studies written by 0.1.0 (one attribute per metric) read the same."""
from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nas_prune.config.trial import TrialConfig
from nas_prune.search import record
from nas_prune.trial.metrics import TrialMetrics
from tests.trial.test_metrics import BASE


def _study() -> optuna.Study:
    return optuna.create_study(directions=["maximize", "minimize"])


def test_running_and_finished_writers_give_the_same_record() -> None:
    cfg = TrialConfig()
    metrics = TrialMetrics(**BASE, params_nonzero=12, return_mean=99.5)
    study = _study()
    trial = study.ask()
    record.write_running(trial, cfg, "/x/00000", metrics)  # the Optuna backend
    study.tell(trial, record.objective_values(metrics))
    record.add_finished(study, state=TrialState.COMPLETE, config=cfg, out_dir="/x/00000",
                        metrics=metrics, values=record.objective_values(metrics),
                        params={"s": 0.5}, distributions={"s": FloatDistribution(0, 1)})
    a, b = (record.read(t) for t in study.trials)
    assert a == b  # the same record, whoever wrote it
    assert a["return_mean"] == 99.5 and a["config"]["seed"] == 0 and a["out_dir"] == "/x/00000"
    assert set(study.trials[0].user_attrs) == {record.METRICS_ATTR}  # one storage write
    assert record.read_metrics(study.trials[1]) == metrics
    assert record.objective_values(metrics) == [99.5, 12.0]  # return up, params down


def test_a_failed_trial_keeps_its_config_and_reason() -> None:
    study = _study()
    record.add_finished(study, state=TrialState.FAIL, config=TrialConfig(), out_dir=None,
                        attrs={record.FAIL_REASON: "RuntimeError: boom"})
    attrs = record.read(study.trials[0])
    assert attrs[record.FAIL_REASON] == "RuntimeError: boom" and "config" in attrs
    assert record.read_metrics(study.trials[0]) is None


def test_a_study_written_one_attribute_per_metric_reads_the_same() -> None:
    # nas_prune 0.1.0's Ray recorder and baseline wrote each metric as its own attribute
    flat = {**BASE, "params_nonzero": 12, "return_mean": 99.5, "out_dir": "/x/1"}
    study = _study()
    study.add_trial(create_trial(values=[99.5, 12.0], user_attrs=flat))
    attrs = record.read(study.trials[0])
    assert attrs["return_mean"] == 99.5 and attrs["out_dir"] == "/x/1"
    m = record.read_metrics(study.trials[0])
    assert m is not None and m.params_nonzero == 12
