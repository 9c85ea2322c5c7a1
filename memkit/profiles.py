"""The parameters every notebook shares, and how a profile scales an experiment.

``profile``: ``"test"`` (seconds, CPU; the notebook tests), ``"quick"`` (the default: minutes
on a laptop CPU, embedded data), ``"paper"`` (the papers' data sets and scales; meant for a GPU).
``$MEMKIT_PROFILE``, when set, overrides the notebook's ``profile`` parameter: the test suite
uses it to run every notebook in the ``test`` profile under nbval.
"""

from __future__ import annotations

import os
from typing import Any

from memkit.data import DATASETS

PROFILES = ("test", "quick", "paper")


def resolve_profile(profile: str) -> str:
    """``$MEMKIT_PROFILE`` if set, else ``profile``; raises ``ValueError`` for an unknown one."""
    profile = os.environ.get("MEMKIT_PROFILE") or profile
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    return profile


def settings(profile: str, table: dict[str, dict[str, Any]],
             overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of ``table[profile]``, updated with ``overrides``.

    ``overrides`` is the notebook parameter of that name: ``papermill -p overrides '{"n_models": 10}'``
    changes single settings of a profile (the tests run the ``paper`` profile's code path with its
    sizes cut down this way). An unknown profile or setting is a ``ValueError``.
    """
    if profile not in table:
        raise ValueError(f"no settings for profile {profile!r}; this notebook knows {', '.join(table)}")
    unknown = sorted(set(overrides or {}) - set(table[profile]))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)} in overrides; "
                         f"this notebook's settings are {', '.join(table[profile])}")
    return {**table[profile], **(overrides or {})}


def resolve_datasets(dataset: str | list[str] | None, default: list[str]) -> list[str]:
    """The data sets to run: ``default`` when ``dataset`` is ``None``, else ``dataset`` (one
    name or a list), each checked against :data:`memkit.data.DATASETS`."""
    names = default if dataset is None else [dataset] if isinstance(dataset, str) else list(dataset)
    for n in names:
        if n not in DATASETS:
            raise ValueError(f"unknown data set {n!r}; choose one of {', '.join(DATASETS)}")
    return names
