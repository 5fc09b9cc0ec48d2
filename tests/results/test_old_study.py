"""A study written by nas_prune 0.1.0 (tests/fixtures/study_v0_1: journal, trial and baseline
folders, recorded under another absolute path) still reads, reports, re-evaluates and gives
``best`` from wherever its folder now lies."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nas_prune.cli import app
from nas_prune.results.summary import summarize

FIXTURE = Path(__file__).parents[1] / "fixtures" / "study_v0_1"
runner = CliRunner()


@pytest.fixture
def old(tmp_path: Path) -> Path:
    copy = tmp_path / "moved" / "old_study"
    shutil.copytree(FIXTURE, copy)
    return copy


def test_old_study_reads_with_its_front_and_reevaluation(old: Path) -> None:
    summary = summarize(str(old / "study.journal"), "old_study", reeval=True)
    data = summary.data
    assert len(data.trials) == 5 and set(data.trials["state"]) == {"COMPLETE"}
    assert len(data.baseline) == 2
    assert not data.front.empty and data.front["reeval_mean"].notna().all()
    # the trial folders were found in the copy, not at the recorded /tmp/fx path
    assert all(str(old) in p for p in data.front["out_dir"])
    assert summary.report_dir == old / "report"  # its old default, where it now lies
    assert data.hypervolume["ratio"] > 0


def test_old_study_report_best_and_evaluate(old: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["report", "--storage", str(old / "study.journal"),
                              "--study", "old_study", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    front = pd.read_csv(tmp_path / "r" / "pareto.csv")
    assert len(front) >= 1 and front["reeval_mean"].notna().all()
    best = tmp_path / "best.yaml"
    res = runner.invoke(app, ["best", "--storage", str(old / "study.journal"), "--study",
                              "old_study", "--knee", "--out", str(best)])
    assert res.exit_code == 0, res.output
    chosen = json.loads(res.output.strip().splitlines()[-1])
    trial = old / "trials" / f"{chosen['trial']:05d}"
    recorded = json.loads((trial / "metrics.json").read_text())
    res = runner.invoke(app, ["evaluate", str(trial)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["returns"] == recorded["returns"]
    assert chosen["return_mean"] == recorded["return_mean"]
