"""The CaloChallenge's CNN classifier test (data sets 2 and 3): AUC and JSD of generated vs
reference showers from a 3-D ResNet on the voxel images.

The challenge's ``cls-resnet`` mode (``CaloChallenge/homepage`` at commit
``9b41df72a03aeecb48bfbaa946f9792f255e0ba7``; the network ``code/resnet.py``, added in commit
``2a3dcf2`` of 8 May 2024 from Huilin Qu's fork ``hqucms/CaloChallenge``; the training
``code/evaluate.py``):

- inputs: the low-level classifier's rows [log10 E_inc, voxels / E_inc] of thresholded voxels
  (``evaluate.py`` L166-186, used for ``cls-resnet`` at L600-605); the network takes log10 E_inc
  through a ``BatchNorm1d(1)`` and reshapes the voxels to one channel of (layers, alpha bins,
  radial bins) = (45, 16, 9) for data set 2 and (45, 50, 18) for data set 3 (``resnet.py``
  L203-205; ``evaluate.py`` L633-636), the file's voxel order; no other normalisation;
- a 3-D ResNet-18 (``--cls_resnet_layers`` 18, ``evaluate.py`` L110): a stem ``Conv3d(1, 32,
  kernel 7, stride 2, padding 3, no bias)`` + BatchNorm + ReLU + ``MaxPool3d(3, stride 2,
  padding 1)`` (``resnet.py`` L127-135), four stages of two basic residual blocks (two 3x3x3
  convolutions, padding 1, no bias, BatchNorm, ReLU; ``resnet.py`` L16-22, L33-63, L234-235) with 32, 64,
  64, 128 channels (``get_inplanes``, L12-13), stride 2 from the second stage on, a 1x1x1
  convolution + BatchNorm on the shortcut where the shape changes (shortcut type B, L179-201),
  global average pooling, and one linear layer on [pooled features, normalised log10 E_inc] to
  one logit (L154-156, L218-221); He-normal (fan-out) initialisation of the convolutions
  (L159-166).  Padding is zeros in every direction, the periodic alpha direction included;
- training and scoring exactly as the DNN classifier test (:func:`.dnn_classifier.classifier_test`:
  Adam lr 2e-4, batches of 1000, 50 epochs, BCE with logits, the epoch of best test accuracy
  kept, isotonic calibration on the test part, AUC and JSD on the validation part; ``evaluate.py``
  L119-124, L264-390, L643-672), split 60/20/20 (the challenge's fixed 60,000 / 20,000 / 20,000
  showers per class for data sets 2 and 3, ``ttv_split`` L227-250).

Differences from the challenge's script, as in the DNN test: float32 (the script sets float64,
``evaluate.py`` L57), seeded shuffles, bootstrap errors.  Huilin Qu's original training (AdamW
with weight decay 0.01 and the learning rate decayed over the last 30 % of the epochs, inputs
100 x voxels / E_inc; ``hqucms/CaloChallenge`` commits ``9c5b698``, ``10955ec``) is not what the
challenge's repository runs, so it is not followed.  Published: ``binary cls cnn`` in the
write-up's tables (arXiv:2410.21611; ``/work/shared/data/calochallenge``): Geant4 vs Geant4 0.500
(data set 2) and 0.499 (data set 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import IncompatibleError, UsageError
from ..geometry.cylindrical import CylindricalGeometry
from . import calo_features
from .dnn_classifier import ClassifierTraining, DNNResult, classifier_test

if TYPE_CHECKING:
    import torch

__all__ = ["CNNSettings", "CNNResult", "cnn_classifier_test", "image_shape", "voxel_images", "cnn_network",
           "BLOCKS_OF_DEPTH"]

#: residual blocks per stage of the supported ResNet depths (basic blocks; ``resnet.py`` L229-237)
BLOCKS_OF_DEPTH: dict[int, tuple[int, int, int, int]] = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


@dataclass(frozen=True)
class CNNSettings(ClassifierTraining):
    """Network and training settings; the defaults (``full``) are the challenge's ``cls-resnet``,
    ``fast`` a ResNet-10 with a quarter of the channels for 2 CPU cores."""

    depth: int = 18  # ResNet depth: 10, 18 or 34 (``--cls_resnet_layers``)
    channels: tuple[int, int, int, int] = (32, 64, 64, 128)  # per stage (``get_inplanes``)
    stem_kernel: int = 7  # the first convolution's kernel (7 x 7 x 7) and padding (kernel // 2)
    stem_stride: int = 2
    max_pool: bool = True  # MaxPool3d(3, stride 2, padding 1) after the stem
    # training (lr 2e-4, batch 1000, 50 epochs, split, calibration, bootstrap, seed, device): the DNN's

    # CPU-sized: ResNet-10, a quarter of the channels, 10 epochs; batches of 100 for enough optimiser steps
    # (the BatchNorm running variances start at 1, the inputs voxels / E_inc are of order 1e-3)
    FAST: ClassVar[dict[str, Any]] = {"depth": 10, "channels": (8, 16, 16, 32), "epochs": 10, "batch_size": 100,
                                      "lr": 1e-3}


@dataclass(frozen=True)
class CNNResult(DNNResult):
    """AUC and JSD (calibrated) with bootstrap errors, what the run did, the network's
    ``image_shape`` (layers, alpha bins, radial bins) and trainable ``n_parameters``, and the
    optimiser ``steps_per_epoch`` (below about 20, 10 epochs leave the BatchNorm running
    statistics unsettled: ``docs/metrics-cnn.md``)."""

    image_shape: tuple[int, int, int] = (0, 0, 0)
    n_parameters: int = 0
    steps_per_epoch: int = 0


def image_shape(geometry: CylindricalGeometry) -> tuple[int, int, int]:
    """(layers, alpha bins, radial bins) of the voxel images: (45, 16, 9) for ``calochallenge-2``,
    (45, 50, 18) for ``calochallenge-3``.  Raises ``IncompatibleError`` for a geometry whose layers
    are not one regular grid (data set 1: the challenge's CNN is for data sets 2 and 3 only)."""
    if not isinstance(geometry, CylindricalGeometry):
        raise IncompatibleError(f"the CNN classifier needs a CaloChallenge voxel geometry (calochallenge-2 or "
                                f"calochallenge-3), got {type(geometry).__name__} {getattr(geometry, 'name', '')!r}")
    binning = geometry.common_binning
    if binning is None:
        raise IncompatibleError(
            f"the CNN classifier needs voxels on one (layer, alpha, r) grid, as data sets 2 (45 x 16 x 9) and 3 "
            f"(45 x 50 x 18); {geometry.name} has layers of different binnings (data set 1 has no "
            f"CNN test in the challenge)")
    return len(geometry.relevant_layers), binning.n_alpha, binning.n_r


def voxel_images(voxels: np.ndarray, geometry: CylindricalGeometry) -> np.ndarray:
    """(n, layers, alpha, r) view of (n, V) voxels in the file's order (layer, alpha bin, radial
    bin; ``CylindricalGeometry.voxel_table``), the images the network sees (as ``resnet.py``
    L205).  Raises ``IncompatibleError`` when V is not the geometry's voxel count."""
    shape = image_shape(geometry)
    voxels = np.asarray(voxels)
    if voxels.ndim != 2 or voxels.shape[1] != geometry.n_voxels:
        raise IncompatibleError(f"the CNN classifier on {geometry.name} expects voxels of shape (n, "
                                f"{geometry.n_voxels}), got {voxels.shape}")
    return voxels.reshape((len(voxels), *shape))


def _check(s: CNNSettings) -> None:
    """``UsageError`` for a network the settings cannot build."""
    if s.depth not in BLOCKS_OF_DEPTH:
        raise UsageError(f"CNN depth {s.depth} is not supported; expected one of "
                         f"{', '.join(map(str, BLOCKS_OF_DEPTH))}")
    if len(s.channels) != 4 or min(s.channels) < 1:
        raise UsageError(f"CNN channels {s.channels!r}: expected four positive channel counts, one per stage")
    if s.stem_kernel < 1 or s.stem_kernel % 2 == 0 or s.stem_stride < 1:
        raise UsageError(f"CNN stem kernel {s.stem_kernel}, stride {s.stem_stride}: expected an odd kernel and a "
                         f"positive stride")


def cnn_network(shape: tuple[int, int, int], settings: CNNSettings = CNNSettings()) -> torch.nn.Module:
    """The 3-D ResNet for images of ``shape`` (layers, alpha, r), on the CPU, randomly initialised
    from torch's global generator (``classifier_test`` seeds it).  Its input is (B, 1 + L*A*R)
    rows [log10 E_inc, voxels / E_inc], its output (B,) logits (reference = 1)."""
    import torch
    from torch import nn

    s = settings
    _check(s)

    def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv3d:
        return nn.Conv3d(c_in, c_out, kernel_size=k, stride=stride, padding=k // 2, bias=False)

    class Block(nn.Module):
        """Basic residual block: (conv 3, BN, ReLU, conv 3, BN) + shortcut, ReLU."""

        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1, self.bn1 = conv(c_in, c_out, 3, stride), nn.BatchNorm3d(c_out)
            self.relu = nn.ReLU(inplace=True)
            self.conv2, self.bn2 = conv(c_out, c_out, 3), nn.BatchNorm3d(c_out)
            self.shortcut = (nn.Sequential(conv(c_in, c_out, 1, stride), nn.BatchNorm3d(c_out))
                             if stride != 1 or c_in != c_out else None)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(out + (x if self.shortcut is None else self.shortcut(x)))

    class ShowerResNet(nn.Module):
        """Stem, four residual stages, global average pool, linear on [features, BN(log10 E_inc)]."""

        def __init__(self) -> None:
            super().__init__()
            self.shape = tuple(shape)
            self.stem = nn.Sequential(
                nn.Conv3d(1, s.channels[0], kernel_size=s.stem_kernel, stride=s.stem_stride, padding=s.stem_kernel // 2,
                          bias=False), nn.BatchNorm3d(s.channels[0]), nn.ReLU(inplace=True),
                *([nn.MaxPool3d(kernel_size=3, stride=2, padding=1)] if s.max_pool else []))
            stages, c_in = [], s.channels[0]
            for k, (c, n) in enumerate(zip(s.channels, BLOCKS_OF_DEPTH[s.depth])):
                stages.append(nn.Sequential(*[Block(c_in if b == 0 else c, c, 2 if (k > 0 and b == 0) else 1)
                                              for b in range(n)]))
                c_in = c
            self.stages = nn.Sequential(*stages)
            self.pool = nn.AdaptiveAvgPool3d(1)
            self.head = nn.Linear(c_in + 1, 1)
            self.e_norm = nn.BatchNorm1d(1)
            for m in self.modules():
                if isinstance(m, nn.Conv3d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

        def images(self, rows: torch.Tensor) -> torch.Tensor:
            """(B, 1, L, A, R) images of the rows' voxel columns."""
            return rows[:, 1:].reshape((-1, 1) + self.shape)

        def forward(self, rows: torch.Tensor) -> torch.Tensor:
            e = rows[:, :1]
            if self.training and len(rows) == 1:  # BatchNorm1d cannot take a lone value: its running statistics
                e = nn.functional.batch_norm(e, self.e_norm.running_mean, self.e_norm.running_var,
                                             self.e_norm.weight, self.e_norm.bias, training=False)
            else:
                e = self.e_norm(e)
            x = self.pool(self.stages(self.stem(self.images(rows)))).flatten(1)
            return self.head(torch.cat([x, e], dim=1)).reshape(-1)

    return ShowerResNet()


def _rows(voxels: np.ndarray, e_inc: np.ndarray, geometry: CylindricalGeometry, which: str) -> np.ndarray:
    """(n, 1 + V) float32 [log10 E_inc, thresholded voxels / E_inc], checked against the geometry."""
    voxel_images(voxels, geometry)  # the shape checks
    e = np.asarray(e_inc, dtype=np.float64).reshape(-1)
    if len(e) != len(voxels):
        raise IncompatibleError(f"the CNN classifier's {which} sample has {len(voxels)} showers but {len(e)} "
                                f"incident energies; expected one per shower")
    if not np.all(np.isfinite(e) & (e > 0)):
        raise IncompatibleError(f"the CNN classifier's {which} sample has incident energies that are not positive "
                                f"and finite; expected E_inc > 0 [MeV]")
    threshold = calo_features.THRESHOLDS_MEV.get(geometry.name, 0.0)
    out = np.empty((len(e), 1 + geometry.n_voxels), np.float32)
    for i in range(0, len(e), 2_000):  # thresholded (a no-op on the suite's voxels) and scaled, a chunk at a time
        v = calo_features.threshold_voxels(np.asarray(voxels[i:i + 2_000]), threshold)
        out[i:i + 2_000] = calo_features.classifier_inputs_low(v, e[i:i + 2_000])
    return out


def cnn_classifier_test(real_voxels: np.ndarray, real_e_inc: np.ndarray, gen_voxels: np.ndarray,
                        gen_e_inc: np.ndarray, geometry: CylindricalGeometry, settings: CNNSettings = CNNSettings(),
                        on_epoch: Callable[[], None] | None = None) -> CNNResult:
    """Train the CNN on reference (label 1) vs generated (label 0) showers and score it.

    ``*_voxels`` (n, V) voxel energies [MeV] in the file's order, ``*_e_inc`` (n,) incident
    energies [MeV]; ``geometry`` ``calochallenge-2`` or ``-3``.  Voxels below the challenge's
    readout threshold (15.15 keV) are zeroed, as its ``prepare_low_data_for_classifier``.  Equal
    numbers per class (the smaller sample's), split ``settings.split``; ``on_epoch`` is called
    after each epoch.  Deterministic for a seed on one CPU machine with one torch thread count
    (the float32 sums follow the threads; a GPU's cuDNN may pick non-deterministic kernels).
    Memory: a few float32 copies of the (n, 1 + V) rows per class (the split, as the DNN test).
    """
    s = settings
    _check(s)
    shape = image_shape(geometry)
    real = _rows(real_voxels, real_e_inc, geometry, "reference")
    gen = _rows(gen_voxels, gen_e_inc, geometry, "generated")
    n = min(len(real), len(gen))
    if np.min((np.asarray(s.split) * n).astype(int)) < 2:
        raise IncompatibleError(f"the CNN classifier needs at least 2 showers per class in each of train / test / "
                                f"validation (split {s.split}); got {n} per class")
    n_par: list[int] = []

    def make_net(dim: int) -> torch.nn.Module:
        net = cnn_network(shape, s)
        n_par.append(sum(p.numel() for p in net.parameters() if p.requires_grad))
        return net

    r = classifier_test(real, gen, s, make_net, on_epoch, eval_rows=1000)  # the challenge evaluates 1000 at a time
    steps = -(-2 * int(s.split[0] * n) // s.batch_size)  # the protocol's training part, both classes
    return CNNResult(**asdict(r), image_shape=shape, n_parameters=n_par[0], steps_per_epoch=steps)
