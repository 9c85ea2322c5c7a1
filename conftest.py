"""Test-suite setup shared by the unit tests and the notebook tests (nbval).

- Every notebook runs in the ``test`` profile (``MEMKIT_PROFILE``) and writes its figures and
  results to a temporary folder (``MEMKIT_OUTPUT``), never into the checkout.
- Under pytest-xdist every worker, and every kernel it starts, uses one thread.
- ``MEMKIT_DATA`` defaults to ``../shared/data`` when that folder exists (the offline copies of
  MNIST, Fashion-MNIST, MNIST-1D and the CIFAR-10 subset); tests that need it skip without it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ["MEMKIT_PROFILE"] = "test"
os.environ.setdefault("MEMKIT_OUTPUT", tempfile.mkdtemp(prefix="memkit-test-"))
if SHARED_DATA.is_dir():
    os.environ.setdefault("MEMKIT_DATA", str(SHARED_DATA))
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core: one thread each (and in the notebook kernels they
    # start), or the workers' thread pools fight over the cores and small models run ~5x slower.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
