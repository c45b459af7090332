"""The MP-GAN paper's released generators (Kansal et al., arXiv:2106.11535; ``rkansal47/MPGAN``,
``trained_models/<name>_<class>/``, MIT licence), loaded into pcbench's own networks and sampled as
the authors' ``gen.py`` does.

A folder holds ``G_best_epoch.pt`` (a state dict) and ``args.txt`` (a Python dict literal of the
settings).  The network is built from ``args.txt`` (``model``: ``mpgan``/``old_mpgan`` ->
:class:`~pcbench.models.jets.mpgan.MPGenerator`, ``rgan`` -> :class:`~pcbench.models.jets.rgan_fc.FCGenerator`,
``graphcnngan`` -> :class:`~pcbench.models.jets.graphcnn.GraphCNNGenerator`) and the state dict is loaded
with strict key checking; the older MP layout (``fe.i.j``, ``fn.i.j``, ``lfc``) is renamed by
:data:`OLD_MP_KEYS` first.

Sampling (``gen.py`` and ``train.py:gen``): noise N(0, 0.2^2); for ``mask_c`` generators the number
of particles of each jet is drawn with replacement from the real JetNet30 multiplicities (shipped in
``pcbench/data/jetnet30_multiplicities``) and the generator keeps the slots with the smallest first
noise feature; then etarel = x0 * max0, phirel = x1 * max1, ptrel = (x2 + 0.5) * max2 with the
per-class maxima :data:`FEATURE_MAXES`, masked slots are zeroed and negative ptrel set to 0.
Generators without a mask give 30 particles per jet.  The network runs in eval mode (running
batch-norm statistics), as in the authors' evaluation during training.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data import JET_TYPES, JetSet
from ...errors import PcbenchError
from ...metrics.jet_observables import jet_kinematics
from .graphcnn import GraphCNNGenerator
from .mpgan import MPGenerator
from .rgan_fc import FCGenerator

__all__ = ["FEATURE_MAXES", "OLD_MP_KEYS", "RELEASE_DATASET", "ReleasedGenerator", "build_network",
           "generate_jets", "jetnet30_multiplicities", "load_release", "load_weights", "read_args",
           "resolve_release", "sample_release"]

RELEASE_DATASET = "mpgan-release"
WEIGHTS, ARGS = "G_best_epoch.pt", "args.txt"
#: ``gen.py``'s per-class maxima of (etarel, phirel, ptrel) that the released generators were trained on
FEATURE_MAXES = {"g": (1.4532885551452637, 0.520724892616272, 0.8537549376487732),
                 "q": (1.6211985349655151, 0.4568111002445221, 0.8896132111549377),
                 "t": (1.4242753982543945, 0.4949831962585449, 0.8774275183677673)}
PT_SHIFT = -0.5  # normalised ptrel = ptrel / max - 0.5
NOISE_SD = 0.2
#: older MP generator state-dict names -> pcbench's (regex, replacement)
OLD_MP_KEYS = ((r"^lfc\.", "lfc_layer."), (r"^fe\.(\d+)\.(\d+)\.", r"mp_layers.\1.fe.net.\2."),
               (r"^fn\.(\d+)\.(\d+)\.", r"mp_layers.\1.fn.net.\2."))
_BATCH = {"mp": 256, "fc": 4096, "graphcnn": 64}


@dataclass
class ReleasedGenerator:
    """A released generator ready to sample.

    Attributes:
        network: the pcbench network holding the released weights (eval mode).
        family: ``mp``, ``fc`` or ``graphcnn``.
        args: the folder's ``args.txt``.
        jet_type: the class it was trained on (g, q, t).
        conditioned: multiplicities are drawn from real JetNet30 and imposed (``mask_c``).
        md5: md5 of ``G_best_epoch.pt``; source: where it was read from.
    """

    network: nn.Module
    family: str
    args: dict[str, Any]
    jet_type: str
    conditioned: bool
    md5: str
    source: str

    @property
    def name(self) -> str:
        return str(self.args.get("name", "?"))


def read_args(path: str | Path) -> dict[str, Any]:
    """``args.txt`` as a dict (a literal: nothing in it is executed)."""
    path = Path(path)
    try:
        args = ast.literal_eval(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise PcbenchError(f"{path}: expected the authors' args.txt (a Python dict literal): {exc}") from None
    if not isinstance(args, dict):
        raise PcbenchError(f"{path}: expected a dict literal, got {type(args).__name__}")
    return args


def _need(args: dict[str, Any], key: str, where: str) -> Any:
    if key not in args:
        raise PcbenchError(f"{where}: args.txt has no {key!r}")
    return args[key]


def _mp_network(args: dict[str, Any], where: str, old_layout: bool) -> MPGenerator:
    unsupported = [k for k in ("int_diffs", "deltacoords", "mask_fne_np", "mask_learn", "mask_learn_sep",
                               "mask_feat", "mask_feat_bin", "mask_manual", "batch_norm_gen", "spectral_norm_gen")
                   if args.get(k)]
    if args.get("clabels"):
        unsupported.append("clabels")
    if not args.get("fully_connected", True):
        unsupported.append("fully_connected=False")
    if args.get("fe1g"):
        unsupported.append("fe1g")
    if args.get("pos_diffs") and not args.get("all_ef"):
        unsupported.append("pos_diffs without all_ef")
    if not args.get("sum", True):
        unsupported.append("sum=False")
    if unsupported:
        raise PcbenchError(f"{where}: pcbench's MP generator does not implement {', '.join(unsupported)}")
    hidden = int(_need(args, "hidden_node_size", where))
    latent = int(args.get("latent_node_size") or hidden)
    feats = int(_need(args, "node_feat_size", where))
    return MPGenerator(int(_need(args, "num_hits", where)), latent, hidden, list(_need(args, "fe", where)),
                       list(_need(args, "fn", where)), int(_need(args, "mp_iters_gen", where)),
                       out_feats=hidden if old_layout else feats, lfc=bool(args.get("lfc")),
                       lfc_latent=int(args.get("lfc_latent_size", 128)), tanh=bool(args.get("gtanh", True)),
                       edge_distance=bool(args.get("pos_diffs")), take=feats if old_layout else None)


def build_network(args: dict[str, Any], where: str = "args.txt", old_layout: bool = False) -> tuple[nn.Module, str]:
    """The untrained network ``args`` describes and its family (``mp``, ``fc``, ``graphcnn``)."""
    model = _need(args, "model", where)
    if model in ("mpgan", "old_mpgan"):
        return _mp_network(args, where, old_layout), "mp"
    if model == "rgan":
        return FCGenerator(int(_need(args, "latent_dim", where)), list(_need(args, "rgang_fc", where)),
                           int(_need(args, "num_hits", where)), int(_need(args, "node_feat_size", where))), "fc"
    if model == "graphcnngan":
        return GraphCNNGenerator(int(_need(args, "latent_dim", where)), list(_need(args, "graphcnng_layers", where)),
                                 int(_need(args, "num_hits", where)), int(_need(args, "num_knn", where)),
                                 int(_need(args, "node_feat_size", where)),
                                 tanh=bool(args.get("graphcnng_tanh"))), "graphcnn"
    raise PcbenchError(f"{where}: model {model!r} is not one pcbench can load (mpgan, old_mpgan, rgan, graphcnngan)")


def _renamed(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """The state dict with :data:`OLD_MP_KEYS` applied, and whether any key was renamed."""
    out, renamed = {}, False
    for key, value in state.items():
        new = key
        for pattern, repl in OLD_MP_KEYS:
            new = re.sub(pattern, repl, new)
        renamed |= new != key
        out[new] = value
    return out, renamed


def load_weights(network: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``network`` with strict key and shape checking.

    Raises:
        PcbenchError: one line naming the first unexpected, missing or mis-shaped key.
    """
    own = network.state_dict()
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    if unexpected or missing:
        parts = [f"{what} key {keys[0]!r}" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")
                 for what, keys in (("unexpected", unexpected), ("missing", missing)) if keys]
        raise PcbenchError(f"{where}: the weights do not fit the {type(network).__name__} built from args.txt: "
                           + "; ".join(parts))
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise PcbenchError(f"{where}: key {k!r} has shape {tuple(v.shape)}, the network built from args.txt "
                               f"expects {tuple(own[k].shape)}")
    network.load_state_dict(state, strict=True)


