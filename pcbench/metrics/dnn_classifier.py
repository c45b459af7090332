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

__all__ = ["DNNSettings", "DNNResult", "dnn_classifier_test"]


@dataclass(frozen=True)
class DNNSettings(Profiles):
    """Network and training settings; the defaults are the challenge's (``--cls_*`` options)."""

    n_layer: int = 2
    n_hidden: int = 2048
    dropout: float = 0.0
    lr: float = 2e-4
    batch_size: int = 1000
    epochs: int = 50
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    calibrate: bool = True
    n_boot: int = 20  # bootstrap resamplings of the validation set for the AUC and JSD errors
    seed: int = 42
    device: str = "cpu"  # torch device of the network (initialised on the CPU: the same weights anywhere)

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


def dnn_classifier_test(real: np.ndarray, gen: np.ndarray, settings: DNNSettings = DNNSettings(),
                        on_epoch: Callable[[], None] | None = None) -> DNNResult:
    """Train the classifier on (N, F) reference vs (M, F) generated inputs and score it;
    ``on_epoch`` is called after each training epoch (progress).

    Deterministic for a seed (``numpy.random.default_rng`` for the splits, ``torch.manual_seed``
    for the network) on one machine.
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
    dim = train.shape[1] - 1
    layers: list[torch.nn.Module] = [torch.nn.Linear(dim, s.n_hidden), torch.nn.LeakyReLU(), torch.nn.Dropout(s.dropout)]
    for _ in range(s.n_layer):
        layers += [torch.nn.Linear(s.n_hidden, s.n_hidden), torch.nn.LeakyReLU(), torch.nn.Dropout(s.dropout)]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(s.n_hidden, 1)).to(s.device)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(train[:, :-1]).to(s.device), torch.from_numpy(train[:, -1:]).to(s.device)

    def logits(x: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return np.concatenate([net(torch.from_numpy(x[i:i + 10_000, :-1]).to(s.device)).cpu().numpy().ravel()
                                   for i in range(0, len(x), 10_000)]) if len(x) else np.zeros(0)

    gen_t = torch.Generator().manual_seed(s.seed)
    best_acc, best_epoch, best_state = -math.inf, 0, copy.deepcopy(net.state_dict())
    for epoch in range(s.epochs):
        net.train()
        order = torch.randperm(len(xt), generator=gen_t)
        for i in range(0, len(order), s.batch_size):
            idx = order[i:i + s.batch_size]
            loss = loss_fn(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = float(np.mean((logits(test) > 0) == (test[:, -1] > 0.5)))
        if acc > best_acc:
            best_acc, best_epoch, best_state = acc, epoch + 1, copy.deepcopy(net.state_dict())
        if on_epoch is not None:
            on_epoch()
        if acc == 1.0:
            break
    net.load_state_dict(best_state)
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
