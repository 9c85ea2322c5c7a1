"""memkit: replicate what deep networks do when they memorize versus when they learn patterns.

One module per concern:

- :mod:`memkit.data` – data sets as tensors (:func:`load`), randX / randY corruption, kinds of data (:class:`Kind`).
- :mod:`memkit.models` – every architecture, built by name (:func:`memkit.models.build`), and the dropout /
  Gaussian-noise layers; the large
  CIFAR networks (VGG, ResNet32, DenseNet121, ResNet101) live in :mod:`memkit.archs`.
- :mod:`memkit.training` – :func:`~memkit.training.train_seeds` with an :class:`~memkit.training.SGD`: the one
  way to train S seeds, batched as one :class:`memkit.ensemble.Ensemble` when the model allows it, else
  one after another; :mod:`memkit.sgd` holds the optimiser description and what a seed means.
- :mod:`memkit.metrics` – per-example error statistics (easy examples, notebook 01).
- :mod:`memkit.sensitivity` – loss sensitivity, unrolled and plain, and its Gini (notebook 02).
- :mod:`memkit.capacity` and :mod:`memkit.convergence` – capacity and time-to-convergence sweeps (notebook 03).
- :mod:`memkit.adversarial` – the LASS search, the critical sample ratio of a set of points, and the
  search's check on linear models (notebook 04; adversarial training in 05).
- :mod:`memkit.critical` – the critical sample ratio through training, its claims and figures (notebook 04).
- :mod:`memkit.shallow` – contingency T, R+, R−, R± of a deep network D against a shallow model M over D's
  training (notebook 06).
- :mod:`memkit.estimators` – the shallow models M, fitted with scikit-learn: an RBF SVM (exact or Nyström) and a
  random forest with out-of-bag early stopping (notebook 06).
- :mod:`memkit.dissection` – gradient magnitude Ḡ, activation maximisation, the KL distance (notebook 07);
  :mod:`memkit.gan` – the DCGAN it searches through.
- :mod:`memkit.atlas` – per-example memorization scores, their rank correlations and claims (notebook 08);
  :mod:`memkit.atlas_run` measures them in one batched run and writes the score table.
- :mod:`memkit.figures` and :mod:`memkit.results` – figures, result JSON and claims, written atomically.
- :mod:`memkit.profiles` – the profiles and how a notebook's settings table and overrides are checked.
- :mod:`memkit.experiment` – :class:`Run`, a notebook's run: settings, device, timers, arrays, models, claims.
- :mod:`memkit.runner` – ``memkit regenerate``: runs the notebooks with papermill.
"""

from memkit.device import pick_device

__version__ = "0.1.0"
__all__ = ["__version__", "pick_device"]
