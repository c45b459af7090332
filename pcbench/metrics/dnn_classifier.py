"""The CaloChallenge's DNN classifier test: AUC and JSD of generated vs reference showers.

As ``CaloChallenge/homepage/code/evaluate.py``: equal numbers of each class, each shuffled and
split 60/20/20 into train / test / validation; a fully connected network (input layer,
``n_layer`` hidden layers of ``n_hidden`` units, LeakyReLU, dropout) trained with Adam and
BCE-with-logits in batches; after each epoch the accuracy on the test part decides which epoch is
kept; the kept network's validation predictions are calibrated by isotonic regression fitted on
the test part; AUC (``roc_auc_score``) and JSD = (ln 2 - BCE) / ln 2 of the calibrated
predictions are reported (0.5 and 0: indistinguishable; 1 and 1: perfectly separated).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from .._profiles import Profiles

__all__ = ["ClassifierTraining", "DNNSettings", "DNNResult", "dnn_classifier_test", "classifier_test", "network", "net_outputs",
           "train_network"]


@dataclass(frozen=True)
class ClassifierTraining(Profiles):
    """The challenge's training protocol, shared by its DNN and CNN tests (``--cls_*`` options):
    Adam learning rate, batch, epochs, the train / test / validation split, calibration, the
    bootstrap of the errors, the seed and the torch device."""

    lr: float = 2e-4
    batch_size: int = 1000
    epochs: int = 50
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    calibrate: bool = True
    n_boot: int = 20  # bootstrap resamplings of the validation set for the AUC and JSD errors
    seed: int = 42
    device: str = "cpu"  # torch device of the network (initialised on the CPU: the same weights anywhere)


@dataclass(frozen=True)
class DNNSettings(ClassifierTraining):
    """The DNN's network and training settings; the defaults are the challenge's."""

    n_layer: int = 2
    n_hidden: int = 2048
    dropout: float = 0.0

    FAST: ClassVar[dict[str, Any]] = {"n_hidden": 256, "epochs": 15, "batch_size": 500, "lr": 1e-3}  # CPU-sized


@dataclass(frozen=True)
class DNNResult:
    """AUC and JSD (calibrated) with bootstrap errors, and what the run did."""

    auc: float
    auc_error: float
    jsd: float
    jsd_error: float
    accuracy: float
    auc_uncalibrated: float
    best_epoch: int
    n_per_class: int
    settings: dict


def _bce(p: np.ndarray, y: np.ndarray) -> float:
    """Binary cross entropy of probabilities (logs clamped at -100, as torch's BCELoss)."""
    with np.errstate(divide="ignore"):
        lp, lq = np.maximum(np.log(p), -100.0), np.maximum(np.log1p(-p), -100.0)
    return float(-np.mean(y * lp + (1 - y) * lq))


def network(dim: int, n_out: int, s: DNNSettings):
    """The challenge's fully connected network: ``dim`` inputs, 1 + ``s.n_layer`` hidden layers of
    ``s.n_hidden`` units (LeakyReLU, dropout), ``n_out`` outputs (logits); initialised on the CPU
    after ``torch.manual_seed(s.seed)`` (the same weights on any device), then moved to ``s.device``."""
    import torch

    torch.manual_seed(s.seed)
    layers: list[torch.nn.Module] = [torch.nn.Linear(dim, s.n_hidden), torch.nn.LeakyReLU(), torch.nn.Dropout(s.dropout)]
    for _ in range(s.n_layer):
        layers += [torch.nn.Linear(s.n_hidden, s.n_hidden), torch.nn.LeakyReLU(), torch.nn.Dropout(s.dropout)]
    return torch.nn.Sequential(*layers, torch.nn.Linear(s.n_hidden, n_out)).to(s.device)


def net_outputs(net, x: np.ndarray, device: str, rows: int = 10_000) -> np.ndarray:
    """(N, n_out) float32 outputs of ``net`` in evaluation mode for (N, F) float32 inputs, ``rows`` rows at a time."""
    import torch

    net.eval()
    with torch.no_grad():
        parts = [net(torch.from_numpy(x[i:i + rows]).to(device)).cpu().numpy() for i in range(0, len(x), rows)]
    return np.concatenate(parts) if parts else np.zeros((0, net[-1].out_features), np.float32)


def train_network(net, xt, yt, loss_fn, s: DNNSettings, score: Callable[[], float],
                  on_epoch: Callable[[], None] | None = None, perfect: float | None = None) -> int:
    """Train ``net`` on the tensors ``xt``, ``yt`` with Adam (``s.lr``) in shuffled batches of
    ``s.batch_size`` (a ``torch.Generator`` seeded with ``s.seed``) for up to ``s.epochs`` epochs;
    after each epoch ``score()`` (higher is better) decides whether the state is kept, and training
    stops early once it reaches ``perfect``.  Leaves the best state loaded; returns its epoch (1-based)."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    gen_t = torch.Generator().manual_seed(s.seed)
    best, best_epoch, best_state = -math.inf, 0, copy.deepcopy(net.state_dict())
    for epoch in range(s.epochs):
        net.train()
        order = torch.randperm(len(xt), generator=gen_t)
        for i in range(0, len(order), s.batch_size):
            idx = order[i:i + s.batch_size]
            loss = loss_fn(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        value = score()
        if value > best:
            best, best_epoch, best_state = value, epoch + 1, copy.deepcopy(net.state_dict())
        if on_epoch is not None:
            on_epoch()
        if perfect is not None and value == perfect:
            break
    net.load_state_dict(best_state)
    return best_epoch


def dnn_classifier_test(real: np.ndarray, gen: np.ndarray, settings: DNNSettings = DNNSettings(),
                        on_epoch: Callable[[], None] | None = None) -> DNNResult:
    """Train the classifier on (N, F) reference vs (M, F) generated inputs and score it;
    ``on_epoch`` is called after each training epoch (progress).

    Deterministic for a seed (``numpy.random.default_rng`` for the splits, ``torch.manual_seed``
    for the network) on one machine.
    """
    return classifier_test(real, gen, settings, lambda dim: network(dim, 1, settings), on_epoch)


def classifier_test(real: np.ndarray, gen: np.ndarray, settings: Any, make_net: Callable[[int], Any],
                    on_epoch: Callable[[], None] | None = None, eval_rows: int = 10_000) -> DNNResult:
    """The challenge's binary classifier protocol for any network (the DNN here, the CNN in
    :mod:`.cnn_classifier`): split, train, keep the best epoch, calibrate, score with bootstrap errors.

    ``real`` (N, F) and ``gen`` (M, F) network inputs (labels 1 and 0); ``settings`` has the
    ``DNNSettings`` training fields (``lr``, ``batch_size``, ``epochs``, ``split``, ``calibrate``,
    ``n_boot``, ``seed``, ``device``); ``make_net(F)`` builds the network on the CPU (after
    ``torch.manual_seed(seed)``), mapping (B, F) float32 rows to (B, 1) or (B,) logits; it is
    moved to ``device``.  Evaluation runs ``eval_rows`` rows at a time.
    """
    import torch
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score

    s = settings
    rng = np.random.default_rng(s.seed)
    n = min(len(real), len(gen))
    cuts = np.cumsum((np.asarray(s.split) * n).astype(int))

    def parts(x: np.ndarray, label: float) -> list[np.ndarray]:
        x = np.asarray(x, dtype=np.float32)[rng.permutation(len(x))[:n]]
        x = np.column_stack([x, np.full(n, label, np.float32)])
        return [x[:cuts[0]], x[cuts[0]:cuts[1]], x[cuts[1]:cuts[2]]]

    train, test, val = (np.concatenate(p) for p in zip(parts(real, 1.0), parts(gen, 0.0)))
    torch.manual_seed(s.seed)
    net = make_net(train.shape[1] - 1).to(s.device)
    xt, yt = torch.from_numpy(train[:, :-1]).to(s.device), torch.from_numpy(train[:, -1:]).to(s.device)
    bce = torch.nn.BCEWithLogitsLoss()

    def logits(x: np.ndarray) -> np.ndarray:
        return net_outputs(net, x[:, :-1], s.device, eval_rows).ravel()

    def test_accuracy() -> float:
        return float(np.mean((logits(test) > 0) == (test[:, -1] > 0.5)))

    best_epoch = train_network(net, xt, yt, lambda z, y: bce(z.reshape(y.shape), y), s, test_accuracy, on_epoch,
                               perfect=1.0)
    y_val = val[:, -1].astype(np.float64)
    p_val = 1.0 / (1.0 + np.exp(-logits(val).astype(np.float64)))
    auc_raw = float(roc_auc_score(y_val, p_val))
    if s.calibrate:
        p_test = 1.0 / (1.0 + np.exp(-logits(test).astype(np.float64)))
        iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(p_test, test[:, -1])
        p_val = iso.predict(p_val)

    def scores(idx: np.ndarray) -> tuple[float, float]:
        y, p = y_val[idx], p_val[idx]
        return float(roc_auc_score(y, p)), (math.log(2) - _bce(p, y)) / math.log(2)

    auc, jsd = scores(np.arange(len(y_val)))
    boots = np.array([scores(rng.integers(0, len(y_val), len(y_val))) for _ in range(s.n_boot)])
    return DNNResult(auc, float(boots[:, 0].std()), jsd, float(boots[:, 1].std()),
                     float(np.mean((p_val > 0.5) == (y_val > 0.5))), auc_raw, best_epoch, n, asdict(s))
