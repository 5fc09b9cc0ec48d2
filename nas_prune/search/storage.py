"""Optuna storages and studies: the one record every backend, report and ``best`` reads."""
from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import optuna
from filelock import FileLock
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from nas_prune.config.objectives import DEFAULT_OBJECTIVES, DIRECTIONS, direction

__all__ = ["RDB_SCHEMES", "count_states", "create_study", "directions", "find_study",
           "is_local", "load_study", "lock_path", "n_finished", "open_storage",
           "repair_journal", "storage_file", "storage_lock", "study_objectives"]
RDB_SCHEMES = ("sqlite://", "postgresql", "mysql")


def open_storage(url: str) -> BaseStorage:
    """An Optuna storage from a URL (sqlite://, postgresql://, mysql://) or a journal path.

    Raises:
        ValueError: naming ``--storage`` when the storage cannot be opened or reached.
    """
    try:
        if url.startswith(RDB_SCHEMES):
            return _rdb(url)
        path = Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:  # sqlalchemy and drivers raise many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--storage: cannot open {url!r} ({first})") from None


def repair_journal(url: str) -> int:
    """Cut a half-written last line (a writer killed mid-append) off a journal file, saving
    the cut bytes beside it as ``.torn``; return how many bytes were cut. Appending after a
    torn line would merge two records into one unreadable line. Call with no writer active."""
    path = Path(url)
    if url.startswith(RDB_SCHEMES) or not path.is_file():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    path.with_name(path.name + ".torn").write_bytes(data[keep:])
    with open(path, "r+b") as f:
        f.truncate(keep)
    return len(data) - keep


def _rdb(url: str, attempts: int = 5) -> RDBStorage:
    # Workers starting together race to create the schema; the loser retries.
    for i in range(attempts):
        try:
            return RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        except Exception as exc:
            racing = "duplicate key" in str(exc) or "already exists" in str(exc)
            if not racing or i == attempts - 1:
                raise
            time.sleep(0.5 * (i + 1))
    raise AssertionError("unreachable")


def is_local(url: str) -> bool:
    """True for storages that live in a local file (journal, SQLite)."""
    return url.startswith("sqlite://") or not url.startswith(RDB_SCHEMES)


def storage_file(url: str) -> Path:
    """A local storage's file: the journal path or the SQLite database."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite://") else Path(url)


def lock_path(url: str) -> Path:
    """A lock file beside a local storage's file (journal path or SQLite database)."""
    path = storage_file(url)
    return path.with_name(path.name + ".ask.lock")


def _engine_kwargs(url: str) -> dict[str, object]:
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 5}}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {}


def load_study(storage: str, name: str) -> optuna.Study:
    """An existing study; a missing one is a one-line error listing those that exist."""
    st = open_storage(storage)
    try:
        return optuna.load_study(study_name=name, storage=st)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(st)]
        raise ValueError(f"--study: no study {name!r} in {storage}; "
                         f"studies there: {', '.join(names) or 'none'}") from None


def directions(objectives: Sequence[str]) -> list[Literal["maximize", "minimize"]]:
    """Optuna's directions for a sweep's objectives (config.objectives' table)."""
    return [direction(name) for name in objectives]


def create_study(storage: str, name: str, sampler: optuna.samplers.BaseSampler,
                 objectives: Sequence[str] = DEFAULT_OBJECTIVES) -> optuna.Study:
    """Create the study, or load it to resume (same name, same storage). The objectives
    are the study's metric names, so a report from the storage alone knows them."""
    study = optuna.create_study(study_name=name, storage=open_storage(storage),
                                sampler=sampler, directions=directions(objectives),
                                load_if_exists=True)
    if study.metric_names is None:
        with warnings.catch_warnings():  # experimental since Optuna 3.2, unchanged since
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(objectives))
    return study


def study_objectives(study: optuna.Study) -> list[str]:
    """The objectives a study was created with: its metric names, or the defaults for a
    study that recorded none (nas_prune 0.1.0)."""
    names = study.metric_names
    if names and all(n in DIRECTIONS for n in names):
        return list(names)
    return list(DEFAULT_OBJECTIVES)


def count_states(study: optuna.Study) -> dict[str, int]:
    """Trials per state name."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def n_finished(study: optuna.Study) -> int:
    """Trials that count toward the sweep's total: COMPLETE and early-stopped (PRUNED)."""
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


@contextmanager
def storage_lock(url: str, name: str) -> Iterator[None]:
    """A lock held across processes and machines while one worker changes a study's
    trial list (count, then enqueue or ask): a file lock beside a local storage, a
    PostgreSQL advisory lock (MySQL ``GET_LOCK``) on a server storage."""
    if is_local(url):
        with FileLock(str(lock_path(url))):
            yield
        return
    import sqlalchemy

    key = int.from_bytes(hashlib.sha256(f"nas_prune:{name}".encode()).digest()[:8], "big",
                         signed=True)
    postgres = url.startswith("postgresql")
    take, free = (("SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)") if postgres
                  else ("SELECT GET_LOCK(:k, -1)", "SELECT RELEASE_LOCK(:k)"))
    params = {"k": key if postgres else f"nas_prune:{key}"}
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                      **_engine_kwargs(url))  # type: ignore[arg-type]
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(take), params)
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text(free), params)
    finally:
        engine.dispose()


def find_study(url: str, name: str) -> optuna.Study | None:
    """The study if it exists, else None; writes nothing (a missing journal stays missing)."""
    if is_local(url) and not storage_file(url).exists():
        return None
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        return None
