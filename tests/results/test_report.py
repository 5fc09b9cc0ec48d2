"""Tests for nas_prune.report: files written, HTML self-contained and escaped, PNG, terminal."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas_prune.results import pareto
from nas_prune.results.report import ReportData, html_report, render, state_counts, terminal_table

EVIL = "<script>alert(1)</script>"
DENSE_PARAMS = 4610  # CartPole MLP 4-64-64-2
# (params_nonzero, return_mean) per trial; trials 3 and 7 fail. Front: 0, 2, 5, 8.
POINTS = [
    (300, 50.0), (500, 40.0), (800, 180.0), (None, None), (1200, 150.0), (1500, 320.0),
    (2000, 300.0), (None, None), (2600, 480.0), (3300, 470.0), (4100, 460.0), (4600, 400.0),
]
FRONT_NUMBERS = [0, 2, 5, 8]
FRONT_PARAMS = [300, 800, 1500, 2600]


def _trials() -> pd.DataFrame:
    rows = []
    for n, (params, ret) in enumerate(POINTS):
        failed = params is None
        rows.append({
            "number": n,
            "state": "FAIL" if failed else "COMPLETE",
            "params_nonzero": np.nan if failed else float(params),
            "return_mean": np.nan if failed else ret,
            "return_iqm": np.nan if failed else ret + 2.0,
            "return_std": np.nan if failed else 12.5,
            "method": EVIL if n == 5 else "magnitude",
            "schedule": "cubic",
            "finetune_mode": "interleaved",
            "hidden": "64,64",
            "layer_sparsity": "0.5,0.7,0.1",
            "sparsity": np.nan if failed else 1.0 - params / DENSE_PARAMS,
            "wall_s": 3.0,
            "env_steps": 10_000,
            "params": float(DENSE_PARAMS),
            "fail_reason": "diverged" if failed else None,
        })
    return pd.DataFrame(rows)


def _front(trials: pd.DataFrame, *, reeval: bool) -> pd.DataFrame:
    done = trials[trials["state"] == "COMPLETE"].reset_index(drop=True)
    idx = pareto.front_indices(done["params_nonzero"], done["return_mean"])
    front = done.iloc[idx].reset_index(drop=True)
    if reeval:
        front["reeval_mean"] = front["return_mean"] - 5.0
        front["reeval_iqm"] = front["return_mean"] - 3.0
        front["reeval_ci_lo"] = front["reeval_iqm"] - 10.0
        front["reeval_ci_hi"] = front["reeval_iqm"] + 10.0
        front["reeval_episodes"] = 100
        front["policy_sha256"] = "ab" * 32
    return front


def _hypervolume(front: pd.DataFrame, baseline: pd.DataFrame) -> dict[str, float]:
    kwargs = {"ref_params": DENSE_PARAMS, "ref_return": 0.0, "max_return": 500.0,
              "log_params": True}
    searched = pareto.normalized_hypervolume(front["params_nonzero"], front["return_mean"],
                                             **kwargs)
    base = pareto.normalized_hypervolume(baseline["params_nonzero"], baseline["return_mean"],
                                         **kwargs)
    return {"searched": searched, "baseline": base, "ratio": searched / base,
            "ref_params": DENSE_PARAMS, "ref_return": 0.0}


def _full_data() -> ReportData:
    trials = _trials()
    front = _front(trials, reeval=True)
    baseline = pd.DataFrame({
        "params_nonzero": [461.0, 922.0, 2305.0],
        "return_mean": [30.0, 200.0, 470.0],
        "sparsity": [0.9, 0.8, 0.5],
    })
    dense = pd.DataFrame({"params_nonzero": [float(DENSE_PARAMS)], "return_mean": [495.0],
                          "hidden": ["64,64"], "seed": [0]})
    return ReportData(
        title="cartpole_quick: dqn on CartPole-v1",
        trials=trials,
        front=front.iloc[::-1],  # deliberately unsorted: render must sort by params
        dense=dense,
        baseline=baseline,
        hypervolume=_hypervolume(front, baseline),
        notes=["reference point: dense 64,64 params, return 0 & <floor>"],
    )


@pytest.fixture(scope="module")
def full() -> ReportData:
    return _full_data()


@pytest.fixture(scope="module")
def rendered(full: ReportData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return render(full, tmp_path_factory.mktemp("report") / "nested" / "out")


def test_fixture_front_has_four_points(full: ReportData) -> None:
    assert sorted(full.front["number"]) == FRONT_NUMBERS


def test_render_writes_all_four_files(rendered: dict[str, Path]) -> None:
    assert set(rendered) == {"trials_csv", "pareto_csv", "html", "png"}
    names = {key: path.name for key, path in rendered.items()}
    assert names == {"trials_csv": "trials.csv", "pareto_csv": "pareto.csv",
                     "html": "report.html", "png": "pareto.png"}
    for path in rendered.values():
        assert path.is_file() and path.stat().st_size > 0


def test_trials_csv_round_trips(rendered: dict[str, Path], full: ReportData) -> None:
    back = pd.read_csv(rendered["trials_csv"])
    assert len(back) == 12
    assert list(back["number"]) == list(range(12))
    assert (back["state"] == "FAIL").sum() == 2
    assert back.loc[5, "method"] == EVIL
    np.testing.assert_allclose(back["return_mean"], full.trials["return_mean"])


def test_pareto_csv_is_front_in_ascending_params(rendered: dict[str, Path]) -> None:
    back = pd.read_csv(rendered["pareto_csv"])
    assert list(back["number"]) == FRONT_NUMBERS
    assert list(back["params_nonzero"]) == FRONT_PARAMS
    assert "reeval_iqm" in back.columns


def test_html_is_self_contained(rendered: dict[str, Path]) -> None:
    text = rendered["html"].read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*\bsrc\s*=", text) == []  # no CDN or any external script
    assert len(text) > 1_000_000  # plotly.js (~4.8 MB) is inlined
    assert "cartpole_quick: dqn on CartPole-v1" in text


def test_html_header_and_front_table(rendered: dict[str, Path], full: ReportData) -> None:
    text = rendered["html"].read_text(encoding="utf-8")
    ratio = full.hypervolume["ratio"]
    assert f"ratio {ratio:.3f}" in text
    assert "12 trials: 10 COMPLETE, 0 PRUNED, 2 FAIL, 0 RUNNING" in text
    assert "&lt;floor&gt;" in text  # notes escaped
    table = text[text.index('<table id="front"'):]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    for params in FRONT_PARAMS:
        assert f"{params:,}" in cells
    assert "re-eval 95% CI" in table
    assert "[467.0, 487.0]" in cells  # trial 8: re-eval IQM 477 +- 10


def test_html_escapes_user_text(rendered: dict[str, Path]) -> None:
    text = rendered["html"].read_text(encoding="utf-8")
    assert EVIL not in text
    table = text[text.index('<table id="front"'):]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in table


def test_png_is_a_real_image(rendered: dict[str, Path]) -> None:
    raw = rendered["png"].read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(raw) > 10_000
    width, height = struct.unpack(">II", raw[16:24])  # IHDR
    assert (width, height) == (840, 540)  # figsize (7, 4.5) at 120 dpi


def test_terminal_table(full: ReportData) -> None:
    text = terminal_table(full)
    for params in FRONT_PARAMS:
        assert f"{params:,}" in text
    assert "10 COMPLETE" in text and "2 FAIL" in text
    assert f"ratio {full.hypervolume['ratio']:.3f}" in text
    assert "477.0 [467.0, 487.0]" in text
    assert "<script>alert(" in text  # plain text: shown verbatim (the cell may fold)
    # front rows appear in ascending params order
    positions = [text.index(f"{p:,}") for p in FRONT_PARAMS]
    assert positions == sorted(positions)


def test_minimal_data_renders_without_optional_parts(tmp_path: Path) -> None:
    trials = _trials().drop(columns=["params", "fail_reason"])
    data = ReportData(title="minimal", trials=trials, front=_front(trials, reeval=False),
                      dense=pd.DataFrame(), baseline=pd.DataFrame(), hypervolume={}, notes=[])
    paths = render(data, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths.values())
    text = paths["html"].read_text(encoding="utf-8")
    assert "re-eval" not in text[text.index('<table id="front"'):]
    assert "hypervolume" not in text.lower().split("<script")[0]
    terminal = terminal_table(data)
    assert "re-eval" not in terminal and "hypervolume" not in terminal
    assert "1,500" in terminal


def test_empty_sweep_still_renders(tmp_path: Path) -> None:
    data = ReportData(title="nothing yet", trials=pd.DataFrame(), front=pd.DataFrame())
    paths = render(data, tmp_path)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert "0 trials" in paths["html"].read_text(encoding="utf-8")
    assert "0 trials" in terminal_table(data)


def test_state_counts_orders_known_states_first() -> None:
    trials = pd.DataFrame({"state": ["FAIL", "COMPLETE", "WAITING", "PRUNED", "COMPLETE"]})
    assert state_counts(trials) == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1, "RUNNING": 0,
                                    "WAITING": 1}


def test_missing_required_column_is_a_clear_error() -> None:
    trials = _trials().drop(columns=["return_mean"])
    with pytest.raises(ValueError, match="trials lacks columns \\['return_mean'\\]"):
        ReportData(title="bad", trials=trials, front=pd.DataFrame())


def test_html_report_hover_has_reeval_figures(full: ReportData) -> None:
    text = html_report(full)
    assert "re-eval mean 475.0, IQM 477.0, 95% CI [467.0, 487.0]" in text
