"""Shared fixtures for the OPE tests: tiny logs and a synthetic logging problem with known truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class SyntheticProblem:
    """A contextual bandit with a finite context population, so the truth is exact.

    * contexts: ``n_contexts`` fixed vectors ``x`` (d = 3), drawn uniformly;
    * expected reward ``q*(x, k) = sigmoid(theta_k . x + b_k)``, rewards Bernoulli(q*);
      feature ``x[2]`` matters a lot (a model without it is misspecified);
    * logging policy: softmax of a linear score mixed with uniform (every action >= 0.06);
    * target policy: 0.8 on the true best action + 0.2 uniform.
    """

    n_actions: int = 4
    n_contexts: int = 64
    seed: int = 123

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        k = self.n_actions
        self.contexts = rng.normal(size=(self.n_contexts, 3))
        self.theta = rng.normal(scale=0.8, size=(k, 3))
        self.theta[:, 2] = np.linspace(-2.0, 2.0, k)  # strong action-specific effect of x2
        self.bias = rng.normal(scale=0.3, size=k)
        self.log_weights = rng.normal(scale=0.7, size=(k, 3))
        self.q_star_ctx = _sigmoid(self.contexts @ self.theta.T + self.bias)  # (M, K)
        logits = self.contexts @ self.log_weights.T
        self.mu_ctx = 0.75 * _softmax(logits) + 0.25 / k  # (M, K)
        best = np.argmax(self.q_star_ctx, axis=1)
        self.pi_ctx = np.full((self.n_contexts, k), 0.2 / k)
        self.pi_ctx[np.arange(self.n_contexts), best] += 0.8

    @property
    def true_value(self) -> float:
        """Exact target value: mean over contexts of ``sum_k pi(k|x) q*(x, k)``."""
        return float(np.mean(np.sum(self.pi_ctx * self.q_star_ctx, axis=1)))

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """One log of ``n`` rounds (all arrays for all rounds, vectorised)."""
        ctx = rng.integers(0, self.n_contexts, size=n)
        mu = self.mu_ctx[ctx]
        u = rng.random(n)
        action = np.minimum((u[:, None] > np.cumsum(mu, axis=1)).sum(axis=1), self.n_actions - 1)
        rows = np.arange(n)
        q_star = self.q_star_ctx[ctx]
        reward = (rng.random(n) < q_star[rows, action]).astype(np.float64)
        return {
            "x": self.contexts[ctx],
            "action": action,
            "reward": reward,
            "propensity": mu[rows, action],
            "logging_probs": mu,
            "target_probs": self.pi_ctx[ctx],
            "q_star": q_star,
        }

    def sample_many(self, rng: np.random.Generator, n_logs: int, n: int) -> list[dict]:
        """``n_logs`` independent logs of ``n`` rounds, drawn in one vectorised batch."""
        big = self.sample(rng, n_logs * n)
        return [{key: val[i * n : (i + 1) * n] for key, val in big.items()} for i in range(n_logs)]


@pytest.fixture(scope="session")
def problem() -> SyntheticProblem:
    return SyntheticProblem()


@pytest.fixture
def small_log() -> dict[str, np.ndarray]:
    """A random valid log: n = 300, K = 3, with reward predictions."""
    rng = np.random.default_rng(7)
    n, k = 300, 3
    mu = rng.dirichlet(np.full(k, 3.0), size=n)
    action = np.minimum((rng.random(n)[:, None] > np.cumsum(mu, axis=1)).sum(axis=1), k - 1)
    return {
        "reward": rng.normal(1.0, 1.0, size=n),
        "action": action,
        "propensity": mu[np.arange(n), action],
        "target_probs": rng.dirichlet(np.ones(k), size=n),
        "reward_hat": rng.normal(1.0, 0.5, size=(n, k)),
    }
