"""``pcbench time``: a thin command over :func:`pcbench.models.cost.measure_cost`."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from .._device import check_device
from .._outputs import output_file
from ..errors import UsageError
from ..evaluate.display import fmt_flops
from . import cli, console

__all__ = ["time_cmd", "parse_int_list"]


def parse_int_list(text: str, option: str) -> list[int]:
    """``"1,100,10000"`` -> [1, 100, 10000] (positive, repeats dropped); a one-line UsageError otherwise."""
    parts = [p.strip().replace("_", "") for p in str(text).split(",")]
    if not parts or any(not p.isdigit() or int(p) < 1 for p in parts):
        raise UsageError(f"{option} {text!r}: expected positive integers separated by commas, e.g. {option} "
                         f"{'1,100,10000' if option == '--batch' else '1,2'}")
    return list(dict.fromkeys(int(p) for p in parts))


def _num(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits, fixed notation; '-' for None."""
    from ..evaluate.display import fmt_number

    return "-" if x is None else fmt_number(float(x), digits)


@cli.command("time")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--batch", "batch", default="1,100", show_default=True,
              help="Objects per call, comma-separated, e.g. 1,100,10000 (each timed separately).")
@click.option("--threads", default=None,
              help="torch thread counts, comma-separated, e.g. 1,2 [default: 1 and this machine's cores].")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True, help="Timed calls per cell.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Untimed calls before each cell's timed ones.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Every timed call samples the same objects of this seed.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The cost record (JSON) [default: CHECKPOINT's stem + .cost.json, beside it].")
def time_cmd(checkpoint: Path, device: str, batch: str, threads: str | None, repeats: int, warmup: int, seed: int,
             out: Path | None) -> None:
    """Measure a checkpoint's cost: ms per object (repeats, warm-up excluded), parameters, FLOPs,
    peak memory.

    Each (batch, threads) cell times REPEATS calls of the generator's sample (what `pcbench sample`
    times: jets with post-processing, showers through the whole pipeline) after WARMUP untimed ones;
    FLOPs are torch's flop counter on one call; peak memory of one call (GPU: allocated tensors;
    CPU: the process's resident set).  Writes a cost record for the leaderboard (docs/cost.md)."""
    from ..models.cost import measure_cost

    check_device(device)
    batches = parse_int_list(batch, "--batch")
    thread_list = parse_int_list(threads, "--threads") if threads is not None else list(
        dict.fromkeys([1, os.cpu_count() or 1]))
    out = out if out is not None else checkpoint.with_name(f"{checkpoint.stem}.cost.json")
    output_file(out, "--out")
    record = measure_cost(checkpoint, device, batches, thread_list, repeats, warmup, seed,
                          log=lambda line: console.print(f"[dim]{line}[/]", highlight=False))
    record.write(out)
    _print(record)
    console.print(f"[green]wrote[/] {out}", highlight=False)


def _print(record) -> None:
    """The cost record as a table with units, and the per-model numbers below it."""
    unit = "jet" if record.kind == "jets" else "shower"
    hw = record.provenance["machine"]
    where = hw.get("gpu", f"{hw['cpu_count']} CPU cores") if record.device.startswith("cuda") else \
        f"{hw['cpu_count']} CPU cores"
    table = Table(title=f"{record.model}: cost on {record.device} ({where}); mean and std of {record.repeats} timed "
                        f"calls after {record.warmup} warm-up call(s), seed {record.seed}", title_justify="left")
    for col in ("batch", "threads", f"ms per {unit}", "± std [ms]", "peak memory [MB]", "peak increase [MB]",
                "load"):
        table.add_column(col, justify="right")
    for t in record.timings:
        load = f"{t.load_before}" + ("*" if t.loaded else "")
        table.add_row(f"{t.batch:,}", str(t.threads), _num(t.ms_per_object), _num(t.ms_per_object_std, 2),
                      _num(t.peak_memory_mb), _num(t.peak_memory_increase_mb), load)
    console.print(table)
    p, f, o = record.parameters, record.flops, record.objects
    parts = ", ".join(f"{k} {v:,}" for k, v in p["by_part"].items())
    used = "" if p.get("used_in_sampling") is None else f", {p['used_in_sampling']:,} read while sampling"
    console.print(f"parameters: {p['total']:,} ({p['trainable']:,} trainable{used}"
                  f"{'; ' + parts if parts else ''}); buffers {p['buffer_elements']:,} elements", highlight=False)
    if f["per_object"] is None:
        console.print(f"[yellow]FLOPs not counted[/]: {f.get('error')}", highlight=False, soft_wrap=True)
    else:
        console.print(f"FLOPs per {unit}: {fmt_flops(f['per_object'])} = {f['per_object']:,.0f} (torch's flop counter on one call of {f['batch']:,}; "
                      "matrix products and convolutions, 2 per multiply-add)", highlight=False, soft_wrap=True)
    if record.kind == "jets":
        mult = _num(record.timings[-1].mean_constituents)
        console.print(f"jets: N = {o['particles_per_jet']} particle slots, mean multiplicity {mult} (batch "
                      f"{record.timings[-1].batch:,}); post-processing included in the time", highlight=False)
    else:
        label = " [PARAMETERISED-trained model, not Geant4]" if o.get("parameterised") else ""
        console.print(f"showers: geometry {o['geometry']}, output {o['output']}, whole pipeline timed{label}",
                      highlight=False)
    console.print(f"peak memory: {record.memory_method}", highlight=False, soft_wrap=True)
    if any(t.loaded for t in record.timings):
        console.print("[yellow]*: the machine was loaded[/] (1-minute load average before the cell above 3/4 of the "
                      "cores): those times are pessimistic", highlight=False)
