"""Do deep networks learn shallow-learnable examples first? (Mangalam & Prabhu 2019; notebook 06)

A shallow model M (an SVM with an RBF kernel, a random forest) is fitted once. A deep network D
is trained from a random initialisation, and after each training step on a grid of steps the test
set is split four ways by which of the two classifies an example correctly: the contingency
matrix T, first index D, second index M (1 = correct)::

                    M incorrect   M correct
    D incorrect        T00           T01
    D correct          T10           T11

From T: D's accuracy on the examples M gets right, R+ = T11 / (T11 + T01); D's accuracy on the
examples M gets wrong, R− = T10 / (T10 + T00); and their ratio R± = R+ / R−. If which test examples
D learns had nothing to do with which ones M can learn, R± would stay at 1; the paper finds that it
peaks early in training and settles slowly to a value above 1.

The module has three parts: T and its ratios (:func:`contingency`, :func:`r_plus`,
:func:`r_minus`, :func:`r_pm`); fitting M with scikit-learn (:func:`fit_svm`, :func:`fit_forest`);
and D (built by :func:`memkit.models.factory`: the 2-layer CNN, or DenseNet121 / ResNet101 adapted to 32×32;
:func:`train_tracked`, which trains S seeds of D and records their test-set correctness at the
steps of :func:`step_grid`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch

from memkit import figures, models
from memkit.data import Dataset
from memkit.device import pick_device
from memkit.training import SGD, Seeds, Step, steps_per_epoch, train_seeds

# ---------------------------------------------------------------------------------------------
# The contingency matrix T and the ratios R+, R−, R±
# ---------------------------------------------------------------------------------------------


def contingency(d_correct: torch.Tensor, m_correct: torch.Tensor) -> torch.Tensor:
    """The contingency matrix T of D against M on one set of examples.

    Args:
        d_correct: ``(..., N)`` bool, whether D classifies example n correctly (leading axes, e.g.
            grid steps × seeds, are kept).
        m_correct: ``(N,)`` (or broadcastable to ``d_correct``) bool, whether M does.

    Returns:
        ``(..., 2, 2)`` int64 counts, ``T[..., i, j]`` = number of examples with D-correct = i and
        M-correct = j; so ``T[..., 0, 1]`` is T01, M right and D wrong. The four counts add to N.
    """
    d, m = d_correct.bool(), m_correct.bool().to(d_correct.device)
    if d.shape[-1] != m.shape[-1]:
        raise ValueError(f"d_correct has {d.shape[-1]} examples but m_correct has {m.shape[-1]}: "
                         "both must describe the same examples in the same order")
    counts = [((d == bool(i)) & (m == bool(j))).sum(-1) for i in (0, 1) for j in (0, 1)]
    return torch.stack(counts, -1).unflatten(-1, (2, 2))


def accuracy_d(t: torch.Tensor) -> torch.Tensor:
    """Accuracy of D, (T10 + T11) / N: ``(..., 2, 2)`` → ``(...)`` float64 in [0, 1]."""
    return t[..., 1, :].sum(-1).double() / t.sum((-2, -1)).double()


def accuracy_m(t: torch.Tensor) -> torch.Tensor:
    """Accuracy of M, (T01 + T11) / N: ``(..., 2, 2)`` → ``(...)`` float64 in [0, 1]."""
    return t[..., :, 1].sum(-1).double() / t.sum((-2, -1)).double()


def _subset_accuracy(t: torch.Tensor, m: int, symbol: str) -> torch.Tensor:
    """D's accuracy on the examples with M-correct = ``m``; NaN (with a warning) where there are none."""
    n_subset = t[..., :, m].sum(-1)
    empty = n_subset == 0
    if bool(empty.any()):
        which = "correctly" if m else "incorrectly"
        warnings.warn(f"{symbol} is undefined (NaN) where M classifies no example {which}: "
                      f"the subset it is D's accuracy on is empty", RuntimeWarning, stacklevel=3)
    return torch.where(empty, torch.nan, t[..., 1, m].double() / n_subset.clamp_min(1).double())


def r_plus(t: torch.Tensor) -> torch.Tensor:
    """R+ = T11 / (T11 + T01): D's accuracy on the examples M classifies correctly.

    ``t``: ``(..., 2, 2)`` from :func:`contingency` → ``(...)`` float64 in [0, 1]. Where M
    classifies *no* example correctly the subset is empty and R+ is undefined: the result is NaN
    there and a ``RuntimeWarning`` says so (it never happens silently).
    """
    return _subset_accuracy(t, 1, "R+")


