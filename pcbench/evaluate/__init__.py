"""``evaluate``: validate a sample file, run the metric suite of its kind, write a result record."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import __version__
from .._io import file_md5
from ..data import Cache, JetSet, read, validate_file
from ..errors import FormatError, PcbenchError
from .jets import JetSuiteConfig, infer_jet_type, jet_suite
from .reference import load_reference
from .result import EvaluationResult, MetricValue

__all__ = ["evaluate", "EvaluationResult", "MetricValue", "JetSuiteConfig", "hardware"]


def hardware() -> dict[str, Any]:
    """The machine a number was measured on (CPU, cores, torch and its device)."""
    import torch

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def evaluate(samples: str | os.PathLike[str], reference: str, model: str | None = None,
             profile: str = "full", cache: Cache | None = None, out_dir: str | os.PathLike[str] | None = None,
             progress: Callable[[str], None] | None = None, plots: bool = False,
             metrics: tuple[str, ...] = ()) -> EvaluationResult:
    """Evaluate a sample file against a reference (registry name: its test split; or a file).

    The file is validated first (every problem is reported); the suite of its kind runs with the
    truth-vs-truth column; the record holds values, errors, the reference's name, split and
    checksum, the sample file's checksum and size, the suite version and settings, seeds,
    pcbench's version, the hardware, and the generation time per object if the file carries it.
    With ``out_dir`` the record is written there as ``<model>.json``; with ``plots`` also PNG
    histograms (``<model>_plots/``) and a one-page HTML report (``<model>.html``).
    ``metrics`` restricts the suite to some metrics (empty: all).
    """
    samples = Path(samples)
    report = validate_file(samples)
    if not report.ok:
        raise FormatError(f"{samples} is not a valid sample file:\n" + "\n".join(f"  - {line}" for line in report.lines()))
    gen = read(samples)
    ref, ref_info = load_reference(reference, cache)
    if type(gen) is not type(ref):
        raise PcbenchError(f"{samples} holds {report.kind}, but the reference {reference} holds "
                           f"{type(ref).__name__}: evaluate against a reference of the same kind")
    if not isinstance(gen, JetSet):
        raise PcbenchError(f"no metric suite for {report.kind} yet (jets only)")
    cfg = replace(JetSuiteConfig.named(profile), metrics=tuple(metrics))
    jet_type = infer_jet_type(ref, gen)
    values, settings, samples_used = jet_suite(gen, ref, cfg, jet_type, progress)
    model = model or gen.attrs.get("model") or samples.stem
    provenance = {
        **ref_info,
        "samples": str(samples), "samples_md5": file_md5(samples), "samples_bytes": samples.stat().st_size,
        "samples_rows": len(gen), **settings, "seed": cfg.seed, "pcbench_version": __version__,
        "hardware": hardware(),
        "generation_time_per_object_s": gen.attrs.get("generation_time_per_object_s"),
        "generation_hardware": gen.attrs.get("hardware"),
    }
    result = EvaluationResult(kind=report.kind or "jets", model=model, metrics=values, provenance=provenance)
    if out_dir is not None:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model)
        result.write(Path(out_dir) / f"{safe}.json")
        if plots:
            from .plots import html_report, jet_plots

            figures = jet_plots(samples_used["gen"], samples_used["real"], Path(out_dir) / f"{safe}_plots", result)
            html_report(result, figures, Path(out_dir) / f"{safe}.html")
    return result
