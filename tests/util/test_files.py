"""Atomic writes: whole old or whole new file, never torn, no temp files left behind."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nas_prune.util.files import atomic_path, write_text


def test_write_replaces_and_leaves_only_the_target(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "trials.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["trials.csv"]


def test_temp_path_keeps_suffix_and_usual_permissions(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "pareto.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "pareto.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_concurrent_writers_never_tear_the_file(tmp_path: Path) -> None:
    target = tmp_path / "trials.csv"
    # contents of different lengths: an interleaved plain write would leave a mixture
    texts = [str(k) * (1000 * (k + 1)) for k in range(8)]

    def write_many(k: int) -> None:
        for _ in range(50):
            write_text(target, texts[k])
            assert target.read_text() in texts

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write_many, range(8)))
    assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["trials.csv"]
