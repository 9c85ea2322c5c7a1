"""memkit: replicate what deep networks do when they memorize versus when they learn patterns.

One module per concern:

- :mod:`memkit.data` – data sets as tensors (:func:`load`), randX / randY corruption.
- :mod:`memkit.models` – MLPs and a small CNN.
- :mod:`memkit.training` – the batched ensemble trainer (many seeds as one model).
- :mod:`memkit.metrics` – per-example error statistics (easy examples, notebook 01).
- :mod:`memkit.sensitivity` – loss sensitivity, unrolled and plain, and its Gini (notebook 02).
- :mod:`memkit.capacity` – capacity and time-to-convergence sweeps (notebook 03).
- :mod:`memkit.adversarial` – the LASS search and the critical sample ratio (notebook 04).
- :mod:`memkit.shallow` – contingency T, R+, R−, R± and the shallow models (notebook 06).
- :mod:`memkit.atlas` – per-example memorization scores, their rank correlations and claims (notebook 08);
  :mod:`memkit.atlas_run` measures them in one batched run and writes the score table.
- :mod:`memkit.figures` and :mod:`memkit.results` – figures, result JSON and claims, written atomically.
- :mod:`memkit.profiles` – the shared notebook parameters (profile, device, output folders).
- :mod:`memkit.runner` – ``memkit regenerate``: runs the notebooks with papermill.
"""

from memkit.device import pick_device

__version__ = "0.1.0"
__all__ = ["pick_device", "__version__"]
