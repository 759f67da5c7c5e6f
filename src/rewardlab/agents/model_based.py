"""A model-based planner: value iteration on a transition and reward model learned from experience."""

from __future__ import annotations

import numpy as np

from rewardlab.agents.tabular import EpsilonGreedy


def value_iteration(
    P: np.ndarray, R: np.ndarray, gamma: float, tol: float = 1e-8, max_iter: int = 10_000
) -> np.ndarray:
    """Q(s, a) = R(s, a) + gamma * sum_s' P(s' | s, a) max_a' Q(s', a')  (Bellman optimality).

    Args:
        P: (S, A, S) transition probabilities; rows may sum to less than 1, the rest being the
            probability that the episode terminates.
        R: (S, A) expected reward.
    """
    Q = np.zeros_like(R, dtype=float)
    for _ in range(max_iter):
        Q_new = R + gamma * P @ Q.max(1)
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

    def model(self) -> tuple[np.ndarray, np.ndarray]:
        """The maximum-likelihood model: P(s' | s, a) (terminations excluded) and mean R(s, a)."""
        visits = self.N.sum(2) + self.done
        seen = visits > 0
        P = np.where(seen[..., None], self.N / np.maximum(visits, 1)[..., None], 0.0)
        R = np.where(seen, self.rsum / np.maximum(visits, 1), 0.0)
        return P, R

    def plan(self) -> None:
        P, R = self.model()
        seen = (self.N.sum(2) + self.done) > 0
        optimism = self.optimism if self.optimism is not None else self.r_max / (1 - self.gamma)
        R = np.where(seen, R, optimism * (1 - self.gamma))  # unseen: a self-loop worth `optimism`
        P = P.copy()
        idx = np.argwhere(~seen)
        P[idx[:, 0], idx[:, 1], idx[:, 0]] = 1.0
        self.q = value_iteration(P, R, self.gamma)

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
