"""Re-evaluation of saved policies on fresh seeds: repeatable, cached in the study by
checkpoint SHA-256, and refused for a checkpoint that changed after its trial."""
from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest

from nas_prune import TrialConfig, run_trial
from nas_prune.config.base import load_yaml
from nas_prune.results.reeval import (
    DENSE_REEVAL_ATTR,
    LATENCY_ATTR,
    REEVAL_ATTR,
    reeval_policy,
    reevaluate,
    reevaluate_dense,
    remeasure_latency,
    verify_checkpoints,
    with_dense_reeval,
    with_latency,
    with_reeval,
)
from nas_prune.trial.dense_cache import dense_key
from tests.conftest import TINY_PPO


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("reeval") / "00000"
    m = run_trial(TrialConfig.model_validate(TINY_PPO), out=out).metrics
    assert m.policy_sha256 is not None
    return out, m.policy_sha256


def test_same_policy_same_seeds_same_figures(saved: tuple[Path, str]) -> None:
    out, sha = saved
    a = reeval_policy(out, seeds=2, episodes=3)
    assert a == reeval_policy(out, seeds=2, episodes=3)
    assert a["n"] == 6 and a["sha256"] == sha and a["ci_lo"] <= a["iqm"] <= a["ci_hi"]


def test_results_are_cached_in_the_study_by_checkpoint(saved: tuple[Path, str]) -> None:
    out, sha = saved
    study = optuna.create_study(directions=["maximize", "minimize"])
    rows = pd.DataFrame({"number": [0], "out_dir": [str(out)], "policy_sha256": [sha]})
    store = reevaluate(study, rows, seeds=1, episodes=2)
    assert study.user_attrs[REEVAL_ATTR] == store and store["0"]["n"] == 2
    study.set_user_attr(REEVAL_ATTR, {"0": {**store["0"], "mean": -1.0}})  # a marker
    assert reevaluate(study, rows, seeds=1, episodes=2)["0"]["mean"] == -1.0  # reused
    assert reevaluate(study, rows, seeds=1, episodes=3)["0"]["n"] == 3  # other budget: redone
    assert with_reeval(rows, store).loc[0, "reeval_episodes"] == 2


def test_a_changed_checkpoint_is_refused(saved: tuple[Path, str], tmp_path: Path) -> None:
    out, sha = saved
    rows = pd.DataFrame({"number": [0], "out_dir": [str(out)], "policy_sha256": ["0" * 64]})
    with pytest.raises(ValueError, match="does not match its recorded SHA-256"):
        verify_checkpoints(rows)
    missing = rows.assign(out_dir=str(tmp_path / "nowhere"), policy_sha256=sha)
    with pytest.raises(ValueError, match="is missing"):
        verify_checkpoints(missing)


def test_latency_is_re_measured_once_and_kept_in_the_study(saved: tuple[Path, str]) -> None:
    out, sha = saved
    study = optuna.create_study(directions=["maximize", "minimize"])
    rows = pd.DataFrame({"number": [0], "out_dir": [str(out)], "policy_sha256": [sha]})
    store = remeasure_latency(study, rows, runs=2)
    entry = store["0"]
    assert entry["us"] > 0 and entry["runs"] == 2 and entry["sha256"] == sha
    assert entry["method"] in ("onnxruntime", "torch")
    study.set_user_attr(LATENCY_ATTR, {"0": {**entry, "us": -1.0}})  # a marker
    assert remeasure_latency(study, rows, runs=2)["0"]["us"] == -1.0  # kept, not re-measured
    assert remeasure_latency(study, rows, runs=3)["0"]["us"] > 0  # other runs: measured again
    shown = with_latency(rows, study.user_attrs[LATENCY_ATTR])
    assert shown.loc[0, "latency_remeasured_us"] == study.user_attrs[LATENCY_ATTR]["0"]["us"]


