"""Name -> class registry of off-policy estimators.

Every estimator class is decorated with :func:`register_estimator`, which stores it in
:data:`ESTIMATORS` under a short lower-case name and sets ``cls.name`` to that name. Code that
must treat all estimators alike (conformance tests, experiment configs) iterates over
``ESTIMATORS`` instead of hard-coding class names, so a new estimator is picked up as soon as its
module is imported (``bandits.ope.__init__`` imports all of them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bandits.errors import ConfigError

if TYPE_CHECKING:
    from bandits.ope.base import OffPolicyEstimator

__all__ = ["ESTIMATORS", "available_estimators", "make_estimator", "register_estimator"]

ESTIMATORS: dict[str, type[OffPolicyEstimator]] = {}
"""All registered estimator classes, keyed by their registry name (e.g. ``"ips"``)."""

_E = TypeVar("_E", bound="type[OffPolicyEstimator]")


def register_estimator(name: str) -> Callable[[_E], _E]:
    """Class decorator: register an estimator class under ``name`` and set ``cls.name``.

    Registering a *different* class under an already used name raises ``ValueError``;
    re-registering the same class (e.g. after a module reload) is allowed.
    """
    if not name or name != name.strip().lower():
        raise ValueError(f"estimator name must be a non-empty lower-case string, got {name!r}")

    def decorator(cls: _E) -> _E:
        existing = ESTIMATORS.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"estimator name {name!r} already registered by {existing.__qualname__}"
            )
        cls.name = name
        ESTIMATORS[name] = cls
        return cls

    return decorator


def available_estimators() -> list[str]:
    """Sorted registry names of all registered estimators."""
    return sorted(ESTIMATORS)


def make_estimator(name: str, **params: Any) -> OffPolicyEstimator:
    """Instantiate the estimator registered as ``name`` with constructor ``params``; an unknown
    name or setting is a one-line :class:`~bandits.errors.ConfigError` (values are checked
    when the estimator is used)."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ConfigError(
            f"unknown estimator {name!r}; available: {', '.join(available_estimators())}"
        ) from None
    unknown = sorted(set(params) - set(cls.setting_names()))
    if unknown:
        raise ConfigError(
            f"estimator '{name}' has no setting(s) {', '.join(map(repr, unknown))} "
            f"(settings: {', '.join(cls.setting_names())})"
        )
    return cls(**params)
