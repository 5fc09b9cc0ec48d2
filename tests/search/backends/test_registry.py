"""The backend registry: names, features, one-line refusals of what a backend lacks."""
from __future__ import annotations

import pytest

from nas_prune.search.backends import backends, check_support


def test_registered_backends_and_their_features() -> None:
    assert backends.names() == ["optuna", "ray"]
    assert backends.get("optuna").early_stop and backends.get("optuna").reproducible
    assert not backends.get("ray").early_stop and not backends.get("ray").reproducible


@pytest.mark.parametrize(("name", "flags", "message"), [
    ("ray", {"early_stop": True, "reproducible": False},
     "early_stop.enabled: multi-objective early stopping runs on the optuna backend only; "
     "allowed backends: optuna"),
    ("ray", {"early_stop": False, "reproducible": True},
     "reproducible: generation-synchronous sampling runs on the optuna backend only; "
     "allowed backends: optuna"),
    ("dask", {"early_stop": False, "reproducible": False},
     "backend: unknown backend 'dask'; allowed: optuna, ray"),
])
def test_what_a_backend_lacks_is_refused_in_one_line(name: str, flags: dict[str, bool],
                                                     message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_support(name, **flags)
    assert str(info.value) == message


def test_the_flag_that_chose_the_backend_is_named() -> None:
    with pytest.raises(ValueError, match="^--backend: multi-objective"):
        check_support("ray", early_stop=True, reproducible=False, field_name="--backend")
    check_support("optuna", early_stop=True, reproducible=True)  # supported: no error
