"""One setting as declared (`setting()`: its variable, default, help, group and bounds) and as it reads
in words: its type, its default, and what a value must be ("a number of seconds from 2 to 3600"), for
the error lines of bot/ops/config.py and the reference bot/ops/settings_doc.py writes."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo


def setting(
    default: Any,
    env: str,
    help_text: str,
    *,
    group: str,
    unit: str | None = None,
    allowed: str | None = None,
    see: tuple[str, str] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    """One setting: its variable name, default, help text and bounds (`ge`, `gt`, `le`). `unit` words a
    number ("seconds"); `allowed` words what a value must look like when the type does not say it;
    `see` is (title, page#anchor) of the docs/ page that says more."""
    extra: dict[str, Any] = {"group": group}
    if unit is not None:
        extra["unit"] = unit
    if allowed is not None:
        extra["allowed"] = allowed
    if see is not None:
        extra["see"] = list(see)
    return Field(
        default, validation_alias=env, description=help_text, json_schema_extra=extra, ge=ge, gt=gt, le=le
    )


def variable(field: FieldInfo) -> str:
    """The environment variable of a setting."""
    assert isinstance(field.validation_alias, str)
    return field.validation_alias


def extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def is_secret(field: FieldInfo) -> bool:
    return kind(field) == "secret"


def _number(value: float) -> str:
    return f"{value:g}"


def kind(field: FieldInfo) -> str:
    """The type of a setting in words, None left out: "whole number", "number", "path", ..."""
    kind: Any = field.annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(t for t in typing.get_args(kind) if t is not type(None))
    if typing.get_origin(kind) is Literal:
        return "choice"
    if isinstance(kind, type) and issubclass(kind, SecretStr):
        return "secret"
    names = {int: "whole number", float: "number", str: "text", Path: "path", tuple: "list"}
    return names.get(typing.get_origin(kind) or kind, "text")


def _bounds(field: FieldInfo) -> dict[str, float]:
    found: dict[str, float] = {}
    for meta in field.metadata:
        for name in ("ge", "gt", "le"):  # annotated_types.Ge, Gt, Le: one bound each
            value = getattr(meta, name, None)
            if isinstance(value, int | float):
                found[name] = float(value)
    return found


def requirement(field: FieldInfo) -> str:
    """What a value must be, in words, from the declaration: "a number of seconds, more than 0 and
    at most 600"."""
    meta = extra(field)
    if "allowed" in meta:
        return str(meta["allowed"])
    kind_ = kind(field)
    if kind_ == "choice":
        return "one of " + ", ".join(str(c) for c in typing.get_args(field.annotation))
    if kind_ not in ("whole number", "number"):
        return kind_
    unit = meta.get("unit")
    if unit == "port":
        words = "a port number"
    elif unit:
        words = f"a {kind_} of {unit}"
    else:
        words = f"a {kind_}"
    bounds = _bounds(field)
    low, high, above = bounds.get("ge"), bounds.get("le"), bounds.get("gt")
    if low is not None and high is not None:
        return f"{words} from {_number(low)} to {_number(high)}"
    parts = []
    if above is not None:
        parts.append(f"more than {_number(above)}")
    if low is not None:
        parts.append(f"{_number(low)} or more")
    if high is not None:
        parts.append(f"at most {_number(high)}")
    return f"{words}, {' and '.join(parts)}" if parts else words
