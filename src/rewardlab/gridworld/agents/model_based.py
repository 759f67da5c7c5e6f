"""A model-based planner: value iteration on a transition and reward model learned from experience."""

from __future__ import annotations

import numpy as np

from rewardlab.gridworld.agents.tabular import EpsilonGreedy


def value_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    q0: np.ndarray | None = None,
) -> np.ndarray:
    """Q(s, a) = R(s, a) + gamma * sum_s' P(s' | s, a) max_a' Q(s', a')  (Bellman optimality).

    Iterates from `q0` (default zeros) until successive iterates differ by less than `tol`; the
    Bellman operator is a gamma-contraction, so any start reaches the same fixed point, and a
    start near it (the last plan's Q) takes few iterations.

    Args:
        P: (S, A, S) transition probabilities; rows may sum to less than 1, the rest being the
            probability that the episode terminates.
        R: (S, A) expected reward.
    """
    S, A = R.shape
    P2 = P.reshape(S * A, S)  # one matrix-vector product per iteration
    Q = np.zeros_like(R, dtype=float) if q0 is None else np.array(q0, dtype=float)
    for _ in range(max_iter):
        Q_new = R + gamma * (P2 @ Q.max(1)).reshape(S, A)
        if np.abs(Q_new - Q).max() < tol:
            return Q_new
        Q = Q_new
    return Q


class ModelBased(EpsilonGreedy):
    """Counts transitions N(s, a, s') and terminations, averages rewards R(s, a), and acts
    epsilon-greedily on the Q of value iteration over that model, re-planned every `plan_every`
    updates. An unvisited (s, a) is valued `optimism`; by default max |r| seen so far / (1 - gamma),
    the most any policy could earn (R-max, Brafman & Tennenholtz 2002), so that the planner goes
    to find out what it has not tried."""

    def __init__(self, n_states: int, n_actions: int, *, gamma: float = 0.95, epsilon: float = 0.1,
                 plan_every: int = 100, optimism: float | None = None, seed: int = 0):  # fmt: skip
        self.N = np.zeros((n_states, n_actions, n_states))
        self.done = np.zeros((n_states, n_actions))
        self.rsum = np.zeros((n_states, n_actions))
        self.gamma, self.epsilon, self.plan_every, self.optimism = (
            gamma,
            epsilon,
            plan_every,
            optimism,
        )
        self.r_max = 0.0
        self.q = np.full((n_states, n_actions), optimism or 0.0, dtype=float)
        self.rng = np.random.default_rng(seed)
        self.updates = 0

    def model(self, rsum: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The maximum-likelihood model: P(s' | s, a) (terminations excluded) and mean R(s, a)
        (of the reward sums `rsum`, by default the rewards seen)."""
        rsum = self.rsum if rsum is None else rsum
        visits = self.N.sum(2) + self.done
        seen = visits > 0
        P = np.where(seen[..., None], self.N / np.maximum(visits, 1)[..., None], 0.0)
        R = np.where(seen, rsum / np.maximum(visits, 1), 0.0)
        return P, R

    def solve(self, rsum: np.ndarray | None = None, q0: np.ndarray | None = None) -> np.ndarray:
        """Q of value iteration on the model (from `q0`), unseen (s, a) valued at the optimism."""
        P, R = self.model(rsum)
        seen = (self.N.sum(2) + self.done) > 0
        optimism = self.optimism if self.optimism is not None else self.r_max / (1 - self.gamma)
        R = np.where(seen, R, optimism * (1 - self.gamma))  # unseen: a self-loop worth `optimism`
        P = P.copy()
        idx = np.argwhere(~seen)
        P[idx[:, 0], idx[:, 1], idx[:, 0]] = 1.0
        return value_iteration(P, R, self.gamma, q0=q0)

    def plan(self) -> None:
        self.q = self.solve(q0=self.q)

    def update(self, s: int, a: int, r: float, s2: int, terminated: bool) -> None:
        if terminated:
            self.done[s, a] += 1
        else:
            self.N[s, a, s2] += 1
        self.rsum[s, a] += r
        self.r_max = max(self.r_max, abs(r))
        self.updates += 1
        if self.updates % self.plan_every == 0:
            self.plan()


class CurrentRF(ModelBased):
    """A current-reward-function planner (Everitt et al. 2021, *Reward tampering problems and
    solutions in reinforcement learning*, sec. 4): the model-based planner above, except that
    futures are valued with the reward function in force *now*.

    The world exposes its reward-function parameter θ (`info["rf"]`) and what each step would have
    paid under every θ' (`info["rf_rewards"]`). The agent averages those into one reward model per
    θ', R_θ'(s, a), and acts on

        Q_θ(s, a) = R_θ(s, a) + gamma * sum_s' P(s' | s, a) max_a' Q_θ(s', a')

    with θ the parameter now: a future in which the parameter has been changed is still paid by
    today's θ, so changing it gains nothing. Nothing makes the agent restore θ once it has changed
    (its current function is then the changed one). In worlds without a parameter (θ always 0)
    it is the model-based planner.
    """

    def __init__(self, n_states: int, n_actions: int, n_rf: int, **kw):
        super().__init__(n_states, n_actions, **kw)
        self.rsum_rf = np.zeros((n_rf, n_states, n_actions))
        self.qs = np.full((n_rf, n_states, n_actions), self.q[0, 0], dtype=float)
        self.theta = 0
        self.rf_rewards: list[float] | None = None

    def observe(self, info: dict) -> None:
        """Read θ now and the last step's rewards under every θ' (called by `run_episodes`)."""
        self.theta = int(info.get("rf", 0))
        self.rf_rewards = info.get("rf_rewards")
        self.q = self.qs[self.theta]

    def update(self, s: int, a: int, r: float, s2: int, terminated: bool) -> None:
        rf = self.rf_rewards if self.rf_rewards is not None else [r] * len(self.rsum_rf)
        if len(rf) != len(self.rsum_rf):
            raise ValueError(
                f"the world reports {len(rf)} reward-function values; the agent has "
                f"{len(self.rsum_rf)}"
            )
        self.rsum_rf[:, s, a] += rf
        self.r_max = max(self.r_max, *(abs(x) for x in rf))
        super().update(s, a, r, s2, terminated)  # counts, the seen reward, and the plan

    def plan(self) -> None:
        for theta in range(len(self.rsum_rf)):
            self.qs[theta] = self.solve(self.rsum_rf[theta], q0=self.qs[theta])
        self.q = self.qs[self.theta]
