"""PC-JeDi (Leigh et al., arXiv:2303.05376; code ``rodem-hep/PC-JeDi``): the JeDi diffusion
(``vp_diffusion.py``) with a transformer noise predictor (``normformer.py``), conditional on the
jet's mass and pT, trained and sampled as the JeDi generators (``jedi.py``).

As the reference (``src/models/pc_jedi.py``, ``configs/model/default.yaml``): the network sees
(eta_rel, phi_rel, a log-pT feature), each standardised over the training particles; the condition
is the 32-feature time encoding and the jet's mass and pT, turned into a 64-feature context that
enters the embedding, every feed-forward block and the output.  Differences, by design: the
log-pT feature is log(ptrel) (the reference: log(1 + pT / GeV) of the absolute pT, which needs the
jet pT of every generated jet); the condition is the cloud's own relative mass and pT drawn from
the training jets of the multiplicity being generated (the reference copies N, pT and mass jet by
jet from the test jets; pcbench does not read the test split while generating); batches hold
jets of one multiplicity (no padding mask).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from .jedi import JeDiGenerator
from .normformer import PCJeDiTransformer

__all__ = ["PCJeDi"]


class PCJeDi(JeDiGenerator):
    """PC-JeDi; the ``full`` config is the reference code's (file and line in
    docs/generators-jets.md), ``small`` fits 2 CPU cores."""

    name = "pc-jedi"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"model_dim": 128, "layers": 4, "heads": 8, "ff_hidden": 256, "embed_hidden": 256,
                 "ctxt_hidden": 128, "ctxt_blocks": 2, "ctxt_dim": 64, "conditional": True, "log_pt": True,
                 "max_sr": 1.0, "min_sr": 0.02, "mle_weight": 1e-4, "lr": 1e-3, "weight_decay": 3e-5,
                 "warmup": 10_000, "grad_clip": 5.0, "ema": 0.999, "batch_size": 256, "epochs": 3000,
                 "steps": 200, "method": "em", "norm_sigma": 1.0},
        "small": {"model_dim": 64, "layers": 2, "heads": 4, "ff_hidden": 128, "embed_hidden": 128,
                  "ctxt_hidden": 64, "ctxt_blocks": 2, "ctxt_dim": 32, "conditional": True, "log_pt": True,
                  "max_sr": 1.0, "min_sr": 0.02, "mle_weight": 1e-4, "lr": 1e-3, "weight_decay": 3e-5,
                  "warmup": 500, "grad_clip": 5.0, "ema": 0.99, "batch_size": 128, "epochs": {30: 160, 150: 50},
                  "steps": 200, "method": "em", "norm_sigma": 1.0},
    }

    def make_net(self, cond: int) -> nn.Module:
        c = self.config
        return PCJeDiTransformer(3, cond, c["model_dim"], c["layers"], c["heads"], c["ff_hidden"], c["embed_hidden"],
                                 c["ctxt_hidden"], c["ctxt_blocks"], c["ctxt_dim"])
