"""`rewardlab ...`: a thin command line over the study functions."""

from __future__ import annotations

import errno
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import typer

from rewardlab.errors import Interrupted, RewardLabError, unwind_on_signals

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
DEFAULT_CONFIG = "quick"  # the packaged default study (`config.packaged`)


StudyArg = Annotated[
    str, typer.Argument(help="study YAML, or a packaged study's name (quick, tiny, ...)")
]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="override a key: --set seed=1 (repeatable)")
]


@app.callback()
def _root() -> None:
    """rewardlab: learned rewards and how optimising against them goes wrong."""


@app.command()
def run(
    config: StudyArg = DEFAULT_CONFIG,
    set_: SetOption = None,
    task: Annotated[
        str | None, typer.Option(help="task name, .py file or module (same as --set task.name=)")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="run folder (default runs/<study>__s<seed>__<time>__<suffix>); an occupied one must hold the same study"
        ),
    ] = None,
    rebuild: Annotated[
        list[str] | None,
        typer.Option(
            help="build this stage anew, and every stage after it (repeatable): a stage name "
            "such as policy, reward_model or rl (a name that is none lists them all)"
        ),
    ] = None,
) -> None:
    """Run a study (resuming any finished stages) and write its run folder. Every key --set
    takes, with its default and meaning: docs/CONFIG.md, or `rewardlab config show STUDY`."""
    from rewardlab.config import load_config
    from rewardlab.study import run_study

    overrides = list(set_ or [])
    if task:
        overrides.append(f"task.name={task}")
    cfg = load_config(config, overrides)
    study = run_study(cfg, out, rebuild=rebuild or ())
    _print_rewards(study.run_dir / "rewards.csv")
    _print_summary(study.summary, study.run_dir)
    typer.echo(f"\nrun folder: {study.run_dir}\nreport:     {study.run_dir / 'report.html'}")


def _print_rewards(path: Path) -> None:
    """The rewards a study built (``rewards.csv``), the rule left out."""
    import pandas as pd

    rewards = pd.read_csv(path)
    cols = [c for c in ("reward", "kind", "params", "train_pairs", "test_accuracy", "members")
            if c in rewards and rewards[c].notna().any()]  # fmt: skip
    rewards = rewards[rewards.kind != "rule"][cols].convert_dtypes()  # counts as integers
    if len(rewards):
        typer.echo(
            "\nrewards (test_accuracy: share of held-out preference pairs ranked as gold ranks them):"
        )
        typer.echo(rewards.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


LEGEND = (
    "gold and proxy are in base-policy standard deviations (0 = the base policy's mean); "
    "sqrt_kl = √KL(policy ‖ base) in √nats. peak_gold: the curve's highest gold, at "
    "peak_sqrt_kl; final_gold: at its last point. fall: gold's fall after its peak, "
    "cross-fitted over prompts (the peak chosen on half of them, the fall measured on the "
    "other half), with its 95% interval [fall_lo, fall_hi]. verdict: hacked (the fall's "
    "interval, and that of its excess over the same optimizer against the rule, above 0), not "
    "hacked (the interval below {margin} std, within the run's KL), or undetermined; summary.csv has "
    "the control's columns and the budget's KL. alpha, beta: the fit of Gao et "
    "al. 2022, gold = d(alpha - beta·d) for best-of-n and d(alpha - beta·ln d) for trained "
    "policies, d = √KL. A column a family has no value in is left out."
)


def _print_summary(summary, run_dir: Path) -> None:
    """The summary of the run in `run_dir` split by optimizer family (sample-based: best-of-n;
    trained policies), each without the columns it has no value in, and a legend."""
    import pandas as pd

    from rewardlab.optimize.curves import SAMPLE, families

    fams = families(pd.read_csv(run_dir / "curves.csv"))

    cols = ["optimizer", "reward", "params", "peak_gold", "peak_sqrt_kl", "final_gold",
            "final_proxy", "fall", "fall_lo", "fall_hi", "verdict", "alpha", "beta"]  # fmt: skip
    summary = summary[[c for c in cols if c in summary]]
    sample = summary.optimizer.map(fams) == SAMPLE
    for title, rows in (("best-of-n", summary[sample]), ("trained policies", summary[~sample])):
        if len(rows):
            typer.echo(f"\n{title}:")
            rows = rows.loc[:, rows.notna().any()]
            typer.echo(rows.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    from rewardlab.verdict import MARGIN

    typer.echo("\n" + textwrap.fill(LEGEND.format(margin=MARGIN), 100))


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a finished run folder")]) -> None:
    """Rebuild the plots and report.html of a run folder (or a sweep folder) from its files."""
    from rewardlab.report import build_report

    if (run_dir / "studies.csv").is_file():
        from rewardlab.report.sweep import build_sweep_report

        for name, table in build_sweep_report(run_dir).items():
            typer.echo(
                f"\n{name}:\n" + table.to_string(index=False, float_format=lambda v: f"{v:.3g}")
            )
        typer.echo(f"\nreport: {run_dir / 'report.html'}")
        return
    _print_summary(build_report(run_dir), run_dir)
    typer.echo(f"\nreport: {run_dir / 'report.html'}")


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="finished run folders")],
    out: Annotated[
        Path | None, typer.Option(help="where to write (default runs/compare-<time>)")
    ] = None,
) -> None:
    """Overlay the curves of separate runs: compare.png, compare.csv and a table of peaks."""
    from datetime import datetime

    from rewardlab.report.compare import compare as compare_runs

    out = out or Path("runs") / f"compare-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    summary = compare_runs(runs, out)
    typer.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    warned = out / "warnings.txt"
    for line in warned.read_text().splitlines() if warned.is_file() else []:
        typer.echo(f"warning: {line}", err=True)
    typer.echo(f"\nplot: {out / 'compare.png'}")


