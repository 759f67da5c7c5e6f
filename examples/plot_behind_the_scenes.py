"""The behind-the-scenes sweep's gold and proxy against GRPO step, one line per p (mean over
seeds, ±1 standard error), and its table: `python examples/plot_behind_the_scenes.py runs/behind-the-scenes`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

P = [("p0", "p = 0 (rm-xs only)"), ("p05", "p = 0.05"), ("p20", "p = 0.2"), ("p100", "p = 1")]


def main(
    sweep: str,
    img: str = "docs/img/behind-the-scenes.png",
    out: str = "docs/results/behind-the-scenes",
) -> None:
    c = pd.read_csv(Path(sweep) / "curves.csv")
    c = c[c.optimizer == "grpo"]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for r, label in P:
        d = c[c.reward == r].groupby("step")
        for a, col in zip(ax, ["gold", "proxy"], strict=True):
            m, se = d[col].mean(), d[col].sem()
            a.plot(m.index, m.values, label=label)
            a.fill_between(m.index, m - se, m + se, alpha=0.2)
    ax[0].set_ylabel("gold (base-policy std)")
    ax[1].set_ylabel("rm-xs proxy (base-policy std)")
    for a in ax:
        a.set_xlabel("GRPO step")
        a.axhline(0, color="k", lw=0.5)
    ax[0].legend()
    fig.suptitle(
        "Ratings behind the scenes: a fraction p of samples rated by a simulated person (3 seeds, ±1 se)"
    )
    fig.tight_layout()
    fig.savefig(img, dpi=110)
    rows = []
    for d in sorted((Path(sweep) / "studies").iterdir()):
        seed = int(
            next(
                x for x in (d / "config.yaml").read_text().splitlines() if x.startswith("seed:")
            ).split()[1]
        )
        sm = pd.read_csv(d / "summary.csv").query("optimizer == 'grpo'").set_index("reward")
        last = (
            pd.read_csv(d / "measurements.csv")
            .sort_values("step")
            .groupby("reward")
            .tail(1)
            .set_index("reward")
        )
        for r, _ in P:
            req = json.loads((d / "stages" / f"grpo-{r}" / "rewards.json").read_text())["requests"]
            rows.append(dict(seed=seed, reward=r, peak_gold=sm.loc[r, "peak_gold"], final_gold=sm.loc[r, "final_gold"],
                             final_proxy=sm.loc[r, "final_proxy"], final_kl=last.loc[r, "kl"],
                             ratings=sum(e["answered"] for e in req), timed_out=sum(e["timed_out"] for e in req),
                             wait_s=sum(e["wait_s"] for e in req),
                             no_step_while_waiting=all(e["step"] == e["step_after"] for e in req)))  # fmt: skip
    df = pd.DataFrame(rows)
    g = df.groupby("reward", sort=False)[
        ["peak_gold", "final_gold", "final_proxy", "final_kl", "ratings", "wait_s"]
    ]
    Path(out).mkdir(parents=True, exist_ok=True)
    df.to_csv(Path(out) / "by_seed.csv", index=False)
    g.mean().add_suffix("_mean").join(g.sem().add_suffix("_se")).reset_index().to_csv(
        Path(out) / "summary.csv", index=False
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
