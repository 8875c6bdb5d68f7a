"""Parse runbook parameters by their declared type, before any kernel starts.

A notebook's ``parameters`` cell declares ``name: type = default  # help``.
The help text may carry constraints that the engine enforces:

* ``{a|b|c}``     the value must be one of these;
* ``[lo..hi]``    a number within the range (inclusive);
* ``<datetime>``  an ISO-8601 timestamp (UTC if no offset), or empty.

``-p dry_run false`` therefore gives the bool ``False`` (papermill would pass the
truthy string ``"false"``); ``-p zones a,b`` gives ``["a", "b"]``.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opsbook.errors import BadInput, UnknownParameter
from opsbook.times import parse_time

TRUE = {"true", "yes", "y", "1", "on"}
FALSE = {"false", "no", "n", "0", "off"}
SECRET_NAME = re.compile(r"(pass(word|wd)?|secret|token|private[_-]?key|api[_-]?key|credential)", re.I)


@dataclass(frozen=True)
class Parameter:
    """A declared runbook parameter."""

    name: str
    type: str
    default: Any
    help: str
    required: bool
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    is_datetime: bool = False

    def describe_type(self) -> str:
        """Type plus constraints, for help output."""
        out = self.type
        if self.choices:
            out += " {" + "|".join(self.choices) + "}"
        if self.minimum is not None or self.maximum is not None:
            out += f" [{_num(self.minimum)}..{_num(self.maximum)}]"
        if self.is_datetime:
            out += " <datetime>"
        return out


def _num(v: float | None) -> str:
    if v is None:
        return ""
    return str(int(v)) if float(v).is_integer() else str(v)


def parameter_from_inspection(p: Mapping[str, Any]) -> Parameter:
    """Build a Parameter from one entry of ``papermill.inspect_notebook``."""
    type_name = (p.get("inferred_type_name") or "None").replace("typing.", "").strip()
    if type_name == "None":
        type_name = "str"
    raw_default = p.get("default")
    try:
        default = ast.literal_eval(raw_default) if raw_default is not None else None
    except (ValueError, SyntaxError):
        default = raw_default
    help_text = p.get("help") or ""
    choices: tuple[str, ...] = ()
    m = re.search(r"\{([^{}]+\|[^{}]+)\}", help_text)
    if m:
        choices = tuple(c.strip() for c in m.group(1).split("|"))
    lo = hi = None
    m = re.search(r"\[(-?[\d.]*)\.\.(-?[\d.]*)\]", help_text)
    if m:
        lo = float(m.group(1)) if m.group(1) else None
        hi = float(m.group(2)) if m.group(2) else None
    optional = "None" in type_name or "Optional" in type_name
    return Parameter(
        name=str(p["name"]),
        type=type_name,
        default=default,
        help=help_text,
        required=default is None and not optional,
        choices=choices,
        minimum=lo,
        maximum=hi,
        is_datetime="<datetime>" in help_text,
    )


def _base_type(t: str) -> str:
    t = t.replace("Optional[", "").rstrip("]") if t.startswith("Optional[") else t
    parts = [x.strip() for x in t.split("|") if x.strip() != "None"]
    return parts[0] if parts else "str"


def coerce(param: Parameter, raw: Any) -> Any:
    """Convert one raw value (string from the CLI, or YAML value) to the parameter's type.

    Raises:
        BadInput: the value cannot be converted or breaks a constraint.
    """
    t = _base_type(param.type)
    where = f"parameter {param.name!r} ({param.describe_type()})"
    if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null") and "None" in param.type):
        if "None" in param.type or "Optional" in param.type:
            return None
        raise BadInput(f"{where} cannot be empty. {param.help}".strip())
    value: Any
    try:
        if t == "bool":
            if isinstance(raw, bool):
                value = raw
            elif str(raw).strip().lower() in TRUE:
                value = True
            elif str(raw).strip().lower() in FALSE:
                value = False
            else:
                raise ValueError("expected true or false")
        elif t == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError("expected a whole number")
            value = int(str(raw).strip()) if not isinstance(raw, int | float) else int(raw)
        elif t == "float":
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("expected a finite number")
        elif t.startswith("list"):
            value = _parse_list(raw, t)
        elif t.startswith("dict"):
            value = raw if isinstance(raw, dict) else json.loads(str(raw))
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
        else:
            if not isinstance(raw, str | int | float) or (isinstance(raw, bool) and t == "str"):
                raise ValueError("expected text")
            value = str(raw)
    except (ValueError, TypeError, json.JSONDecodeError) as e:
        raise BadInput(f"{where}: {raw!r} is not valid ({e}). {param.help}".strip()) from e
    _check_constraints(param, value, where)
    return value


def _parse_list(raw: Any, t: str) -> list[Any]:
    inner = t[t.find("[") + 1 : t.rfind("]")] if "[" in t else "str"
    if isinstance(raw, list):
        items = raw
    else:
        s = str(raw).strip()
        if s.startswith("["):
            items = json.loads(s)
            if not isinstance(items, list):
                raise ValueError("expected a list")
        else:
            items = [x.strip() for x in s.split(",") if x.strip()]
    if inner == "int":
        return [int(x) for x in items]
    if inner == "float":
        return [float(x) for x in items]
    return [str(x) for x in items]


def _check_constraints(param: Parameter, value: Any, where: str) -> None:
    if param.choices:
        vals = value if isinstance(value, list) else [value]
        bad = [v for v in vals if str(v) not in param.choices]
        if bad:
            raise BadInput(f"{where}: {bad[0]!r} is not allowed; choose one of {', '.join(param.choices)}.")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if param.minimum is not None and value < param.minimum:
            raise BadInput(f"{where}: {value} is below the minimum {_num(param.minimum)}.")
        if param.maximum is not None and value > param.maximum:
            raise BadInput(f"{where}: {value} is above the maximum {_num(param.maximum)}.")
    if param.is_datetime and value not in ("", None):
        parse_datetime(str(value), where)


def parse_datetime(s: str, where: str = "timestamp") -> datetime:
    """Parse an ISO-8601 timestamp; naive values are UTC (:func:`opsbook.times.parse_time`)."""
    return parse_time(s, where)


def parse_parameters(
    declared: tuple[Parameter, ...] | list[Parameter], raw: Mapping[str, Any], runbook: str = "runbook"
) -> dict[str, Any]:
    """Check and convert raw parameter values against a runbook's declarations.

    Args:
        declared: the runbook's parameters.
        raw: name -> raw value (strings from ``-p``, or YAML values from ``-f``).
        runbook: name used in error messages.

    Returns:
        Only the parameters that were given, converted to their types.

    Raises:
        UnknownParameter: a name the runbook does not declare.
        BadInput: a wrong type, a broken constraint, a missing required parameter, or a secret.
    """
    by_name = {p.name: p for p in declared}
    unknown = [k for k in raw if k not in by_name]
    if unknown:
        import difflib

        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, by_name, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UnknownParameter(
            f"{runbook} has no parameter {', '.join(hints)}. Its parameters are: "
            f"{', '.join(sorted(by_name)) or 'none'}. See `opsbook describe {runbook}`."
        )
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if SECRET_NAME.search(name):
            raise BadInput(
                f"parameter {name!r} looks like a secret; parameters are written verbatim into the "
                "saved notebook. Pass secrets through the environment or a mounted file instead."
            )
        out[name] = coerce(by_name[name], value)
        from opsbook.redact import looks_secret

        if isinstance(out[name], str) and looks_secret(out[name]):
            raise BadInput(
                f"the value of parameter {name!r} looks like a secret (key, token or private key); "
                "parameters are saved verbatim in reports. Pass a path or an environment variable "
                "name instead."
            )
    missing = [p.name for p in declared if p.required and p.name not in out]
    if missing:
        raise BadInput(
            f"{runbook} needs {', '.join(missing)}: pass -p NAME=VALUE. See `opsbook describe {runbook}`."
        )
    return out