@app.command()
def sweep(
    sweep_file: Annotated[
        str, typer.Argument(help="sweep YAML (a base study and a grid), or a packaged sweep's name")
    ],
    backend: Annotated[
        str | None, typer.Option(help="process (default) or ray; overrides the sweep file")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="studies run at once (default: the file's, or cores)")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: start a local Ray)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="sweep folder (default runs/<sweep>)")] = None,
    cache_dir: Annotated[
        str | None, typer.Option(help="stage cache of every study (default: the studies' own)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the studies and stop (nothing is run)")
    ] = False,
) -> None:
    """Run (or resume) every study of a sweep, gather their results and write the sweep report."""
    from rewardlab.sweep import expand, load_sweep, run_sweep

    cfg = load_sweep(sweep_file, {"cache_dir": cache_dir} if cache_dir else None)
    if backend is not None and backend not in ("process", "ray"):
        raise RewardLabError(f"--backend {backend!r}: expected 'process' or 'ray'")
    points = expand(cfg, str(sweep_file))
    if dry_run:
        for p in points:
            typer.echo(f"{p.id}  " + "  ".join(f"{k}={v}" for k, v in p.values.items()))
        typer.echo(f"{len(points)} studies")
        return
    folder = run_sweep(
        cfg, out, backend=backend, workers=workers, address=address, source=str(sweep_file)
    )
    typer.echo(f"\nsweep folder: {folder}\nreport:       {folder / 'report.html'}")


@app.command("write-reward")
def write_reward(
    task: Annotated[str, typer.Option(help="built-in task, .py file or module")] = "topics",
    llm: Annotated[
        str, typer.Option(help="http(s)://host:port/v1 endpoint or a model folder")
    ] = "",
    model: Annotated[str, typer.Option(help="the endpoint's model name")] = "default",
    candidates: Annotated[int, typer.Option(min=1, help="programs asked for")] = 4,
    rounds: Annotated[int, typer.Option(min=1, help="rounds of error feedback each")] = 3,
    out: Annotated[Path, typer.Option(help="folder for the programs")] = Path("runs/written"),
    oracle: Annotated[
        bool, typer.Option("--oracle", help="rank survivors by gold (reported as oracle-selected)")
    ] = False,
) -> None:
    """Ask an LLM for reward programs from the task's description; keep those that pass the
    sandbox's validation (Eureka-style feedback); write them with their conversations."""
    from rewardlab.tasks import load_task
    from rewardlab.write_reward import chat_backend, write_rewards

    if not llm:
        raise RewardLabError("--llm is required: an http(s):// endpoint or a local model folder")
    summary = write_rewards(load_task(task), chat_backend(llm, model), out, candidates, rounds,
                            oracle)  # fmt: skip
    for c in summary["candidates"]:
        state = f"passed in {c['rounds']} round(s): {out / c['file']}" if c["passed"] else "failed"
        typer.echo(f"candidate {c['candidate']}: {state}")
    if summary["oracle_selected"]:
        typer.echo(f"oracle-selected (ranked by gold): {out / summary['oracle_selected']}")


@app.command("sandbox-check")
def sandbox_check() -> None:
    """Say which confinement layers reward programs get on this machine (docs/SECURITY.md)."""
    from rewardlab.sandbox import check_available

    typer.echo(check_available())


