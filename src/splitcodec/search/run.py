"""The search end to end: a default candidate space, one search per network, JSON and a plot.

>>> sorted(DEFAULT_FEATURE_SPECS)[:2]
['lightweight:lam=0.03', 'lightweight:lam=0.1']
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from splitcodec.search.latency import EDGE_ONLY, Network, Scored, Transport, candidates
from splitcodec.search.plan import Plan, SearchResult, prune, search
from splitcodec.search.profile import INPUT, DeviceProfile, ModelProfile, ProfileError

__all__ = ["DEFAULT_FEATURE_SPECS", "DEFAULT_IMAGE_SPECS", "default_splits", "profile_model", "run_search",
           "result_json", "plot_latency_vs_split", "write_search"]

DEFAULT_FEATURE_SPECS = ("raw:dtype=float32", "raw:dtype=float16", "uniform:bits=8", "uniform:bits=4",
                         "lightweight:lam=0.03", "lightweight:lam=0.1", "lightweight:lam=0.3")
DEFAULT_IMAGE_SPECS = ("image-jpeg", "image-webp")


def default_splits(model: Any, example: Any) -> list[str]:
    """Split points after a ReLU / leaky ReLU (what the feature codecs are built for), in model order."""
    from splitcodec.split import list_split_points

    return [p.name for p in list_split_points(model, example[:1]) if p.act is not None and p.act.kind in ("relu", "leaky_relu")]


def profile_model(
    model: str,
    splits: Sequence[str] | None = None,
    feature_specs: Sequence[str] = DEFAULT_FEATURE_SPECS,
    image_specs: Sequence[str] = DEFAULT_IMAGE_SPECS,
    *,
    samples: int | None = 1000,
    progress: Any = None,
) -> ModelProfile:
    """Measure a profile for the search: ``splits`` default to :func:`default_splits` of the model."""
    from splitcodec.search.profile import measure_model

    if splits is None:
        from splitcodec.data import load_dataset
        from splitcodec.models import load

        net = load(model)
        cfg = getattr(net, "splitcodec_cfg", None)
        if cfg is None or cfg.dataset is None:
            raise ProfileError(f"model {model!r} names no dataset: give the splits and a profile")
        splits = default_splits(net, load_dataset(cfg.dataset, "calibration").images[:1])
    profile, _ = measure_model(model, list(splits), list(feature_specs), list(image_specs), samples=samples,
                               progress=progress)
    return profile


def run_search(
    profile: ModelProfile,
    networks: Sequence[Network],
    *,
    edge: DeviceProfile,
    cloud: DeviceProfile,
    max_loss: float = 1.0,
    transport: Transport = Transport(),
    method: str = "pruned",
    queue_ms: float = 0.0,
) -> list[SearchResult]:
    """One :class:`SearchResult` per network; the dominance pruning is done once for all of them."""
    cands = candidates(profile, edge, cloud)
    pruned = prune(cands) if method == "pruned" else None
    return [search(cands, net, transport, max_loss=max_loss, method=method, queue_ms=queue_ms, edge=edge,
                   pruned=pruned) for net in networks]


def _scored_json(s: Scored | None) -> dict[str, Any] | None:
    if s is None:
        return None
    c = s.candidate
    return {"kind": c.kind, "split": c.split, "codec": c.codec, "params": c.params, "predicted_ms": s.total_ms,
            "bytes_per_sample": c.bytes_per_sample, "top1_loss": c.top1_loss, "breakdown": s.breakdown.to_json()}


def result_json(model: str, result: SearchResult, edge: str = "local") -> dict[str, Any]:
    """A search result as JSON: the plan, the baselines, the per-split best and the Pareto front."""
    ms = lambda s: None if s is None else s.total_ms  # noqa: E731
    return {
        "model": model,
        "network": asdict(result.network),
        "max_loss": result.max_loss,
        "edge": edge,
        "plan": Plan.from_result(model, result, edge).to_json(),
        "evaluated": result.evaluated,
        "edge_only_ms": ms(result.edge_only),
        "cloud_only_ms": ms(result.cloud_only),
        "best_uncompressed_ms": ms(result.best_uncompressed),
        "per_split": {k: _scored_json(v) for k, v in result.per_split.items()},
        "front": [_scored_json(s) for s in result.front],
    }


def _split_order(profile: ModelProfile) -> list[str]:
    return [INPUT] + [s.split for s in profile.splits] + [EDGE_ONLY]


def plot_latency_vs_split(profile: ModelProfile, results: Sequence[SearchResult], path: str | Path,
                          title: str | None = None, ax: Any = None) -> None:
    """Best predicted latency within the loss budget at each split (input = cloud-only, edge-only last),
    one line per network; the choice is ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(8, 4.5))
    order = _split_order(profile)
    for res in results:
        xs = [i for i, k in enumerate(order) if k in res.per_split]
        ys = [res.per_split[order[i]].total_ms for i in xs]
        line = ax.plot(xs, ys, marker="o", label=f"{res.network.bandwidth_mbit:g} Mbit/s, RTT {res.network.rtt_ms:g} ms")
        chosen = res.choice.candidate.split or EDGE_ONLY
        if chosen in order:
            ax.plot([order.index(chosen)], [res.choice.total_ms], "o", ms=14, mfc="none", color=line[0].get_color())
    ax.set_xticks(range(len(order)), [("input\n(cloud-only)" if k == INPUT else k) for k in order], fontsize=7, rotation=20)
    ax.set(yscale="log", ylabel="predicted end-to-end ms",
           title=title or f"{profile.model}: best within {results[0].max_loss:g} pp loss per split (ringed: choice)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if own:
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def write_search(
    profile: ModelProfile,
    results: Sequence[SearchResult],
    out: str | Path,
    *,
    edge: str = "local",
    cloud: str = "local",
    transport: Transport = Transport(),
) -> list[Path]:
    """Write ``out`` (JSON: every result), ``out`` .png (latency vs split) and one plan per network
    (``<out stem>.plan-<B>mbit.json``); returns the paths written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"model": profile.model, "edge": edge, "cloud": cloud, "transport": asdict(transport),
           "profile_meta": profile.meta, "results": [result_json(profile.model, r, edge) for r in results]}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    png = out.with_suffix(".png")
    plot_latency_vs_split(profile, results, png, title=f"{profile.model}, edge {edge}: best within "
                          f"{results[0].max_loss:g} pp loss per split (ringed: choice)")
    paths = [out, png]
    for r in results:
        plan = Plan.from_result(profile.model, r, edge)
        paths.append(plan.save(out.with_name(f"{out.stem}.plan-{r.network.bandwidth_mbit:g}mbit.json")))
    return paths
