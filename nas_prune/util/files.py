"""Atomic file writes: readers and concurrent writers see the old file or the new one, whole.

Several ``sweep`` processes on one study share its ``out`` folder and each renders the report
when it finishes (so may a ``report`` run meanwhile); two plain writes to one path at once can
interleave into a torn file.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "check_writable", "write_text"]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on success rename it over ``path``.

    The temporary name is unique per call, so concurrent writers never share it, and keeps
    ``path``'s suffix (writers such as matplotlib choose the format by it); the caller creates
    the file, so it gets the usual permissions. On an exception the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_writable(directory: Path, field: str = "--out") -> None:
    """Fail before any training if ``directory`` cannot be created and written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # a probe of our own: workers sharing one --out check it at the same moment
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write_probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{field}: cannot write to {directory} ({exc.strerror or exc})") from None
