"""A study's fingerprint: what in its sweep file changes what the trials compute. A study
resumed from a sweep file whose fingerprint differs would mix two experiments in one front,
so it is refused, naming the fields that changed."""
from __future__ import annotations

import json
from typing import Any

import optuna

from nas_prune.config.sweep import Sweep

__all__ = ["FINGERPRINT_ATTR", "changed_fields", "check_fingerprint", "record_fingerprint"]

FINGERPRINT_ATTR = "fingerprint"  # study user attr: Sweep.fingerprint() at creation
SHOWN = 4  # changed fields named in the error; the rest are counted


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ, as ``path: old -> new`` (lists compare whole). A
    key only ``new`` has is a field a later release added: it counts only when set to
    something other than an off value (``_neutral``), so studies stay resumable across
    releases that add options.

    Returns:
        One entry per differing leaf, in key order; empty when equal.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old and _neutral(new[key]):
                continue  # a field added by a later release, left at its off value
            out += changed_fields(old.get(key, "<unset>"), new.get(key, "<unset>"), path)
        return out
    if json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True):
        return []
    return [f"{prefix}: {_short(old)} -> {_short(new)}"]


def _neutral(value: Any) -> bool:
    """An unset / off value (None, False, 0, empty): what a field a study was created
    before has meant for that study."""
    return value is None or value is False or value == 0 or value in ([], {}, "")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def check_fingerprint(study: optuna.Study, sweep: Sweep) -> None:
    """Refuse to resume ``study`` from a sweep whose fingerprint differs from the one it was
    created with. A study written before fingerprints existed passes (nothing to compare).

    Raises:
        ValueError: one line naming the changed fields and the two ways out.
    """
    old = study.user_attrs.get(FINGERPRINT_ATTR)
    if old is None:
        return
    changes = changed_fields(old, sweep.fingerprint())
    if not changes:
        return
    shown = "; ".join(changes[:SHOWN])
    more = f" (and {len(changes) - SHOWN} more)" if len(changes) > SHOWN else ""
    raise ValueError(
        f"sweep: study {sweep.study!r} in {sweep.storage} was run from a different sweep: "
        f"{shown}{more}. Its trials would mix with these in one front; run this one as a "
        f"new study (--study NAME) or in a new out folder (--out DIR)")


def record_fingerprint(study: optuna.Study, sweep: Sweep) -> None:
    """Store the sweep's fingerprint in the study (once; a resumed study keeps its own)."""
    if FINGERPRINT_ATTR not in study.user_attrs:
        study.set_user_attr(FINGERPRINT_ATTR, sweep.fingerprint())
