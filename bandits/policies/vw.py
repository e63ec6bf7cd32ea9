"""Vowpal Wabbit ``--cb_explore_adf`` as a policy.

Context columns become the shared namespace ``s`` (categoricals as ``col=value``, numerics
as ``col:value`` on the schema's standardised scale); each variant's catalog features become
its action namespace ``a`` (a retargeting variant's category is the round's last-viewed
category). VW returns a probability mass function over the actions; we draw from it with our
own seeded generator, so the logged propensity is exactly the (renormalised) probability VW
gave. Cost = ``-reward``. VW's own randomness (e.g. bagging) is seeded with ``--random_seed``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import vowpalwabbit
import vowpalwabbit.pyvw

from bandits.errors import ConfigError
from bandits.policies.base import Contexts, Decisions, Policy, ProblemSpec
from bandits.policies.registry import register_policy
from bandits.policies.sampling import blocks, draw_list, mix, mix_row, sample_from

#: The shared ε-mixing of :mod:`bandits.policies.sampling`, run by the interpreter on one
#: round's list of probabilities (the compiled version would first need an array).
_mix_row = mix_row.py_func

#: explorer -> (VW flags, the flag its ``explore_param`` sets, default value)
EXPLORERS: dict[str, tuple[str, str | None, float | None]] = {
    "epsilon": ("", "--epsilon", 0.05),
    "softmax": ("--softmax", "--lambda", 10.0),
    "bag": ("", "--bag", 5),
    "cover": ("", "--cover", 4),
    "regcb": ("--regcb", "--mellowness", 0.1),
    "squarecb": ("--squarecb", "--gamma_scale", 10.0),
}


_VW = vowpalwabbit.pyvw.pylibvw.vw
_LABELLED_CACHE = 4096
_VWExample = vowpalwabbit.pyvw.pylibvw.example


def _normalise(raw: list[float]) -> list[float]:
    """VW's PMF renormalised to sum to one (``math.fsum``: correctly rounded, so the result
    does not depend on the order of the actions)."""
    total = math.fsum(raw)
    return [x / total for x in raw]


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
        *,
        epsilon: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
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
        self._clear_example_cache()

    def _shared_lines(self, ctx: Contexts) -> list[str]:
        """The shared line of every round, ``shared |s col=value ... num:value``, built in one
        vectorised polars expression."""
        schema = self.spec_.features
        parts: list[pl.Expr] = [
            pl.lit(f"{_token(c.name)}=") + pl.col(c.name).cast(pl.String)
            for c in schema.categorical
        ]
        X = ctx.X
        base = schema.dim - len(schema.numeric)
        columns: dict[str, pl.Series] = {}
        for j, num in enumerate(schema.numeric):
            columns[f"__num{j}"] = pl.Series(X[:, base + j]).round(4).cast(pl.String)
            parts.append(pl.lit(f"{_token(num.name)}:") + pl.col(f"__num{j}"))
        if not parts:
            return ["shared |s const"] * len(ctx)
        frame = ctx.frame.with_columns(**columns) if columns else ctx.frame
        line = pl.lit("shared |s ") + pl.concat_str(parts, separator=" ")
        return frame.select(line.alias("s")).get_column("s").to_list()

    def _dynamic_values(self, ctx: Contexts) -> list[str] | None:
        """Per round, the last-viewed category that retargeting variants take (or ``None``),
        as a VW token (vectorised :func:`_token`)."""
        if not (self._dynamic.any() and "last_viewed_category" in ctx.frame.columns):
            return None
        col = pl.col("last_viewed_category").cast(pl.String).fill_null("None")
        for ch in (" ", "|", ":"):
            col = col.str.replace_all(ch, "_", literal=True)
        return ctx.frame.select(col.alias("d")).get_column("d").to_list()

    def _round_action_lines(self, dyn_value: str | None) -> list[str]:
        """The K action lines (``|a ...``) of a round whose last-viewed category is given."""
        acts = [f"|a {line}" for line in self._action_lines]
        if dyn_value is not None:
            for k in np.flatnonzero(self._dynamic):
                acts[k] += f" category={dyn_value}"
        return acts

    def _examples(self, ctx: Contexts) -> list[list[str]]:
        """VW text of every round: ``[shared line, action line 0, ..., action line K-1]``."""
        shared = self._shared_lines(ctx)
        dyn = self._dynamic_values(ctx)
        return [
            [s, *self._round_action_lines(None if dyn is None else dyn[i])]
            for i, s in enumerate(shared)
        ]

    # ----- fast path: pre-parsed action examples ----------------------------------------
    #
    # The K action lines of a round depend only on the catalog and, for retargeting variants,
    # on the round's last-viewed category, so they are parsed once per distinct line and the
    # parsed ``pylibvw.example`` objects are reused in every round (VW restores action
    # examples after each predict/learn). Per round only the shared line is parsed (plus the
    # chosen action's labelled line when learning), then VW's ``predict_multi`` /
    # ``learn_multi`` run on the example list. Examples made with the ``pylibvw.example``
    # constructor own their memory (freed with the Python object); no ``finish_example``.
    # ``_play_text`` is the text path (``Workspace.predict/learn`` on lists of strings), kept
    # as the reference the fast path is tested against.

    def _action_examples(self, dyn_value: str | None) -> tuple[list[Any], list[str]]:
        """Parsed action examples of a round (cached) and their lines."""
        hit = self._act_cache.get(dyn_value)
        if hit is None:
            lines = self._round_action_lines(dyn_value)
            acts = []
            for line in lines:
                ex = self._line_cache.get(line)
                if ex is None:
                    ex = _VWExample(self.vw_, self._label_type, line)
                    self._line_cache[line] = ex
                acts.append(ex)
            hit = self._act_cache[dyn_value] = (acts, lines)
        return hit

    def _labelled_example(self, line: str) -> Any:
        """Parsed labelled action example, cached while there are few distinct labels (binary
        rewards with the propensities of an epsilon-type explorer or a uniform logger repeat
        a handful of labels); the cache is dropped when it grows past ``_LABELLED_CACHE``."""
        ex = self._lab_cache.get(line)
        if ex is None:
            if len(self._lab_cache) >= _LABELLED_CACHE:
                self._lab_cache.clear()
            ex = self._lab_cache[line] = _VWExample(self.vw_, self._label_type, line)
        return ex

    def _clear_example_cache(self) -> None:
        """Parsed examples belong to one workspace: forget them when it changes."""
        self._line_cache: dict[str, Any] = {}
        self._act_cache: dict[str | None, tuple[list[Any], list[str]]] = {}
        self._lab_cache: dict[str, Any] = {}
        self._label_type = self.vw_._get_label_type()

    def _rounds(self, ctx: Contexts) -> tuple[list[str], list[str | None]]:
        shared = self._shared_lines(ctx)
        found = self._dynamic_values(ctx)
        dyn: list[str | None] = list(found) if found is not None else [None] * len(shared)
        return shared, dyn

    def _predict_raw(self, shared: Any, acts: list[Any]) -> list[float]:
        """VW's PMF for one round (action order, not yet renormalised)."""
        _VW.predict_multi(self.vw_, [shared, *acts])
        return shared.get_action_scores()

    def _action_probs(self, ctx: Contexts) -> np.ndarray:
        shared, dyn = self._rounds(ctx)
        vw, lt, acts_of, predict = (
            self.vw_,
            self._label_type,
            self._action_examples,
            self._predict_raw,
        )
        rows = [
            _normalise(predict(_VWExample(vw, lt, s), acts_of(d)[0]))
            for s, d in zip(shared, dyn, strict=True)
        ]
        return np.array(rows, dtype=np.float64).reshape(len(ctx), self.spec_.n_actions)

    def _play(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        """Per-round predict → mix → draw → learn on pre-parsed action examples; the shared
        example parsed for the prediction is reused for learning."""
        shared_lines, dyn = self._rounds(ctx)
        n, k = len(ctx), self.spec_.n_actions
        uniforms = self.rng_.random(n).tolist()
        eps = float(self.epsilon)
        rewards = np.asarray(potential_rewards, dtype=np.float64).tolist()
        rows: list[list[float]] = [[]] * n
        actions = [0] * n
        props = [0.0] * n
        vw, lt, acts_of = self.vw_, self._label_type, self._action_examples
        new_example, predict_multi, learn_multi = _VWExample, _VW.predict_multi, _VW.learn_multi
        fsum, mix_row_, draw_row = math.fsum, _mix_row, draw_list
        labelled = self._labelled_example
        for start, stop in blocks(n, int(self.update_every)):
            block = []
            for t in range(start, stop):
                acts, lines = acts_of(dyn[t])
                multi = [new_example(vw, lt, shared_lines[t]), *acts]
                predict_multi(vw, multi)
                raw = multi[0].get_action_scores()
                total = fsum(raw)
                p = [x / total for x in raw]  # == _normalise(raw)
                mix_row_(p, eps)
                a = draw_row(p, uniforms[t])
                rows[t], actions[t], props[t] = p, a, p[a]
                block.append((multi, lines))
            for t in range(start, stop):
                multi, lines = block[t - start]
                a, pa = actions[t], props[t]
                multi[1 + a] = labelled(f"0:{-rewards[t][a]}:{pa} {lines[a]}")
                learn_multi(vw, multi)
        return Decisions(
            np.array(actions, dtype=np.int64),
            np.array(props, dtype=np.float64),
            np.array(rows, dtype=np.float64).reshape(n, k),
        )

    def _update(self, ctx, actions, rewards, propensities) -> None:
        shared, dyn = self._rounds(ctx)
        vw, lt, acts_of = self.vw_, self._label_type, self._action_examples
        new_example, learn_multi = _VWExample, _VW.learn_multi
        labelled = self._labelled_example
        for s, d, a, r, p in zip(
            shared, dyn, actions.tolist(), rewards.tolist(), propensities.tolist(), strict=True
        ):
            acts, lines = acts_of(d)
            multi = [new_example(vw, lt, s), *acts]
            multi[1 + a] = labelled(f"0:{-float(r)}:{float(p)} {lines[a]}")
            learn_multi(vw, multi)

    # ----- reference path (text through Workspace.predict / learn) ------------------------
    def _pmf_text(self, example: list[str]) -> list[float]:
        return _normalise(self.vw_.predict(example))

    def _play_text(self, ctx: Contexts, potential_rewards: np.ndarray) -> Decisions:
        """The text path: ``Workspace.predict`` / ``learn`` on lists of strings per round
        (same decisions and model as :meth:`_play`, several times slower; used by the tests
        and the benchmark). A hook like :meth:`_play`: it does not count ``n_updates_``."""
        examples = self._examples(ctx)
        n, k = len(ctx), self.spec_.n_actions
        uniforms = self.rng_.random(n)
        probs = np.empty((n, k))
        actions = np.empty(n, np.int64)
        props = np.empty(n)
        for start, stop in blocks(n, int(self.update_every)):
            for t in range(start, stop):
                probs[t] = self._pmf_text(examples[t])
            probs[start:stop] = mix(probs[start:stop], float(self.epsilon))
            a, pr = sample_from(probs[start:stop], uniforms[start:stop])
            actions[start:stop], props[start:stop] = a, pr
            for t in range(start, stop):
                ex = list(examples[t])
                a_t = int(actions[t])
                r_t = float(potential_rewards[t, a_t])
                ex[1 + a_t] = f"0:{-r_t}:{float(props[t])} {ex[1 + a_t]}"
                self.vw_.learn(ex)
        self.n_updates_ += n
        return Decisions(actions, props, probs)

    def get_state(self) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            self.vw_.save(path)
            with open(path, "rb") as fh:
                return {"vw_model": fh.read(), "args_": self.args_}

    def set_state(self, state: Mapping[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            with open(path, "wb") as fh:
                fh.write(state["vw_model"])
            self.vw_ = vowpalwabbit.Workspace(f"--quiet -i {path}")
        self._clear_example_cache()
