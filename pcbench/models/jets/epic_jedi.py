"""EPiC-JeDi (Buhmann et al., arXiv:2310.00049): the JeDi diffusion (``vp_diffusion.py``) with the
Local EPiC noise predictor (``local_epic.py``), as the published runs of ``DebajyotiS/PC-JeDi``
(branch ``all``: ``configs/model/localepicjedi.yaml``, ``configs/experiment/epic_{30,150}_{cond,
uncond}.yaml``, ``src/models/local_epic_jedi.py``).

The particles are standardised to unit variance (``norm_sigma`` 1, as the reference's
normaliser); condition, training and sampling are the JeDi generators' (``jedi.py``): the JeDi
loss, AdamW with a linear warm-up, gradients clipped to norm 5, the EMA weights generate.
Differences to the reference, by design: the condition is the
clouds' own relative mass and pT drawn jointly from the training jets (as pcbench's EPiC-FM;
the reference conditions on JetNet's jet pT and mass and draws them, with the multiplicity, from
a separately trained normalising flow; pcbench draws them from the training jets of the
multiplicity being generated), and batches hold jets of one multiplicity (no padding).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from .jedi import JeDiGenerator
from .local_epic import LocalEPiC

__all__ = ["EPiCJeDi"]


class EPiCJeDi(JeDiGenerator):
    """EPiC-JeDi; the ``full`` config is the published runs' (file and line in
    docs/generators-jets.md), ``small`` fits 2 CPU cores."""

    name = "epic-jedi"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"hidden": 128, "global_dim": 10, "layers": 6, "sum_scale": 0.01, "conditional": True,
                 "max_sr": 0.999, "min_sr": 0.02, "mle_weight": 1e-3, "lr": 1e-4, "weight_decay": 1e-4,
                 "warmup": 20_000, "grad_clip": 5.0, "ema": 0.999, "batch_size": 1024, "epochs": 10_000,
                 "steps": 200, "method": "em", "norm_sigma": 1.0},
        "small": {"hidden": 64, "global_dim": 10, "layers": 3, "sum_scale": 0.01, "conditional": False,
                  "max_sr": 0.999, "min_sr": 0.02, "mle_weight": 1e-3, "lr": 1e-3, "weight_decay": 1e-4,
                  "warmup": 500, "grad_clip": 5.0, "ema": 0.99, "batch_size": 128, "epochs": 100,
                  "steps": 100, "method": "em", "norm_sigma": 1.0},
    }

    def make_net(self, cond: int) -> nn.Module:
        c = self.config
        return LocalEPiC(3, cond, c["hidden"], c["global_dim"], c["layers"], c["sum_scale"])
