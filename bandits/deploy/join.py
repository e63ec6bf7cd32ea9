"""Rewards joined back to decisions by event id, within an attribution window.

Decision ``i`` (``event_id``, ``decided_at = t_i``) is attributed the reward events with its
``event_id`` that occurred in ``[t_i, t_i + window]``. At the time ``as_of`` (default: now),
a decision's window is *closed* when ``t_i + window ≤ as_of``:

* closed, with events in the window → ``reward`` = their sum, or the first one's
  (``duplicates="sum" | "first"``; ``"error"`` stops on the first event id with several);
* closed, no event in the window → ``reward = 0`` (``missing="zero"``) or the decision is
  left out (``missing="drop"``, counted);
* open (``t_i + window > as_of``) → left out and counted: its reward may still come.

Events are never dropped silently: *late* events (after their decision's window), *early*
ones (before the decision — a clock or id problem) and events whose ``event_id`` is in no
decision are counted in the :class:`JoinSummary`. Every step is a polars join / group-by.

The output is the decision records (:mod:`bandits.deploy.decide`) of the closed windows plus
``reward`` (float64): a log in the logged-data contract (``action``, ``reward``,
``propensity``, ``action_probs``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from bandits.data.contract import REWARD
from bandits.deploy.decide import DECIDED_AT, EVENT_ID
from bandits.errors import ConfigError, DataError, first_rows

OCCURRED_AT = "occurred_at"
REWARD_EVENTS = "reward_events"
MISSING = ("zero", "drop")
DUPLICATES = ("sum", "first", "error")
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|w)\s*$")
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}

__all__ = ["DUPLICATES", "MISSING", "OCCURRED_AT", "JoinSummary", "join_rewards", "parse_window"]


def parse_window(text: str | dt.timedelta) -> dt.timedelta:
    """``"7d"``, ``"36h"``, ``"90m"``, ``"2w"``, ``"30s"`` (or a timedelta) → timedelta > 0."""
    if isinstance(text, dt.timedelta):
        window = text
    else:
        match = _WINDOW.match(str(text))
        if not match:
            raise ConfigError(
                f"window={text!r}: expected a duration such as 7d, 36h, 90m, 2w or 30s"
            )
        window = dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if window <= dt.timedelta(0):
        raise ConfigError(f"window={text!r}: must be longer than 0")
    return window


@dataclass(frozen=True)
class JoinSummary:
    """Counts of a join (every decision and every reward event is in exactly one count).

    Decisions: ``decisions`` = ``rewarded + unrewarded_zero + unrewarded_dropped +
    window_open``; ``written`` = rows of the output. Events: ``events`` = ``attributed +
    pending + late + early + unknown_event`` (``pending``: in the window of a decision whose
    window is still open); ``duplicate_events`` of the attributed events were
    beyond the first for their decision (summed or dropped per ``duplicates``)."""

    decisions: int
    written: int
    rewarded: int
    unrewarded_zero: int
    unrewarded_dropped: int
    window_open: int
    events: int
    attributed: int
    pending: int
    duplicate_events: int
    late: int
    early: int
    unknown_event: int
    window: str
    as_of: str
    missing: str
    duplicates: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The summary as console lines."""
        out = [
            f"decisions: {self.decisions:,} — {self.written:,} written "
            f"({self.rewarded:,} with a reward, {self.unrewarded_zero:,} without one → 0), "
            f"{self.unrewarded_dropped:,} without a reward left out (missing=drop), "
            f"{self.window_open:,} left out: window still open at {self.as_of}",
            f"reward events: {self.events:,} — {self.attributed:,} attributed "
            f"({self.duplicate_events:,} beyond the first for their decision: "
            f"duplicates={self.duplicates}), {self.pending:,} pending (window open), "
            f"{self.late:,} late (after the {self.window} "
            f"window), {self.early:,} before their decision, {self.unknown_event:,} for "
            "unknown event ids",
        ]
        return out


def _utc_naive(s: pl.Series, what: str) -> pl.Series:
    """A datetime column as naive UTC microseconds (tz-aware: converted; naive: read as UTC;
    text: parsed)."""
    if s.dtype == pl.String:
        try:
            parsed = s.str.to_datetime(strict=False, time_unit="us")
        except pl.exceptions.ComputeError:  # no format fits any value
            parsed = pl.Series(what, [None] * s.len(), dtype=pl.Datetime("us"))
        bad = parsed.is_null() & s.is_not_null()
        if bad.any():
            raise DataError(
                f"column '{what}': text that is not a time in {first_rows(bad.to_numpy())}, "
                f"e.g. {s.filter(bad).head(2).to_list()}"
            )
        s = parsed
    if s.dtype == pl.Date:
        s = s.cast(pl.Datetime("us"))
    if not isinstance(s.dtype, pl.Datetime):
        raise DataError(f"column '{what}' must hold times, got {s.dtype}")
    if s.dtype.time_zone is not None:  # type: ignore[union-attr]
        s = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    s = s.dt.cast_time_unit("us")
    if s.null_count():
        raise DataError(f"column '{what}' has null times in {first_rows(s.is_null().to_numpy())}")
    return s


def _check_columns(frame: pl.DataFrame, needed: tuple[str, ...], what: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} lacks column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (columns: {', '.join(frame.columns)})"
        )


