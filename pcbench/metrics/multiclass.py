"""Several models at once: one multiclass classifier, and the mean log-posterior of each model's
class on held-out reference objects.

The definition of the CaloChallenge 2022 write-up (arXiv:2410.21611, the multiclass classifier:
``CaloChallenge/homepage``, ``final_results/reference_creation.ipynb``, cells "Multiclass
Classification" and "Multiclass Crosscheck", arrays ``log_truth`` (runs, models) and
``log_post_by_model`` (runs, models, models)) and of the EPiC-FM paper's multi-model classifier
(Buhmann et al., arXiv:2310.00049; the authors' ``dfaroughy/ClassifierMetric``,
``utils/trainer.py`` ``ModelClassifierTest.test``: the classes are the generative models, the
real jets are test data only):

- one classifier learns to tell the M models' samples apart (equal counts per class);
- applied to a reference (truth) object x it estimates p(c|x) = p_c(x) / sum_j p_j(x), so the mean
  over reference objects of log p(c|x) = E_ref[log p_c(x)] - E_ref[log sum_j p_j(x)]: up to a term
  that is the same for every model, the mean log-likelihood of the reference under model c.  The
  difference of two models' values estimates KL(ref || c') - KL(ref || c).

**Higher is better.**  The value lies in (-inf, 0]: 0 means every reference object is attributed
to this model (the others are told apart from the reference), log(1/C) (C classes: M, or M + 1 with
``reference_class``) means all models describe the reference equally well, e.g. every model is
perfect; a model whose samples miss part of the reference gets a large negative value.  Values
compare only within one run (the common term depends on the set of models).  The crosscheck (the
write-up's "consistency check") applies the classifier to each model's own held-out objects:
E_c[log p(c'|x)] should be largest at c' = c.

``reference_class`` also trains the reference as class M (a variant; the papers do not): then an
all-perfect set gives log(1/(M + 1)), and E_c[log p(ref|x)], the mean log-posterior of the
reference class on model c's objects (higher is better, log(1/(M + 1)) when all are perfect), is
reported as well.

Errors: K folds (default 5) of each class; in fold k the classifier is trained on K - 2 folds,
chooses its epoch (network) or iteration (trees) by the lowest cross-entropy on fold k + 1
(mod K), and is scored on fold k (the reference's fold k for the log-posterior); value = mean over
folds, error = std over folds (ddof 1) / sqrt(K).  Seeded: the same inputs and settings give the
same numbers bit for bit on one machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from .._profiles import Profiles
from .dnn_classifier import DNNSettings, net_outputs, network, train_network

__all__ = ["MulticlassSettings", "ModelScore", "MulticlassResult", "multiclass_log_posterior", "DEFINITION",
           "REFERENCE_DEFINITION", "MIN_PER_FOLD"]

#: what ``ModelScore.log_posterior`` is, in one line (records and tables print it)
DEFINITION = ("mean over held-out reference objects x of log p(model | x), p from one multiclass classifier trained "
              "to tell the models' samples apart (CaloChallenge 2022 multiclass log-posterior, arXiv:2410.21611; "
              "EPiC-FM multi-model classifier, arXiv:2310.00049); higher is better, 0 at most; log(1/C) when "
              "every model describes the reference equally well (C classes)")
#: what ``ModelScore.reference_log_posterior`` is (``reference_class`` only)
REFERENCE_DEFINITION = ("mean over the model's held-out objects x of log p(reference | x), the reference trained as a "
                        "class too; higher is better, log(1/C) when every model is perfect")
#: fewest objects per class and fold
MIN_PER_FOLD = 2
#: classifiers: "dnn" (the CaloChallenge DNN, softmax cross-entropy), "hgb" (scikit-learn boosted trees)
CLASSIFIERS = ("dnn", "hgb")


@dataclass(frozen=True)
class MulticlassSettings(Profiles):
    """Settings: ``full`` trains the CaloChallenge DNN (``dnn``: 2 x 2048 LeakyReLU, Adam 2e-4,
    batches of 1000, up to 50 epochs; of ``DNNSettings`` only the network and training fields are
    used, its seed is replaced by ``seed`` + fold) on every object; ``fast`` boosted trees
    (HistGradientBoosting, up to ``hgb_max_iter`` iterations) on at most 10,000 objects per class."""

    profile: str = "full"
    classifier: str = "dnn"
    folds: int = 5
    max_per_class: int | None = None  # None: as many as the smallest class has
    reference_class: bool = False  # also train the reference as a class (a variant, not the papers')
    seed: int = 42
    dnn: DNNSettings = DNNSettings()
    hgb_max_iter: int = 200
    hgb_learning_rate: float = 0.1

    FAST: ClassVar[dict[str, Any]] = {"profile": "fast", "classifier": "hgb", "max_per_class": 10_000}

    def record(self) -> dict[str, Any]:
        """The settings as they act: the classifier's own fields only."""
        out = asdict(self)
        dnn = out.pop("dnn")
        if self.classifier == "dnn":
            out["dnn"] = {k: dnn[k] for k in ("n_layer", "n_hidden", "dropout", "lr", "batch_size", "epochs", "device")}
            del out["hgb_max_iter"], out["hgb_learning_rate"]
        return out


