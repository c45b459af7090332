"""Classifier two-sample tests: how well can a classifier tell generated from real? (ROC AUC, k-fold)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

__all__ = ["kfold_auc", "hl_classifier_auc", "deepsets_classifier_auc"]

#: fit on (X_train, y_train), return scores for X_test; X is any row-indexable array.
FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def kfold_auc(real: np.ndarray, gen: np.ndarray, fit_predict: FitPredict, k: int = 5,
              seed: int = 42, on_fold: Callable[[], None] | None = None) -> tuple[float, float, list[float]]:
    """Mean and std of the held-out ROC AUC over k stratified folds (label 1 = generated).

    The larger sample is subsampled (``default_rng(seed)``) to the size of the smaller, so an
    AUC of 0.5 means indistinguishable and 1 means perfectly separated.  ``on_fold`` is called
    after each fold (progress).
    """
    rng = np.random.default_rng(seed)
    n = min(len(real), len(gen))
    real = real[np.sort(rng.choice(len(real), n, replace=False))]
    gen = gen[np.sort(rng.choice(len(gen), n, replace=False))]
    x = np.concatenate([real, gen])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    aucs = []
    for fold, (train, test) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)):
        scores = fit_predict(x[train], y[train], x[test], seed + fold)
        aucs.append(float(roc_auc_score(y[test], scores)))
        if on_fold is not None:
            on_fold()
    return float(np.mean(aucs)), float(np.std(aucs)), aucs


def _hgb(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, early_stopping=False, random_state=seed)
    return clf.fit(x_train, y_train).predict_proba(x_test)[:, 1]


def hl_classifier_auc(real: np.ndarray, gen: np.ndarray, k: int = 5, seed: int = 42,
                      on_fold: Callable[[], None] | None = None) -> tuple[float, float, list[float]]:
    """AUC of gradient-boosted trees (scikit-learn) on (N, F) high-level features, k-fold."""
    return kfold_auc(real, gen, _hgb, k, seed, on_fold)


def _deepsets_fit_predict(epochs: int, hidden: int, batch_size: int, lr: float, device: str = "cpu") -> FitPredict:
    def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
        import torch
        from torch import nn

        torch.manual_seed(seed)
        feats = x_train.shape[-1] - 1  # last column is the mask
        phi = nn.Sequential(nn.Linear(feats, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        rho = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        phi, rho = phi.to(device), rho.to(device)  # initialised on the CPU: the same weights anywhere
        params = list(phi.parameters()) + list(rho.parameters())
        opt = torch.optim.Adam(params, lr=lr)

        def logits(batch: torch.Tensor) -> torch.Tensor:
            mask = batch[..., -1:]
            h = phi(batch[..., :-1]) * mask
            pooled = torch.cat([h.sum(1) / mask.sum(1).clamp(min=1), h.sum(1) / batch.shape[1]], dim=-1)
            return rho(pooled).squeeze(-1)

        # standardise each particle feature with the training fold's real particles
        real_parts = x_train[..., :-1][x_train[..., -1] > 0]
        mean, std = real_parts.mean(axis=0), real_parts.std(axis=0) + 1e-8

        def prepare(x: np.ndarray) -> torch.Tensor:
            z = np.where(x[..., -1:] > 0, (x[..., :-1] - mean) / std, 0.0)
            return torch.from_numpy(np.concatenate([z, x[..., -1:]], axis=-1).astype(np.float32)).to(device)

        xt = prepare(x_train)
        yt = torch.from_numpy(y_train.astype(np.float32)).to(device)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(xt), generator=gen).split(batch_size):
                loss = nn.functional.binary_cross_entropy_with_logits(logits(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.inference_mode():
            return torch.sigmoid(logits(prepare(x_test))).cpu().numpy()

    return fit_predict


def deepsets_classifier_auc(real: np.ndarray, gen: np.ndarray, k: int = 5, seed: int = 42, epochs: int = 10,
                            hidden: int = 64, batch_size: int = 256, lr: float = 1e-3,
                            device: str = "cpu", on_fold: Callable[[], None] | None = None
                            ) -> tuple[float, float, list[float]]:
    """AUC of a permutation-invariant Deep Sets network (Zaheer et al., arXiv:1703.06114), k-fold.

    Args:
        real, gen: (N, P, F + 1) particle features with the mask as the last column; the network
            is phi (per particle) -> masked mean and sum pooling -> rho, trained with Adam on the
            binary cross-entropy for ``epochs`` epochs per fold (seeded: same inputs, same AUCs);
            features are standardised with the training fold's real particles.
        device: torch device of the network ("cpu", "cuda"; the same initial weights either way).
        on_fold: called after each fold (progress).
    """
    return kfold_auc(real, gen, _deepsets_fit_predict(epochs, hidden, batch_size, lr, device), k, seed, on_fold)