def r_minus(t: torch.Tensor) -> torch.Tensor:
    """R− = T10 / (T10 + T00): D's accuracy on the examples M classifies incorrectly.

    ``t``: ``(..., 2, 2)`` → ``(...)`` float64 in [0, 1]. Where M classifies *every* example
    correctly R− is undefined: NaN there, with a ``RuntimeWarning``.
    """
    return _subset_accuracy(t, 0, "R-")


def r_pm(t: torch.Tensor) -> torch.Tensor:
    """R± = R+ / R−, the ratio of D's accuracies on the M-correct and the M-incorrect examples.

    1 when D is as accurate on both subsets (D's successes unrelated to M's, as at a random
    initialisation); above 1 when D favours the examples M gets right. The poster's expanded
    formula, T11·T10 / ((T11 + T01)(T10 + T00)), equals R+·R−, not this ratio.

    ``t``: ``(..., 2, 2)`` → ``(...)`` float64. Zero denominators, defined:

    - R− = 0 and R+ > 0 (D right on some M-correct examples but on no M-incorrect one): ``+inf``;
    - R− = 0 and R+ = 0 (D right on neither subset): ``1.0``, equal (zero) accuracies;
    - an empty subset (R+ or R− undefined): NaN, with the ``RuntimeWarning`` of :func:`r_plus`
      or :func:`r_minus`.
    """
    rp, rm = r_plus(t), r_minus(t)
    return torch.where((rp == 0) & (rm == 0), 1.0, rp / rm)


# ---------------------------------------------------------------------------------------------
# M: shallow models fitted with scikit-learn
# ---------------------------------------------------------------------------------------------

ShallowKind = Literal["svm", "rf"]
#: The shallow models of the paper, by the short names used in settings, figures and results.
SHALLOW = {"svm": "SVM (RBF kernel)", "rf": "random forest"}


@dataclass
class Shallow:
    """A fitted shallow model M.

    Attributes:
        kind: ``"svm"`` or ``"rf"`` (see :data:`SHALLOW`).
        model: the fitted scikit-learn estimator; it takes flattened inputs ``(N, C·L…)``.
        n_fit: the number of training examples it was fitted on.
        fit_s: wall-clock seconds the fit took.
        details: how it was fitted (method, hyper-parameters, the forest's out-of-bag history).
    """

    kind: str
    model: Any
    n_fit: int
    fit_s: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return SHALLOW[self.kind]

    def correct(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N,)`` bool on the CPU: whether M classifies each example of ``(x, y)`` correctly."""
        return torch.from_numpy(self.model.predict(flatten(x)) == y.cpu().numpy())


def flatten(x: torch.Tensor) -> np.ndarray:
    """Inputs ``(N, C, *spatial)`` as the ``(N, C·∏spatial)`` float32 array scikit-learn expects."""
    return x.flatten(1).cpu().numpy()


def subsample(n: int, n_fit: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``n_fit`` of ``n`` examples drawn without replacement (all when ``None``
    or ``n_fit >= n``)."""
    if n_fit is not None and n_fit < 1:
        raise ValueError(f"n_fit={n_fit}: fit M on at least one example, or pass None for all")
    if n_fit is None or n_fit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, n_fit, replace=False))


def rbf_gamma(x: np.ndarray) -> float:
    """The RBF width γ = 1 / (d · Var(x)) for kernel exp(−γ‖a − b‖²): scikit-learn's
    ``gamma="scale"``, computed here so that the exact and the approximate SVM share it."""
    return 1.0 / (x.shape[1] * float(x.var()))


