"""Settings values checked against the type of their default, in one line.

Policies, the audience and the apps take settings from configs and command lines, where
``alpha=abc`` or ``rounds=1.5`` arrive as text or the wrong number type. :func:`coerce_setting`
turns a value into the type its default has — or raises a one-line
:class:`~bandits.errors.ConfigError` naming the key, the value and what is allowed — so no
``ValueError`` from ``float("abc")`` or numpy ufunc error ever reaches a user.

Rules, by the default's type:

* ``bool``: ``True`` / ``False`` only (and the text ``true`` / ``false``);
* ``int``: integers, and floats or text holding an integral value (``"3"``, ``3.0``);
  ``1.5`` is an error, not silently 1;
* ``float``: any real number, or text parsed as one (``"1e-3"``); NaN is an error;
* ``str``: text (numbers are taken as their text);
* ``None`` or any other type: the value as given.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from typing import Any

from bandits.errors import ConfigError

__all__ = ["coerce_setting", "coerce_settings", "dataclass_defaults", "signature_defaults"]


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def coerce_setting(value: Any, default: Any, key: str) -> Any:
    """``value`` as the type of ``default`` (rules in the module docstring); ``key`` (e.g.
    ``policy.alpha``) names it in the error."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ConfigError(f"{key}={_shown(value)}: expected true or false")
    if isinstance(default, int):
        number = _number(value)
        if isinstance(value, bool) or number is None or not float(number).is_integer():
            raise ConfigError(f"{key}={_shown(value)}: expected an integer")
        return int(number)
    if isinstance(default, float):
        number = _number(value)
        if isinstance(value, bool) or number is None or math.isnan(number):
            raise ConfigError(f"{key}={_shown(value)}: expected a number")
        return float(number)
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}={_shown(value)}: expected text")
    return value


def _number(value: Any) -> float | int | None:
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            text = value.strip()
            return int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            return None
    return None


def coerce_settings(
    settings: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str
) -> dict[str, Any]:
    """Every entry of ``settings`` coerced to its default's type (keys without a default
    are passed through; unknown keys are the caller's to reject)."""
    return {
        k: coerce_setting(v, defaults[k], f"{prefix}.{k}") if k in defaults else v
        for k, v in settings.items()
    }


#: Annotations (as written, postponed) that fix a setting's type; anything else (a union
#: such as ``str | int``, a tuple, a mapping) leaves the value to the setting's own check.
_TYPED: dict[str, Any] = {"float": 0.0, "int": 0, "bool": False, "str": ""}


def _sample(annotation: Any, default: Any) -> Any:
    """A value of the type ``annotation`` names (or, unannotated, the default), or None."""
    if annotation is inspect.Parameter.empty or annotation is None:
        return default if isinstance(default, bool | int | float | str) else None
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return _TYPED.get(str(text).strip())


def signature_defaults(cls: type) -> dict[str, Any]:
    """``{parameter: sample}`` of ``__init__`` over ``cls``'s MRO (the nearest class wins):
    a value of the parameter's annotated type (``float``, ``int``, ``bool``, ``str``), for
    :func:`coerce_settings`; parameters of other types are left out."""
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or "__init__" not in klass.__dict__:
            continue
        for p in inspect.signature(klass.__dict__["__init__"]).parameters.values():
            if p.name in seen or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name == "self":
                continue
            seen.add(p.name)
            sample = _sample(p.annotation, p.default if p.default is not p.empty else None)
            if sample is not None:
                out[p.name] = sample
    return out


def dataclass_defaults(cls: type) -> dict[str, Any]:
    """``{field: sample}`` of a dataclass's fields of type ``float``, ``int``, ``bool`` or
    ``str`` (as :func:`signature_defaults`)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        sample = _sample(f.type, default)
        if sample is not None:
            out[f.name] = sample
    return out
