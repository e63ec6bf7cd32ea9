"""The VW policy (``--cb_explore_adf``, default epsilon explorer, ``sa`` interactions) on the
built-in audience, in simulation (``play``: predict → sample with our generator → learn) and
replay (``update`` on logged decisions), against VW's own ``-d file`` driver on the same
examples with the same labels (the ``vw`` command if installed, else the driver inside the
Python package: ``Workspace("... -d file").run_parser()``), interleaved, best of N.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import numpy as np

from bandits.policies import make_policy
from bandits.policies.vw import VowpalWabbit
from bandits.simulate import AudienceSettings, Environment, problem_spec
from experiments.benchmarks.common import Row


def _write_labelled(policy, ctx, dec, rewards, path: str, predict_first: bool = False) -> None:
    """VW text of every round with its label; ``predict_first``: each labelled example is
    preceded by the same example without a label, which the driver only predicts on — the
    work a simulation does per round (predict, then learn once the reward is known)."""
    with open(path, "w") as fh:
        for i, ex in enumerate(policy._examples(ctx)):
            a = int(dec.actions[i])
            if predict_first:
                fh.write("\n".join(ex) + "\n\n")
            ex = list(ex)
            ex[1 + a] = f"0:{-float(rewards[i])}:{float(dec.propensities[i])} {ex[1 + a]}"
            fh.write("\n".join(ex) + "\n\n")


def _driver_seconds(args: str, path: str) -> tuple[float, str]:
    """Wall time of VW's own driver learning ``path`` (start-up subtracted)."""
    exe = shutil.which("vw")
    if exe:
        t0 = time.perf_counter()
        subprocess.run([exe, *args.split(), "-d", path], check=True, capture_output=True)
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([exe, *args.split()], check=True, capture_output=True, input=b"")
        return max(full - (time.perf_counter() - t0), 1e-9), "vw command"
    import vowpalwabbit

    t0 = time.perf_counter()
    w = vowpalwabbit.Workspace(f"{args} -d {path}")
    w.run_parser()
    w.finish()
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    vowpalwabbit.Workspace(args).finish()
    return max(full - (time.perf_counter() - t0), 1e-9), "VW driver via the Python package"


def bench_vw(quick: bool) -> list[Row]:
    n = 500 if quick else 20_000
    reps = 1 if quick else 5
    env = Environment(AudienceSettings(), 1)
    spec = problem_spec(env)
    day = env.next_day(n)
    ctx = spec.contexts(day.frame)
    ref = make_policy("vw").bind(spec, 0)
    assert isinstance(ref, VowpalWabbit)
    dec = ref.play(ctx, day.potential_reward)
    rewards = day.potential_reward[np.arange(n), dec.actions]
    args = ref.args_
    tmp = tempfile.mkdtemp(prefix="bench_vw_")
    try:
        path = os.path.join(tmp, "examples.txt")
        _write_labelled(ref, ctx, dec, rewards, path)
        path2 = os.path.join(tmp, "predict_then_learn.txt")
        _write_labelled(ref, ctx, dec, rewards, path2, predict_first=True)
        best = {"sim": np.inf, "replay": np.inf, "driver": np.inf, "driver2": np.inf}
        how = ""
        for _ in range(reps):  # interleaved: the same machine state for all
            p = make_policy("vw").reset(spec, 0)
            t0 = time.perf_counter()
            p.play(ctx, day.potential_reward)
            best["sim"] = min(best["sim"], time.perf_counter() - t0)
            p = make_policy("vw").reset(spec, 0)
            t0 = time.perf_counter()
            p.update(ctx, dec.actions, rewards, dec.propensities)
            best["replay"] = min(best["replay"], time.perf_counter() - t0)
            secs, how = _driver_seconds(args, path)
            best["driver"] = min(best["driver"], secs)
            best["driver2"] = min(best["driver2"], _driver_seconds(args, path2)[0])
        m = min(n, 2_000)  # the old text path is slow: fewer rounds
        text = make_policy("vw").bind(spec, 0)
        assert isinstance(text, VowpalWabbit)
        t0 = time.perf_counter()
        text._play_text(ctx.slice(0, m), day.potential_reward[:m])
        text_rate = m / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    driver_rate = n / best["driver"]
    driver2_rate = n / best["driver2"]
    common = (
        f"{spec.n_actions} actions, shared + action namespaces, args '{args}'; "
        f"peer = {how} on the same {n:,} labelled examples"
    )
    sim = Row(
        "vw simulation (play)",
        n,
        best["sim"],
        peers={
            "VW -d file driver": driver_rate,
            "VW driver, predict then learn per round": driver2_rate,
            "text path (before)": text_rate,
        },
        target="≥ 0.9 × driver",
        met=None if quick else n / best["sim"] >= 0.9 * driver_rate,
        notes=common
        + "; per round: predict, sample with our generator, learn. A simulation must predict "
        "before the reward exists and VW's learn predicts again internally, so it does about "
        "twice the driver's work on labelled examples; the second peer is the driver doing "
        "that same work (each round's example unlabelled, then labelled)",
        extra={"driver_rate": driver_rate, "driver_predict_learn_rate": driver2_rate},
    )
    rep = Row(
        "vw replay (update)",
        n,
        best["replay"],
        unit="logged events",
        peers={"VW -d file driver": driver_rate},
        target="≥ 0.9 × driver",
        met=None if quick else n / best["replay"] >= 0.9 * driver_rate,
        notes="learn only, labels known",
    )
    return [sim, rep]
