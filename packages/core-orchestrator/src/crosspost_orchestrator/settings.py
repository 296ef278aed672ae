"""Typed settings for publisher plugins: one `[publishers.<name>]` table into one dataclass.

A publisher declares its settings as a frozen dataclass; `settings_from_mapping` checks the
table against it (unknown keys, wrong types, missing required keys, values out of a
`Literal`) and fills secrets from the environment-derived keys the CLI passes in. Every
error is a `ConfigError` whose message starts with `publishers.<name>.<key>:`.

Secrets are never read from the TOML: a field marked `secret_field()` must come from the
environment variable `CROSSPOST_<PLATFORM>_<KEY>` (the CLI passes it in under the key name).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from crosspost_orchestrator.errors import ConfigError

__all__ = [
    "SECRET_SETTING_NAMES",
    "secret_env_var",
    "secret_field",
    "settings_from_mapping",
]

#: Keys that hold secrets in any publisher table; they may only come from the environment.
SECRET_SETTING_NAMES = frozenset({"password", "bot_token", "token", "api_key", "session_id"})

T = TypeVar("T")


def secret_env_var(platform: str, key: str) -> str:
    """The environment variable that holds the secret `key` of `platform`."""
    return f"CROSSPOST_{platform.upper()}_{key.upper()}"


def secret_field(*, required: bool = True) -> Any:
    """A dataclass field holding a secret (filled from the environment, never the TOML)."""
    metadata = {"secret": True}
    if required:
        return dataclasses.field(default="", metadata={**metadata, "required": True}, repr=False)
    return dataclasses.field(default="", metadata=metadata, repr=False)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list or origin is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if tp is type(None):
        return "nothing"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any) -> tuple[bool, Any]:
    """(ok, converted value) for `value` against the annotation `tp`."""
    origin = get_origin(tp)
    if origin is Literal:
        return (value in get_args(tp), value)
    if origin in (types.UnionType, typing.Union):
        for arg in get_args(tp):
            ok, converted = _convert(arg, value)
            if ok:
                return True, converted
        return False, value
    if origin in (list, tuple):
        (item_type, *_rest) = get_args(tp)
        if not isinstance(value, list | tuple):
            return False, value
        items = []
        for item in value:
            ok, converted = _convert(item_type, item)
            if not ok:
                return False, value
            items.append(converted)
        return True, tuple(items) if origin is tuple else items
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    return isinstance(value, tp), value


def settings_from_mapping(cls: type[T], platform: str, mapping: Mapping[str, Any]) -> T:
    """Build the settings dataclass `cls` of `platform` from its table.

    Raises `ConfigError` naming `publishers.<platform>.<key>` and what is expected.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"publishers.{platform}"
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown setting (known settings: {known})")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        secret = bool(field.metadata.get("secret"))
        if name not in mapping or (secret and not mapping[name]):
            missing_required = field.default is dataclasses.MISSING and (
                field.default_factory is dataclasses.MISSING
            )
            if secret and field.metadata.get("required"):
                var = secret_env_var(platform, name)
                raise ConfigError(
                    f"{prefix}: {var} is not set: export it (or put it in .env beside the config)"
                )
            if missing_required:
                raise ConfigError(
                    f"{prefix}.{name}: required setting is missing (expected {_type_name(hints[name])})"
                )
            continue
        ok, converted = _convert(hints[name], mapping[name])
        if not ok:
            shown = "<secret>" if secret else repr(mapping[name])
            raise ConfigError(f"{prefix}.{name}: expected {_type_name(hints[name])}, got {shown}")
        values[name] = converted
    return cls(**values)
