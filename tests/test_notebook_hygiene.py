"""Notebooks are committed clean: no outputs, no execution counts, one ``parameters`` cell with the
shared names, the ``python3`` kernel. (CI fails here before it runs a single notebook.)"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SHARED = {"profile", "dataset", "seed", "device", "overrides"}


def problems(nb: dict) -> list[str]:
    """What is wrong with a notebook's committed form (empty when it is clean)."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if "id" not in cell:
            found.append(
                f"cell {i} has no id: nbformat 4.5 needs one "
                "(open and save it in JupyterLab, or nbformat.validator.normalize)"
            )
        if cell["cell_type"] != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i} has outputs: strip them (nbstripout, or Clear All Outputs) before committing")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i} has an execution count: strip it")
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        found.append(f"{len(tagged)} cells are tagged 'parameters': there must be exactly one")
    else:
        tree = ast.parse("".join(tagged[0]["source"]))
        names = {
            t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
        }
        if not all(isinstance(node, ast.Assign) for node in tree.body):
            found.append("the parameters cell must hold plain assignments only")
        if missing := SHARED - names:
            found.append(f"the parameters cell lacks {sorted(missing)} (every notebook shares {sorted(SHARED)})")
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        found.append(f"kernel is {kernel!r}: use 'python3'")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path):
    assert problems(json.loads(path.read_text())) == []


def test_hygiene_check_catches_outputs_counts_and_parameters():
    clean = {
        "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "p",
                "metadata": {"tags": ["parameters"]},
                "execution_count": None,
                "outputs": [],
                "source": [
                    "profile = 'quick'\n",
                    "dataset = None\n",
                    "seed = 0\n",
                    "device = None\n",
                    "overrides = {}\n",
                ],
            }
        ],
    }
    assert problems(clean) == []
    dirty = json.loads(json.dumps(clean))
    dirty["cells"][0].update(execution_count=3, outputs=[{"output_type": "stream", "text": "x"}])
    dirty["cells"][0]["source"].append("import os\n")
    dirty["metadata"]["kernelspec"]["name"] = "memkit"
    del dirty["cells"][0]["id"]
    found = problems(dirty)
    assert len(found) == 5 and "no id" in found[0] and "outputs" in found[1] and "execution count" in found[2]
    assert "plain assignments" in found[3] and "'memkit'" in found[4]
