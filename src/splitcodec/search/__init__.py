"""Partition search: pick the split, codec and setting that minimise end-to-end latency within an
accuracy-loss budget.

profiles (:mod:`~splitcodec.search.profile`) → latency model (:mod:`~splitcodec.search.latency`) →
search and plan (:mod:`~splitcodec.search.plan`) → reports (:mod:`~splitcodec.search.run`).
"""

from splitcodec.search.latency import (
    CLOUD_ONLY,
    EDGE_ONLY,
    SPLIT,
    Breakdown,
    Candidate,
    Network,
    Scored,
    Transport,
    candidates,
    predict,
)
from splitcodec.search.plan import Plan, PlanError, SearchResult, choose, exhaustive, pareto_front, prune, search
from splitcodec.search.profile import (
    CodecCost,
    DeviceProfile,
    ModelProfile,
    PowerProfile,
    ProfileError,
    SplitTiming,
    Timing,
    device_profile,
    load_device_profile,
    measure_model,
    time_call,
)
from splitcodec.search.run import (
    default_splits,
    plot_latency_vs_split,
    profile_model,
    result_json,
    run_search,
    write_search,
)

__all__ = [
    "CLOUD_ONLY",
    "EDGE_ONLY",
    "SPLIT",
    "Breakdown",
    "Candidate",
    "CodecCost",
    "DeviceProfile",
    "ModelProfile",
    "Network",
    "Plan",
    "PlanError",
    "PowerProfile",
    "ProfileError",
    "Scored",
    "SearchResult",
    "SplitTiming",
    "Timing",
    "Transport",
    "candidates",
    "choose",
    "default_splits",
    "device_profile",
    "exhaustive",
    "load_device_profile",
    "measure_model",
    "pareto_front",
    "plot_latency_vs_split",
    "predict",
    "profile_model",
    "prune",
    "result_json",
    "run_search",
    "search",
    "time_call",
    "write_search",
]
