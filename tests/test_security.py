"""Security: no code runs from YAML or checkpoints, tampered weights are refused, no unsafe
deserialisation in the source, and names never let output paths escape."""
from __future__ import annotations

import builtins
import json
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import nas_prune
from nas_prune.cli import app
from nas_prune.config.base import load_yaml, parse
from nas_prune.config.trial import TrialConfig
from nas_prune.results.study import SWEEP_ATTR
from nas_prune.trial.dense_cache import DENSE_FILE, dense_key
from tests.conftest import write_yaml
from tests.test_bad_input import optuna_logs_to_current_stderr  # noqa: F401 (autouse)

runner = CliRunner()
TINY_TRIAL = ["--env", "CartPole-v1", "--agent", "ppo", "--method", "magnitude",
              "--sparsity", "0.5", "--hidden", "8", "--train-steps", "512",
              "--finetune-steps", "128", "--episodes", "2"]


def _error_line(res: Any) -> str:
    """The one non-empty output line of a failed command."""
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture(scope="module")
def trial_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real tiny trial (512 dense + 128 fine-tune steps), run from root/cwd with a
    relative ``--out ../trial``; returns its folder and every path it created."""
    root = tmp_path_factory.mktemp("trial")
    (root / "cwd").mkdir()
    before = _files(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root / "cwd")
        res = runner.invoke(app, ["trial", *TINY_TRIAL, "--out", "../trial"])
    assert res.exit_code == 0, res.output
    return {"root": root, "dir": root / "trial", "created": _files(root) - before}


@pytest.fixture
def trial_copy(trial_run: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the tiny trial's output folder, free to tamper with."""
    return Path(shutil.copytree(trial_run["dir"], tmp_path / "t"))


# --- YAML never runs code -------------------------------------------------------------------

TAGS = {
    "apply-os-system": '!!python/object/apply:os.system ["touch {pwned}"]',
    "new-subprocess": '!!python/object/new:subprocess.check_call [["touch", "{pwned}"]]',
}


def _tagged_files(where: str, tag: str, tmp: Path, trial_dir: Path | None) -> list[str]:
    """Plant ``tag`` in one kind of input file; return the CLI args that read it."""
    space = write_yaml(tmp / "space.yaml", {"method": "magnitude", "hidden": "8"})
    sweep: dict[str, Any] = {"name": "sec", "space": str(space), "trials": 1,
                             "out": str(tmp / "out")}
    if where == "trial-config-document":
        (tmp / "c.yaml").write_text(tag + "\n")
        return ["trial", str(tmp / "c.yaml"), "--out", str(tmp / "o")]
    if where == "trial-config-value":
        (tmp / "c.yaml").write_text(f"agent:\n  name: {tag}\n")
        return ["trial", str(tmp / "c.yaml"), "--out", str(tmp / "o")]
    if where == "sweep-file-document":
        (tmp / "sweep.yaml").write_text(tag + "\n")
        return ["sweep", str(tmp / "sweep.yaml")]
    if where == "sweep-file-value":
        (tmp / "sweep.yaml").write_text(f"name: {tag}\nspace: {space}\nout: {tmp / 'out'}\n")
        return ["sweep", str(tmp / "sweep.yaml")]
    if where == "space-file":
        (tmp / "space.yaml").write_text(f"method: {tag}\n")
        return ["sweep", str(write_yaml(tmp / "sweep.yaml", sweep))]
    assert where == "evaluate-config" and trial_dir is not None
    (trial_dir / "config.yaml").write_text(f"seed: {tag}\n")
    return ["evaluate", str(trial_dir)]


@pytest.mark.parametrize("tag_id", sorted(TAGS))
@pytest.mark.parametrize("where", ["trial-config-document", "trial-config-value",
                                   "sweep-file-document", "sweep-file-value", "space-file",
                                   "evaluate-config"])
