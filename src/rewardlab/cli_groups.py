"""The command groups of `rewardlab`: ``config`` (every key described, one study resolved),
``label`` (people in the loop), ``cache`` (the stage cache) and ``gridworld`` (the
reward-tampering worlds); `cli` adds them to the top-level command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rewardlab.errors import RewardLabError

DEFAULT_CONFIG = "quick"  # the packaged default study (`config.packaged`)
StudyArg = Annotated[
    str, typer.Argument(help="study YAML, or a packaged study's name (quick, tiny, ...)")
]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="override a key: --set seed=1 (repeatable)")
]


config_app = typer.Typer(help="The study config: every key described, one study resolved.")


@config_app.command("show")
def config_show(
    config: StudyArg = DEFAULT_CONFIG,
    set_: SetOption = None,
) -> None:
    """Print a study's resolved config (every default written out) with each key described."""
    from rewardlab.config import load_config
    from rewardlab.config_reference import show

    typer.echo(show(load_config(config, list(set_ or []))), nl=False)


@config_app.command("reference")
def config_reference() -> None:
    """Print every key of a study and a sweep as Markdown (the source of docs/CONFIG.md)."""
    from rewardlab.config_reference import markdown

    typer.echo(markdown(), nl=False)


label_app = typer.Typer(help="People in the loop: the labelling app, its store, a simulated rater.")
LabelDb = Annotated[Path, typer.Option(help="the label database (SQLite)")]


@label_app.command("serve")
def label_serve(
    run_dir: Annotated[Path, typer.Argument(help="the run folder whose pool is compared")],
    db: LabelDb = Path("runs/labels.sqlite"),
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8765,
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    allow_host: Annotated[
        list[str], typer.Option(help="a Host name requests may carry besides --host (repeat)")
    ] = [],  # noqa: B006 - typer reads the default
) -> None:
    """Serve the labelling pages and API over a run; a new database gets an admin, whose token
    is written beside it (``<db>.admin-token``, readable by you alone)."""
    from rewardlab.common.http import serve
    from rewardlab.label.app import make_app
    from rewardlab.label.store import Store, write_private

    if not (run_dir / "config.yaml").is_file():
        raise RewardLabError(f"{run_dir} is not a run folder (it has no config.yaml)")
    new = not db.exists()
    store = Store(db)
    if new:
        token_file = db.with_name(db.name + ".admin-token")
        write_private(token_file, store.add_labeller("admin", admin=True) + "\n")
        typer.echo(f"new label database {db}; the admin token is in {token_file}", err=True)
    typer.echo(f"labelling {run_dir} on http://{host}:{port}/ (ratings: /rate)", err=True)
    serve(make_app(store, run_dir, host, allow_host), host, port)


@label_app.command("export")
def label_export(
    db: LabelDb = Path("runs/labels.sqlite"),
    out: Annotated[Path, typer.Option(help="the file to write")] = Path("runs/labels.jsonl"),
    format: Annotated[
        str, typer.Option(help="trl (JSONL, for preferences.file) or label-studio (JSON)")
    ] = "trl",
) -> None:
    """Write the labels as TRL preference rows (train reward models on them with
    ``preferences: {file: ...}``) or as Label Studio pairwise tasks."""
    import json

    from rewardlab.label.formats import label_studio, trl_pairs
    from rewardlab.label.store import Store

    if not db.is_file():
        raise RewardLabError(f"label database {db} does not exist")
    labels = Store(db).labels()
    if format == "trl":
        rows = trl_pairs(labels)
        text = "".join(json.dumps(r) + "\n" for r in rows)
    elif format == "label-studio":
        rows = label_studio(labels)
        text = json.dumps(rows, indent=1)
    else:
        raise RewardLabError(f"--format {format}: trl or label-studio")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"{len(rows)} rows in {out}")


