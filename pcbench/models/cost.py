"""A checkpoint's cost, measured the same way for every model: time per object, parameters,
FLOPs per object and peak memory, in one strict-JSON cost record (``docs/cost.md``).

What is timed is what ``pcbench sample`` times: one call of the generator's ``sample`` for a
batch of ``b`` objects (jets: the multiplicities drawn from the training distribution, the
clouds generated per multiplicity, post-processing included; showers: the whole pipeline at
incident energies drawn as ``pcbench sample`` draws them, with the same default output: points
for an ILD-grid model, voxels for a CaloChallenge model), wall clock, CUDA synchronised.  For
each (batch, threads) cell: ``warmup`` untimed calls (seed + 1), then ``repeats`` timed calls
that all sample the same objects (``seed``), then one untimed call for the peak memory.

- time: ms per object = seconds of one call x 1000 / ``b``; mean and sample standard deviation
  (ddof 1) over the repeats, and the repeats themselves;
- FLOPs per object: ``torch.utils.flop_counter.FlopCounterMode`` over one seeded call, divided
  by its objects.  It counts only the operators torch registers a formula for (matrix products
  ``mm``/``addmm``/``bmm``/``baddbmm``, convolutions, scaled-dot-product attention), 2 FLOPs per
  multiply-add; element-wise work, activations, normalisations, random numbers and numpy
  post-processing count nothing;
- parameters: all of the checkpoint's networks (a GAN's critic included), the trainable ones
  (``requires_grad``) and those read while sampling (every parameter whose storage an operator
  received during the FLOP-counted call);
- peak memory [MB = 10^6 bytes] of one call: on CUDA ``torch.cuda.max_memory_allocated`` (tensors
  on the GPU, weights included) after ``reset_peak_memory_stats``; on the CPU the process's peak
  resident set size (the kernel's high-water mark ``VmHWM``, reset through ``/proc/self/clear_refs``;
  where that cannot be written, ``/proc/self/statm`` sampled every millisecond by a thread), after
  ``gc.collect()`` and glibc's ``malloc_trim(0)`` have handed freed memory back; ``increase``: that
  peak minus what was held just before the call.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from .._io import atomic_write_text
from .._platform import LOADED_FRACTION, load_average, machine
from ..errors import FormatError, UsageError
from .counters import PeakMemory, count_flops, count_parameters

__all__ = ["COST_SCHEMA", "FLOPS_COUNTED", "Timing", "CostRecord", "measure_cost", "count_flops",
           "count_parameters", "sample_objects", "objects_md5", "PeakMemory"]

#: the record's format; bumped when a field changes meaning
COST_SCHEMA = "pcbench-cost/1"

#: what the FLOP count holds, in words (written into every record)
FLOPS_COUNTED = ("torch.utils.flop_counter.FlopCounterMode: matrix products (mm, addmm, bmm, baddbmm), "
                 "convolutions and scaled-dot-product attention, 2 FLOPs per multiply-add; element-wise "
                 "operations, activations, normalisations, random numbers and numpy post-processing count 0")


@dataclass
class Timing:
    """One (batch, threads) cell: ms per object over the repeats and the peak memory of one call.

    ``samples_md5``: md5 of the objects of the first timed call; ``repeatable``: the last timed
    call sampled byte-identical objects; ``mean_constituents``: mean particles per jet, points
    per point shower or non-zero cells per voxel shower in the batch; ``load_before`` /
    ``load_after``: the 1-minute load average around the cell, ``loaded``: above
    ``LOADED_FRACTION`` of the cores before it (a pessimistic time)."""

    batch: int
    threads: int
    ms_per_object: float
    ms_per_object_std: float | None
    repeats_ms_per_object: list[float]
    samples_md5: str
    repeatable: bool
    mean_constituents: float | None
    peak_memory_mb: float | None
    peak_memory_increase_mb: float | None
    load_before: float | None
    load_after: float | None
    loaded: bool | None


@dataclass
class CostRecord:
    """What ``measure_cost`` measured about one checkpoint (JSON: :meth:`write`, :meth:`read`)."""

    model: str
    kind: str
    checkpoint: str
    checkpoint_md5: str
    device: str
    seed: int
    repeats: int
    warmup: int
    timings: list[Timing]
    parameters: dict[str, Any]
    flops: dict[str, Any]
    memory_method: str
    objects: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = COST_SCHEMA

    # -- reading the numbers -------------------------------------------------------------
    def timing(self, batch: int | None = None, threads: int | None = None) -> Timing:
        """The cell of ``batch`` and ``threads``; where either is None, the fastest (lowest mean
        ms per object) of the cells that match the other."""
        cells = [t for t in self.timings
                 if (batch is None or t.batch == batch) and (threads is None or t.threads == threads)]
        if not cells:
            have = ", ".join(f"batch {t.batch} x {t.threads} threads" for t in self.timings)
            raise UsageError(f"{self.checkpoint}: no timing for batch {batch}, {threads} threads in its cost record "
                             f"(it has {have})")
        return min(cells, key=lambda t: t.ms_per_object)

    def time_per_object_s(self, batch: int | None = None, threads: int | None = None) -> float:
        """Seconds per object of :meth:`timing` (the fastest cell by default)."""
        return self.timing(batch, threads).ms_per_object / 1e3

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers as None)."""
        return _finite_or_none(asdict(self))

    def to_json(self) -> str:
        """Strict JSON, keys sorted: the same record gives the same bytes."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n"

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the record atomically; returns its path."""
        atomic_write_text(path, self.to_json())
        return Path(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostRecord:
        """The record of :meth:`to_dict`; KeyError or TypeError if a field is missing or unknown."""
        data = dict(data)
        data["timings"] = [Timing(**t) for t in data["timings"]]
        return cls(**data)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> CostRecord:
        """Read a cost record; anything else is a one-line FormatError naming the file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise FormatError(f"{path}: cannot read the cost record: {exc}") from None
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}: not a JSON cost record: {exc.msg} at line {exc.lineno}; re-run "
                              "`pcbench time` to remake it") from None
        if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("pcbench-cost/"):
            raise FormatError(f"{path}: not a pcbench cost record (expected \"schema\": \"{COST_SCHEMA}\", as "
                              "`pcbench time` writes)")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError) as exc:
            raise FormatError(f"{path}: a cost record with missing or unknown fields ({exc}); re-run `pcbench time`"
                              ) from None


def _finite_or_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, np.generic):
        return _finite_or_none(obj.item())
    return obj


def _json_ready(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as it reads back from JSON (tuples as lists, numpy scalars as numbers, NaN as None)."""
    return json.loads(json.dumps(_finite_or_none(obj), allow_nan=False, default=str))


# -- what one call samples --------------------------------------------------------------------

def _shower_energies(payload: dict[str, Any], n: int, seed: int) -> np.ndarray:
    """``n`` incident energies [MeV] as ``pcbench sample`` draws them without ``--energies-from``:
    uniform over the training range, log-uniform where it spans more than a factor 10."""
    lo, hi = payload["provenance"].get("energy_range_mev", (10_000.0, 90_000.0))
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if hi > 10 * lo else rng.uniform(lo, hi, n)


def _shower_steps(model: Any) -> Any:
    """The pipeline ``pcbench sample`` runs by default: every step; cells for a CaloChallenge model."""
    from ..geometry import LayeredGrid
    from .showers.pipeline import PipelineSteps

    return replace(PipelineSteps(), project=not isinstance(model.grid, LayeredGrid))


def _caller(model: Any, payload: dict[str, Any], n: int, seed: int,
            energies_mev: np.ndarray | None = None) -> Callable[[], Any]:
    """The call to time: ``model.sample`` of ``n`` objects in one batch (inputs prepared here,
    outside the timed region)."""
    if model.kind == "jets":
        return lambda: model.sample(n, seed=seed, batch_size=n)
    energies = (np.asarray(energies_mev, np.float64) if energies_mev is not None
                else _shower_energies(payload, n, seed))
    if len(energies) < n:
        raise UsageError(f"batch {n}: only {len(energies)} incident energies given")
    energies, steps = energies[:n], _shower_steps(model)
    return lambda: model.sample(energies, seed=seed, batch_size=n, steps=steps)


def sample_objects(model: Any, payload: dict[str, Any], n: int, seed: int = 0,
                   energies_mev: np.ndarray | None = None) -> Any:
    """The objects one timed call samples: a JetSet of ``n`` jets, or ``n`` showers (points or
    voxels); the same ``seed`` gives the same objects."""
    return _caller(model, payload, n, seed, energies_mev)()


def objects_md5(objects: Any) -> str:
    """md5 of every array field of a JetSet / ShowerPointSet / VoxelShowerSet (in field order)."""
    h = hashlib.md5(usedforsecurity=False)
    for name, value in vars(objects).items():
        if isinstance(value, np.ndarray):
            h.update(name.encode() + str(value.dtype).encode() + str(value.shape).encode())
            h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def _mean_constituents(objects: Any) -> float | None:
    """Mean particles per jet, points per point shower, or non-zero cells per voxel shower."""
    mask = getattr(objects, "mask", None)
    if mask is not None:
        return float(np.asarray(mask).sum(axis=1).mean()) if len(mask) else None
    voxels = getattr(objects, "voxels", None)
    if voxels is None or not len(voxels):
        return None
    return float((np.asarray(voxels) > 0).reshape(len(voxels), -1).sum(1).mean())


# -- the measurement --------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load_1min() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        return None


def _positive_ints(values: Sequence[int], option: str) -> list[int]:
    out: list[int] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise UsageError(f"{option} {v!r}: expected positive integers, e.g. {option} 1,100")
        if int(v) not in out:
            out.append(int(v))
    if not out:
        raise UsageError(f"{option}: expected at least one positive integer")
    return out


def _blas_limit(threads: int) -> Any:
    """A context that limits the BLAS pools (numpy's, scipy's) to ``threads`` (threadpoolctl)."""
    from contextlib import nullcontext

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of pcbench
        return nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def measure_cost(checkpoint: str | os.PathLike[str], device: str = "cpu", batches: Sequence[int] = (1, 100),
                 threads: Sequence[int] = (1,), repeats: int = 5, warmup: int = 1, seed: int = 0,
                 flop_batch: int | None = None, energies_mev: np.ndarray | None = None,
                 log: Callable[[str], None] | None = None) -> CostRecord:
    """Measure a checkpoint's cost (module docstring): for each batch size in ``batches``
    [objects per call] and torch thread count in ``threads``, ``warmup`` untimed and ``repeats``
    timed calls, then the peak memory of one call; FLOPs per object over one call of
    ``flop_batch`` objects (default: the largest batch, at most 1,000) and the parameter counts.

    ``energies_mev``: showers' incident energies [MeV] (at least the largest batch), else drawn
    as ``pcbench sample`` draws them from ``seed``.  torch's thread count (and the BLAS pools') is
    restored afterwards.  ``log`` is called with a line before each cell."""
    from .api import load_generator
    from .jets.mpgan_release import RELEASE_DATASET

    if str(checkpoint).startswith(RELEASE_DATASET + ":"):
        raise UsageError(f"{checkpoint}: pcbench time measures pcbench checkpoints (.pt); a released generator's "
                         "time per jet is recorded by `pcbench sample`")
    batches, threads = _positive_ints(batches, "--batch"), _positive_ints(threads, "--threads")
    if repeats < 1:
        raise UsageError(f"--repeats {repeats}: expected at least 1")
    if warmup < 0:
        raise UsageError(f"--warmup {warmup}: expected 0 or more")
    if energies_mev is not None and len(energies_mev) < max(batches):
        raise UsageError(f"{len(energies_mev)} incident energies, fewer than the largest batch {max(batches)}")
    say = log or (lambda _: None)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t_start = time.perf_counter()
    load_start = load_average()
    model, payload = load_generator(checkpoint, device)
    dev = torch.device(device)
    default_threads = torch.get_num_threads()
    hw = machine(device)
    memory_method = PeakMemory.method_for(dev)
    cells: list[Timing] = []
    try:
        for b in batches:
            for t in threads:
                say(f"batch {b:,}, {t} thread{'s' if t > 1 else ''}: {warmup} warm-up + {repeats} timed calls")
                torch.set_num_threads(t)
                with _blas_limit(t):
                    cells.append(_time_cell(model, payload, dev, b, t, repeats, warmup, seed, energies_mev))
        fb = flop_batch or min(max(batches), 1000)
        say(f"counting FLOPs on one call of {fb:,} objects")
        try:
            flops, by_op, used, objects = count_flops(_caller(model, payload, fb, seed, energies_mev), model)
            flop_error = None
        except Exception as exc:  # noqa: BLE001 - a model whose operators the counter cannot follow: keep the times
            flops, by_op, used, objects = None, {}, None, None
            flop_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            say(f"FLOPs not counted ({flop_error})")
    finally:
        torch.set_num_threads(default_threads)
    params = {**count_parameters(model), "used_in_sampling": used}
    objects_info: dict[str, Any] = {"kind": model.kind, "mean_constituents_flop_batch":
                                    None if objects is None else _mean_constituents(objects)}
    if model.kind == "jets":
        objects_info["particles_per_jet"] = int(model.stats.num_particles)  # N, the slots per jet
        objects_info["timed_call"] = ("model.sample(b, seed, batch_size=b): multiplicities from the training "
                                      "distribution, clouds per multiplicity, post-processing included")
    else:
        steps = _shower_steps(model)
        energies = energies_mev if energies_mev is not None else _shower_energies(payload, max(batches), seed)
        objects_info.update(geometry=model.grid.name, pipeline_steps=asdict(steps),
                            output="cells (voxels)" if steps.project else "points",
                            incident_energy_mev=[float(np.min(energies)), float(np.max(energies))],
                            energies_from="given" if energies_mev is not None else "pcbench sample's default draw",
                            timed_call="model.sample(E_inc, seed, batch_size=b, steps): the whole pipeline")
        if payload["provenance"].get("parameterised"):
            objects_info["parameterised"] = True
    load_end = load_average()
    prov = {"pcbench_version": __version__, "torch": torch.__version__, "machine": hw, "started_utc": started,
            "wall_s": round(time.perf_counter() - t_start, 3),
            "threads": {"torch_default": default_threads, "torch_interop": torch.get_num_interop_threads(),
                        "set_per_cell": "torch.set_num_threads and the BLAS pools "
                        "(threadpoolctl), restored after",
                        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                                if k in os.environ}},
            "load_before": load_start, "load_after": load_end,
            "warmup_seed": seed + 1, "checkpoint_epoch": payload.get("epoch"), "model_config": payload.get("config")}
    return CostRecord(model=payload["model"], kind=model.kind, checkpoint=str(checkpoint),
                      checkpoint_md5=payload["checkpoint_md5"], device=device, seed=seed, repeats=repeats,
                      warmup=warmup, timings=cells, parameters=params,
                      flops={"per_object": None if flops is None else flops / fb, "total": flops, "batch": fb,
                             "by_op": by_op, "counts": FLOPS_COUNTED, "error": flop_error},
                      memory_method=memory_method, objects=_json_ready(objects_info), provenance=_json_ready(prov))


