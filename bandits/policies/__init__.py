"""Bandit policies. Importing this package discovers and registers every policy module
(:func:`bandits.policies.registry.discover`: the package's own modules and those in
``BANDITS_POLICY_PATH``).

>>> from bandits.policies import POLICIES, make_policy
>>> sorted(POLICIES)[:3]
['ab_winner', 'beta_ts', 'epsilon_greedy']
"""

from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec
from bandits.policies.registry import POLICIES, discover, make_policy, register_policy
from bandits.policies.sampling import sample_from

discover()

__all__ = [
    "POLICIES",
    "Contexts",
    "Decisions",
    "Policy",
    "ProblemSpec",
    "discover",
    "make_policy",
    "register_policy",
    "sample_from",
]
