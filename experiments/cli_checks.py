"""The apps' command line, checked before Hydra composes anything: overrides naming a group
the app does not take, an option that does not exist or a setting the config does not have
are one ``error: …`` line (exit 2), and ``--help`` lists only the groups the app takes.

Hydra's own messages for these span 3–12 lines (``Could not override 'foo'. … Key 'foo' is
not in struct …``) or, for a group another app uses, its ``--help`` advertises it anyway.
Value *types and ranges* are checked later, inside the job but before any data is read or
any MLflow run exists (:func:`experiments.common.check_config` and the builders of
policies, audiences and ladders).

Which groups an app takes is read from its primary config's defaults list
(``configs/<app>.yaml``): nothing to keep in sync by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bandits.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
#: Hydra's own flags: left to Hydra (``--help`` is ours, see :func:`app_help`).
_HYDRA_FLAGS = ("--hydra-help", "--cfg", "-c", "--info", "-i", "--resolve", "--package", "-p")
#: Mappings whose keys are the user's to choose: ``+ladder.lints={name: lints}`` adds a rung,
#: ``+columns.rename.segment=crm_segment`` a rename. Anywhere else a new key is a typo.
OPEN_MAPS = ("ladder", "columns.rename", "columns.catalog_rename")


def app_groups(app: str, config_dir: Path = CONFIG_DIR) -> tuple[str, ...]:
    """The config groups ``app`` takes: the ``group: option`` entries of its defaults list."""
    path = config_dir / f"{app}.yaml"
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.is_file() else {}
    groups: list[str] = []
    for entry in (raw.get("defaults") or []) if isinstance(raw, dict) else []:
        if isinstance(entry, dict):
            for key in entry:
                name = str(key).removeprefix("optional ").removeprefix("override ").strip()
                if not name.startswith("hydra") and (config_dir / name).is_dir():
                    groups.append(name)
    return tuple(groups)


def _options(group: str, config_dir: Path) -> list[str]:
    return sorted(p.stem for p in (config_dir / group).glob("*.yaml"))


def _values(override: Any) -> list[str]:
    if override.is_sweep_override():
        try:
            return [str(v) for v in override.sweep_string_iterator()]
        except Exception:  # glob(...) and friends: Hydra expands them itself
            return []
    value = override.value()
    return [] if value is None else [str(value)]


def check_overrides(app: str, argv: list[str], config_dir: Path = CONFIG_DIR) -> None:
    """Raise a one-line :class:`ConfigError` for the first override in ``argv`` that names a
    group ``app`` does not take (``simulate experiment=…``), an option that does not exist
    (``policy=foo``) or a setting the composed config does not have (``foo=1``,
    ``policy.nonexistent=3``). Hydra flags, ``hydra.*`` / ``hydra/*`` overrides and deletions
    (``~key``) are left to Hydra; so is an override Hydra's grammar cannot parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except Exception:
        return  # Hydra reports its own grammar errors
    groups = app_groups(app, config_dir)
    all_groups = {p.name for p in config_dir.iterdir() if p.is_dir()}
    choices: list[str] = []
    settings = []
    for override in overrides:
        key = override.key_or_group
        if key.startswith("hydra") or override.is_delete():
            continue
        if key in all_groups:
            if key not in groups:
                raise ConfigError(
                    f"{app} takes no '{key}' (its groups: {', '.join(groups)})"
                    + ("; the presets run with compare" if key == "experiment" else "")
                )
            known = _options(key, config_dir)
            values = _values(override)
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ConfigError(f"unknown {key} '{unknown[0]}' (known: {', '.join(known)})")
            if override.is_add() and key in groups:
                raise ConfigError(f"{app} already has the '{key}' group: write {key}=… (no +)")
            if values:
                choices.append(f"{'+' if override.is_add() else ''}{key}={values[0]}")
        else:
            settings.append((key, override.is_add()))
    if settings:
        cfg = _compose(app, choices, config_dir)
        if cfg is not None:
            for key, added in settings:
                _check_known(app, cfg, key, added)


def _compose(app: str, choices: list[str], config_dir: Path) -> DictConfig | None:
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(str(config_dir), version_base="1.3"):
            return compose(config_name=app, overrides=choices)
    except Exception:
        return None  # Hydra will say what is wrong with the composition itself


def _check_known(app: str, cfg: DictConfig, key: str, added: bool = False) -> None:
    """``key`` must exist in ``cfg`` — or, for ``+key=…`` (``added``), sit in one of the
    :data:`OPEN_MAPS`; a changed key inside an open map must exist (add it with ``+``)."""
    node: Any = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth])
        if not isinstance(node, DictConfig):
            return  # a list index or a value: Hydra and the builders judge it
        if part not in list(node.keys()):  # (`in` is False for a ??? value)
            last = depth == len(parts) - 1
            if added and (where in OPEN_MAPS or (last and where)):
                return  # a new rung / rename; +section.key: the section's builder judges it
            known = ", ".join(str(k) for k in node if str(k) != "hydra") or "nothing yet"
            scope = f"under '{where}'" if where else f"in {app}'s config"
            open_map = any(where == m or where.startswith(m + ".") for m in OPEN_MAPS)
            target = key if last else f"{where}.{part}"
            hint = f"; to add it write +{target}=…" if open_map and not added else ""
            raise ConfigError(
                f"unknown setting '{key}': no '{part}' {scope} (known: {known}){hint}"
            )
        if OmegaConf.is_missing(node, part):
            return  # a ??? value the override fills in
        node = node[part]


def app_help(app: str, doc: str | None, config_dir: Path = CONFIG_DIR) -> str:
    """``--help``: the app's docstring, the groups it takes with their options, and its
    default config (as ``--cfg job`` prints it, without Hydra's own settings)."""
    lines = [(doc or app).strip(), "", "== Configuration groups (group=option) ==", ""]
    lines += [f"{g}: {', '.join(_options(g, config_dir))}" for g in app_groups(app, config_dir)]
    import importlib.util

    plugin = importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is not None
    launchers = ["basic", *(["joblib"] if plugin else []), *_options("hydra/launcher", config_dir)]
    lines.append(f"hydra/launcher (with -m, a sweep): {', '.join(launchers)}")
    lines += ["", "== Config (override with key=value; new keys with +key=value) ==", ""]
    cfg = _compose(app, [], config_dir)
    if cfg is not None:
        lines.append(OmegaConf.to_yaml(cfg).rstrip())
    lines += ["", "Hydra's own options: --hydra-help"]
    return "\n".join(lines)


def check_command_line(app: str, argv: list[str], doc: str | None = None) -> None:
    """Run by each app before Hydra: ``--help`` prints :func:`app_help` and exits 0; a bad
    override prints one ``error: …`` line and exits 2."""
    from experiments.common import EXIT_USER_ERROR

    if any(a in ("--help", "-h") for a in argv):
        try:
            print(app_help(app, doc))
            sys.stdout.flush()
        except BrokenPipeError:  # `--help | head`
            sys.stderr.close()
        sys.exit(0)
    if any(a.split("=")[0] in _HYDRA_FLAGS for a in argv):
        return
    try:
        check_overrides(app, argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