@dataclass(frozen=True)
class ModelScore:
    """One model (class c): means over folds, errors std / sqrt(K).

    ``log_posterior`` ± ``error``: E_ref[log p(c|x)] (``DEFINITION``); ``self_log_posterior``:
    E_c[log p(c|x)] on its own held-out objects; ``crosscheck``: E_c[log p(c'|x)] for every class c'
    (the write-up's consistency check; the reference last with ``reference_class``); ``confusion``:
    the fractions of c's held-out objects the classifier assigns to each class; ``reference_share``:
    the fraction of held-out reference objects assigned to c; ``reference_log_posterior``:
    E_c[log p(ref|x)] with ``reference_class``, else None; ``folds``: ``log_posterior`` per fold.
    """

    log_posterior: float
    error: float
    self_log_posterior: float
    self_error: float
    crosscheck: tuple[float, ...]
    confusion: tuple[float, ...]
    reference_share: float
    reference_log_posterior: float | None
    reference_error: float | None
    folds: tuple[float, ...]


@dataclass(frozen=True)
class MulticlassResult:
    """Every model's score, the multiclass accuracy on the held-out objects of all classes (± std
    / sqrt(K)), what a set of equally good models gives (``perfect`` = log(1/C), ``chance`` = 1/C),
    the objects per class, the rows dropped for non-finite features (reference first), each fold's
    chosen epoch or iteration, and the settings."""

    models: tuple[ModelScore, ...]
    accuracy: float
    accuracy_error: float
    perfect: float
    chance: float
    n_classes: int
    n_per_class: int
    dropped: tuple[int, ...]
    fold_best: tuple[int, ...]
    settings: dict[str, Any] = field(default_factory=dict)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _cross_entropy(logp: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(logp[np.arange(len(y)), y]))


#: fit on (x_train, y_train), choose by (x_val, y_val), return log p(class | x) of x_eval and the chosen epoch
FitLogProba = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int],
                       tuple[np.ndarray, int]]


def _dnn(s: MulticlassSettings) -> FitLogProba:
    def fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, x_eval: np.ndarray,
            n_classes: int, seed: int) -> tuple[np.ndarray, int]:
        import torch

        d = replace(s.dnn, seed=seed)
        net = network(x_train.shape[1], n_classes, d)
        xt = torch.from_numpy(x_train.astype(np.float32)).to(d.device)
        yt = torch.from_numpy(y_train.astype(np.int64)).to(d.device)
        xv = x_val.astype(np.float32)

        def val_score() -> float:
            return -_cross_entropy(_log_softmax(net_outputs(net, xv, d.device)), y_val)

        best = train_network(net, xt, yt, torch.nn.CrossEntropyLoss(), d, val_score)
        return _log_softmax(net_outputs(net, x_eval.astype(np.float32), d.device)), best

    return fit


def _hgb(s: MulticlassSettings) -> FitLogProba:
    def fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, x_eval: np.ndarray,
            n_classes: int, seed: int) -> tuple[np.ndarray, int]:
        from sklearn.ensemble import HistGradientBoostingClassifier

        clf = HistGradientBoostingClassifier(max_iter=s.hgb_max_iter, learning_rate=s.hgb_learning_rate,
                                             early_stopping=False, random_state=seed).fit(x_train, y_train)

        def stages(x: np.ndarray):
            for raw in clf.staged_decision_function(x):
                raw = np.asarray(raw, np.float64)
                yield _log_softmax(np.column_stack([np.zeros(len(raw)), raw]) if raw.ndim == 1 else raw)

        losses = [_cross_entropy(logp, y_val) for logp in stages(x_val)]
        best = int(np.argmin(losses))  # the first iteration with the lowest validation cross-entropy
        for i, logp in enumerate(stages(x_eval)):
            if i == best:
                return logp, best + 1
        raise AssertionError("unreachable: the eval stages end with the validation's")

    return fit


def _finite_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected (N, F) feature arrays, got shape {x.shape}")
    return x[np.isfinite(x).all(axis=1)]


def _stderr(values: np.ndarray) -> np.ndarray:
    """Std over folds (axis 0, ddof 1) / sqrt(K)."""
    return np.std(values, axis=0, ddof=1) / math.sqrt(len(values))


