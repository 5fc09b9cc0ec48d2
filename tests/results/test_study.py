"""Reading trials back: one metrics attribute (Optuna backend) or one per metric (Ray
recorder, baseline, older studies) give the same row."""
from __future__ import annotations

from optuna.trial import create_trial

from nas_prune.results.study import trial_row
from nas_prune.search.record import METRICS_ATTR
from nas_prune.search.record import read as trial_attrs

METRICS = {"return_mean": 480.0, "params_nonzero": 22, "hidden_pruned": [2, 3]}


def test_metrics_attr_and_flat_attrs_read_the_same() -> None:
    one = create_trial(values=[480.0, 22.0],
                       user_attrs={METRICS_ATTR: METRICS, "out_dir": "/x", "rung_0": [22, 1.0]})
    flat = create_trial(values=[480.0, 22.0],
                        user_attrs={**METRICS, "out_dir": "/x", "rung_0": [22, 1.0]})
    assert trial_attrs(one) == trial_attrs(flat) == {**METRICS, "out_dir": "/x",
                                                     "rung_0": [22, 1.0]}
    assert METRICS_ATTR not in trial_row(one)
    assert trial_row(one) == trial_row(flat)
    assert trial_row(one)["hidden_pruned"] == "2,3"


def test_attrs_set_beside_the_metrics_win() -> None:
    # fail_reason is written on its own after the metrics when objectives are non-finite
    t = create_trial(values=[0.0, 1.0], user_attrs={METRICS_ATTR: {"fail_reason": "a"},
                                                    "fail_reason": "b"})
    assert trial_attrs(t)["fail_reason"] == "b"


def test_dense_points_skip_trials_without_a_dense_agent() -> None:
    """Trials trained from scratch (during / sparse) record NaN dense figures: they are no
    dense reference point."""
    import pandas as pd

    from nas_prune.results.study import dense_points

    df = pd.DataFrame({
        "state": ["COMPLETE"] * 3, "hidden": ["[8]", "[8]", "[16]"], "seed": [0, 0, 0],
        "params_dense": [50, 50, 100], "dense_return_mean": [float("nan"), 9.0, float("nan")],
        "params_nonzero": [5, 6, 7], "return_mean": [1.0, 2.0, 3.0]})
    points = dense_points(df)
    assert points["return_mean"].tolist() == [9.0] and points["params_nonzero"].tolist() == [50]
    assert dense_points(df.iloc[[0, 2]]).empty


def test_dense_points_keep_cnn_torsos_apart() -> None:
    import pandas as pd

    from nas_prune.results.study import dense_points

    df = pd.DataFrame({
        "state": ["COMPLETE"] * 3, "hidden": ["128", "128", "128"], "seed": [0, 0, 0],
        "channels": ["16", "8", "16"], "params_dense": [900, 500, 900],
        "dense_return_mean": [5.0, 4.0, 5.0], "params_nonzero": [5, 6, 7],
        "return_mean": [1.0, 2.0, 3.0]})
    assert sorted(dense_points(df)["params_nonzero"].tolist()) == [500, 900]