def join_rewards(
    decisions: pl.DataFrame,
    events: pl.DataFrame,
    *,
    window: str | dt.timedelta = "7d",
    as_of: dt.datetime | None = None,
    missing: str = "zero",
    duplicates: str = "sum",
) -> tuple[pl.DataFrame, JoinSummary]:
    """Join reward ``events`` (``event_id``, ``reward``, ``occurred_at``) to ``decisions``
    (``event_id``, ``decided_at``, …) as the module docstring says.

    Returns the joined log (decision rows of closed windows, in their order, with
    ``reward``) and the counts.

    Raises:
        ConfigError: an unknown ``missing`` / ``duplicates`` or a bad ``window``.
        DataError: a missing column, null / non-finite rewards, unparseable times, duplicate
            decision ids, or (``duplicates="error"``) an event id with several events.
    """
    if missing not in MISSING:
        raise ConfigError(f"missing={missing!r}: must be one of {', '.join(MISSING)}")
    if duplicates not in DUPLICATES:
        raise ConfigError(f"duplicates={duplicates!r}: must be one of {', '.join(DUPLICATES)}")
    span = parse_window(window)
    if as_of is None:
        as_of = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    elif as_of.tzinfo is not None:
        as_of = as_of.astimezone(dt.UTC).replace(tzinfo=None)
    _check_columns(decisions, (EVENT_ID, DECIDED_AT), "the decisions")
    _check_columns(events, (EVENT_ID, REWARD, OCCURRED_AT), "the reward events")
    if REWARD in decisions.columns:
        raise DataError(
            f"the decisions already have a '{REWARD}' column: join rewards to decision "
            "records, not to a joined log"
        )
    ids = decisions[EVENT_ID].cast(pl.String)
    dup = ids.is_duplicated()
    if dup.any():
        raise DataError(
            f"the decisions: column '{EVENT_ID}' has duplicate ids in "
            f"{first_rows(dup.to_numpy())}, e.g. {ids.filter(dup).head(2).to_list()}"
        )
    decided = _utc_naive(decisions[DECIDED_AT], DECIDED_AT)
    rewards = events[REWARD]
    if not rewards.dtype.is_numeric() and rewards.dtype != pl.Boolean:
        raise DataError(
            f"the reward events: column '{REWARD}' must be numeric, got {rewards.dtype}"
        )
    r = rewards.cast(pl.Float64)
    bad = r.is_null() | ~r.is_finite().fill_null(False)
    if bad.any():
        raise DataError(
            f"the reward events: column '{REWARD}' has null, NaN or infinite values in "
            f"{first_rows(bad.to_numpy())}"
        )
    ev = pl.DataFrame(
        {
            EVENT_ID: events[EVENT_ID].cast(pl.String),
            "__reward": r,
            "__at": _utc_naive(events[OCCURRED_AT], OCCURRED_AT),
        }
    ).with_row_index("__event")
    if ev[EVENT_ID].null_count():
        raise DataError(
            f"the reward events: column '{EVENT_ID}' has nulls in "
            f"{first_rows(ev[EVENT_ID].is_null().to_numpy())}"
        )
    base = pl.DataFrame({EVENT_ID: ids, "__decided": decided}).with_row_index("__row")
    matched = ev.join(base, on=EVENT_ID, how="left")
    unknown = int(matched["__row"].is_null().sum())
    matched = matched.filter(pl.col("__row").is_not_null())
    end = pl.col("__decided") + pl.lit(span)
    early_mask = pl.col("__at") < pl.col("__decided")
    late_mask = pl.col("__at") > end
    n_early = int(matched.select(early_mask.sum()).item())
    n_late = int(matched.select(late_mask.sum()).item())
    closed = (decided + span) <= as_of
    inside = matched.filter(~early_mask & ~late_mask).sort("__row", "__at", "__event")
    is_closed = pl.Series("__closed", closed).gather(inside["__row"])
    n_pending = int((~is_closed).sum())
    inside = inside.filter(is_closed)
    per_row = inside.group_by("__row").agg(
        pl.len().alias(REWARD_EVENTS),
        pl.col("__reward").sum().alias("__sum"),
        pl.col("__reward").first().alias("__first"),
    )
    several = per_row.filter(pl.col(REWARD_EVENTS) > 1)
    if duplicates == "error" and several.height:
        shown = base[EVENT_ID].gather(several["__row"].head(3)).to_list()
        raise DataError(
            f"the reward events: {several.height:,} event ids have several rewards in the "
            f"window, e.g. {shown} (duplicates=sum adds them, duplicates=first keeps the first)"
        )
    n_dup = int((several[REWARD_EVENTS] - 1).sum()) if several.height else 0
    value = "__sum" if duplicates == "sum" else "__first"
    joined = (
        base.select("__row")
        .with_columns(pl.Series("__closed", closed))
        .join(
            per_row.select("__row", REWARD_EVENTS, pl.col(value).alias(REWARD)),
            on="__row",
            how="left",
        )
        .sort("__row")
    )
    has = joined[REWARD_EVENTS].is_not_null()
    closed_np = joined["__closed"]
    rewarded = int((has & closed_np).sum())
    unrewarded = int((~has & closed_np).sum())
    n_open = int((~closed_np).sum())
    keep = closed_np if missing == "zero" else (closed_np & has)
    out = decisions.with_columns(joined[REWARD].fill_null(0.0).cast(pl.Float64).alias(REWARD))
    out = out.filter(keep)
    summary = JoinSummary(
        decisions=decisions.height,
        written=out.height,
        rewarded=rewarded,
        unrewarded_zero=unrewarded if missing == "zero" else 0,
        unrewarded_dropped=unrewarded if missing == "drop" else 0,
        window_open=n_open,
        events=events.height,
        attributed=inside.height,
        pending=n_pending,
        duplicate_events=n_dup,
        late=n_late,
        early=n_early,
        unknown_event=unknown,
        window=str(window) if not isinstance(window, dt.timedelta) else str(span),
        as_of=as_of.isoformat(),
        missing=missing,
        duplicates=duplicates,
    )
    return out, summary
