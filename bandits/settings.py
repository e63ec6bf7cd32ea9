"""One settings mechanism (:class:`Settings`) and setting values checked against the type of
their default, in one line.

**The mechanism.** Policies, off-policy estimators and reward models all derive from
:class:`Settings`: their settings are the *explicit* keyword arguments of the class's own
``__init__`` (a ``**kwargs`` collected through the class hierarchy is refused when the class is
defined), stored unchanged under the same names; learned state is created later and named with a
trailing ``_``. From the signature alone come :meth:`Settings.get_settings` (a flat dict that
round-trips through the constructor), :meth:`Settings.set_params`, :meth:`Settings.clone` (a
fresh, unfitted copy with the same settings, some overridden) and the ``repr``; an attribute
``x_`` read before the object has learned anything raises one line,
:class:`~bandits.errors.NotFittedError`, naming the object and the call that is missing.

**Values.**
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

import copy
import dataclasses
import inspect
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from bandits.errors import ConfigError, NotFittedError

__all__ = [
    "Settings",
    "coerce_setting",
    "coerce_settings",
    "dataclass_defaults",
    "signature_defaults",
]


class Settings:
    """Settings = the explicit keyword arguments of ``__init__`` (see the module docstring).

    Subclasses store every argument under its own name in ``__init__`` and may override
    :meth:`_owner` (how messages name the object, e.g. ``policy 'linucb'``),
    :meth:`_is_fitted` and :meth:`_not_fitted_message`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                raise TypeError(
                    f"{cls.__qualname__}.__init__ takes {'**' if p.kind is p.VAR_KEYWORD else '*'}"
                    f"{p.name}: settings are explicit keyword arguments (list every setting, "
                    "including the base class's, and pass them on to super().__init__)"
                )

    # ----- the settings -------------------------------------------------------------------
    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The settings, in constructor order."""
        params = inspect.signature(cls.__init__).parameters.values()
        return tuple(p.name for p in params if p.name != "self")

    @classmethod
    def setting_defaults(cls) -> dict[str, Any]:
        """``{setting: default}`` for the settings that have a default."""
        params = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in params if p.name != "self" and p.default is not p.empty}

    def get_settings(self) -> dict[str, Any]:
        """Settings as a flat dict: ``type(obj)(**obj.get_settings())`` is an unfitted copy."""
        return {name: getattr(self, name) for name in self.setting_names()}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """:meth:`get_settings` under its scikit-learn name (``deep`` is ignored)."""
        return self.get_settings()

    def _check_names(self, names: Any) -> None:
        known = self.setting_names()
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ConfigError(
                f"{self._owner()} has no setting(s) {', '.join(map(repr, unknown))} "
                f"(settings: {', '.join(known) or 'none'})"
            )

    def set_params(self, **params: Any) -> Self:
        """Set settings by name (learned state is untouched); an unknown name is a one-line
        :class:`~bandits.errors.ConfigError` naming the object and its settings."""
        self._check_names(params)
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def clone(self, **overrides: Any) -> Self:
        """A fresh, unfitted copy with the same settings (deep-copied), ``overrides`` replacing
        some of them (unknown names: :class:`~bandits.errors.ConfigError`)."""
        self._check_names(overrides)
        settings = {**copy.deepcopy(self.get_settings()), **overrides}
        return type(self)(**settings)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_settings().items())
        return f"{type(self).__name__}({args})"

    # ----- not fitted ---------------------------------------------------------------------
    def _owner(self) -> str:
        return type(self).__name__

    def _is_fitted(self) -> bool:
        """Whether the object holds learned state (override); default: any ``x_`` set."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _not_fitted_message(self) -> str:
        return f"{self._owner()} is not fitted: call fit first"

    if not TYPE_CHECKING:  # mypy keeps checking attribute names

        def __getattr__(self, name: str) -> Any:
            # only called when normal lookup fails: no cost on learned state that exists
            if name.endswith("_") and not name.startswith("__") and not self._is_fitted():
                raise NotFittedError(self._not_fitted_message())
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


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
    """``{parameter: sample}`` of ``cls.__init__``: a value of the parameter's annotated type
    (``float``, ``int``, ``bool``, ``str``), for :func:`coerce_settings`; parameters of other
    types are left out."""
    out: dict[str, Any] = {}
    for p in inspect.signature(cls.__init__).parameters.values():  # type: ignore[misc]
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name == "self":
            continue
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
