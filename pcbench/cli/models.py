"""``pcbench train`` and ``pcbench sample``: thin commands over :mod:`pcbench.models`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..data import Cache, load, read
from ..data.loaders import split_indices
from ..errors import PcbenchError
from ..models import MODELS, TrainOptions, model_config, sample_jets, train
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
@click.argument("name", type=click.Choice(sorted(MODELS)))
@click.option("--data", default=None, help="Registry name, e.g. jetnet30:g or jetnet30-sim:g.")
@click.option("--data-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="An HDF5 file of jets instead of a registry name.")
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
def train_cmd(name, data, data_file, config_name, overrides, epochs, device, seed, out_dir, val_every, resume,
              max_minutes, cache_dir):
    """Train a jet generator; checkpoints (last.pt, best.pt by validation W1M) go to OUT."""
    sets = {}
    for item in overrides:
        key, _, value = item.partition("=")
        try:
            sets[key] = json.loads(value)
        except ValueError:
            sets[key] = value
    config = model_config(name, config_name, **sets)
    train_jets, valid_jets, prov = _training_data(data, data_file, Cache(cache_dir))
    types = sorted({int(t) for t in train_jets.jet_type if t >= 0})
    prov["jet_type"] = "gqtwz"[types[0]] if len(types) == 1 else None
    opts = TrainOptions(epochs=epochs if epochs is not None else config["epochs"], out_dir=out_dir, device=device,
                        seed=seed, val_every=val_every, resume=resume, max_minutes=max_minutes, provenance=prov)
    best = train(name, config, train_jets, opts, valid_jets)
    console.print(f"[green]trained[/] {name} ({config_name} config, {len(train_jets)} training jets); "
                  f"checkpoint: {best}", highlight=False)


@cli.command("sample")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-n", "--num", "n", type=int, default=50_000, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--batch-size", type=int, default=1024, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def sample_cmd(checkpoint, n, output, batch_size, device, seed):
    """Sample N jets from a checkpoint into the canonical sample file, with the time per jet."""
    path, attrs = sample_jets(checkpoint, n, output, batch_size, device, seed)
    console.print(f"[green]wrote[/] {path}: {n} jets from {attrs['model']} (epoch {attrs['checkpoint_epoch']}), "
                  f"{attrs['generation_time_per_object_s'] * 1e6:.1f} us per jet on {device} "
                  f"(batch {batch_size})", highlight=False)