def multiclass_log_posterior(reference: np.ndarray, samples: Sequence[np.ndarray],
                             settings: MulticlassSettings = MulticlassSettings(),
                             on_fold: Callable[[], None] | None = None) -> MulticlassResult:
    """Score M models at once (``DEFINITION``; the module docstring says what the values mean).

    Args:
        reference: (N_ref, F) features of the reference objects (never a training class, unless
            ``settings.reference_class``).
        samples: M arrays (N_c, F), one per model, the same features; M >= 2 (M >= 1 with
            ``reference_class``).
        settings: classifier, folds, sizes, seed.
        on_fold: called after each fold (progress).

    Rows with non-finite features are dropped; then every input (the reference too) is subsampled
    without replacement (``numpy.random.default_rng(seed)``) to the smallest one's count (at most
    ``max_per_class``), so the classes are balanced.  Raises ValueError for too few models, classes
    or objects (fewer than ``MIN_PER_FOLD`` per fold) and for mismatched feature counts.
    """
    s = settings
    if s.classifier not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {s.classifier!r}; expected one of {', '.join(CLASSIFIERS)}")
    if s.folds < 3:
        raise ValueError(f"{s.folds} folds: at least 3 are needed (train, validation and test folds)")
    n_models = len(samples)
    n_classes = n_models + int(s.reference_class)
    if n_models < 1 or n_classes < 2:
        raise ValueError(f"{n_models} model(s) make {n_classes} class(es): a multiclass classifier needs at least 2 "
                         "(two models, or one model with reference_class)")
    inputs = [_finite_rows(reference)] + [_finite_rows(x) for x in samples]
    widths = {x.shape[1] for x in inputs}
    if len(widths) > 1:
        raise ValueError(f"the feature arrays have different numbers of columns: {sorted(widths)}")
    dropped = tuple(len(raw) - len(x) for raw, x in zip([reference, *samples], inputs))
    n = min(len(x) for x in inputs)
    if s.max_per_class is not None:
        n = min(n, s.max_per_class)
    if n < MIN_PER_FOLD * s.folds:
        raise ValueError(f"{n} usable objects per class: {s.folds} folds need at least {MIN_PER_FOLD * s.folds}")
    rng = np.random.default_rng(s.seed)
    inputs = [x[np.sort(rng.choice(len(x), n, replace=False))] for x in inputs]
    parts = [np.array_split(rng.permutation(n), s.folds) for _ in inputs]
    fit = (_dnn if s.classifier == "dnn" else _hgb)(s)
    # class c = model c (inputs[c + 1]); class n_models = the reference with reference_class
    class_inputs = list(range(1, n_models + 1)) + ([0] if s.reference_class else [])

    def take(folds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        xs = [inputs[i][np.concatenate([parts[i][f] for f in folds])] for i in class_inputs]
        return np.concatenate(xs), np.concatenate([np.full(len(x), c) for c, x in enumerate(xs)])

    value, own, cross, confusion, share, acc, best = [], [], [], [], [], [], []
    for k in range(s.folds):
        val_fold = (k + 1) % s.folds
        x_train, y_train = take([f for f in range(s.folds) if f not in (k, val_fold)])
        x_val, y_val = take([val_fold])
        x_test, y_test = take([k])
        x_ref = inputs[0][parts[0][k]]
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        z = [(x - mean) / std for x in (x_train, x_val, x_test, x_ref)]
        logp, b = fit(z[0], y_train, z[1], y_val, np.concatenate(z[2:]), n_classes, s.seed + k)
        lp_test, lp_ref = logp[:len(x_test)], logp[len(x_test):]
        pred_test = lp_test.argmax(axis=1)
        per_class = [lp_test[y_test == c] for c in range(n_models)]
        value.append(lp_ref[:, :n_models].mean(axis=0))
        cross.append(np.stack([lp.mean(axis=0) for lp in per_class]))
        own.append(np.array([lp[:, c].mean() for c, lp in enumerate(per_class)]))
        confusion.append(np.stack([np.bincount(lp.argmax(axis=1), minlength=n_classes) / len(lp) for lp in per_class]))
        share.append(np.bincount(lp_ref.argmax(axis=1), minlength=n_classes)[:n_models] / len(lp_ref))
        acc.append(float(np.mean(pred_test == y_test)))
        best.append(b)
        if on_fold is not None:
            on_fold()
    value_a, own_a, cross_a = np.array(value), np.array(own), np.array(cross)
    value_m, value_e, own_m, own_e = value_a.mean(0), _stderr(value_a), own_a.mean(0), _stderr(own_a)
    cross_m, conf_m, share_m = cross_a.mean(0), np.array(confusion).mean(0), np.array(share).mean(0)
    ref_m = ref_e = None
    if s.reference_class:
        ref_m, ref_e = cross_m[:, n_models], _stderr(cross_a[:, :, n_models])
    models = tuple(ModelScore(float(value_m[c]), float(value_e[c]), float(own_m[c]), float(own_e[c]),
                              tuple(float(v) for v in cross_m[c]), tuple(float(v) for v in conf_m[c]),
                              float(share_m[c]), None if ref_m is None else float(ref_m[c]),
                              None if ref_e is None else float(ref_e[c]),
                              tuple(float(v) for v in value_a[:, c])) for c in range(n_models))
    acc_a = np.array(acc)
    return MulticlassResult(models, float(acc_a.mean()), float(_stderr(acc_a)), math.log(1.0 / n_classes),
                            1.0 / n_classes, n_classes, n, dropped, tuple(best), s.record())
