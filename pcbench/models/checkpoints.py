"""Checkpoints of every generator: atomic writes, reading with one-line errors, ``--resume``, and
what a checkpoint says about its training (how long, what a budget left unfinished)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_path
from ..errors import CheckpointError, UsageError

__all__ = ["save_checkpoint", "load_checkpoint_file", "resume_path", "UNTRAINED_TEXT", "training_summary",
           "unfinished_parts"]


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """torch.save ``payload`` atomically (temporary file, then rename)."""
    path = Path(path)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint_file(path: str | Path, device: str = "cpu") -> dict[str, Any]:
    """The payload of a pcbench checkpoint and the md5 of its bytes (``checkpoint_md5``).

    Raises :class:`~pcbench.errors.CheckpointError` for a missing file, one torch cannot read
    (truncated, corrupt, not a torch file) and a torch file that is not a pcbench checkpoint.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from None
    try:
        payload = torch.load(io.BytesIO(data), map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable torch checkpoint: truncated, corrupt or another kind of file "
                              f"({len(data):,} bytes; torch: {reason})") from None
    if not isinstance(payload, dict) or not {"model", "config", "state_dict"} <= set(payload):
        raise CheckpointError(f"{path}: a torch file, but not a pcbench checkpoint (it needs the keys model, config "
                              "and state_dict; `pcbench train` writes them)")
    payload["checkpoint_md5"] = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return payload


def resume_path(out_dir: str | Path, resume: bool) -> Path | None:
    """``out_dir/last.pt`` to continue from with ``--resume``; raises if there is none (a resume
    that silently starts afresh would lose the user's intent)."""
    last = Path(out_dir) / "last.pt"
    if not resume:
        return None
    if not last.is_file():
        raise UsageError(f"--resume: {last} does not exist, so there is nothing to continue; train without --resume "
                         "to start afresh")
    return last


#: how tables describe a fitted generator (``Generator.fitted``: an empirical baseline)
UNTRAINED_TEXT = "not trained (an empirical baseline fitted to the training data)"


def training_summary(payload: dict[str, Any]) -> dict[str, Any]:
    """How long a checkpoint trained, in words and numbers, for sample files, records and tables:
    ``{"text": "12 of 200 epochs, 2.5 min, small config", "epochs": 12, ...}``."""
    prov = payload.get("provenance", {})
    config = prov.get("config_name")
    if payload.get("fitted"):
        return {"trained": False, "text": UNTRAINED_TEXT}
    out: dict[str, Any] = {"trained": True, "config_name": config}
    if "train_state" in payload:  # shower generators: epochs and steps per part
        st = payload["train_state"]
        if st.get("progress"):  # every phase of the one trainer: "layer flows: 8 of 10 epochs"
            parts = [f"{p['label']}: {p['done']} of {p['planned']} {p['unit']}" for p in st["progress"]]
        else:  # checkpoints written before the trainer recorded its phases (CaloClouds' counters)
            parts = [f"{st.get(k, 0)} {what}" for k, what in (("flow_epoch", "ShowerFlow epochs"),
                                                               ("step", "point-model steps"),
                                                               ("cm_step", "distillation steps")) if st.get(k)]
        out.update({k: st.get(k) for k in ("flow_epoch", "step", "cm_step")}, finished=st.get("finished"))
        text = ", ".join(parts) or "no training step"
    elif "selected" in payload:  # jets: the best validation epoch of a longer run
        sel = payload["selected"]
        out.update(epochs=sel["epoch"], trained_epochs=sel["of"], planned_epochs=payload.get("planned_epochs"),
                   minutes=sel["minutes"], cpu_minutes=sel["cpu_minutes"], selected_by=sel["by"])
        planned = f" ({out['planned_epochs']} planned)" if out["planned_epochs"] else ""
        text = (f"epoch {sel['epoch']} of {sel['of']}{planned} kept (best {sel['by']}, every {sel['every']} epochs), "
                f"{sel['minutes']:.1f} min ({sel['cpu_minutes']:.1f} CPU min)")
    else:
        history = payload.get("history", [])
        minutes = sum(h.get("seconds", 0.0) for h in history) / 60
        out.update(epochs=payload.get("epoch"), planned_epochs=payload.get("planned_epochs"), minutes=round(minutes, 2))
        planned = f" of {out['planned_epochs']}" if out["planned_epochs"] else ""
        text = f"{out['epochs']}{planned} epochs, {minutes:.1f} min"
        if history and all("cpu_seconds" in h for h in history):
            out["cpu_minutes"] = round(sum(h["cpu_seconds"] for h in history) / 60, 2)
            text += f" ({out['cpu_minutes']:.1f} CPU min)"
    untrained = unfinished_parts(payload)
    out["text"] = text + (f", {config} config" if config else "") + ("; UNFINISHED" if untrained else "")
    return out


def unfinished_parts(payload: dict[str, Any]) -> list[str]:
    """What a checkpoint has not finished training, e.g. ``["point model (0 of 3000 steps)"]``
    (empty: trained as configured).  Jets: epochs short of the planned number; showers: the parts
    the shower trainer recorded."""
    if "train_state" in payload:
        return list(payload["train_state"].get("untrained", []))
    planned, epoch = payload.get("planned_epochs"), payload.get("selected", {}).get("of", payload.get("epoch"))
    if planned is not None and epoch is not None and epoch < planned:
        return [f"{payload['model']} ({epoch} of {planned} epochs)"]
    return []