def load_release(folder: str | Path, source: str | None = None, device: str = "cpu") -> ReleasedGenerator:
    """The released generator in ``folder`` (``G_best_epoch.pt`` + ``args.txt``)."""
    folder = Path(folder)
    for name in (WEIGHTS, ARGS):
        if not (folder / name).is_file():
            raise PcbenchError(f"{folder}: no {name} (a released generator folder holds {WEIGHTS} and {ARGS})")
    args = read_args(folder / ARGS)
    data = (folder / WEIGHTS).read_bytes()
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
        raise PcbenchError(f"{folder / WEIGHTS}: not a torch state dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise PcbenchError(f"{folder / WEIGHTS}: expected a state dict, got {type(state).__name__}")
    jet_type = str(_need(args, "jets", str(folder / ARGS)))
    if jet_type not in FEATURE_MAXES:
        raise PcbenchError(f"{folder / ARGS}: jets {jet_type!r}; the released normalisation is known for g, q, t")
    state, old = _renamed(state) if args.get("model") in ("mpgan", "old_mpgan") else (state, False)
    network, family = build_network(args, str(folder / ARGS), old_layout=old)
    load_weights(network, state, str(folder / WEIGHTS))
    return ReleasedGenerator(network.to(device).eval(), family, args, jet_type,
                             bool(args.get("mask_c")) and family == "mp", hashlib.md5(data, usedforsecurity=False).hexdigest(),
                             source or str(folder))


@lru_cache(maxsize=3)
def jetnet30_multiplicities(jet_type: str) -> np.ndarray:
    """(M,) int8 particle multiplicities of a random 70 % of real JetNet30 jets of ``jet_type``."""
    if jet_type not in ("g", "q", "t"):
        raise PcbenchError(f"real JetNet30 multiplicities ship for g, q, t, not {jet_type!r}")
    ref = resources.files("pcbench.data") / "jetnet30_multiplicities" / f"{jet_type}.npy"
    with resources.as_file(ref) as path:
        return np.load(path)


@torch.inference_mode()
def generate_jets(gen: ReleasedGenerator, n: int, seed: int = 0, batch_size: int | None = None,
                  multiplicities: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` jets post-processed as ``gen.py``: ((n, P, 3) etarel, phirel, ptrel; (n, P) bool mask).

    Same ``seed`` (and batch size) -> the same jets bit for bit on one machine.  Multiplicities of
    conditioned generators are drawn with replacement from the real JetNet30 ones unless given.
    """
    net, p = gen.network, int(gen.args["num_hits"])
    dev = next(net.parameters()).device
    rng = np.random.default_rng(seed)
    torch_gen = torch.Generator(device=dev).manual_seed(seed)
    counts = None
    if gen.conditioned:
        counts = (rng.choice(jetnet30_multiplicities(gen.jet_type), size=n, replace=True)
                  if multiplicities is None else np.asarray(multiplicities)).astype(np.int64)
    batch_size = batch_size or _BATCH[gen.family]
    out = np.zeros((n, p, 3), np.float32)
    mask = np.ones((n, p), bool)
    for lo in range(0, n, batch_size):
        b = min(batch_size, n - lo)
        z = net.noise(b, torch_gen, NOISE_SD)
        if gen.family == "mp":
            c = None if counts is None else torch.from_numpy(counts[lo:lo + b]).to(dev)
            x, m = net.forward_padded(z, c)
            if m is not None:
                mask[lo:lo + b] = m.cpu().numpy()
        else:
            x = net(z)
        out[lo:lo + b] = x.float().cpu().numpy()
    maxes = np.asarray(FEATURE_MAXES[gen.jet_type], np.float32)
    out[..., 2] -= np.float32(PT_SHIFT)
    out *= maxes
    out[~mask] = 0.0
    out[..., 2] = np.maximum(out[..., 2], 0.0)
    return out, mask


def to_jetset(particles: np.ndarray, mask: np.ndarray, jet_type: str, attrs: dict[str, Any]) -> JetSet:
    """A JetNet-layout set: particles sorted by ptrel (stable), jet features (pT, eta, mass, n) relative
    to the jet (no absolute jet pT: the released generators make relative coordinates only).

    JetNet's layout has no particles with ptrel = 0: the slots that gen.py leaves with ptrel 0
    (clipped from below zero) are zero-padding here (FPND in the jetnet30-published table is
    computed on gen.py's arrays as they are)."""
    mask = mask & (particles[..., 2] > 0)
    particles = np.where(mask[..., None], particles, 0.0)
    order = np.argsort(-particles[..., 2], axis=1, kind="stable")
    parts = np.take_along_axis(particles, order[..., None], axis=1)
    mask = np.take_along_axis(mask, order, axis=1)
    kin = jet_kinematics(parts, mask)
    jets = np.column_stack([kin["pt"], kin["eta"], kin["mass"], mask.sum(1)]).astype(np.float32)
    types = np.full(len(parts), JET_TYPES.index(jet_type), np.int8)
    return JetSet(parts.astype(np.float32), mask, jets, types, dict(attrs))


def resolve_release(spec: str, cache: Any = None, mirror: str | None = None) -> tuple[Path, str]:
    """(folder, source) of ``mpgan-release:NAME`` (fetched and verified into the cache) or of a
    local folder with ``G_best_epoch.pt`` and ``args.txt``."""
    if spec.startswith(RELEASE_DATASET + ":"):
        from ...data.fetch import FetchOptions, fetch, file_url
        from ...data.registry import default_registry

        entry, files = default_registry().resolve(spec)
        paths = fetch([spec], cache, FetchOptions(mirror=mirror), progress=False)
        weights = next(p for p in paths if p.name == WEIGHTS)
        url = next(file_url(f, mirror) for f in files if f.name.endswith(WEIGHTS))
        return weights.parent, url
    folder = Path(spec)
    if not folder.is_dir():
        raise PcbenchError(f"{spec}: expected mpgan-release:NAME or a folder with {WEIGHTS} and {ARGS}")
    return folder, str(folder.resolve())


def sample_release(spec: str, n: int, out: str | Path, seed: int = 0, batch_size: int | None = None,
                   device: str = "cpu", cache: Any = None, mirror: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Sample ``n`` jets of a released generator into ``out`` (pcbench jet schema); the file records
    the weights' md5 and source, the seed and the generation time per jet [s] (after a warm-up
    batch) with the machine it was measured on."""
    from ..._platform import machine
    from ...data import write

    folder, source = resolve_release(spec, cache, mirror)
    gen = load_release(folder, source, device)
    generate_jets(gen, min(n, batch_size or _BATCH[gen.family]), seed + 1, batch_size)  # warm-up, not timed
    hw = machine(device)  # the load average just before the timed run
    t0 = time.perf_counter()
    particles, mask = generate_jets(gen, n, seed, batch_size)
    per_jet = (time.perf_counter() - t0) / max(n, 1)
    attrs = {"model": f"{RELEASE_DATASET}:{folder.name}", "weights_source": source, "weights_md5": gen.md5,
             "checkpoint_md5": gen.md5, "released_args_name": gen.name, "seed": seed,
             "generation_time_per_object_s": per_jet, "generation_batch_size": batch_size or _BATCH[gen.family],
             "hardware": hw,
             "multiplicities": ("drawn with replacement from real JetNet30 (pcbench/data/jetnet30_multiplicities)"
                                if gen.conditioned else "none: every one of the 30 slots is a particle"),
             "postprocessing": "gen.py: per-class maxima, ptrel shift 0.5, masked slots zeroed, ptrel < 0 set to 0; "
                               "slots with ptrel 0 written as zero-padding",
             "jet_features": "relative: (pT, eta, mass) of the summed particles / jet pT; no absolute jet pT",
             "licence": "MIT (rkansal47/MPGAN)"}
    return write(out, to_jetset(particles, mask, gen.jet_type, attrs), attrs), attrs


def is_release_spec(text: str | Path) -> bool:
    """True for ``mpgan-release:NAME`` or a folder holding a released generator's two files."""
    p = Path(text)
    return str(text).startswith(RELEASE_DATASET + ":") or (p.is_dir() and (p / WEIGHTS).is_file())
