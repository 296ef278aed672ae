"""The operator's configuration: one TOML file, secrets from the environment (and `.env`).

Every problem is a `ConfigError` of one line that starts with the file, names the key and
says what to do, so `crosspost` can print it as it is and stop before contacting anything.

Paths in the file (`workflow.folder`, `workflow.archive`, `workflow.ledger` and any publisher
setting whose name ends in `_file`, `_dir` or `_path`) are relative to the folder of the
config file, so a run from cron or a systemd timer finds the same files as one from a shell.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosspost_logs import register_secret
from crosspost_orchestrator.errors import ConfigError
from crosspost_orchestrator.plugins import PluginInfo, install_hint
from crosspost_orchestrator.settings import SECRET_SETTING_NAMES, secret_env_var

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_LEDGER_NAME",
    "DEFAULT_TIMEOUT_S",
    "Config",
    "PublisherTable",
    "WorkflowConfig",
    "check_plugins_installed",
    "load_config",
    "read_dotenv",
]

DEFAULT_CONFIG_NAME = "crosspost.toml"
DEFAULT_LEDGER_NAME = "crosspost.sqlite3"
DEFAULT_TIMEOUT_S = 120.0

_WORKFLOW_KEYS = {
    "folder": "the folder of images waiting to be published",
    "archive": "where a fully published image and its caption file move",
    "ledger": "the SQLite file recording which platform has which image",
    "timeout_s": "the time limit of one publish, in seconds",
}
_PATH_SUFFIXES = ("_file", "_dir", "_path")
_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_PLATFORM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class WorkflowConfig:
    """The `[workflow]` table, paths made absolute."""

    folder: Path | None
    archive: Path | None
    ledger: Path
    timeout_s: float


@dataclass(frozen=True, slots=True)
class PublisherTable:
    """One `[publishers.<name>]` table: the settings handed to the plugin's factory (without
    `enabled`, with the platform's secrets from the environment) and whether it runs."""

    name: str
    enabled: bool
    settings: dict[str, Any] = field(repr=False)
    #: Secret keys filled from the environment (key -> variable name), for error messages.
    secrets_from_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded, checked configuration."""

    path: Path
    workflow: WorkflowConfig
    publishers: dict[str, PublisherTable]

    @property
    def enabled(self) -> list[str]:
        """Names of the enabled publishers, in the order of the file."""
        return [name for name, table in self.publishers.items() if table.enabled]

    def error(self, message: str) -> ConfigError:
        """A `ConfigError` about this file."""
        return ConfigError(f"{self.path}: {message}")


def read_dotenv(path: Path) -> dict[str, str]:
    """Variables of a `.env` file: `KEY=VALUE` lines, optional `export `, `#` comments,
    values optionally in matching quotes; no interpolation. A missing file is empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot be read ({exc.strerror}): check its permissions"
        ) from exc
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            # The line may hold a secret: never echo it.
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE: fix or remove this line")
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _parse_workflow(path: Path, table: Any) -> WorkflowConfig:
    base = path.parent
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: workflow: expected a table [workflow], got {_type_name(table)}")
    unknown = sorted(set(table) - set(_WORKFLOW_KEYS))
    if unknown:
        known = ", ".join(sorted(_WORKFLOW_KEYS))
        raise ConfigError(
            f"{path}: workflow.{unknown[0]}: unknown setting: remove it (known settings: {known})"
        )
    paths: dict[str, Path | None] = {}
    for key in ("folder", "archive", "ledger"):
        value = table.get(key)
        if value is None:
            paths[key] = None
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{path}: workflow.{key}: expected a path string ({_WORKFLOW_KEYS[key]}), "
                f"got {_shown(value)}"
            )
        paths[key] = _resolve(base, value)
    timeout = table.get("timeout_s", DEFAULT_TIMEOUT_S)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigError(
            f"{path}: workflow.timeout_s: expected a positive number of seconds, got {_shown(timeout)}"
        )
    folder = paths["folder"]
    archive = paths["archive"]
    if archive is None and folder is not None:
        archive = folder / "archive"
    ledger = paths["ledger"] or base / DEFAULT_LEDGER_NAME
    return WorkflowConfig(folder=folder, archive=archive, ledger=ledger, timeout_s=float(timeout))


