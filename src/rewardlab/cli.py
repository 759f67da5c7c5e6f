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

from rewardlab.cli_groups import DEFAULT_CONFIG, GROUPS, SetOption, StudyArg
from rewardlab.errors import Interrupted, RewardLabError, unwind_on_signals

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)


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
    seeds: Annotated[
        str | None,
        typer.Option(
            help="several seeds side by side in one run folder, e.g. 0,1,2 (same as "
            "--set seeds=[0,1,2]): verdicts and curves over seeds"
        ),
    ] = None,
) -> None:
    """Run a study (resuming any finished stages) and write its run folder. Every key --set
    takes, with its default and meaning: docs/CONFIG.md, or `rewardlab config show STUDY`."""
    from rewardlab.config import load_config

    overrides = list(set_ or [])
    if task:
        overrides.append(f"task.name={task}")
    if seeds is not None:
        overrides.append(f"seeds=[{_seed_list(seeds)}]")
    cfg = load_config(config, overrides)  # a bad config is reported before the study's imports
    if cfg.seeds:
        if rebuild:
            raise RewardLabError("--rebuild takes one seed: give --set seed=N, not --seeds")
        from rewardlab.seeds import run_seeds

        study = run_seeds(cfg, out)
    else:
        from rewardlab.study import run_study

        study = run_study(cfg, out, rebuild=rebuild or ())
    if study.verdicts is not None:
        _print_verdicts(study.verdicts)
    else:
        _print_rewards(study.run_dir / "rewards.csv")
        _print_summary(study.summary, study.run_dir)
    typer.echo(f"\nrun folder: {study.run_dir}\nreport:     {study.run_dir / 'report.html'}")


def _seed_list(text: str) -> str:
    """``--seeds 0,1,2`` as ``0,1,2``, or a `RewardLabError` naming what is not a seed."""
    parts = [p.strip() for p in text.split(",")]
    bad = [p for p in parts if not p.lstrip("-").isdigit()]
    if bad or not parts:
        raise RewardLabError(
            f"--seeds {text!r}: give whole numbers separated by commas, e.g. 0,1,2"
        )
    return ",".join(parts)


def _print_verdicts(verdicts) -> None:
    """The verdicts over seeds of a several-seed run (`verdict.over_seeds`)."""
    from rewardlab.verdict import MARGIN

    cols = ["optimizer", "reward", "seeds", "final_gold", "final_gold_lo", "final_gold_hi",
            "fall", "fall_lo", "fall_hi", "verdict", "hacked_seeds", "verdict_kl"]  # fmt: skip
    typer.echo("\nverdicts over seeds:")
    typer.echo(verdicts[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo("\n" + textwrap.fill(
        "Each seed's fall of gold after its peak is cross-fitted over its prompts; fall is the "
        "seeds' mean with its 95% Student-t interval over seeds [fall_lo, fall_hi]; hacked: that "
        "interval, and that of its paired difference from the same optimizer against the rule, "
        f"above 0; not hacked: below {MARGIN} std within verdict_kl nats; else undetermined. "
        "hacked_seeds: seeds whose own verdict is hacked.", 100))  # fmt: skip


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
    taken = run_dir / "takeaway.txt"
    if taken.is_file():
        typer.echo("\ntakeaway:")
        for line in taken.read_text().splitlines():
            typer.echo(textwrap.fill(line, 100, initial_indent="- ", subsequent_indent="  "))


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a finished run folder")]) -> None:
    """Rebuild the plots and report.html of a run folder (or a sweep folder) from its files."""
    from rewardlab.report import build_report
    from rewardlab.report.seeds import build_seeds_report, is_seeds_folder

    if is_seeds_folder(run_dir):
        _print_verdicts(build_seeds_report(run_dir))
        typer.echo(f"\nreport: {run_dir / 'report.html'}")
        return
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


@app.command()
def hackability(
    folders: Annotated[list[Path], typer.Argument(help="finished sweep folders or run folders")],
    out: Annotated[Path, typer.Option(help="where to write the tables and the plot")],
) -> None:
    """Which offline score predicts hacking and which detector warns of it, over every reward
    of the folders: analysis_predict.csv, analysis_detect.csv, hackability_rewards.csv."""
    from rewardlab.report.hackability import hackability as analyse

    predict, detect = analyse(folders, out)
    strongest = predict.assign(size=predict.spearman.abs()).sort_values("size", ascending=False)
    typer.echo(
        strongest.drop(columns="size")
        .head(12)
        .to_string(index=False, float_format=lambda v: f"{v:.3f}")
    )
    typer.echo("\n" + detect.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"\ntables: {out}")


@app.command()
def reproduce(
    folders: Annotated[
        list[Path], typer.Argument(help="committed results folders, e.g. docs/results/rm-scaling")
    ],
    work: Annotated[
        Path | None,
        typer.Option(help="output folder of the commands (default runs/reproduce/<name>)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the commands and stop (nothing is run)")
    ] = False,
) -> None:
    """Regenerate results folders at this checkout: run the commands in each one's
    provenance.json, copy the files it lists, and write its new provenance.json."""
    from rewardlab.provenance import reproduce as regenerate

    if work is not None and len(folders) > 1:
        raise RewardLabError("--work names one output folder: give one results folder with it")
    for folder in folders:
        regenerate(folder, work=work, log=typer.echo, dry_run=dry_run)


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
