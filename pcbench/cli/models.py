"""``pcbench train`` and ``pcbench sample``: thin commands over :mod:`pcbench.models`."""

from __future__ import annotations

from pathlib import Path

import click

from .._device import check_device
from .._outputs import output_dir, output_file
from ..data import JET_TYPES, Cache
from ..errors import UsageError
from ..models.config import parse_sets
from ..models.registry import GENERATORS, generator_class, model_config
from . import cli, console, err_console
from .data import cache_option


def _finish_line(kind: str, name: str, config_name: str, n: int, path: Path) -> None:
    """The last line of ``train``: what was trained, and loudly, what a budget left untrained."""
    from ..models.checkpoints import load_checkpoint_file, unfinished_parts

    untrained = unfinished_parts(load_checkpoint_file(path))
    if untrained:
        err_console.print(f"[bold yellow]unfinished:[/] {name} ({config_name} config, {n} training {kind}) stopped by "
                          f"the --max-minutes budget; untrained: {'; '.join(untrained)}. Checkpoint: {path} (continue "
                          "with --resume)", highlight=False, soft_wrap=True)
    else:
        console.print(f"[green]trained[/] {name} ({config_name} config, {n} training {kind}); checkpoint: {path}",
                      highlight=False)


@cli.command("train")
@click.argument("name", type=click.Choice(sorted(GENERATORS)))
@click.option("--data", default=None, help="Registry name, e.g. jetnet30:g, jetnet30-sim:g, ild-photons-param, calochallenge-2-param.")
@click.option("--data-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="An HDF5 file of jets or point showers instead of a registry name.")
@click.option("--teacher", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="caloclouds2-cm: the trained CaloClouds II checkpoint to distil.")
@click.option("--config", "config_name", type=click.Choice(["small", "full"]), default="small", show_default=True)
@click.option("--set", "overrides", multiple=True, help="Override a config value: --set epochs=10 (JSON values).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (default: the config's).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--val-every", type=click.IntRange(min=0), default=5, show_default=True,
              help="Validate W1M every N epochs (0: never).")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt (which must exist).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after the epoch (step) that ends past this budget; the last line says what is untrained.")
@click.option("--clock", type=click.Choice(["wall", "cpu"]), default="wall", show_default=True,
              help="What --max-minutes counts: wall-clock time, or this process's CPU time (other load does not "
                   "shrink it).")
@click.option("--jet-type", type=click.Choice(list(JET_TYPES)), default=None,
              help="Jets: the training jets' class, where the data do not say it (recorded; FPND needs it).")
@cache_option
def train_cmd(name, data, data_file, teacher, config_name, overrides, epochs, device, seed, out_dir, val_every, resume,
              max_minutes, clock, jet_type, cache_dir):
    """Train a generator: jets (checkpoints last.pt, best.pt by validation W1M) or showers
    (CaloClouds, CaloClouds II, its consistency model, the baseline; checkpoint last.pt) into OUT.
    Showers: ILD-like point files, or CaloChallenge voxel files (trained on as points)."""
    from ..models import TrainOptions, require_teacher, train, training_data
    from ..models.checkpoints import resume_path

    sets = parse_sets(overrides)
    check_device(device)
    require_teacher(name, teacher)
    resume_path(out_dir, resume)
    config = model_config(name, config_name, **sets)
    data_set = training_data(name, data, data_file, Cache(cache_dir), config_name, jet_type)
    output_dir(out_dir)
    opts = TrainOptions(out_dir=out_dir, device=device, seed=seed, resume=resume, max_minutes=max_minutes,
                        clock=clock, provenance=data_set.provenance, epochs=epochs, val_every=val_every, teacher=teacher)
    path = train(name, config, data_set.train, opts, data_set.valid)
    last = out_dir / "last.pt"  # it holds the epochs trained against the planned ones
    _finish_line(generator_class(name).kind, name, config_name, len(data_set.train), last if last.exists() else path)


class _CheckpointOrRelease(click.Path):
    """An existing checkpoint file, or a released generator: ``mpgan-release:NAME`` or its folder."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        from ..models.jets.mpgan_release import is_release_spec

        return str(value) if is_release_spec(value) else super().convert(value, param, ctx)


@cli.command("sample")
@click.argument("checkpoint", type=_CheckpointOrRelease())
@click.option("-n", "--num", "n", type=click.IntRange(min=1), default=None,
              help="Objects to sample [default: 50000 jets; showers: as many as --energies-from holds].")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="[default: 1024 jets, 64 showers]")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
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
    from ..models import sample
    from ..models.checkpoints import load_checkpoint_file, unfinished_parts

    check_device(device)
    output_file(output, "-o")
    if not isinstance(checkpoint, str):  # a checkpoint file (a released generator is named by a string)
        untrained = unfinished_parts(load_checkpoint_file(checkpoint))
        if untrained:
            err_console.print(f"[bold yellow]warning:[/] {checkpoint} is unfinished (its training budget ran out); "
                              f"untrained: {'; '.join(untrained)}. Its samples do not show what the model can do.",
                              highlight=False, soft_wrap=True)
    energies = None
    if energies_from is not None:
        from ..data.sources import ShowerSource

        energies = ShowerSource.of(energies_from).incident_energies()
        if n is not None and len(energies) < n:
            raise UsageError(f"--energies-from {energies_from} has {len(energies)} showers, fewer than -n {n}")
    from ..models.showers.pipeline import PipelineSteps

    done = sample(checkpoint, output, n, batch_size, device, seed, energies, PipelineSteps(**{k: False for k in off}),
                  project, progress=True)
    attrs = done.attrs
    if isinstance(checkpoint, str):
        console.print(f"[green]wrote[/] {done.path}: {done.n} jets from {attrs['model']} (md5 {attrs['weights_md5']}), "
                      f"{attrs['generation_time_per_object_s'] * 1e6:.1f} us per jet on {device}", highlight=False)
    elif done.kind == "showers":
        label = " [PARAMETERISED-trained model, not Geant4]" if attrs.get("parameterised") else ""
        console.print(f"[green]wrote[/] {done.path}: {done.n} showers from {attrs['model']}{label}, "
                      f"{attrs['generation_time_per_object_s'] * 1e3:.2f} ms per shower, whole pipeline"
                      f"{_timing_note(attrs)}", highlight=False)
    else:
        console.print(f"[green]wrote[/] {done.path}: {done.n} jets from {attrs['model']} (epoch "
                      f"{attrs['checkpoint_epoch']}), {attrs['generation_time_per_object_s'] * 1e6:.1f} us per jet"
                      f"{_timing_note(attrs)}", highlight=False)


def _timing_note(attrs: dict) -> str:
    """Where and how a generation time was measured: it describes a machine, not only a model."""
    hw = attrs["hardware"]
    load = hw["load"]
    cores = f"{hw['cpu_count']} CPU cores"
    where = hw.get("gpu", cores) if hw["device"].startswith("cuda") else cores
    note = (f", measured on {hw['device']} ({where}, {hw['torch_threads']} torch threads), batch "
            f"{attrs['generation_batch_size']}, warm-up excluded")
    if load.get("loaded"):
        note += (f"; [yellow]the machine was loaded[/] (1-minute load average {load['load_1min']} on "
                 f"{load['cpu_count']} cores): the time is pessimistic")
    return note