def _time_cell(model: Any, payload: dict[str, Any], dev: torch.device, b: int, t: int, repeats: int, warmup: int,
               seed: int, energies_mev: np.ndarray | None) -> Timing:
    """One (batch, threads) cell: warm-up, timed repeats, then one call for the peak memory."""
    load_before = _load_1min()
    warm = _caller(model, payload, b, seed + 1, energies_mev)
    for _ in range(warmup):
        warm()
    call = _caller(model, payload, b, seed, energies_mev)
    times, digests, mean_c = [], [], None
    for r in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        out = call()
        _sync(dev)
        times.append((time.perf_counter() - t0) * 1e3 / b)
        if r in (0, repeats - 1):  # outside the timed region
            digests.append(objects_md5(out))
            mean_c = _mean_constituents(out) if r == 0 else mean_c
        del out
    with PeakMemory(dev) as mem:
        call()
    load_after = _load_1min()
    arr = np.asarray(times)
    return Timing(batch=b, threads=t, ms_per_object=float(arr.mean()),
                  ms_per_object_std=float(arr.std(ddof=1)) if len(arr) > 1 else None,
                  repeats_ms_per_object=[float(x) for x in arr], samples_md5=digests[0],
                  repeatable=digests[0] == digests[-1],
                  mean_constituents=mean_c, peak_memory_mb=mem.peak_mb, peak_memory_increase_mb=mem.increase_mb,
                  load_before=load_before, load_after=load_after,
                  loaded=None if load_before is None else load_before > LOADED_FRACTION * (os.cpu_count() or 1))
