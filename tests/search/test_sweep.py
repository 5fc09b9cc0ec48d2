"""Opening a study for a run (nas_prune.search.sweep): studies that share an out folder
keep their own trial folders, so both fronts stay verifiable and re-evaluable."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nas_prune.cli import app
from nas_prune.config.sweep import load_sweep
from nas_prune.pruning.counting import count_dense
from nas_prune.results.reeval import verify_checkpoints
from nas_prune.results.study import SWEEP_ATTR, complete, trials_frame
from nas_prune.search.storage import load_study
from nas_prune.search.sweep import POPULATION_ATTR, claim_study

runner = CliRunner()


def test_two_studies_in_one_out_folder_keep_their_own_checkpoints(tiny_sweep: Path) -> None:
    data = yaml.safe_load(tiny_sweep.read_text())
    # a second experiment with the same name and out folder, drawn from another seed
    other = tiny_sweep.with_name("other.yaml")
    other.write_text(yaml.safe_dump({**data, "sampler_seed": 7}))
    for sweep, study in ((tiny_sweep, "first"), (other, "second")):
        res = runner.invoke(app, ["sweep", str(sweep), "--study", study])
        assert res.exit_code == 0, res.output
    sw = load_sweep(tiny_sweep)
    assert (sw.out / "first" / "report" / "pareto.csv").is_file()
    assert (sw.out / "second" / "report" / "pareto.csv").is_file()
    folders = {}
    for study in ("first", "second"):
        df = complete(trials_frame(load_study(sw.storage, study)))
        assert len(df) == 4
        verify_checkpoints(df)  # every recorded SHA-256 still matches its file
        folders[study] = set(df["out_dir"])
        assert all(Path(p).parent == sw.out / study / "trials" for p in folders[study])
        for _, row in df.iterrows():  # evaluate repeats the study's own recorded returns
            res = runner.invoke(app, ["evaluate", row["out_dir"]])
            assert res.exit_code == 0, res.output
            recorded = json.loads((Path(row["out_dir"]) / "metrics.json").read_text())
            assert json.loads(res.output)["returns"] == recorded["returns"]
            assert recorded["policy_sha256"] == row["policy_sha256"]
    assert not folders["first"] & folders["second"]
    # the baseline of each study is its own too
    assert (sw.out / "first" / "baseline").is_dir() and (sw.out / "second" / "baseline").is_dir()


def test_claim_records_fingerprint_and_a_population_that_resumes_unchanged(
        tiny_sweep: Path) -> None:
    sw = load_sweep(tiny_sweep)
    study = claim_study(sw, 30)
    assert study.user_attrs[POPULATION_ATTR] == 10
    assert study.user_attrs["fingerprint"] == sw.fingerprint()
    again = claim_study(sw, 4)  # a resume with another total keeps the generation size
    assert again.user_attrs[POPULATION_ATTR] == 10
    assert sw.study_dir.is_dir() and not (sw.out / "trials").exists()


@pytest.mark.parametrize(("agent", "env", "outputs"), [
    ("ppo", "CartPole-v1", 2), ("sac", "Pendulum-v1", 1)])
def test_reference_params_count_the_deployed_outputs(tiny_sweep: Path, agent: str, env: str,
                                                     outputs: int) -> None:
    """The hypervolume's reference is the dense deployed policy, counted as trials count
    theirs: SAC's actor without its log-std rows (Pendulum: 3 inputs, 1 mean)."""
    data = yaml.safe_load(tiny_sweep.read_text())
    data.update(agent={"name": agent, "train_steps": 1024}, env={"id": env})
    tiny_sweep.write_text(yaml.safe_dump(data))
    study = claim_study(load_sweep(tiny_sweep), 4)
    n_obs = 4 if env == "CartPole-v1" else 3
    assert study.user_attrs[SWEEP_ATTR]["ref_params"] == count_dense([n_obs, 16, 16, outputs])