@pytest.fixture(scope="module")
def unpruned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A trial that keeps its dense agent as it is (sparsity 0, no fine-tuning): its saved
    policy is the cached dense agent, so the two re-evaluations must agree."""
    root = tmp_path_factory.mktemp("dense_reeval")
    cfg = TrialConfig.model_validate({**TINY_PPO, "pruning": {
        "method": "magnitude", "sparsity": 0.0, "finetune": {"steps": 0}}})
    m = run_trial(cfg, cache_dir=root / "dense", out=root / "00000").metrics
    dense = pd.DataFrame({"params_nonzero": [m.params_dense], "return_mean":
                          [m.dense_return_mean], "hidden": ["16,16"], "seed": [0],
                          "out_dir": [str(root / "00000")]})
    return root, dense


def test_the_dense_agent_is_re_evaluated_on_the_fronts_episodes(
        unpruned: tuple[Path, pd.DataFrame]) -> None:
    root, dense = unpruned
    study = optuna.create_study(directions=["maximize", "minimize"])
    store = reevaluate_dense(study, dense, root / "dense", seeds=2, episodes=3)
    assert study.user_attrs[DENSE_REEVAL_ATTR] == store and len(store) == 1
    (entry,) = store.values()
    front_entry = reeval_policy(root / "00000", seeds=2, episodes=3)
    # the pruned trial's policy is its dense agent: same network, same episodes, same figures
    assert {k: entry[k] for k in ("mean", "iqm", "n")} == \
        {k: front_entry[k] for k in ("mean", "iqm", "n")}
    front = pd.DataFrame({"number": [0], "hidden": ["16,16"], "seed": [0],
                          "reeval_iqm": [front_entry["iqm"] / 2]})
    dense_rows, front_rows = with_dense_reeval(dense, front, store)
    assert dense_rows.loc[0, "reeval_iqm"] == entry["iqm"]
    assert dense_rows.loc[0, "reeval_episodes"] == 6
    if entry["iqm"]:
        assert front_rows.loc[0, "reeval_iqm_pct_dense"] == pytest.approx(50.0)


def test_dense_reevaluations_are_cached_by_file_and_budget(
        unpruned: tuple[Path, pd.DataFrame]) -> None:
    root, dense = unpruned
    study = optuna.create_study(directions=["maximize", "minimize"])
    (key, entry), = reevaluate_dense(study, dense, root / "dense", seeds=1, episodes=2).items()
    study.set_user_attr(DENSE_REEVAL_ATTR, {key: {**entry, "mean": -1.0}})  # a marker
    assert reevaluate_dense(study, dense, root / "dense", seeds=1, episodes=2)[key]["mean"] \
        == -1.0  # reused
    assert reevaluate_dense(study, dense, root / "dense", seeds=1, episodes=3)[key]["n"] == 3
    study.set_user_attr(DENSE_REEVAL_ATTR, {key: {**entry, "mean": -1.0, "sha256": "0" * 64}})
    assert reevaluate_dense(study, dense, root / "dense", seeds=1, episodes=2)[key]["mean"] \
        == entry["mean"]  # another cached file: redone


def test_without_the_dense_cache_nothing_is_claimed(unpruned: tuple[Path, pd.DataFrame],
                                                    tmp_path: Path) -> None:
    _, dense = unpruned
    study = optuna.create_study(directions=["maximize", "minimize"])
    for cache in (None, tmp_path / "moved"):
        assert reevaluate_dense(study, dense, cache, seeds=1, episodes=2) == {}
    front = pd.DataFrame({"number": [0], "hidden": ["16,16"], "seed": [0], "reeval_iqm": [1.0]})
    dense_rows, front_rows = with_dense_reeval(dense, front, {})
    assert dense_rows["reeval_iqm"].isna().all()
    assert front_rows["reeval_iqm_pct_dense"].isna().all()


def test_no_percentage_of_a_dense_return_at_or_below_zero(
        unpruned: tuple[Path, pd.DataFrame]) -> None:
    """-150 over -140 would read 107% for a worse policy: no figure is given instead."""
    root, dense = unpruned
    key = dense_key(TrialConfig.model_validate(load_yaml(root / "00000" / "config.yaml")))
    front = pd.DataFrame({"number": [0, 1], "hidden": ["16,16"] * 2, "seed": [0, 0],
                          "reeval_iqm": [-150.0, 5.0]})
    for ref in (-140.0, 0.0):
        _, got = with_dense_reeval(dense, front, {key: {"iqm": ref}})
        assert got["reeval_iqm_pct_dense"].isna().all()
    _, got = with_dense_reeval(dense, front, {key: {"iqm": 10.0}})
    assert got["reeval_iqm_pct_dense"].tolist() == pytest.approx([-1500.0, 50.0])
