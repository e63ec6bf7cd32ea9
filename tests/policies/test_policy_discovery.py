"""A new policy is one module + one YAML: a throwaway policy written to a temporary plugin
directory (``BANDITS_POLICY_PATH``) is registered, built by ``make_policy`` and run by the
whole conformance suite, with no other edit.

The checks run in subprocesses, so this process's registry (and the other tests' view of it)
never sees the throwaway policy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bandits.errors import ConfigError
from bandits.policies.registry import PLUGIN_PREFIX, POLICY_PATH_ENV, plugin_dirs

ROOT = Path(__file__).parents[2]
NAME = "throwaway_greedy"

MODULE = '''"""A throwaway policy kept outside the package: greedy on smoothed means, ε-mixed."""

from __future__ import annotations

import numpy as np

from bandits.policies import Policy, register_policy
from bandits.policies.sampling import one_hot_argmax


@register_policy("throwaway_greedy")
class ThrowawayGreedy(Policy):
    """Greedy on ``(sum_k + prior) / (n_k + 1)`` (context-free), mixed with ``epsilon``."""

    def __init__(self, prior: float = 0.5, *, epsilon: float = 0.1, update_every: int = 1) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.prior = prior

    def _reset(self, spec):
        self.counts_ = np.zeros(spec.n_actions)
        self.sums_ = np.zeros(spec.n_actions)

    def _action_probs(self, ctx):
        means = (self.sums_ + float(self.prior)) / (self.counts_ + 1.0)
        return one_hot_argmax(np.tile(means, (len(ctx), 1)))

    def _update(self, ctx, actions, rewards, propensities):
        np.add.at(self.counts_, actions, 1.0)
        np.add.at(self.sums_, actions, rewards)
'''

YAML = """# A throwaway policy (test of BANDITS_POLICY_PATH)
name: throwaway_greedy
prior: 0.5
epsilon: 0.1
update_every: 1
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    (tmp_path / "throwaway.py").write_text(MODULE)
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / f"{NAME}.yaml").write_text(YAML)
    return tmp_path


def _run(args: list[str], plugin: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, POLICY_PATH_ENV: str(plugin)}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_a_plugin_policy_is_registered_and_built(plugin_dir: Path) -> None:
    code = (
        "import sys\n"
        "from bandits.policies import POLICIES, make_policy\n"
        f"p = make_policy('{NAME}', {{'prior': '0.25'}})\n"
        "print(sorted(POLICIES).count('throwaway_greedy'), type(p).__module__, p.prior)\n"
    )
    done = _run(["-c", code], plugin_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", f"{PLUGIN_PREFIX}throwaway", "0.25"]


def test_the_conformance_suite_runs_a_plugin_policy(plugin_dir: Path) -> None:
    done = _run(
        [
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "-rA",
            "tests/policies/test_policy_conformance.py",
            "-k",
            NAME,
        ],
        plugin_dir,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-2000:]
    for test in (
        f"test_yaml_lists_every_setting_with_the_constructor_default[{NAME}]",
        f"test_play_equals_the_reference_with_full_state[settings1-{NAME}]",
        f"test_replay_equals_the_reference_with_full_state[True-{NAME}]",
        f"test_unbound_policy_says_so_in_one_line[{NAME}]",
    ):
        assert f"PASSED tests/policies/test_policy_conformance.py::{test}" in out, out[-3000:]
    assert "failed" not in out.splitlines()[-1]


def test_a_bad_plugin_path_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(POLICY_PATH_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=rf"^{POLICY_PATH_ENV}: '.*nowhere' is not a directory$"):
        plugin_dirs()
    monkeypatch.setenv(POLICY_PATH_ENV, os.pathsep.join(["", str(tmp_path)]))
    assert plugin_dirs() == [tmp_path]
