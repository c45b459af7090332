"""``pcbench train`` and ``pcbench sample``: thin commands over :mod:`pcbench.models`."""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from ..data import Cache, load, read
from ..data.loaders import split_indices
from ..errors import PcbenchError
from ..models import MODELS, TrainOptions, model_config, sample_jets, train
from ..models.sampling import sample_showers
from ..models.shower_training import SHOWER_MODELS, ShowerTrainOptions, shower_model_config, train_shower_model
from . import cli, console
from .data import cache_option


def _training_data(data: str | None, data_file: Path | None, cache: Cache):
    """(train, valid, provenance) from a registry name or a file (then split as jetnet does)."""
    if data_file is not None:
        jets = read(data_file)
        return (jets.subset(split_indices(len(jets), "train")), jets.subset(split_indices(len(jets), "valid")),
                {"data_file": str(data_file), "split": "jetnet 70/15/15 seed 42"})
    if data is None:
        raise PcbenchError("give --data NAME (e.g. jetnet30:g or jetnet30-sim:g) or --data-file FILE")
    return load(data, "train", cache), load(data, "valid", cache), {"data": data, "split": "train/valid"}


@cli.command("train")
@click.argument("name", type=click.Choice(sorted(MODELS) + sorted(SHOWER_MODELS)))
@click.option("--data", default=None, help="Registry name, e.g. jetnet30:g, jetnet30-sim:g, ild-photons-param, calochallenge-2-param.")
@click.option("--data-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="An HDF5 file of jets or point showers instead of a registry name.")
@click.option("--teacher", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="caloclouds2-cm: the trained CaloClouds II checkpoint to distil.")
@click.option("--config", "config_name", type=click.Choice(["small", "full"]), default="small", show_default=True)
@click.option("--set", "overrides", multiple=True, help="Override a config value: --set epochs=10 (JSON values).")
@click.option("--epochs", type=int, default=None, help="Epochs (default: the config's).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--val-every", type=int, default=5, show_default=True, help="Validate W1M every N epochs (0: never).")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@click.option("--max-minutes", type=float, default=None, help="Stop after the epoch that ends past this budget.")
@cache_option
def train_cmd(name, data, data_file, teacher, config_name, overrides, epochs, device, seed, out_dir, val_every, resume,
              max_minutes, cache_dir):
    """Train a generator: jets (checkpoints last.pt, best.pt by validation W1M) or showers
    (CaloClouds, CaloClouds II, its consistency model, the baseline; checkpoint last.pt) into OUT.
    Showers: ILD-like point files, or CaloChallenge voxel files (trained on as points)."""
    sets = {}
    for item in overrides:
        key, _, value = item.partition("=")
        try:
            sets[key] = json.loads(value)
        except ValueError:
            sets[key] = value
    if name in SHOWER_MODELS:
        _train_showers(name, data, data_file, teacher, config_name, sets, device, seed, out_dir, resume, max_minutes,
                       Cache(cache_dir))
        return
    config = model_config(name, config_name, **sets)
    train_jets, valid_jets, prov = _training_data(data, data_file, Cache(cache_dir))
    types = sorted({int(t) for t in train_jets.jet_type if t >= 0})
    prov["jet_type"] = "gqtwz"[types[0]] if len(types) == 1 else None
    opts = TrainOptions(epochs=epochs if epochs is not None else config["epochs"], out_dir=out_dir, device=device,
                        seed=seed, val_every=val_every, resume=resume, max_minutes=max_minutes, provenance=prov)
    best = train(name, config, train_jets, opts, valid_jets)
    console.print(f"[green]trained[/] {name} ({config_name} config, {len(train_jets)} training jets); "
                  f"checkpoint: {best}", highlight=False)


def _train_showers(name, data, data_file, teacher, config_name, sets, device, seed, out_dir, resume, max_minutes, cache):
    from ..data.containers import ShowerPointSet, VoxelShowerSet

    if data_file is not None:
        showers, prov = read(data_file), {"data_file": str(data_file)}
    elif data is not None:
        showers, prov = load(data, "train", cache), {"data": data, "split": "train"}
    else:
        raise PcbenchError("give --data NAME (e.g. ild-photons-param) or --data-file FILE")
    if not isinstance(showers, (ShowerPointSet, VoxelShowerSet)):
        raise PcbenchError(f"{name} trains on showers (points, or CaloChallenge voxels turned into points); "
                           f"{data or data_file} holds {type(showers).__name__}")
    prov["energy_range_mev"] = [float(showers.incident_energy.min()), float(showers.incident_energy.max())]
    prov["n_showers"] = len(showers)
    config = shower_model_config(name, config_name, **sets)
    opts = ShowerTrainOptions(out_dir=out_dir, device=device, seed=seed, resume=resume, max_minutes=max_minutes,
                              teacher=teacher, provenance=prov)
    path = train_shower_model(name, config, showers, opts)
    console.print(f"[green]trained[/] {name} ({config_name} config, {len(showers)} training showers); checkpoint: {path}",
                  highlight=False)


class _CheckpointOrRelease(click.Path):
    """An existing checkpoint file, or a released generator: ``mpgan-release:NAME`` or its folder."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        from ..models.mpgan_release import is_release_spec

        return str(value) if is_release_spec(value) else super().convert(value, param, ctx)


@cli.command("sample")
@click.argument("checkpoint", type=_CheckpointOrRelease())
@click.option("-n", "--num", "n", type=int, default=50_000, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--batch-size", type=int, default=None, help="[default: 1024 jets, 64 showers]")
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--energies-from", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Showers: take the incident energies of this file (e.g. the reference), in order.")
@click.option("--no-step", "off", multiple=True, type=click.Choice(["occupancy", "layers", "layer_energy", "cog"]),
              help="Showers: switch a pipeline step off (repeatable).")
@click.option("--project/--points", default=None,
              help="Showers: write cells (ILD hits; CaloChallenge voxels) or points [default: points for ILD, "
                   "voxels for CaloChallenge models].")
def sample_cmd(checkpoint, n, output, batch_size, device, seed, energies_from, off, project):
    """Sample N jets or showers from a checkpoint into a sample file, with the time per object.
    CHECKPOINT may also be a released MP-GAN-paper generator: mpgan-release:NAME (fetched into the
    cache; see `pcbench fetch`) or a folder with its G_best_epoch.pt and args.txt."""
    if isinstance(checkpoint, str):
        from ..models.mpgan_release import sample_release

        path, attrs = sample_release(checkpoint, n, output, seed, batch_size, device)
        console.print(f"[green]wrote[/] {path}: {n} jets from {attrs['model']} (md5 {attrs['weights_md5']}), "
                      f"{attrs['generation_time_per_object_s'] * 1e6:.1f} us per jet on {device}", highlight=False)
        return
    payload = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if payload.get("model") in SHOWER_MODELS:
        from ..evaluate.sources import ShowerSource
        from ..models.shower_pipeline import PipelineSteps

        energies = ShowerSource.of(energies_from).incident_energies() if energies_from else None
        if energies is not None and len(energies) < n:
            raise PcbenchError(f"{energies_from} has {len(energies)} showers, fewer than -n {n}")
        steps = PipelineSteps(**{k: False for k in off})
        path, attrs = sample_showers(checkpoint, n, output, batch_size or 64, device, seed, energies, steps, project)
        console.print(f"[green]wrote[/] {path}: {n} showers from {attrs['model']}, "
                      f"{attrs['generation_time_per_object_s'] * 1e3:.2f} ms per shower on {device} "
                      f"(batch {batch_size or 64}, whole pipeline)", highlight=False)
        return
    batch_size = batch_size or 1024
    path, attrs = sample_jets(checkpoint, n, output, batch_size, device, seed)
    console.print(f"[green]wrote[/] {path}: {n} jets from {attrs['model']} (epoch {attrs['checkpoint_epoch']}), "
                  f"{attrs['generation_time_per_object_s'] * 1e6:.1f} us per jet on {device} "
                  f"(batch {batch_size})", highlight=False)
