"""Privacy by default: user ids become keyed hashes before anything is stored.

A raw id never reaches a decision file, a log or a run. When an audience names its user
column, the decision file gets ``user_key`` = HMAC-SHA256(key, id) in hex (64 characters),
with the key read from an environment variable (default :data:`ID_KEY_ENV`). The same key
gives the same ``user_key`` for the same person across campaigns (so their decisions can be
joined), and without the key nobody can test a guessed id against the file. The key itself
is never printed, logged or written.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import polars as pl

from bandits.errors import ConfigError, DataError, first_rows

ID_KEY_ENV = "BANDITS_ID_KEY"
#: Shortest key accepted (bytes): HMAC-SHA256 is only as strong as its key.
MIN_KEY_BYTES = 16
USER_KEY = "user_key"

__all__ = ["ID_KEY_ENV", "USER_KEY", "hash_ids", "id_key"]


def id_key(variable: str = ID_KEY_ENV) -> bytes:
    """The hashing key from environment variable ``variable`` (UTF-8 bytes).

    Raises:
        ConfigError: the variable is unset, empty or shorter than :data:`MIN_KEY_BYTES`
            bytes (the message names the variable, never a value).
    """
    value = os.environ.get(variable, "")
    if not value:
        raise ConfigError(
            f"user ids are requested but ${variable} is not set: export a secret key of at "
            f"least {MIN_KEY_BYTES} characters (e.g. from a secrets manager); raw ids are "
            "never stored"
        )
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"${variable} is too short ({len(key)} bytes): use at least {MIN_KEY_BYTES}"
        )
    return key


def hash_ids(ids: pl.Series, key: bytes, column: str = "user") -> pl.Series:
    """``user_key``: HMAC-SHA256(``key``, str(id)) as 64 hex digits, one per id ``(n,)``.

    Each id is hashed by :func:`hmac.digest` (OpenSSL; ~1 µs per id, the only per-row step
    of a decision batch, and only when ids are requested).

    Raises:
        DataError: null ids (named by ``column`` and the first rows).
    """
    if ids.null_count():
        raise DataError(
            f"user column '{column}' has null ids in {first_rows(ids.is_null().to_numpy())}"
        )
    text = ids.cast(pl.String).to_list()
    return pl.Series(USER_KEY, [hash_id(v, key) for v in text], dtype=pl.String)


def hash_id(value: str, key: bytes) -> str:
    """One id's ``user_key``: HMAC-SHA256(``key``, ``value``) as 64 hex digits."""
    return hmac.digest(key, value.encode("utf-8"), hashlib.sha256).hex()
