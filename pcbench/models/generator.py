"""The interface every generator implements, jets and showers alike.

A generator is an ``nn.Module`` with a ``name`` (its registry key and ``pcbench train NAME``), the
``kind`` of data it makes (``jets``, ``showers``), its named ``configs`` (``full``: the paper's,
``small``: 2 CPU cores in minutes; ``--set`` is checked against them), whether it is ``fitted``
rather than trained (an empirical baseline), the model it distils (``teacher_of``), and how it is restored from a checkpoint
(:meth:`Generator.restore`).  What it trains is a list of phases (``trainer.Phase``) that the
one training loop runs; the kind's base class (``jets.base.JetGenerator``,
``showers.base.ShowerGenerator``) says how the phases are made from a model's losses.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["Generator", "load_state"]


class Generator(nn.Module):
    """Base class of every generator (see the module docstring)."""

    name: ClassVar[str] = "base"
    kind: ClassVar[str] = ""
    #: configs by name; "full" follows the paper, "small" trains on 2 CPU cores in minutes
    configs: ClassVar[dict[str, dict[str, Any]]] = {}
    #: an empirical baseline fitted to the training data (nothing to train)
    fitted: ClassVar[bool] = False
    #: the generator whose checkpoint ``--teacher`` must give (a distillation); None: no teacher
    teacher_of: ClassVar[str | None] = None

    @classmethod
    def restore(cls, payload: dict[str, Any]) -> Generator:
        """The model a checkpoint's payload describes (weights loaded; on the CPU)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(iter(self.parameters()), next(iter(self.buffers()), torch.empty(0))).device


def load_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """``module.load_state_dict(state)``, first giving every buffer the shape it has in ``state``
    (buffers sized by the training data, e.g. a baseline's pool of particles, are known only
    from the checkpoint)."""
    for key, value in state.items():
        owner_path, _, attr = key.rpartition(".")
        owner = module.get_submodule(owner_path) if owner_path else module
        if attr in owner._buffers and owner._buffers[attr] is not None and owner._buffers[attr].shape != value.shape:
            owner._buffers[attr] = torch.empty_like(value)
    module.load_state_dict(state)