def _parse_publisher(
    path: Path, name: str, table: Any, environ: Mapping[str, str]
) -> PublisherTable:
    where = f"{path}: publishers.{name}"
    if not _PLATFORM_NAME.match(name):
        raise ConfigError(
            f"{where}: not a publisher name: use lower-case letters, digits and _ "
            "(see `crosspost platforms`)"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table [publishers.{name}], got {_type_name(table)}")
    settings = dict(table)
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.enabled: expected true or false, got {_shown(enabled)}")
    for key in sorted(settings):
        if key in SECRET_SETTING_NAMES:
            var = secret_env_var(name, key)
            raise ConfigError(
                # Worded so that no "<key>: value" pattern gets redacted from the message.
                f"{where}.{key} is a secret, never read from the config file: remove it and "
                f"set {var} in the environment (or in .env beside the config)"
            )
        value = settings[key]
        if key.endswith(_PATH_SUFFIXES) and isinstance(value, str) and value:
            settings[key] = str(_resolve(path.parent, value))
    from_env: dict[str, str] = {}
    if enabled:
        for key in sorted(SECRET_SETTING_NAMES):
            var = secret_env_var(name, key)
            value = environ.get(var, "")
            if value:
                register_secret(value)
                settings[key] = value
                from_env[key] = var
    return PublisherTable(name=name, enabled=enabled, settings=settings, secrets_from_env=from_env)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the TOML file at `path`; secrets come from `environ` (default
    `os.environ`) over the `.env` beside the file. Raises `ConfigError` (one line)."""
    config_path = Path(path).expanduser().absolute()
    try:
        data = tomllib.loads(config_path.read_bytes().decode("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{config_path}: no such file: create it (see the sample crosspost.toml in the "
            "README) or pass --config PATH"
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{config_path}: is a folder: pass the path of the TOML file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config_path}: not UTF-8 text: save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}: fix the syntax there") from exc
    except OSError as exc:
        raise ConfigError(
            f"{config_path}: cannot be read ({exc.strerror}): check its permissions"
        ) from exc

    unknown = sorted(set(data) - {"workflow", "publishers"})
    if unknown:
        raise ConfigError(
            f"{config_path}: {unknown[0]}: unknown table or key: the file holds [workflow] and "
            "[publishers.<name>] tables only"
        )
    workflow = _parse_workflow(config_path, data.get("workflow", {}))
    tables = data.get("publishers")
    if tables is None or tables == {}:
        raise ConfigError(
            f"{config_path}: publishers: no [publishers.<name>] table: add one per platform "
            "(`crosspost platforms` lists the installed ones)"
        )
    if not isinstance(tables, dict):
        raise ConfigError(
            f"{config_path}: publishers: expected [publishers.<name>] tables, got {_type_name(tables)}"
        )
    env: dict[str, str] = read_dotenv(config_path.parent / ".env")
    env.update(os.environ if environ is None else environ)
    publishers = {
        name: _parse_publisher(config_path, name, table, env) for name, table in tables.items()
    }
    config = Config(path=config_path, workflow=workflow, publishers=publishers)
    if not config.enabled:
        raise ConfigError(
            f"{config_path}: publishers: every publisher has enabled = false: enable at least one"
        )
    return config


def check_plugins_installed(config: Config, installed: Mapping[str, PluginInfo]) -> None:
    """Raise `ConfigError` for the first enabled table whose plugin is not installed."""
    for name in config.enabled:
        if name not in installed:
            raise config.error(
                f"publishers.{name}: no publisher {name!r}: install {install_hint(name)}"
            )
