"""Notebook parameters, read from a notebook's source and checked before any kernel starts.

A notebook's parameters are the plain assignments of its cell tagged ``parameters``; its settings
table is its ``SETTINGS = {...}`` literal (:class:`memkit.experiment.Run`). ``memkit regenerate``
checks every ``-p NAME VALUE`` against them: the name must be a parameter of every notebook to run,
the value must parse (JSON where the default is not a string) and have the default's type, and the
keys and types of ``overrides`` must fit the chosen profile's settings. Each error names the
parameter, the value and what is allowed.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from memkit.profiles import PROFILES, check_applies


class ParameterError(ValueError):
    """A ``-p NAME VALUE`` that the notebooks cannot take."""


# --- reading a notebook's parameters and settings, without running it ------------------------


class _Unknown:
    """A value that is not a literal in the notebook's source: its type is not checked."""

    def __repr__(self) -> str:
        return "<not a literal>"


UNKNOWN = _Unknown()


def _code_cells(nb: Path) -> list[Any]:
    import nbformat

    return [c for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:  # IPython syntax (``!pip``, ``%magic``): no plain Python to read there
        return None


def _literal(node: ast.AST) -> Any:
    """The value of a literal, of ``dict(a=..., ...)``, dicts and lists of them (recursively), else
    :data:`UNKNOWN`."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and all(k.arg for k in node.keywords)
    ):
        return {k.arg: _literal(k.value) for k in node.keywords}
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    if isinstance(node, ast.List):
        return [_literal(v) for v in node.elts]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def notebook_parameters(nb: Path) -> dict[str, Any]:
    """The notebook's parameters and their defaults: the plain assignments ``name = literal`` of
    its cell tagged ``parameters`` (a default that is not a literal is :data:`UNKNOWN`)."""
    for cell in _code_cells(nb):
        if "parameters" in cell.metadata.get("tags", []):
            tree = _parse(cell.source)
            params = {}
            for node in tree.body if tree else []:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    params[node.targets[0].id] = _literal(node.value)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                    params[node.target.id] = _literal(node.value)
            return params
    return {}


def _table(node: ast.Dict) -> dict[str, dict[str, Any]] | None:
    """``{profile: {setting: default}}`` from a dict literal (``None`` if it is not such a table)."""
    table = {}
    for k, v in zip(node.keys, node.values, strict=True):
        key, value = (_literal(k) if k is not None else UNKNOWN), _literal(v)
        if not isinstance(key, str) or not isinstance(value, dict):
            return None
        table[key] = value
    return table


def _settings_node(node: ast.AST) -> ast.Dict | None:
    """The table literal of ``SETTINGS = {...}`` or of a ``settings(profile, {...}, overrides)`` call."""
    if (
        isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Dict)
        and any(isinstance(t, ast.Name) and t.id == "SETTINGS" for t in node.targets)
    ):
        return node.value
    if isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[1], ast.Dict):
        f = node.func
        if (isinstance(f, ast.Attribute) and f.attr == "settings") or (isinstance(f, ast.Name) and f.id == "settings"):
            return node.args[1]
    return None


def notebook_settings(nb: Path) -> dict[str, dict[str, Any]] | None:
    """The settings table of the notebook, ``{profile: {setting: default}}``, read statically from
    its ``SETTINGS = {...}`` assignment (the pattern of :class:`memkit.experiment.Run`) or its
    ``profiles.settings(profile, {...}, overrides)`` call (a setting whose value is not a literal
    maps to :data:`UNKNOWN`); ``None`` if the notebook has no such literal table."""
    for cell in _code_cells(nb):
        tree = _parse(cell.source)
        for node in ast.walk(tree) if tree else []:
            found = _settings_node(node)
            if found is not None:
                return _table(found)
    return None


# --- checking parameters -----------------------------------------------------------------------


def _kind(default: Any) -> str:
    """What a value must be to replace ``default``, in words."""
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, (list, tuple)):
        return "a JSON list, e.g. '[1, 2]'"
    if isinstance(default, dict):
        return "a JSON object, e.g. '{\"name\": 1}'"
    return "any value"


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` may replace ``default`` (``None`` or a non-literal default takes anything;
    an integer may replace a float, never a bool)."""
    if default is None or default is UNKNOWN:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def parse_value(name: str, text: str, default: Any) -> Any:
    """The text of ``-p NAME TEXT`` as the value the notebook gets: the text itself where the
    default is a string, else JSON (where the default is ``None``, text that is not JSON is a
    string: ``-p dataset mnist``). Raises :class:`ParameterError` naming the parameter, the value
    and what it must be."""
    if isinstance(default, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        if default is None or default is UNKNOWN:
            return text
        raise ParameterError(
            f"-p {name} {text!r}: not valid JSON ({err}); {name} must be {_kind(default)} "
            f"(the notebook's default is {json.dumps(default, default=repr)})"
        ) from None


def check_parameters(params: dict[str, Any], nbs: list[Path], profile: str) -> dict[str, Any]:
    """Check parameter values for the notebooks ``nbs`` in ``profile`` before any kernel starts:
    every name must be a parameter of each notebook, every value of its default's type; ``dataset``
    must name data sets, ``device`` an available device, ``overrides`` settings of the profile
    (with values of the setting's type); every notebook must apply to the data sets named
    (:func:`memkit.profiles.check_applies`). Returns ``params``; raises :class:`ParameterError`."""
    from memkit.data import DATASETS
    from memkit.device import pick_device

    if "profile" in params:
        raise ParameterError(
            f"-p profile {params['profile']!r}: the profile is not a -p parameter here; "
            f"use --profile {{{','.join(PROFILES)}}}"
        )
    for nb in nbs:
        defaults = notebook_parameters(nb)
        allowed = ", ".join(n for n in defaults if n != "profile") or "none"
        for name, value in params.items():
            if name not in defaults:
                raise ParameterError(
                    f"-p {name} {json.dumps(value)}: {nb.stem} has no parameter {name!r}; "
                    f"its parameters are: {allowed} (and the profile, from --profile)"
                )
            if name in GRID and isinstance(value, list):  # a grid: one run per value (memkit.grid)
                _check_grid(name, value, defaults[name], nb)
            elif not _fits(value, defaults[name]):
                raise ParameterError(
                    f"-p {name} {json.dumps(value)}: {name} must be {_kind(defaults[name])} "
                    f"(the default in {nb.stem} is {json.dumps(defaults[name], default=repr)})"
                )
        if "overrides" in params:
            _check_overrides(params["overrides"], nb, profile)
    if params.get("dataset") is not None:
        names = [params["dataset"]] if isinstance(params["dataset"], str) else params["dataset"]
        bad = [n for n in names if not isinstance(n, str) or n not in DATASETS] if isinstance(names, list) else [names]
        if bad or not names:
            raise ParameterError(
                f"-p dataset {json.dumps(params['dataset'])}: unknown data set "
                f"{', '.join(map(repr, bad)) or '(empty list)'}; use null (each notebook's default), "
                f"one name or a JSON list of names of: {', '.join(DATASETS)}"
            )
        for nb in nbs:
            try:
                check_applies(nb.stem, names)
            except ValueError as err:
                raise ParameterError(
                    f"-p dataset {json.dumps(params['dataset'])}: {err} (or leave {nb.stem} out with --only)"
                ) from None
    if params.get("device") is not None:
        try:
            pick_device(params["device"])
        except (ValueError, RuntimeError, TypeError) as err:
            raise ParameterError(f"-p device {json.dumps(params['device'])}: {err}") from None
    return params


#: Parameters that take a JSON list of values, one run per value (:mod:`memkit.grid`).
GRID = ("seed", "dataset")


def _check_grid(name: str, values: list[Any], default: Any, nb: Path) -> None:
    if not values or len({json.dumps(v) for v in values}) < len(values):
        raise ParameterError(
            f"-p {name} {json.dumps(values)}: a list of {name}s must be non-empty and without "
            "repeats (each value is its own run)"
        )
    bad = [v for v in values if not _fits(v, default)]
    if bad:
        raise ParameterError(
            f"-p {name} {json.dumps(values)}: each {name} in the list must be "
            f"{_kind(default)} "
            f"(the default in {nb.stem} is {json.dumps(default, default=repr)}), not {json.dumps(bad[0])}"
        )


def _check_overrides(overrides: Any, nb: Path, profile: str) -> None:
    if not isinstance(overrides, dict):
        raise ParameterError(
            f"-p overrides {json.dumps(overrides)}: overrides must be a JSON object of "
            "settings, e.g. '{\"n_models\": 20}'"
        )
    table = notebook_settings(nb)
    if table is None:  # not readable from the source: the notebook's profiles.settings checks the keys
        return
    if profile not in table:
        raise ParameterError(f"{nb.stem} has no settings for profile {profile!r} (it knows {', '.join(table)})")
    settings = table[profile]
    unknown = [k for k in overrides if k not in settings]
    if unknown:
        raise ParameterError(
            f"-p overrides {json.dumps(overrides)}: {nb.stem} has no setting "
            f"{', '.join(map(repr, unknown))} in the {profile} profile; its settings are: "
            f"{', '.join(settings)}"
        )
    for key, value in overrides.items():
        if not _fits(value, settings[key]):
            raise ParameterError(
                f"-p overrides {json.dumps(overrides)}: setting {key!r} must be "
                f"{_kind(settings[key])} (in {nb.stem}'s {profile} profile it is "
                f"{json.dumps(settings[key], default=repr)}), not {json.dumps(value)}"
            )


def parse_parameters(pairs: list[tuple[str, str]], nbs: list[Path], profile: str) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs as checked parameter values (see :func:`check_parameters`)."""
    if any(name == "profile" for name, _ in pairs):
        check_parameters({"profile": dict(pairs)["profile"]}, nbs, profile)
    defaults: dict[str, Any] = {}
    for nb in nbs:
        for name, default in notebook_parameters(nb).items():
            defaults.setdefault(name, default)
    params: dict[str, Any] = {}
    for name, text in pairs:
        if name in params:
            raise ParameterError(f"-p {name} is given twice")
        if name not in defaults:
            allowed = ", ".join(n for n in defaults if n != "profile") or "none"
            settings = [(notebook_settings(nb) or {}).get(profile, {}) for nb in nbs]
            hint = (
                f"; {name} is a setting: change it with -p overrides '{{\"{name}\": {text}}}'"
                if any(name in t for t in settings)
                else ""
            )
            raise ParameterError(
                f"-p {name} {text!r}: no notebook has a parameter {name!r}; "
                f"the parameters are: {allowed} (and the profile, from --profile){hint}"
            )
        params[name] = parse_value(name, text, defaults[name])
    return check_parameters(params, nbs, profile)