@label_app.command("import")
def label_import(
    tasks: Annotated[Path, typer.Argument(help="a Label Studio JSON export of pairwise tasks")],
    out: Annotated[Path, typer.Option(help="TRL preference rows (JSONL)")] = Path(
        "runs/labels.jsonl"
    ),
) -> None:
    """Turn Label Studio pairwise annotations into TRL preference rows for ``preferences.file``."""
    import json

    from rewardlab.label.formats import from_label_studio

    try:
        data = json.loads(tasks.read_text())
    except (OSError, ValueError) as exc:
        raise RewardLabError(f"{tasks}: not a readable JSON file ({exc})") from None
    rows = from_label_studio(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    typer.echo(f"{len(rows)} rows in {out}")


@label_app.command("agreement")
def label_agreement(db: LabelDb = Path("runs/labels.sqlite")) -> None:
    """Each labeller's agreement with gold, and each pair's with each other."""
    from rewardlab.label.agreement import agreement
    from rewardlab.label.store import Store

    if not db.is_file():
        raise RewardLabError(f"label database {db} does not exist")
    per, pairs = agreement(Store(db).labels())
    typer.echo(per.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if len(pairs):
        typer.echo("\n" + pairs.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


@label_app.command("simulate")
def label_simulate(
    url: Annotated[str, typer.Option(help="the label server")] = "http://127.0.0.1:8765",
    token: Annotated[str, typer.Option(help="the simulated labeller's token")] = "",
    task: Annotated[str, typer.Option(help="the task whose gold the rater knows")] = "topics",
    kind: Annotated[str, typer.Option(help="comparison or rating")] = "comparison",
    flip_rate: Annotated[
        float, typer.Option(min=0, max=1, help="chance a choice is flipped")
    ] = 0.0,
    bias_length: Annotated[
        float, typer.Option(help="gold per extra word a longer output gets")
    ] = 0.0,
    delay_s: Annotated[float, typer.Option(min=0, help="seconds before each label")] = 0.0,
    limit: Annotated[int | None, typer.Option(min=1, help="stop after this many labels")] = None,
    seed: Annotated[int, typer.Option(help="seed of the rater's noise")] = 0,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="keep waiting for new requests (a learner's) until stopped"),
    ] = False,
) -> None:
    """Label a queue through the HTTP API as a person would: gold plus noise, a delay, a bias."""
    from rewardlab.label.simulate import simulate
    from rewardlab.tasks import load_task

    if not token:
        raise RewardLabError("--token is required (the labeller's token)")
    n = simulate(
        url, token, load_task(task), kind, flip_rate, bias_length, 0.0, delay_s, limit, seed
    )
    typer.echo(f"posted {n} labels")


cache_app = typer.Typer(help="The stage cache: list it, verify its files, remove its garbage.")
CacheDir = Annotated[Path, typer.Argument(help="the cache folder (a study's cache_dir)")]


def _existing(cache_dir: Path) -> Path:
    if not cache_dir.is_dir():
        raise RewardLabError(f"cache folder {cache_dir} does not exist")
    return cache_dir


@cache_app.command("list")
def cache_list(cache_dir: CacheDir = Path("runs/cache")) -> None:
    """Every stage folder and temporary folder of the cache (and any lock file whose stage has
    no folder), with status and size."""
    import pandas as pd

    from rewardlab.cache import inventory

    rows = pd.DataFrame(inventory(_existing(cache_dir)))
    if not len(rows):
        typer.echo(f"{cache_dir}: empty")
        return
    rows["MB"] = rows.pop("bytes") / 1e6
    cols = ["stage", "hash", "status", "MB", "seconds"]
    typer.echo(rows[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    counts = ", ".join(f"{n} {status}" for status, n in rows.status.value_counts().items())
    typer.echo(f"\n{len(rows)} entries, {rows.MB.sum():.1f} MB: {counts}")


@cache_app.command("verify")
def cache_verify(cache_dir: CacheDir = Path("runs/cache")) -> None:
    """Check every finished stage's files against their checksums; exit 1 if any is corrupt."""
    from rewardlab.cache import inventory

    rows = [r for r in inventory(_existing(cache_dir), verify_files=True)
            if r["status"] in ("finished", "corrupt")]  # fmt: skip
    bad = [r for r in rows if r["status"] == "corrupt"]
    for r in bad:
        typer.echo(r["detail"])
    typer.echo(f"{len(rows)} finished stages checked, {len(bad)} corrupt"
               + (f" (`rewardlab cache gc {cache_dir}` removes them)" if bad else ""))  # fmt: skip
    if bad:
        raise typer.Exit(1)


@cache_app.command("gc")
def cache_gc(
    cache_dir: CacheDir = Path("runs/cache"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list, remove nothing")] = False,
) -> None:
    """Remove temporary folders of dead builds, unfinished and corrupt stages, leftover saved
    state and unheld locks; the next run rebuilds what it needs of them."""
    from rewardlab.cache import collect

    found = collect(_existing(cache_dir), dry_run=dry_run)
    for p, why in found:
        typer.echo(f"{'would remove' if dry_run else 'removed'} {p}: {why}")
    typer.echo(f"{len(found)} {'to remove' if dry_run else 'removed'}")


gridworld_app = typer.Typer(help="Reward-tampering gridworlds: run the thought experiments.")


@gridworld_app.command("run")
def gridworld_run(
    experiment: Annotated[
        str,
        typer.Argument(
            help="tomato-watering, absent-supervisor, trash-button, coin-shop, hidden-feedback, hidden-feedback-camera, reward-button, reward-button-slow-task"
        ),
    ],
    agent: Annotated[
        list[str] | None, typer.Option(help="agent (repeatable); default q-learning")
    ] = None,
    seeds: Annotated[int, typer.Option(min=2, help="independent seeds")] = 5,
    timesteps: Annotated[int | None, typer.Option(min=1, help="training steps of DQN/PPO")] = None,
    out: Annotated[Path | None, typer.Option(help="run folder")] = None,
) -> None:
    """Train agents over seeds, evaluate each condition, write table, plot and report."""
    from rewardlab.gridworld.experiments import default_out, run_experiment

    out = out or default_out(experiment)
    summary = run_experiment(experiment, agent or ["q-learning"], seeds, out, timesteps)
    cols = [c for c in summary.columns if not c.endswith(("_lo", "_hi"))]
    typer.echo(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"\nrun folder: {out}")


GROUPS = {"config": config_app, "label": label_app, "cache": cache_app, "gridworld": gridworld_app}
