"""Name -> policy class registry. Registering a class is all it takes to be picked up by the
command line (``policy=<name>``) and by the conformance test suite."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bandits.errors import ConfigError
from bandits.policies.base import Policy
from bandits.settings import coerce_settings, signature_defaults

POLICIES: dict[str, type[Policy]] = {}

P = TypeVar("P", bound=type[Policy])


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator: register a policy under ``name`` (sets ``cls.name``)."""

    def deco(cls: P) -> P:
        if name in POLICIES and POLICIES[name] is not cls:
            raise ValueError(f"policy name '{name}' is already registered to {POLICIES[name]}")
        cls.name = name
        POLICIES[name] = cls
        return cls

    return deco


def make_policy(name: str, settings: Mapping[str, Any] | None = None) -> Policy:
    """Build a registered policy from its name and settings (one-line ConfigError otherwise)."""
    if name not in POLICIES:
        raise ConfigError(f"unknown policy '{name}' (known: {', '.join(sorted(POLICIES))})")
    cls = POLICIES[name]
    settings = dict(settings or {})
    known = set(cls._setting_names())
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"policy '{name}' has no setting(s) {', '.join(unknown)} "
            f"(settings: {', '.join(sorted(known))})"
        )
    settings = coerce_settings(settings, signature_defaults(cls), "policy")
    policy = cls(**settings)
    policy._check_settings()
    return policy
