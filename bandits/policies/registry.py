"""Name -> policy class registry, filled by discovering policy modules.

A new policy is **one module + one YAML**: a module that defines a :class:`Policy` subclass
decorated with ``@register_policy("name")``, and ``configs/policy/<name>.yaml`` listing its
settings with their defaults (the conformance suite checks that they equal the constructor's).
Nothing else is edited: :func:`discover` imports

* every public module of the ``bandits.policies`` package (``pkgutil``; modules whose name
  starts with ``_`` and subpackages such as ``kernels`` are skipped), and
* every ``*.py`` file (not starting with ``_``) in the directories listed in the environment
  variable ``BANDITS_POLICY_PATH`` (:data:`POLICY_PATH_ENV`, separated by ``os.pathsep``):
  policies kept outside the repository. Such a directory keeps the YAML of each policy in
  ``<dir>/policy/<name>.yaml``, so the directory can also be given to Hydra as a config
  search path (``hydra.searchpath=[file://<dir>]``) and ``policy=<name>`` composes it. A
  plugin module is imported under the name ``bandits_policy_plugin_<file stem>``, the same in
  every process (worker processes inherit the variable, so a pickled plugin policy loads).

Registering a class is all it takes to be picked up by the command line
(``policy=<name>``), by :func:`make_policy` and by the conformance test suite.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bandits.errors import ConfigError
from bandits.policies.base import Policy
from bandits.settings import coerce_settings, signature_defaults

__all__ = [
    "PLUGIN_PREFIX",
    "POLICIES",
    "POLICY_PATH_ENV",
    "discover",
    "make_policy",
    "plugin_dirs",
    "register_policy",
]

POLICIES: dict[str, type[Policy]] = {}
#: Environment variable listing directories of policy modules kept outside the package.
POLICY_PATH_ENV = "BANDITS_POLICY_PATH"
#: Module-name prefix of plugin modules (``bandits_policy_plugin_<stem>``).
PLUGIN_PREFIX = "bandits_policy_plugin_"

P = TypeVar("P", bound=type[Policy])


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator: register a policy under ``name`` (sets ``cls.name``)."""

    def deco(cls: P) -> P:
        old = POLICIES.get(name)
        if old is not None and old is not cls and old.__qualname__ != cls.__qualname__:
            raise ValueError(f"policy name '{name}' is already registered to {old}")
        cls.name = name
        POLICIES[name] = cls
        return cls

    return deco


def plugin_dirs() -> list[Path]:
    """The directories named by ``BANDITS_POLICY_PATH`` (empty entries ignored); one that is
    not a directory is a one-line :class:`~bandits.errors.ConfigError`."""
    dirs = []
    for entry in os.environ.get(POLICY_PATH_ENV, "").split(os.pathsep):
        if not entry.strip():
            continue
        path = Path(entry).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{POLICY_PATH_ENV}: '{entry}' is not a directory")
        dirs.append(path)
    return dirs


def _import_plugin(path: Path) -> None:
    name = PLUGIN_PREFIX + path.stem
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ConfigError(f"{POLICY_PATH_ENV}: cannot import '{path}'")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def discover() -> dict[str, type[Policy]]:
    """Import every policy module (module docstring) and return :data:`POLICIES`. Importing
    ``bandits.policies`` calls it; calling it again imports only what is new."""
    import bandits.policies as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    for directory in plugin_dirs():
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                _import_plugin(path)
    return POLICIES


def make_policy(name: str, settings: Mapping[str, Any] | None = None) -> Policy:
    """Build a registered policy from its name and settings (one-line ConfigError otherwise:
    an unknown policy or setting, a value of the wrong type, a value out of range)."""
    if name not in POLICIES:
        raise ConfigError(f"unknown policy '{name}' (known: {', '.join(sorted(POLICIES))})")
    cls = POLICIES[name]
    settings = dict(settings or {})
    known = cls.setting_names()
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(
            f"policy '{name}' has no setting(s) {', '.join(unknown)} "
            f"(settings: {', '.join(sorted(known))})"
        )
    settings = coerce_settings(settings, signature_defaults(cls), "policy")
    policy = cls(**settings)
    policy._check_settings()
    return policy
