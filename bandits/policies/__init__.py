"""Bandit policies. Importing this package registers every built-in policy.

>>> from bandits.policies import POLICIES, make_policy
>>> sorted(POLICIES)[:3]
['ab_winner', 'beta_ts', 'epsilon_greedy']
"""

from bandits.policies import baselines, given, linear, mab, offline, vw  # noqa: F401 (registration)
from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec, sample_from
from bandits.policies.registry import POLICIES, make_policy, register_policy

__all__ = [
    "POLICIES",
    "Contexts",
    "Decisions",
    "Policy",
    "ProblemSpec",
    "make_policy",
    "register_policy",
    "sample_from",
]