def fit_svm(x: torch.Tensor, y: torch.Tensor, *, C: float = 1.0, n_fit: int | None = None,
            n_components: int | None = None, seed: int = 0, n_jobs: int | None = -1) -> Shallow:
    """M = an SVM with RBF kernel, γ = 1/(d·Var x) (scikit-learn's ``"scale"``) and ``C``.

    The paper gives no hyper-parameters; scikit-learn's defaults (C = 1, γ = "scale") on MNIST
    match its reported 97.92% (see the notebook).

    At scale the exact SVM (libsvm, ``sklearn.svm.SVC``, one-vs-one) is slow: fitting grows
    roughly quadratically with the number of examples and prediction with the number of support
    vectors, on one CPU core. Two ways out, both parameters:

    - ``n_fit``: fit on a random subsample of that many training examples (``None``: all);
    - ``n_components``: replace the kernel by a Nyström approximation with that many landmark
      examples (``sklearn.kernel_approximation.Nystroem``) followed by linear SVMs (``LinearSVC``,
      one-vs-rest, the classes fitted in parallel on ``n_jobs`` threads); linear in the number
      of examples.

    Measured on a CPU (test accuracy): MNIST, exact on subsamples of 2500 / 5000 / 10000
    examples 94.3 / 95.3 / 96.4%, Nyström on all 60000 with 1000 / 3000 components 97.1 / 97.7%
    (the paper: 97.92%); the CIFAR-10 subset (4000 images), exact 40.6%, Nyström with 1000 / 3000
    components 42.4 / 45.3%.

    ``x``: ``(N, C, *spatial)`` training inputs; ``y``: ``(N,)`` labels.
    """
    from joblib import parallel_config
    from sklearn.kernel_approximation import Nystroem
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC, LinearSVC

    idx = subsample(len(x), n_fit, seed)
    xs, ys = flatten(x)[idx], y.cpu().numpy()[idx]
    gamma = rbf_gamma(xs)
    if n_components is None:
        model, method = SVC(C=C, gamma=gamma, cache_size=1000), "exact RBF SVM (libsvm)"
    else:
        if n_components < 1:
            raise ValueError(f"n_components={n_components}: the Nyström approximation needs at least one "
                             "landmark; pass None for the exact SVM")
        model = make_pipeline(Nystroem(gamma=gamma, n_components=min(n_components, len(xs)), random_state=seed),
                              OneVsRestClassifier(LinearSVC(C=C, random_state=seed), n_jobs=n_jobs))
        method = f"Nyström RBF approximation ({min(n_components, len(xs))} components) + linear SVM"
    t0 = time.perf_counter()
    with parallel_config(backend="threading"):  # liblinear releases the GIL: threads, no process start-up
        model.fit(xs, ys)
    return Shallow("svm", model, len(idx), time.perf_counter() - t0,
                   {"method": method, "C": C, "gamma": gamma, "n_components": n_components})


def fit_forest(x: torch.Tensor, y: torch.Tensor, *, chunk: int = 20, tol: float = 0.005,
               max_trees: int = 500, n_fit: int | None = None, seed: int = 0,
               n_jobs: int | None = -1) -> Shallow:
    """M = a random forest (scikit-learn defaults: √d features per split, fully grown trees)
    with early stopping on the number of trees.

    The paper says "random forests with early stopping" and no more. Our rule: grow the forest
    ``chunk`` trees at a time and stop as soon as the out-of-bag accuracy (each training example
    scored by the trees that did not see it, so no held-out data is needed) rises by less than
    ``tol`` over the last chunk, or at ``max_trees``. ``details["oob"]`` holds the
    ``(n_trees, oob_accuracy)`` history.

    ``x``: ``(N, C, *spatial)``; ``y``: ``(N,)``; ``n_fit`` subsamples as in :func:`fit_svm`.
    """
    from sklearn.ensemble import RandomForestClassifier

    if chunk < 1 or max_trees < chunk:
        raise ValueError(f"chunk={chunk}, max_trees={max_trees}: need 1 <= chunk <= max_trees")
    idx = subsample(len(x), n_fit, seed)
    xs, ys = flatten(x)[idx], y.cpu().numpy()[idx]
    forest = RandomForestClassifier(n_estimators=0, warm_start=True, oob_score=True,
                                    random_state=seed, n_jobs=n_jobs)
    history: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # a first small chunk leaves a few examples without OOB votes
        warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
        for n_trees in range(chunk, max_trees + 1, chunk):
            forest.set_params(n_estimators=n_trees).fit(xs, ys)
            history.append((n_trees, float(forest.oob_score_)))
            if len(history) > 1 and history[-1][1] - history[-2][1] < tol:
                break
    return Shallow("rf", forest, len(idx), time.perf_counter() - t0,
                   {"method": f"random forest, early stopping: +{chunk} trees while OOB accuracy rises by >= {tol}",
                    "n_trees": history[-1][0], "oob": history})


