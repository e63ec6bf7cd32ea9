"""Error types shared by the library and the entry points.

A :class:`UserError` is a problem with the user's input (configuration, data, arguments).
Entry points print its one-line message and exit non-zero without a traceback; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user: the message is one line naming the problem."""


class ConfigError(UserError):
    """An invalid configuration value (names the setting and the offending value)."""


class DataError(UserError):
    """Invalid logged data (names the column and the first offending rows)."""


class NotFittedError(UserError, AttributeError):
    """A component used before it has its learned state: a policy not bound to a problem
    (``bind(spec)``), a reward model not fitted (``fit``). One line naming the component and
    the call that is missing. It is also an ``AttributeError``, so ``hasattr(obj, "coef_")``
    stays ``False`` on an unfitted object."""


def first_rows(mask_or_index, limit: int = 5) -> str:
    """Format the first offending row indices for an error message, e.g. ``rows [3, 17, …]``.

    ``mask_or_index`` is a boolean mask of shape ``(n,)`` or an integer index array.
    """
    import numpy as np

    arr = np.asarray(mask_or_index)
    idx = np.flatnonzero(arr) if arr.dtype == bool else arr.ravel()
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    more = ", …" if idx.size > limit else ""
    return f"rows [{shown}{more}] ({idx.size} in all)"
