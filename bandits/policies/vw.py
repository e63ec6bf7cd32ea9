"""Vowpal Wabbit ``--cb_explore_adf`` as a policy.

Context columns become the shared namespace ``s`` (categoricals as ``col=value``, numerics
as ``col:value`` on the schema's standardised scale); each variant's catalog features become
its action namespace ``a`` (a retargeting variant's category is the round's last-viewed
category). VW returns a probability mass function over the actions; we draw from it with our
own seeded generator, so the logged propensity is exactly the (renormalised) probability VW
gave. Cost = ``-reward``. VW's own randomness (e.g. bagging) is seeded with ``--random_seed``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
import polars as pl
import vowpalwabbit

from bandits.errors import ConfigError
from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec, sample_from
from bandits.policies.registry import register_policy

#: explorer -> (VW flags, the flag its ``explore_param`` sets, default value)
EXPLORERS: dict[str, tuple[str, str | None, float | None]] = {
    "epsilon": ("", "--epsilon", 0.05),
    "softmax": ("--softmax", "--lambda", 10.0),
    "bag": ("", "--bag", 5),
    "cover": ("", "--cover", 4),
    "regcb": ("--regcb", "--mellowness", 0.1),
    "squarecb": ("--squarecb", "--gamma_scale", 10.0),
}


def _token(value: Any) -> str:
    """VW-safe feature token (no spaces, pipes or colons)."""
    return str(value).replace(" ", "_").replace("|", "_").replace(":", "_")


@register_policy("vw")
class VowpalWabbit(Policy):
    """VW contextual bandit with action-dependent features.

    Settings: ``explorer`` (one of :data:`EXPLORERS`), ``explore_param`` (ε for epsilon,
    λ for softmax, number of policies for bag / cover, mellowness for regcb, γ scale for
    squarecb; ``None`` = the default above), ``interactions`` (namespace pairs such as
    ``["sa"]``, or triples), ``learning_rate``, ``extra_args`` (raw VW flags).
    """

    def __init__(
        self,
        explorer: str = "epsilon",
        explore_param: float | None = None,
        interactions: tuple[str, ...] | list[str] = ("sa",),
        learning_rate: float = 0.5,
        extra_args: str = "",
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.explorer = explorer
        self.explore_param = explore_param
        self.interactions = interactions
        self.learning_rate = learning_rate
        self.extra_args = extra_args

    def _check_settings(self) -> None:
        super()._check_settings()
        if self.explorer not in EXPLORERS:
            raise ConfigError(
                f"unknown VW explorer '{self.explorer}' (known: {', '.join(EXPLORERS)})"
            )
        for inter in self.interactions:
            if not (2 <= len(str(inter)) <= 3):
                raise ConfigError(
                    f"policy.interactions entries are 2-3 namespace letters, got '{inter}'"
                )

    def vw_args(self, seed: int) -> str:
        flags, param_flag, default = EXPLORERS[self.explorer]
        value = default if self.explore_param is None else self.explore_param
        parts = [
            "--cb_explore_adf",
            "--quiet",
            f"--random_seed {seed}",
            f"-l {self.learning_rate}",
            flags,
        ]
        if param_flag is not None:
            if param_flag in ("--bag", "--cover"):
                value = int(value)  # type: ignore[arg-type]
            parts.append(f"{param_flag} {value}")
        parts += [f"--interactions {i}" for i in self.interactions]
        parts.append(self.extra_args)
        return " ".join(p for p in parts if p)

    def _reset(self, spec: ProblemSpec) -> None:
        seed = int(self.rng_.integers(0, 2**31 - 1))
        self.args_ = self.vw_args(seed)
        try:
            self.vw_ = vowpalwabbit.Workspace(self.args_)
        except RuntimeError as exc:
            raise ConfigError(
                f"Vowpal Wabbit rejected its arguments '{self.args_}': {exc}"
            ) from None
        cat = spec.catalog
        feats = [c for c in cat.columns if c not in ("variant_id",)]
        self._dynamic = (
            cat["mentions_last_viewed"].to_numpy().astype(bool)
            if "mentions_last_viewed" in cat.columns
            else np.zeros(spec.n_actions, bool)
        )
        lines = []
        for i, row in enumerate(cat.iter_rows(named=True)):
            toks = [f"variant={_token(row['variant_id'])}"]
            for f in feats:
                v = row[f]
                if f == "category" and self._dynamic[i]:
                    continue
                if isinstance(v, bool):
                    if v:
                        toks.append(_token(f))
                elif isinstance(v, int | float):
                    toks.append(f"{_token(f)}:{float(v) / (10.0 if f == 'discount' else 1.0)}")
                else:
                    toks.append(f"{_token(f)}={_token(v)}")
            lines.append(" ".join(toks))
        self._action_lines = lines

    def _shared_lines(self, ctx: Contexts) -> list[str]:
        schema = self.spec_.features
        exprs: list[pl.Expr] = []
        for c in schema.categorical:
            exprs.append(
                (pl.lit(f"{_token(c.name)}=") + pl.col(c.name).cast(pl.String)).alias(c.name)
            )
        X = ctx.X
        base = schema.dim - len(schema.numeric)
        frame = ctx.frame.select(exprs) if exprs else pl.DataFrame()
        for j, num in enumerate(schema.numeric):
            frame = frame.with_columns(
                (
                    pl.lit(f"{_token(num.name)}:")
                    + pl.Series(X[:, base + j]).round(4).cast(pl.String)
                ).alias(f"__num{j}")
            )
        if frame.width == 0:
            return ["shared |s const"] * len(ctx)
        return (
            frame.select(pl.concat_str(pl.all(), separator=" ").alias("s"))
            .get_column("s")
            .to_list()
        )

    def _examples(self, ctx: Contexts) -> list[list[str]]:
        shared = self._shared_lines(ctx)
        dyn = None
        if self._dynamic.any() and "last_viewed_category" in ctx.frame.columns:
            dyn = ctx.frame["last_viewed_category"].cast(pl.String).to_list()
        out = []
        for i, s in enumerate(shared):
            acts = [f"|a {line}" for line in self._action_lines]
            if dyn is not None:
                for k in np.flatnonzero(self._dynamic):
                    acts[k] += f" category={_token(dyn[i])}"
            out.append([f"shared |s {s}", *acts])
        return out

    def _pmf(self, example: list[str]) -> np.ndarray:
        p = np.asarray(self.vw_.predict(example), dtype=np.float64)
        return p / p.sum()

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        return np.array([self._pmf(ex) for ex in self._examples(ctx)]).reshape(
            len(ctx), self.spec_.n_actions
        )

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        """Per-round predict → sample → learn; example text is built once per batch."""
        examples = self._examples(ctx)
        n, k = len(ctx), self.spec_.n_actions
        uniforms = self.rng_.random(n)
        probs = np.empty((n, k))
        eps = float(self.epsilon)
        step = int(self.update_every)
        actions = np.empty(n, np.int64)
        props = np.empty(n)
        for start in range(0, n, step):
            stop = min(start + step, n)
            for t in range(start, stop):
                p = self._pmf(examples[t])
                probs[t] = (1.0 - eps) * p + eps / k if eps > 0 else p
            a, pr = sample_from(probs[start:stop], uniforms[start:stop])
            actions[start:stop], props[start:stop] = a, pr
            for t in range(start, stop):
                self._learn(
                    examples[t],
                    int(actions[t]),
                    float(potential_rewards[t, actions[t]]),
                    float(props[t]),
                )
        self.n_updates_ += n
        return Decisions(actions, props, probs)

    def _learn(self, example: list[str], action: int, reward: float, propensity: float) -> None:
        ex = list(example)
        ex[1 + action] = f"0:{-reward}:{propensity} {ex[1 + action]}"
        self.vw_.learn(ex)

    def _update(self, ctx, actions, rewards, propensities) -> None:
        for ex, a, r, p in zip(self._examples(ctx), actions, rewards, propensities, strict=True):
            self._learn(ex, int(a), float(r), float(p))

    def get_state(self) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            self.vw_.save(path)
            with open(path, "rb") as fh:
                return {"vw_model": fh.read(), "args_": self.args_}

    def set_state(self, state: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            with open(path, "wb") as fh:
                fh.write(state["vw_model"])
            self.vw_ = vowpalwabbit.Workspace(f"--quiet -i {path}")
