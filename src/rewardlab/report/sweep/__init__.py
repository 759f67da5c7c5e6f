"""The analyses of a sweep, from its gathered tables alone.

Each grid of the sweep (a sweep file may list several) is analysed on its own, so that an axis
is never confounded with another one swept in a different grid. Within a grid:

- **scaling**: for x in (reward-model parameters, preference pairs, policy parameters), when x
  takes at least three values and the other two are fixed: every metric ``y`` (α, β of the fit
  of each optimizer, peak gold, KL at the peak, gold fall) against ``log10 x``: one least-
  squares line ``y = a + b·log10 x`` per seed, the slope the mean of the seeds' slopes with a
  95% Student-t interval over seeds (k − 1 degrees of freedom; with one seed, over its points),
  and the mean and 95% interval over seeds at each x;
- **KL penalty**: when the ``beta`` of a trained optimizer varies: gold against KL for each β; for β > 0 the difference
  between its final gold and the unpenalised run's gold at the same KL (linear interpolation on
  the β = 0 curve of the same seed and reward), mean and standard error over seeds. A difference
  near 0 means the penalty moves the policy along the unpenalised curve (early stopping); a
  positive one, that it reaches a better frontier;
- **ensembles**: when ensemble rewards (``name/mean|min|uwo``) are present: peak gold, final
  gold and fall of each reducer and of the single models, per label-noise rate and optimizer;
- **learned vs rule**: when RL ran against the rule and learned rewards: the smallest x at which
  the learned reward's final gold (mean over seeds) reaches the rule's final gold minus one
  standard error (over seeds; the measurement's own when there is one seed);
- **reward-model accuracy** (`reward_models.csv`): held-out accuracy per level of each axis that
  varies alone, by gold-margin bin, and whether each step rises;
- **Gao et al. 2022 side by side**: each stated direction (`GAO`) beside the slope and a verdict;
  for a grid over two axes, the slopes of each at fixed levels of the other (`scaling_within`);
- **frontier**: over size × pairs, RL's gold minus the rule's at the same KL, per cell, and the
  crossing (the smallest cells whose interval clears the verdict's margin, bracketed by the
  cells below them; or a logistic in log size, reported only inside the sizes tried);
- **evaluation vs generation**: over reward-model × policy size, peak gold and fall against the
  ratio of their parameters;
- **by reward**: when rewards learned from examples (classifier, demos, likelihood ratio) are
  present: each reward's peak gold, final gold, fall and final KL per optimizer over seeds, and
  its final gold minus the rule's, paired by seed.
"""

from rewardlab.report.sweep.analyses import load_sweep_tables
from rewardlab.report.sweep.page import build_sweep_report

__all__ = ["build_sweep_report", "load_sweep_tables"]