@app.command("serve-reward")
def serve_reward(
    run_dir: Annotated[Path, typer.Argument(help="a finished run folder")],
    rewards: Annotated[
        list[str],
        typer.Argument(help="rewards of the run; the first is trained on, the rest are logged"),
    ],
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 5000,
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    allow: Annotated[
        list[str], typer.Option(help="client networks allowed to call (repeat; default loopback)")
    ] = [],  # noqa: B006 - typer reads the default
    allow_host: Annotated[
        list[str], typer.Option(help="a Host name requests may carry besides --host (repeat)")
    ] = [],  # noqa: B006 - typer reads the default
    token_env: Annotated[
        str, typer.Option(help="environment variable holding a bearer token callers must send")
    ] = "",
    batch_size: Annotated[int, typer.Option(min=1, help="samples per reward call")] = 256,
    concurrency: Annotated[int, typer.Option(min=1, help="requests scored at once")] = 2,
    timeout_s: Annotated[float, typer.Option(min=0.1, help="longest a request may take")] = 120.0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
) -> None:
    """Serve rewards of a run over OpenRLHF's remote reward-model protocol (POST /get_reward)."""
    from rewardlab.integrations.openrlhf import LOOPBACK, ServerConfig, make_app, serve
    from rewardlab.integrations.runs import load_run_rewards

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise RewardLabError(f"--token-env {token_env}: that environment variable is not set")
    rr = load_run_rewards(run_dir, device=device)
    for name in rewards:
        rr.get(name)  # an unknown name is refused before the server starts
    cfg = ServerConfig(batch_size=batch_size, max_concurrency=concurrency, timeout_s=timeout_s,
                       allow=tuple(allow) or LOOPBACK, token=token, bind=host,
                       hosts=tuple(allow_host))  # fmt: skip
    app_ = make_app(rr, rewards, cfg)
    typer.echo(f"serving {', '.join(rewards)} of {run_dir} on http://{host}:{port}/get_reward",
               err=True)  # fmt: skip
    serve(app_, host, port)


@app.command("eval-rm")
def eval_rm(
    model_dir: Annotated[Path, typer.Argument(help="a local sequence-classification model folder")],
    run_dir: Annotated[Path, typer.Argument(help="a run folder whose gold-labelled pairs to use")],
    split: Annotated[str, typer.Option(help="test (held-out pairs), train or all")] = "test",
    template: Annotated[str, typer.Option(help="auto, plain or chat")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="pairs per forward pass")] = 32,
    out: Annotated[Path | None, typer.Option(help="write the result here as JSON")] = None,
) -> None:
    """Judge an outside reward model on a run's gold-labelled pairs: accuracy against gold,
    overall and by gold margin (RewardBench-style)."""
    import json

    import pandas as pd

    from rewardlab.config import run_config
    from rewardlab.integrations.reward_bench import evaluate, load_sequence_classifier

    pairs_file = run_dir / "stages" / "preferences" / "preferences.parquet"
    if not pairs_file.is_file() or not (run_dir / "config.yaml").is_file():
        raise RewardLabError(f"{run_dir} is not a run folder with preference pairs ({pairs_file})")
    if split not in ("test", "train", "all"):
        raise RewardLabError(f"--split {split}: one of test, train, all")
    pairs = pd.read_parquet(pairs_file)
    if split != "all":
        pairs = pairs[pairs.split == split]
    lo, hi = run_config(run_dir).task.load().gold_range
    model, tok = load_sequence_classifier(model_dir)
    res = {"model": str(model_dir), "run": str(run_dir), "split": split,
           **evaluate(model, tok, pairs, hi - lo, template, batch_size)}  # fmt: skip
    for k, v in res.items():
        typer.echo(f"{k:28s} {v:.3f}" if isinstance(v, float) else f"{k:28s} {v}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1))


config_app = typer.Typer(help="The study config: every key described, one study resolved.")
app.add_typer(config_app, name="config")


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
app.add_typer(label_app, name="label")
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
app.add_typer(cache_app, name="cache")
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
app.add_typer(gridworld_app, name="gridworld")


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


def main() -> None:
    """Entry point: bad input ends in one paragraph on stderr and exit code 2; SIGINT or SIGTERM
    in a message and exit code 128 + the signal's number (130, 143)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.stdout.reconfigure(line_buffering=True)  # progress reaches a pipe or a log as it happens
    unwind_on_signals()
    try:
        rc = app(standalone_mode=False)
    except RewardLabError as err:
        typer.echo(f"rewardlab: error: {err}", err=True)
        sys.exit(2)
    except OSError as err:  # the machine, not the lab: a full disk, a read-only folder, ...
        where = f" ({err.filename})" if err.filename else ""
        hint = {errno.ENOSPC: "free some space", errno.EROFS: "give a writable --out",
                errno.EACCES: "give a folder you may write to",
                errno.ENOLCK: "this file system offers no flock locks: put cache_dir on one "
                              "that does, or give each node its own cache"}.get(err.errno, "")  # fmt: skip
        typer.echo(
            f"rewardlab: error: {err.strerror or err}{where}"
            + (f"; {hint}" if hint else "")
            + "; finished stages are kept and will be reused",
            err=True,
        )
        sys.exit(2)
    except (Interrupted, KeyboardInterrupt) as err:
        signum = getattr(err, "signum", signal.SIGINT)
        typer.echo(
            f"rewardlab: interrupted ({signal.Signals(signum).name}); finished stages are kept and "
            "will be reused, the stage that was running was removed (a trained optimizer keeps "
            "its checkpoints and resumes from them)",
            err=True,
        )
        sys.exit(128 + signum)
    except Exception as err:  # usage errors of click (or of the click typer vendors)
        if callable(getattr(err, "show", None)) and isinstance(
            getattr(err, "exit_code", None), int
        ):
            err.show()
            sys.exit(err.exit_code)
        raise
    if isinstance(rc, int) and rc:  # typer turns a KeyboardInterrupt it sees into 130
        sys.exit(rc)


if __name__ == "__main__":
    main()