def fit_shallow(kind: ShallowKind, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0,
                **options: Any) -> Shallow:
    """Fit M of kind ``"svm"`` (:func:`fit_svm`) or ``"rf"`` (:func:`fit_forest`) with ``options``."""
    fitters: dict[str, Callable[..., Shallow]] = {"svm": fit_svm, "rf": fit_forest}
    if kind not in fitters:
        raise ValueError(f"unknown shallow model {kind!r}; use one of {', '.join(SHALLOW)}")
    return fitters[kind](x, y, seed=seed, **options)


# ---------------------------------------------------------------------------------------------
# D: training with T tracked on a grid of steps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How D is trained; the paper publishes none of it, so every field is our choice.

    Attributes:
        arch: one of :data:`memkit.models.ARCHS`, built with its default options (``"cnn"``: the
            paper's 2-layer CNN).
        sgd: the optimiser (:class:`memkit.training.SGD`; its ``epochs`` are set by
            :func:`train_tracked`), e.g. a ``"cosine"`` schedule and ``augment`` (random crops and
            horizontal flips, images only) for the 32×32 networks.
    """

    arch: str = "cnn"
    sgd: SGD = SGD(lr=0.01, batch_size=64, momentum=0.9)

    def __post_init__(self) -> None:
        if self.arch not in models.ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r}; use one of {', '.join(models.ARCHS)}")

    @staticmethod
    def from_settings(settings: dict[str, Any]) -> Recipe:
        """A recipe from flat settings: ``arch`` and the fields of :class:`~memkit.training.SGD`
        (e.g. ``{"arch": "cnn", "batch_size": 32, "lr": 0.02, "momentum": 0.9}``)."""
        rest = {k: v for k, v in settings.items() if k != "arch"}
        return Recipe(settings.get("arch", "cnn"), SGD(**rest))


#: D and its training at paper scale, per data set (the paper names only the architectures);
#: the 32×32 networks train one seed after another (batch norm) under bfloat16 autocast on CUDA.
PAPER_RECIPES: dict[str, Recipe] = {
    "mnist": Recipe("cnn", SGD(lr=0.01, batch_size=64, momentum=0.9)),
    "cifar10": Recipe("densenet121", SGD(lr=0.1, batch_size=64, momentum=0.9, weight_decay=1e-4,
                                         schedule="cosine", augment=True, autocast=True)),
    "cifar100": Recipe("resnet101", SGD(lr=0.1, batch_size=128, momentum=0.9, weight_decay=5e-4,
                                        schedule="cosine", augment=True, autocast=True)),
}


def paper_recipe(dataset: str) -> Recipe:
    """The paper's D for ``dataset``: DenseNet121 for CIFAR-10 (and its subset), ResNet101 for
    CIFAR-100, the 2-layer CNN for every other data set (as for MNIST)."""
    key = {"cifar10-subset": "cifar10"}.get(dataset, dataset)
    return PAPER_RECIPES.get(key, PAPER_RECIPES["mnist"])


def step_grid(total_steps: int, steps_per_epoch: int, n_log: int = 50) -> np.ndarray:
    """The training steps after which T is measured: 0 (the random initialisation), ``n_log``
    steps log-spaced between 1 and ``total_steps`` (dense early, so that a peak within the first
    epoch is resolved) and the end of every epoch. Sorted, unique, int64, within [0, total_steps]."""
    if total_steps < 1 or steps_per_epoch < 1 or n_log < 0:
        raise ValueError(f"total_steps={total_steps}, steps_per_epoch={steps_per_epoch} must be >= 1 "
                         f"and n_log={n_log} >= 0")
    log = np.rint(np.geomspace(1, total_steps, n_log)) if n_log else np.array([])
    epochs = np.arange(steps_per_epoch, total_steps + 1, steps_per_epoch)
    return np.unique(np.concatenate([[0], log, epochs, [total_steps]]).astype(np.int64))


@dataclass
class Trajectory:
    """D's test-set correctness on a grid of training steps, for S seeds.

    Attributes:
        steps: ``(G,)`` SGD updates done at each grid point (0 = the random initialisation).
        steps_per_epoch: updates per epoch, to convert steps to epochs.
        correct: ``(G, S, N)`` bool on the CPU: seed s of D classifies test example n correctly
            after ``steps[g]`` updates.
        seeds: the S seeds (initialisation and data order) of D.
        train_s: wall-clock seconds of training and evaluation.
        method: ``"ensemble"`` (S seeds as one batched model) or ``"loop"`` (one seed at a time).
    """

    steps: np.ndarray
    steps_per_epoch: int
    correct: torch.Tensor
    seeds: list[int]
    train_s: float
    method: str

    @property
    def epochs(self) -> np.ndarray:
        """``(G,)`` the grid in epochs (fractions of an epoch early on)."""
        return self.steps / self.steps_per_epoch

    def contingency(self, m_correct: torch.Tensor) -> torch.Tensor:
        """``(G, S, 2, 2)`` T of every seed at every grid step against M's ``(N,)`` correctness."""
        return contingency(self.correct, m_correct)


def train_tracked(ds: Dataset, recipe: Recipe, *, epochs: int, n_seeds: int, n_log: int = 50,
                  seed: int = 0, device: str | torch.device | None = None,
                  progress: bool = True) -> Trajectory:
    """Train S = ``n_seeds`` seeds of D from random initialisations on ``ds`` for ``epochs``
    epochs and record, after each step of ``step_grid(total, steps_per_epoch, n_log)``, which
    test examples each seed classifies correctly (in eval mode).

    Training is :func:`memkit.training.train_seeds` with ``recipe.sgd`` for ``epochs`` epochs:
    one batched Ensemble for models without batch norm, else (DenseNet121, ResNet101) one seed
    after another; both give the same model for a seed (to float tolerance).
    """
    if epochs < 1 or n_seeds < 1:
        raise ValueError(f"epochs={epochs} and n_seeds={n_seeds} must be at least 1")
    if recipe.sgd.augment and ds.x_train.ndim != 4:
        raise ValueError(f"augment=True needs images (N, C, H, W); {ds.name} inputs are "
                         f"{tuple(ds.x_train.shape)}: set augment=False")
    device = pick_device(device)
    factory = models.factory(recipe.arch, ds.input_shape, ds.n_classes)
    per_epoch = steps_per_epoch(ds.n_train, recipe.sgd.batch_size)
    want = set(step_grid(epochs * per_epoch, per_epoch, n_log).tolist())
    x_test, y_test = ds.x_test.to(device), ds.y_test.to(device)
    rows: dict[tuple[int, ...], list[torch.Tensor]] = {}

    def record(trained: Seeds, step: Step) -> None:
        if step.step in want:
            rows.setdefault(tuple(trained.members), []).append(trained.correct(x_test, y_test).cpu())

    t0 = time.perf_counter()
    seeds = train_seeds(factory, ds.x_train, ds.y_train, replace(recipe.sgd, epochs=epochs), n_seeds=n_seeds,
                        seed=seed, device=device, callback=record, progress=progress, desc=f"{ds.name} {recipe.arch}")
    correct = torch.cat([torch.stack(r) for r in rows.values()], dim=1)  # (G, S, N)
    return Trajectory(np.asarray(sorted(want)), per_epoch, correct, seeds.seeds, time.perf_counter() - t0,
                      "ensemble" if seeds.batched else "loop")


# ---------------------------------------------------------------------------------------------
# R± over training: summaries, the poster's figure, the paper's numbers
# ---------------------------------------------------------------------------------------------

#: The paper's final test accuracies in % (poster, "Final maximum accuracies achieved by these
#: classifiers"), with the name of its D.
PAPER_ACCURACY: dict[str, dict[str, Any]] = {
    "mnist": {"svm": 97.92, "rf": 96.14, "D": 98.8, "arch": "2-layer CNN"},
    "cifar10": {"svm": 40.08, "rf": 35.86, "D": 95.04, "arch": "DenseNet121"},
    "cifar100": {"svm": 14.42, "rf": 14.26, "D": 77.78, "arch": "ResNet101"},
}


def peak(r: torch.Tensor | np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, the largest value of a ``(G, S)`` curve over the grid ``x`` ``(G,)`` (steps or
    epochs) and the ``x`` at which it is first reached, NaN entries ignored: two ``(S,)`` arrays."""
    r = np.asarray(r, dtype=float)
    r = np.where(np.isnan(r), -np.inf, r)  # keep +inf (R− = 0 < R+) a peak of +inf
    return r.max(0), np.asarray(x)[r.argmax(0)]


@dataclass(frozen=True)
class Curves:
    """T of S seeds of D against one M at every grid step, and the quantities read from it.

    Attributes:
        steps: ``(G,)`` SGD updates done (0 = random initialisation).
        steps_per_epoch: updates per epoch.
        t: ``(G, S, 2, 2)`` int64 contingency matrices (:func:`contingency`).
    """

    steps: np.ndarray
    steps_per_epoch: int
    t: torch.Tensor

    @property
    def epochs(self) -> np.ndarray:
        """``(G,)`` the grid in epochs."""
        return self.steps / self.steps_per_epoch

    @property
    def r_plus(self) -> np.ndarray:
        """``(G, S)`` R+, D's accuracy on the M-correct test examples."""
        return r_plus(self.t).numpy()

    @property
    def r_minus(self) -> np.ndarray:
        """``(G, S)`` R−, D's accuracy on the M-incorrect test examples."""
        return r_minus(self.t).numpy()

    @property
    def r_pm(self) -> np.ndarray:
        """``(G, S)`` R± = R+/R−."""
        return r_pm(self.t).numpy()

    @property
    def acc_d(self) -> np.ndarray:
        """``(G, S)`` accuracy of D."""
        return accuracy_d(self.t).numpy()

    @property
    def acc_m(self) -> float:
        """Accuracy of M (the same at every step and for every seed)."""
        return float(accuracy_m(self.t[0, 0]))

    def start_pooled(self) -> float:
        """R± at the random initialisation, from T summed over the seeds (less dependent on the
        class that one untrained D happens to predict than any single seed's value)."""
        return float(r_pm(self.t[0].sum(0)))

    def peak(self) -> tuple[np.ndarray, np.ndarray]:
        """Per seed, the highest R± and the epoch at which it is reached: two ``(S,)`` arrays."""
        return peak(self.r_pm, self.epochs)


def curves(traj: Trajectory, m_correct: torch.Tensor) -> Curves:
    """The :class:`Curves` of trajectory ``traj`` against M's ``(N,)`` test correctness."""
    return Curves(traj.steps, traj.steps_per_epoch, traj.contingency(m_correct))


#: Colours of the curves in :func:`plot_curves`.
COLORS = {"R±": "#222222", "R+": "#2ca02c", "R-": "#d62728", "D": "#1f77b4", "M": "#7f7f7f",
          "T00": "#7f7f7f", "T01": "#ff7f0e", "T10": "#9467bd", "T11": "#2ca02c"}


def plot_curves(axes: Sequence[Any], c: Curves, title: str) -> None:
    """The poster's three panels for one data set and one M, on three axes (one column):
    R± over training; R+, R− and D's accuracy (M's dashed); the four counts of T. Lines are means
    over the seeds, bands span min to max over the seeds; x is the training step on a symlog axis
    (linear below 1), with the end of the first epoch dotted."""
    x = c.steps
    ax1, ax2, ax3 = axes
    figures.band(ax1, x, c.r_pm.T, COLORS["R±"], "R± = R+ / R−")
    ax1.axhline(1.0, color="k", lw=0.8, ls=":")
    ax1.annotate("1 epoch", (c.steps_per_epoch, 1), xytext=(-3, -3), textcoords="offset points",
                 xycoords=("data", "axes fraction"), ha="right", va="top", fontsize=8)
    ax1.set_ylabel("R±")
    ax1.set_title(title)
    figures.band(ax2, x, c.r_plus.T, COLORS["R+"], "R+ (D on M-correct)")
    figures.band(ax2, x, c.r_minus.T, COLORS["R-"], "R− (D on M-incorrect)")
    figures.band(ax2, x, c.acc_d.T, COLORS["D"], "accuracy of D")
    ax2.axhline(c.acc_m, color=COLORS["M"], lw=1.2, ls="--", label="accuracy of M")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.02)
    t = c.t.numpy()
    for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
        figures.band(ax3, x, t[:, :, i, j].T, COLORS[f"T{i}{j}"], f"T{i}{j}")
    ax3.set_ylabel("test examples")
    ax3.set_xlabel("training step of D (symlog)")
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(0, x[-1])
        ax.axvline(c.steps_per_epoch, color="k", lw=0.8, ls=":")
        ax.legend(fontsize=7, loc="best")
