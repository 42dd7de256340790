"""The ``search`` command: partition search (the logic is in :mod:`splitcodec.search`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from splitcodec.cli.common import app, console
from splitcodec.cli.common import fail as _fail
from splitcodec.cli.common import fmt as _fmt
from splitcodec.errors import SplitcodecError

@app.command("search")
def search_cmd(
    model: str = typer.Option("ref-resnet", help="registered model name"),
    bandwidth: str = typer.Option("1,10,100", help="link bandwidths to plan for, Mbit/s, comma-separated"),
    rtt: float = typer.Option(20.0, help="round-trip time, ms"),
    loss: float = typer.Option(0.0, help="packet (segment) loss rate, 0 <= loss < 1"),
    queue_ms: float = typer.Option(0.0, "--queue-ms", help="expected wait in the server's queue, ms"),
    max_loss: float = typer.Option(1.0, "--max-loss", help="largest top-1 loss allowed, percentage points"),
    edge: str = typer.Option("local", help="edge device: local, x<slowdown> (e.g. x20) or a device profile JSON"),
    cloud: str = typer.Option("local", help="server: local, x<slowdown> or a device profile JSON"),
    profile: Optional[Path] = typer.Option(None, help="a saved model profile (else measured now)"),
    split: list[str] = typer.Option([], help="split points to profile (default: every ReLU/leaky cut; repeatable)"),
    samples: int = typer.Option(1000, help="test samples for accuracy when profiling"),
    http: bool = typer.Option(True, help="count the HTTP request/answer bytes and fixed time of the splitcodec server"),
    method: str = typer.Option("pruned", help="pruned (dominance pruning) or exhaustive"),
    out: Path = typer.Option(Path("search.json"), help="results JSON (+ .png and one .plan-<B>mbit.json per bandwidth)"),
    save_profile: Optional[Path] = typer.Option(None, help="also write the measured profile here"),
) -> None:
    """Pick split × codec × setting with the lowest predicted latency within an accuracy-loss budget."""
    from splitcodec.search import ModelProfile, Network, Transport, device_profile, profile_model, run_search, write_search

    try:
        bws = [float(b) for b in bandwidth.split(",") if b.strip()]
    except ValueError:
        _fail(SplitcodecError(f"bad --bandwidth {bandwidth!r}: use Mbit/s values such as 1,10,100"))
    try:
        edge_dev, cloud_dev = device_profile(edge), device_profile(cloud)
        if profile is not None:
            prof = ModelProfile.load(profile)
        else:
            with console.status(f"profiling {model} (splits, codecs, {samples} samples)…"):
                prof = profile_model(model, split or None, samples=samples)
            if save_profile is not None:
                console.print(f"wrote {prof.save(save_profile)}")
        transport = Transport.http() if http else Transport.none()
        results = run_search(prof, [Network(b, rtt, loss) for b in bws], edge=edge_dev, cloud=cloud_dev,
                             max_loss=max_loss, transport=transport, method=method, queue_ms=queue_ms)
        paths = write_search(prof, results, out, edge=edge_dev.name, cloud=cloud_dev.name, transport=transport)
    except SplitcodecError as exc:
        _fail(exc)
    table = Table(title=f"{prof.model}: lowest predicted latency within {max_loss:g} pp top-1 loss "
                        f"(edge {edge_dev.name}, RTT {rtt:g} ms)")
    energy = edge_dev.power is not None
    for col in ("link", "plan", "loss pp", "bytes", "predicted ms", "edge-only", "cloud-only", "uncompressed", "scored",
                *(("edge J",) if energy else ())):
        table.add_column(col, justify="left" if col in ("link", "plan") else "right")
    for r in results:
        c = r.choice.candidate
        ms = lambda s: _fmt(None if s is None else s.total_ms)  # noqa: E731
        table.add_row(f"{r.network.bandwidth_mbit:g} Mbit/s", c.label, _fmt(c.top1_loss), _fmt(c.bytes_per_sample, 0),
                      _fmt(r.choice.total_ms), ms(r.edge_only), ms(r.cloud_only), ms(r.best_uncompressed), str(r.evaluated),
                      *((_fmt(r.choice.breakdown.energy_j, 4),) if energy else ()))
    console.print(table)
    console.print("wrote " + ", ".join(str(p) for p in paths))
