"""nas_prune.search.storage: journal repair, local-storage helpers, loading a study and its
one-line errors. (search/ is being refactored: studies are set up with Optuna's own API and
only repair_journal, is_local, lock_path and load_study are tested.)"""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import create_trial

from nas_prune.search.storage import is_local, load_study, lock_path, repair_journal

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
    study = _create(url, "s")
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

def _create(url: str, name: str) -> optuna.Study:
    storage = (url if url.startswith("sqlite://")
               else JournalStorage(JournalFileBackend(url)))
    return optuna.create_study(study_name=name, storage=storage,
                               directions=["maximize", "minimize"])


def _trial(ret: float, params: float) -> optuna.trial.FrozenTrial:
    return create_trial(params={"sparsity": 0.5},
                        distributions={"sparsity": FloatDistribution(0.0, 1.0)},
                        values=[ret, params])


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_load_study_reads_what_was_recorded(tmp_path: Path, kind: str) -> None:
    url = (str(tmp_path / "study.journal") if kind == "journal"
           else f"sqlite:///{tmp_path}/study.db")
    _create(url, "sweep").add_trial(_trial(100.0, 50.0))
    study = load_study(url, "sweep")
    assert study.study_name == "sweep"
    assert [t.values for t in study.trials] == [[100.0, 50.0]]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]


def test_load_missing_study_lists_the_existing_ones(tmp_path: Path) -> None:
    url = str(tmp_path / "study.journal")
    for name in ("sweep", "sweep.baseline"):
        _create(url, name)
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
        load_study(url, "sweep")
    msg = str(info.value)
    assert msg.startswith(f"--storage: cannot open {url!r} (")
    assert "\n" not in msg
