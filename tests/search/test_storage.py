"""nas_prune.search.storage: journal repair, local-storage helpers, studies and their
one-line errors."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nas_prune.search.storage import (
    DIRECTIONS,
    count_states,
    create_study,
    is_local,
    load_study,
    lock_path,
    open_storage,
    repair_journal,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --- repair_journal -----------------------------------------------------------------------

@pytest.mark.parametrize(("content", "kept", "torn"), [
    (b'{"a": 1}\n{"b": 2}\n{"c": 3', b'{"a": 1}\n{"b": 2}\n', b'{"c": 3'),
    (b'{"a": 1}\n{', b'{"a": 1}\n', b"{"),
    (b'{"half', b"", b'{"half'),  # the only line is torn: all of it goes
])
def test_repair_cuts_a_torn_last_line(tmp_path: Path, content: bytes, kept: bytes,
                                      torn: bytes) -> None:
    path = tmp_path / "study.journal"
    path.write_bytes(content)
    assert repair_journal(str(path)) == len(torn)
    assert path.read_bytes() == kept
    assert (tmp_path / "study.journal.torn").read_bytes() == torn


@pytest.mark.parametrize("content", [b'{"a": 1}\n{"b": 2}\n', b""])
def test_repair_leaves_a_whole_journal_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "study.journal"
    path.write_bytes(content)
    assert repair_journal(str(path)) == 0
    assert path.read_bytes() == content
    assert not (tmp_path / "study.journal.torn").exists()


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/db.sqlite", "postgresql://u@h/db",
                                 "{tmp}/missing.journal"])
def test_repair_ignores_databases_and_missing_files(tmp_path: Path, url: str) -> None:
    assert repair_journal(url.format(tmp=tmp_path)) == 0
    assert list(tmp_path.iterdir()) == []


def test_repaired_journal_opens_with_every_whole_record(tmp_path: Path) -> None:
    url = str(tmp_path / "study.journal")
    study = create_study(url, "s", optuna.samplers.RandomSampler(seed=0))
    for i in range(3):
        study.add_trial(_trial(float(i), 10.0 * (i + 1)))
    with open(url, "ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "x", "trial_id": 9')  # a writer killed mid-line
    assert repair_journal(url) > 0
    again = load_study(url, "s")
    assert [t.values for t in again.trials] == [[0.0, 10.0], [1.0, 20.0], [2.0, 30.0]]
    again.add_trial(_trial(5.0, 5.0))  # appending after the repair gives readable records
    assert len(load_study(url, "s").trials) == 4


# --- is_local / lock_path -----------------------------------------------------------------

@pytest.mark.parametrize(("url", "local"), [
    ("runs/x/study.journal", True), ("/abs/study.journal", True),
    ("sqlite:///runs/x/study.db", True), ("sqlite:////abs/study.db", True),
    ("postgresql://user:pw@host:5432/db", False), ("postgresql+psycopg://h/db", False),
    ("mysql://h/db", False),
])
def test_is_local(url: str, local: bool) -> None:
    assert is_local(url) is local


@pytest.mark.parametrize(("url", "lock"), [
    ("runs/x/study.journal", "runs/x/study.journal.ask.lock"),
    ("/abs/study.journal", "/abs/study.journal.ask.lock"),
    ("sqlite:///runs/x/study.db", "runs/x/study.db.ask.lock"),
    ("sqlite:////abs/study.db", "/abs/study.db.ask.lock"),
])
def test_lock_path_is_beside_the_storage_file(url: str, lock: str) -> None:
    assert lock_path(url) == Path(lock)


# --- studies ------------------------------------------------------------------------------

def _trial(ret: float, params: float) -> optuna.trial.FrozenTrial:
    return create_trial(params={"sparsity": 0.5},
                        distributions={"sparsity": FloatDistribution(0.0, 1.0)},
                        values=[ret, params])


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_create_study_resumes_the_same_study(tmp_path: Path, kind: str) -> None:
    url = (str(tmp_path / "a" / "study.journal") if kind == "journal"
           else f"sqlite:///{tmp_path}/study.db")
    study = create_study(url, "sweep", optuna.samplers.RandomSampler(seed=0))
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert DIRECTIONS == ["maximize", "minimize"]  # return_mean up, params_nonzero down
    study.add_trial(_trial(100.0, 50.0))
    again = create_study(url, "sweep", optuna.samplers.RandomSampler(seed=1))
    assert [t.values for t in again.trials] == [[100.0, 50.0]]
    assert load_study(url, "sweep").trials[0].values == [100.0, 50.0]


def test_journal_folder_is_created(tmp_path: Path) -> None:
    url = str(tmp_path / "deep" / "er" / "study.journal")
    create_study(url, "s", optuna.samplers.RandomSampler(seed=0))
    assert Path(url).is_file()


def test_load_missing_study_lists_the_existing_ones(tmp_path: Path) -> None:
    url = str(tmp_path / "study.journal")
    for name in ("sweep", "sweep.baseline"):
        create_study(url, name, optuna.samplers.RandomSampler(seed=0))
    with pytest.raises(ValueError) as info:
        load_study(url, "swep")
    assert str(info.value) == (f"--study: no study 'swep' in {url}; "
                               "studies there: sweep, sweep.baseline")


def test_load_study_from_an_empty_storage(tmp_path: Path) -> None:
    url = str(tmp_path / "study.journal")
    with pytest.raises(ValueError) as info:
        load_study(url, "sweep")
    assert str(info.value) == f"--study: no study 'sweep' in {url}; studies there: none"


def test_storage_that_cannot_be_opened_names_the_flag(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/dir/study.db"
    with pytest.raises(ValueError) as info:
        open_storage(url)
    msg = str(info.value)
    assert msg.startswith(f"--storage: cannot open {url!r} (")
    assert "\n" not in msg


def test_count_states_and_finished(tmp_path: Path) -> None:
    from nas_prune.search.storage import n_finished

    study = create_study(str(tmp_path / "j"), "s", optuna.samplers.RandomSampler(seed=0))
    study.add_trial(_trial(1.0, 1.0))
    study.add_trial(_trial(2.0, 2.0))
    dist = {"sparsity": FloatDistribution(0.0, 1.0)}
    study.add_trial(create_trial(state=TrialState.FAIL, params={"sparsity": 0.1},
                                 distributions=dist))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"sparsity": 0.2},
                                 distributions=dist))
    assert count_states(study) == {"COMPLETE": 2, "FAIL": 1, "PRUNED": 1}
    assert n_finished(study) == 3  # early-stopped trials count toward the total, failed not
