"""The parameters every notebook shares, and how a profile scales an experiment.

``profile``: ``"test"`` (seconds, CPU; the notebook tests), ``"quick"`` (the default: minutes
on a laptop CPU, embedded data), ``"paper"`` (the papers' data sets and scales; meant for a GPU).
``$MEMKIT_PROFILE``, when set, overrides the notebook's ``profile`` parameter: the test suite
uses it to run every notebook in the ``test`` profile under nbval.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from memkit.data import DATASETS

PROFILES = ("test", "quick", "paper")

#: How a profile sizes each data set when a notebook asks for "all of it" (``None``): at most
#: ``n_train`` training and ``n_test`` test examples (the first ones, in the original order), and
#: 28×28 images at 14×14, the paper's size for MNIST, and 32×32 CIFAR images at 16×16 in ``quick``
#: (a quarter of the inputs: an MLP's first layer costs a quarter). The embedded data sets (digits,
#: MNIST-1D) and the CIFAR-10 subset's 4000 examples are used whole; ``paper`` uses every data set whole. A
#: notebook's own setting (e.g. ``n_train=1000``) always wins over these defaults.
DATA_LIMITS: dict[str, dict[str, dict[str, int]]] = {
    "test": {
        name: dict(n_train=500, n_test=200) | ({"size": 14} if name in ("mnist", "fashion-mnist") else {})
        for name in ("mnist", "fashion-mnist", "cifar10", "cifar100", "cifar10-subset")
    },
    "quick": {
        "mnist": dict(n_train=2000, n_test=1000, size=14),
        "fashion-mnist": dict(n_train=2000, n_test=1000, size=14),
        "cifar10": dict(n_train=4000, n_test=1000, size=16),
        "cifar100": dict(n_train=4000, n_test=1000, size=16),
        "cifar10-subset": dict(size=16),
    },
    "paper": {},
}


#: The data sets a notebook does not apply to, each with the reason: :class:`memkit.experiment.Run`
#: refuses them at once (:func:`check_applies`), and ``memkit regenerate`` before a kernel starts.
UNSUPPORTED: dict[str, dict[str, str]] = {
    "07_one_way_to_learn": {
        "mnist1d": "its Dist compares the networks on DCGAN samples and activation-maximised inputs, both "
        "square images (C, H, W); MNIST-1D's examples are 1-D signals",
    },
}


def check_applies(notebook: str, datasets: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the reason if ``notebook`` does not apply to one of ``datasets``
    (:data:`UNSUPPORTED`)."""
    for name in datasets:
        reason = UNSUPPORTED.get(notebook, {}).get(name)
        if reason:
            fits = [d for d in DATASETS if d not in UNSUPPORTED.get(notebook, {})]
            raise ValueError(f"{notebook} does not apply to {name}: {reason}. Choose one of {', '.join(fits)}")


def data_limits(profile: str, name: str) -> dict[str, int]:
    """The sizes :data:`DATA_LIMITS` gives data set ``name`` in ``profile`` (``{}``: use it whole)."""
    return dict(DATA_LIMITS[profile].get(name, {}))


def resolve_profile(profile: str) -> str:
    """``$MEMKIT_PROFILE`` if set, else ``profile``; raises ``ValueError`` for an unknown one."""
    env = os.environ.get("MEMKIT_PROFILE")
    if env and env not in PROFILES:
        raise ValueError(
            f"unknown profile {env!r} in $MEMKIT_PROFILE; set it to one of {', '.join(PROFILES)} or unset it"
        )
    if not env and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    return env or profile


def settings(profile: str, table: dict[str, dict[str, Any]], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of ``table[profile]``, updated with ``overrides``.

    ``table``: one dict of settings per profile, every profile with the same setting names.
    ``overrides`` is the notebook parameter of that name: ``papermill -p overrides '{"n_models": 10}'``
    changes single settings of a profile (the tests run the ``paper`` profile's code path with its
    sizes cut down this way). Each override must have the type the setting has in the table (an
    int is a float too; a list and a tuple are alike; ``None`` fits a setting that is ``None`` in
    some profile, and a setting that is ``None`` in every profile takes anything). An unknown
    profile or setting, or an override of another type, is a ``ValueError``.
    """
    unknown_profiles = sorted(set(table) - set(PROFILES))
    if unknown_profiles:
        raise ValueError(
            f"the settings table names unknown profile(s) {', '.join(unknown_profiles)}; use {', '.join(PROFILES)}"
        )
    if profile not in table:
        raise ValueError(
            f"no settings for profile {profile!r}; this notebook knows {', '.join(table)}: "
            f"add a {profile!r} entry to its settings table or run another profile"
        )
    names = set(table[profile])
    for other, values in table.items():
        if set(values) != names:
            raise ValueError(
                f"profiles {profile!r} and {other!r} name different settings "
                f"({', '.join(sorted(names ^ set(values)))}); give every profile the same settings"
            )
    unknown = sorted(set(overrides or {}) - names)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)} in overrides; "
            f"this notebook's settings are {', '.join(table[profile])}"
        )
    for name, value in (overrides or {}).items():
        allowed = [t[name] for t in table.values()]
        if any(v is not None for v in allowed) and not any(_same_type(value, v) for v in allowed):
            expected = " or ".join(dict.fromkeys(type(v).__name__ for v in allowed))
            raise ValueError(
                f"override {name}={value!r} has type {type(value).__name__}, but setting {name!r} has "
                f"type {expected} (in the {profile} profile: {table[profile][name]!r}); "
                f"pass a value of type {expected}"
            )
    return {**table[profile], **(overrides or {})}


def _same_type(value: Any, like: Any) -> bool:
    """Whether ``value`` may replace ``like``: the same type, or an int for a float, or a list for a
    tuple and back; a ``bool`` is no number here."""
    if isinstance(value, bool) or isinstance(like, bool):
        return isinstance(value, bool) and isinstance(like, bool)
    if isinstance(like, float):
        return isinstance(value, (int, float))
    if isinstance(like, (list, tuple)):
        return isinstance(value, (list, tuple))
    return type(value) is type(like)


def resolve_datasets(dataset: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """The data sets to run: ``default`` when ``dataset`` is ``None``, else ``dataset`` (one
    name or a list), each checked against :data:`memkit.data.DATASETS`."""
    names = list(default) if dataset is None else [dataset] if isinstance(dataset, str) else list(dataset)
    for n in names:
        if n not in DATASETS:
            raise ValueError(f"unknown data set {n!r}; choose one of {', '.join(DATASETS)}")
    return names
