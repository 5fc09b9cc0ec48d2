"""Typer commands: parse, load config, call one function, print."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, TypeVar

import typer

__all__ = ["app", "baseline", "best", "evaluate", "export", "fail", "guarded", "main",
           "report", "sweep", "trial", "worker"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Search small, fast deep-RL policies: prune, fine-tune, Pareto-report.")

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit with code 2 (bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; user errors (ValueError and subclasses) become a one-line exit-2 error."""
    try:
        return fn()
    except ValueError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _csv(text: str, cast: Callable[[str], T], field: str) -> list[T]:
    try:
        values = [cast(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{field}: expected a comma-separated list of numbers, got {text!r}")
    if not values:
        fail(f"{field}: expected a comma-separated list of numbers, got {text!r}")
    return values


def _trial_overrides(**flags: Any) -> dict[str, Any]:
    """Map the trial command's flags onto nested config keys (None: not given)."""
    paths = {"env": ("env", "id"), "agent": ("agent", "name"), "hidden": ("agent", "hidden"),
             "network": ("agent", "network"), "channels": ("agent", "channels"),
             "train_steps": ("agent", "train_steps"), "method": ("pruning", "method"),
             "schedule": ("pruning", "schedule"), "sparsity": ("pruning", "sparsity"),
             "distribution": ("pruning", "distribution"),
             "finetune_steps": ("pruning", "finetune", "steps"),
             "finetune_mode": ("pruning", "finetune", "mode"),
             "episodes": ("eval", "episodes"), "seed": ("seed",),
             "noise_std": ("eval", "noise_std"), "latency": ("eval", "latency"),
             "device": ("device",)}
    out: dict[str, Any] = {}
    for name, value in flags.items():
        if value is None:
            continue
        node = out
        *parents, leaf = paths[name]
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(
            merged.get(k), dict) else v
    return merged


@app.command()
def trial(
    config: Optional[Path] = typer.Argument(None, help="Trial config YAML (optional)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    env: Optional[str] = typer.Option(None, "--env", help="Gymnasium id or module:Class."),
    agent: Optional[str] = typer.Option(None, "--agent", help="dqn or ppo."),
    method: Optional[str] = typer.Option(None, "--method", help="Pruning method."),
    schedule: Optional[str] = typer.Option(
        None, "--schedule", help="oneshot|gradual|iterative (post-training), during|sparse"),
    distribution: Optional[str] = typer.Option(
        None, "--distribution", help="uniform or erk (one sparsity over the layers)"),
    sparsity: Optional[str] = typer.Option(None, "--sparsity", help="0.8 or 0.5,0.9,0"),
    hidden: Optional[str] = typer.Option(None, "--hidden", help="Dense widths, e.g. 64,64."),
    network: Optional[str] = typer.Option(
        None, "--network", help="mlp, cnn, minatar or nature (default: from the observation)."),
    channels: Optional[str] = typer.Option(None, "--channels", help="CNN channels, e.g. 16,32."),
    train_steps: Optional[int] = typer.Option(None, "--train-steps"),
    finetune_steps: Optional[int] = typer.Option(None, "--finetune-steps"),
    finetune_mode: Optional[str] = typer.Option(None, "--finetune-mode", help="rl or distill"),
    episodes: Optional[int] = typer.Option(None, "--episodes"),
    noise_std: Optional[float] = typer.Option(
        None, "--noise-std", help="Also evaluate with observation noise (return_noise)."),
    latency: Optional[bool] = typer.Option(
        None, "--latency/--no-latency", help="Measure batch-1 latency (latency_us)."),
    device: Optional[str] = typer.Option(
        None, "--device", help="auto, cpu or cuda: where CNNs train (auto: cuda if present)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Dense-agent cache folder."),
    seeds: int = typer.Option(1, "--seeds", help="Re-run on K seeds (seed, seed+1, ...)."),
) -> None:
    """Train (or load) a dense agent, prune it, fine-tune it, evaluate it."""
    from nas_prune import app
    from nas_prune.config.trial import parse_hidden

    spars: float | list[float] | None = None
    if sparsity is not None:
        values = _csv(sparsity, float, "pruning.sparsity")
        spars = values[0] if len(values) == 1 else values
    over = _trial_overrides(
        env=env, agent=agent, method=method, schedule=schedule, sparsity=spars,
        distribution=distribution,
        hidden=guarded(lambda: parse_hidden(hidden)) if hidden else None, network=network,
        channels=guarded(lambda: parse_hidden(channels, "agent.channels")) if channels else None,
        train_steps=train_steps,
        finetune_steps=finetune_steps, finetune_mode=finetune_mode, episodes=episodes, seed=seed,
        noise_std=noise_std, latency=latency, device=device)
    guarded(lambda: app.trial(config, over, out=out, cache=cache, seeds=seeds,
                                   merge=_merge))


@app.command()
def evaluate(
    directory: Path = typer.Argument(
        ..., help="A trial's output folder, or a FILE.onnx written by nas-prune export."),
    episodes: Optional[int] = typer.Option(None, "--episodes"),
    seed: Optional[int] = typer.Option(None, "--seed"),
) -> None:
    """Reload a saved pruned policy (or an exported ONNX file) and evaluate it (same seed:
    same returns)."""
    from nas_prune import app

    result = guarded(lambda: app.evaluate_dir(directory, episodes=episodes, seed=seed))
    typer.echo(json.dumps(result))


@app.command()
def sweep(
    sweep_file: Path = typer.Argument(..., help="Sweep YAML (sweeps/*.yaml)."),
    trials: Optional[int] = typer.Option(None, "--trials", help="Total trials in the study."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL or path."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local worker processes."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip baseline and report."),
    backend: Optional[str] = typer.Option(None, "--backend", help="optuna or ray."),
    address: Optional[str] = typer.Option(None, "--address",
                                          help="Ray: auto, HOST:PORT or ray://HOST:PORT."),
    max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent",
                                                 help="Ray: trials at once."),
    sampler_seed: Optional[int] = typer.Option(
        None, "--sampler-seed",
        help="Replaces the file's sampler_seed; study <name>-seed<N> unless --study."),
    device: Optional[str] = typer.Option(
        None, "--device", help="auto, cpu or cuda: where CNNs train (auto: cuda if present)."),
) -> None:
    """Run (or resume) a sweep, then the baseline and the Pareto report."""
    from nas_prune import app

    code = guarded(lambda: app.sweep(
        sweep_file, trials=trials, storage=storage, study=study, workers=workers, out=out,
        report=not no_report, backend=backend, address=address,
        max_concurrent=max_concurrent, sampler_seed=sampler_seed, device=device))
    raise typer.Exit(code)


@app.command()
def worker(
    sweep_file: Path = typer.Argument(..., help="Sweep YAML (the same file on every machine)."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Shared storage URL."),
    study: Optional[str] = typer.Option(None, "--study"),
    trials: Optional[int] = typer.Option(None, "--trials"),
    out: Optional[Path] = typer.Option(None, "--out"),
    sampler_seed: Optional[int] = typer.Option(
        None, "--sampler-seed", help="As given to the sweep (study <name>-seed<N>)."),
) -> None:
    """Join an existing study from any machine and run trials until it is full."""
    from nas_prune import app

    guarded(lambda: app.worker(sweep_file, storage=storage, study=study, trials=trials,
                                     out=out, sampler_seed=sampler_seed))


@app.command()
def baseline(
    sweep_file: Path = typer.Argument(..., help="Sweep YAML."),
    storage: Optional[str] = typer.Option(None, "--storage"),
    study: Optional[str] = typer.Option(None, "--study"),
    out: Optional[Path] = typer.Option(None, "--out"),
    sampler_seed: Optional[int] = typer.Option(
        None, "--sampler-seed", help="As given to the sweep (study <name>-seed<N>)."),
) -> None:
    """Run the uniform global-magnitude baseline of a sweep (resumable)."""
    from nas_prune import app

    guarded(lambda: app.baseline(sweep_file, storage=storage, study=study, out=out,
                                 sampler_seed=sampler_seed))


@app.command()
def report(
    sweep_file: Optional[Path] = typer.Argument(None, help="Sweep YAML (or --storage/--study)."),
    storage: Optional[str] = typer.Option(None, "--storage"),
    study: Optional[str] = typer.Option(None, "--study"),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder."),
    no_reeval: bool = typer.Option(False, "--no-reeval", help="Skip front re-evaluation."),
) -> None:
    """Write trials.csv, pareto.csv, report.html, pareto.png and print the front."""
    from nas_prune import app

    guarded(lambda: app.report(sweep_file, storage=storage, study=study, out=out,
                                     reeval=not no_reeval))


@app.command()
def best(
    sweep_file: Optional[Path] = typer.Argument(None, help="Sweep YAML (or --storage/--study)."),
    storage: Optional[str] = typer.Option(None, "--storage"),
    study: Optional[str] = typer.Option(None, "--study"),
    max_params: Optional[int] = typer.Option(None, "--max-params"),
    min_return: Optional[float] = typer.Option(None, "--min-return"),
    max_latency_us: Optional[float] = typer.Option(
        None, "--max-latency-us", help="Batch-1 latency limit (µs; re-measured figure)."),
    max_bytes: Optional[int] = typer.Option(None, "--max-bytes",
                                            help="Deployed file size limit (bytes)."),
    knee: bool = typer.Option(False, "--knee"),
    out: Path = typer.Option(Path("best.yaml"), "--out"),
) -> None:
    """Write the chosen front point's standalone trial config (re-run with nas-prune trial)."""
    from nas_prune import app

    result = guarded(lambda: app.best(sweep_file, storage=storage, study=study,
                                            max_params=max_params, min_return=min_return,
                                            knee=knee, out=out, max_latency_us=max_latency_us,
                                            max_bytes=max_bytes))
    typer.echo(json.dumps(result))


@app.command()
def export(
    directory: Path = typer.Argument(..., help="A trial's output folder."),
    fmt: str = typer.Option("onnx", "--format", help="onnx or safetensors."),
    int8: bool = typer.Option(False, "--int8", help="int8 ONNX (static quantization)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Default: DIR/export/policy.*"),
) -> None:
    """Export a trial's policy as one self-contained file (ONNX checked against torch)."""
    from nas_prune import app

    result = guarded(lambda: app.export(directory, fmt=fmt, int8=int8, out=out))
    typer.echo(json.dumps(result))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