def test_yaml_python_tags_are_rejected_and_never_run(
        where: str, tag_id: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    pwned = tmp_path / "pwned"
    tag = TAGS[tag_id].format(pwned=pwned)
    trial_dir = request.getfixturevalue("trial_copy") if where == "evaluate-config" else None
    args = _tagged_files(where, tag, tmp_path, trial_dir)
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "not valid YAML" in _error_line(res)
    assert not pwned.exists()
    assert not (tmp_path / "out" / "study.journal").exists()


# --- checkpoints are safetensors, never pickle ----------------------------------------------

class _Touch:
    """Unpickling this creates ``path`` (what a malicious checkpoint would do)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return builtins.open, (self.path, "w")


def _write_payload(kind: str, dest: Path, side: Path) -> None:
    if kind == "pickle":
        dest.write_bytes(pickle.dumps({"layers.0.weight": _Touch(side)}))
    else:  # torch.save: a zip holding a pickle
        torch.save({"layers.0.weight": _Touch(side)}, dest)


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_payload_really_runs_when_unpickled(kind: str, tmp_path: Path) -> None:
    """Control: the payloads below are live, so their side file proves a pickle load."""
    side = tmp_path / "side"
    _write_payload(kind, tmp_path / "p.bin", side)
    if kind == "pickle":
        pickle.loads((tmp_path / "p.bin").read_bytes())
    else:
        torch.load(tmp_path / "p.bin", weights_only=False)
    assert side.exists()


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_evaluate_refuses_pickle_named_safetensors(kind: str, trial_copy: Path,
                                                   tmp_path: Path) -> None:
    side = tmp_path / "side_effect"
    _write_payload(kind, trial_copy / "policy.safetensors", side)
    res = runner.invoke(app, ["evaluate", str(trial_copy)])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert "not a valid safetensors" in line and "policy.safetensors" in line
    assert not side.exists()


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_trial_refuses_pickle_dense_checkpoint(kind: str, tmp_path: Path) -> None:
    side = tmp_path / "side_effect"
    ckpt = tmp_path / "dense.safetensors"
    _write_payload(kind, ckpt, side)
    cfg = write_yaml(tmp_path / "c.yaml", {"dense_checkpoint": str(ckpt),
                                           "agent": {"name": "ppo", "hidden": [8]}})
    res = runner.invoke(app, ["trial", str(cfg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "not a valid safetensors" in _error_line(res)
    assert not side.exists()
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_trial_refuses_pickle_in_dense_cache(tmp_path: Path) -> None:
    side = tmp_path / "side_effect"
    cfg_file = write_yaml(tmp_path / "c.yaml", {"agent": {"name": "ppo", "hidden": [8],
                                                          "train_steps": 512}})
    key = dense_key(parse(TrialConfig, load_yaml(cfg_file)))
    cache = tmp_path / "cache"
    (cache / key).mkdir(parents=True)
    _write_payload("pickle", cache / key / DENSE_FILE, side)
    res = runner.invoke(app, ["trial", str(cfg_file), "--cache", str(cache),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "not a valid safetensors" in _error_line(res)
    assert not side.exists()


# --- tampered weights are refused -----------------------------------------------------------

def _rewrite_one_weight(path: Path) -> None:
    tensors = load_file(str(path))
    name = sorted(k for k in tensors if k.endswith("weight"))[0]
    w = tensors[name].clone()
    w.view(-1)[0] += 1.0
    tensors[name] = w
    save_file(tensors, str(path))


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # inside the last tensor's data: still a valid safetensors file
    path.write_bytes(bytes(data))


def test_untampered_copy_evaluates_to_the_trial_returns(trial_copy: Path) -> None:
    """Control for the tamper tests: the copy itself loads and repeats the trial."""
    res = runner.invoke(app, ["evaluate", str(trial_copy)])
    assert res.exit_code == 0, res.output
    metrics = json.loads((trial_copy / "metrics.json").read_text())
    assert json.loads(res.output)["returns"] == metrics["returns"]


@pytest.mark.parametrize("tamper", [_rewrite_one_weight, _flip_last_byte],
                         ids=["rewrite-one-weight", "flip-one-byte"])
def test_evaluate_refuses_tampered_weights(tamper: Any, trial_copy: Path) -> None:
    weights = trial_copy / "policy.safetensors"
    original = weights.read_bytes()
    tamper(weights)
    assert weights.read_bytes() != original
    load_file(str(weights))  # still valid safetensors: only the SHA-256 can catch it
    res = runner.invoke(app, ["evaluate", str(trial_copy)])
    assert res.exit_code == 2, res.output
    assert "SHA-256" in _error_line(res)


# --- source scan: no unsafe deserialisation or dynamic code ---------------------------------

UNSAFE = {
    "pickle load": re.compile(r"\bpickle\.(loads?|Unpickler)\b|\bfrom\s+pickle\s+import\b"),
    "torch.load": re.compile(r"\btorch\.load\("),
    "yaml.load": re.compile(r"\byaml\.(unsafe_|full_)?load(_all)?\(|\byaml\.(Unsafe)?Loader\b"),
    "cloudpickle/dill": re.compile(r"\b(cloudpickle|dill)\b"),
    "marshal/shelve": re.compile(r"\bmarshal\.loads?\(|\bshelve\.open\("),
    "allow_pickle": re.compile(r"allow_pickle\s*=\s*True"),
    "eval": re.compile(r"(?<![\w.])eval\("),
    "exec": re.compile(r"(?<![\w.])exec\("),
}
# {path relative to the package folder: why it is safe}. Empty: nothing is exempt.
ALLOWLIST: dict[str, str] = {}
PACKAGE = Path(nas_prune.__file__).parent


def scan(text: str) -> list[str]:
    """``line: rule`` for every unsafe call in ``text``."""
    return [f"{i}: {rule}" for i, line in enumerate(text.splitlines(), 1)
            for rule, rx in UNSAFE.items() if rx.search(line)]


@pytest.mark.parametrize("text, flagged", [
    ("state = pickle.loads(blob)", True),
    ("state = pickle.load(f)", True),
    ("from pickle import loads", True),
    ("sd = torch.load(path)", True),
    ("cfg = yaml.load(text, Loader=yaml.Loader)", True),
    ("import cloudpickle", True),
    ("value = eval(expr)", True),
    ("exec(code, {})", True),
    ("arr = np.load(p, allow_pickle=True)", True),
    ("cfg = yaml.safe_load(text)", False),
    ("net.eval()", False),
    ("res = selection_eval(agent)", False),
    ("res = evaluate(net, head)", False),
    ('"""Checkpoints: safetensors plus JSON; never pickle."""', False),
])
def test_scanner_flags_unsafe_calls_only(text: str, flagged: bool) -> None:
    assert bool(scan(text)) is flagged


def test_package_source_has_no_unsafe_deserialisation() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20  # the glob really sees the package
    hits = [f"{p.relative_to(PACKAGE)}:{hit}" for p in files
            if str(p.relative_to(PACKAGE)) not in ALLOWLIST for hit in scan(p.read_text())]
    assert hits == []
    for path in ALLOWLIST:  # an entry must name a real file that still needs it
        assert scan((PACKAGE / path).read_text())


# --- names and output paths never escape ----------------------------------------------------

UNSAFE_NAMES = ["../x", "../../../escape", "a/b", "..", "x/../../../y"]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
@pytest.mark.parametrize("where", ["sweep --study", "sweep file name", "sweep file study",
                                   "baseline --study"])
def test_unsafe_study_names_are_rejected_and_write_nothing(
        where: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "a" / "b" / "cwd"  # '../../../escape' from here stays in tmp_path
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    space = write_yaml(tmp_path / "space.yaml", {"method": "magnitude", "hidden": "8"})
    data: dict[str, Any] = {"name": "ok", "space": str(space), "trials": 1}  # out: default
    if where == "sweep file name":
        data["name"] = name
    if where == "sweep file study":
        data["study"] = name
    sweep = write_yaml(tmp_path / "sweep.yaml", data)
    verb = where.split()[0]
    flags = ["--study", name] if where.endswith("--study") else []
    before = _files(tmp_path)
    res = runner.invoke(app, [verb, str(sweep), *flags])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert name in line and ("--study" in line or "name" in line or "study" in line)
    assert _files(tmp_path) == before  # nothing created anywhere


def test_absolute_study_name_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "abs_escape"
    space = write_yaml(tmp_path / "space.yaml", {"method": "magnitude", "hidden": "8"})
    sweep = write_yaml(tmp_path / "sweep.yaml", {"name": "ok", "space": str(space),
                                                  "out": str(tmp_path / "out")})
    res = runner.invoke(app, ["sweep", str(sweep), "--study", str(target)])
    assert res.exit_code == 2, res.output
    assert "--study" in _error_line(res)
    assert not target.exists() and not (tmp_path / "out").exists()


def test_report_on_study_with_unsafe_name_does_not_escape(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "../../../escape"
    journal = tmp_path / "s.journal"
    # another tool (or an older nas-prune) may have stored a study under any name
    study = optuna.create_study(study_name=name, directions=["maximize", "minimize"],
                                storage=JournalStorage(JournalFileBackend(str(journal))))
    study.set_user_attr(SWEEP_ATTR, {
        "name": "x", "env": "CartPole-v1", "agent": "ppo", "ref_params": 100,
        "return_floor": 0.0, "max_return": None, "reeval_seeds": 0, "reeval_episodes": 1,
        "out": str(tmp_path / "o")})
    cwd = tmp_path / "a" / "b" / "cwd"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    before = _files(tmp_path)
    res = runner.invoke(app, ["report", "--storage", str(journal), "--study", name,
                              "--no-reeval"])
    created = _files(tmp_path) - before
    assert not (tmp_path / "a" / "escape").exists()
    assert all(p.is_relative_to(cwd / "runs") for p in created), sorted(created)
    assert res.exit_code == 2, res.output
    assert "--study" in _error_line(res)


def test_trial_writes_only_inside_its_out_folder(trial_run: dict[str, Any]) -> None:
    """The fixture ran from root/cwd with ``--out ../trial``: every new path is that folder
    or inside it (no runs/ in the cwd, no stray cache)."""
    out = trial_run["dir"]
    created = trial_run["created"]
    assert out in created
    assert all(p == out or p.is_relative_to(out) for p in created), sorted(created)
    assert {p.name for p in out.iterdir()} >= {"metrics.json", "policy.safetensors",
                                              "policy.json", "config.yaml"}
