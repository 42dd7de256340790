"""The end-to-end latency model of a split inference, and the candidates it scores.

For a split candidate (head on the edge, features coded, tail on the server)::

    T = T_edge(head) + T_enc + (bytes + request overhead)·8/B + RTT + answer·8/B + fixed
        + queueing + T_dec + T_cloud(tail) + loss penalty

``B`` the bandwidth each way, ``fixed`` the per-request time of the HTTP stacks (both ends), ``queueing``
a given server queue wait, and the loss penalty the expected retransmission delay: each 1448-byte segment
is lost with probability ``loss`` and a loss costs one retransmission timeout, as in
:class:`splitcodec.serve.link.ShapingProxy`.  Edge-only runs the whole model on the edge (no network);
cloud-only codes the input picture (``image-*`` codecs) and runs the whole model on the server.

>>> net = Network(bandwidth_mbit=1, rtt_ms=20)
>>> round(net.transfer_ms(1000), 3), Transport.none().request_bytes
(8.0, 0.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from splitcodec.errors import SplitcodecError
from splitcodec.search.profile import INPUT, CodecCost, DeviceProfile, ModelProfile

__all__ = ["Network", "Transport", "Candidate", "Breakdown", "predict", "candidates", "EDGE_ONLY", "CLOUD_ONLY", "SPLIT"]

MSS = 1448  # bytes per TCP segment (Ethernet MTU)
EDGE_ONLY, CLOUD_ONLY, SPLIT = "edge-only", "cloud-only", "split"


@dataclass(frozen=True)
class Network:
    """A symmetric link: bandwidth each way (Mbit/s), round-trip time, segment loss rate, RTO."""

    bandwidth_mbit: float
    rtt_ms: float = 0.0
    loss: float = 0.0
    rto_ms: float = 200.0

    def __post_init__(self) -> None:
        if not self.bandwidth_mbit > 0:
            raise SplitcodecError(f"bandwidth must be > 0 Mbit/s, got {self.bandwidth_mbit}")
        if self.rtt_ms < 0 or not 0 <= self.loss < 1 or self.rto_ms < 0:
            raise SplitcodecError(f"bad network: rtt {self.rtt_ms} ms, loss {self.loss} (0 <= loss < 1), rto {self.rto_ms} ms")

    def transfer_ms(self, nbytes: float) -> float:
        """Serialisation time of ``nbytes`` on this link."""
        return nbytes * 8e-3 / self.bandwidth_mbit

    def loss_ms(self, nbytes: float) -> float:
        """Expected retransmission delay of sending ``nbytes``: RTO × P(any of its segments is lost)."""
        if not self.loss or nbytes <= 0:
            return 0.0
        segments = -(-int(round(nbytes)) // MSS)
        return self.rto_ms * (1.0 - (1.0 - self.loss) ** segments)


@dataclass(frozen=True)
class Transport:
    """What the protocol adds per request: bytes up (HTTP headers), bytes down (the JSON answer), and a
    fixed time (both HTTP stacks).  :meth:`http` holds the splitcodec server's figures measured on
    loopback (``benchmarks/results/runtime.json``: 203 B up, 509 B down, 4.6 ms)."""

    request_bytes: float = 0.0
    response_bytes: float = 0.0
    fixed_ms: float = 0.0

    @classmethod
    def none(cls) -> "Transport":
        return cls()

    @classmethod
    def http(cls) -> "Transport":
        return cls(203.0, 509.0, 4.6)


@dataclass(frozen=True)
class Candidate:
    """One way to run the model: where it is cut, what codes the crossing tensor, and its costs."""

    kind: str  # SPLIT, EDGE_ONLY or CLOUD_ONLY
    split: str | None  # split point name; "input" for cloud-only; None for edge-only
    codec: str | None
    params: dict[str, Any]
    bytes_per_sample: float
    top1_loss: float
    head_ms: float  # on the edge (edge-only: the whole model)
    encode_ms: float  # on the edge
    decode_ms: float  # on the server
    tail_ms: float  # on the server (cloud-only: the whole model)

    @property
    def label(self) -> str:
        if self.kind == EDGE_ONLY:
            return EDGE_ONLY
        args = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.split} {self.codec}({args})"

    @property
    def edge_ms(self) -> float:
        return self.head_ms + self.encode_ms

    @property
    def server_ms(self) -> float:
        return self.decode_ms + self.tail_ms


@dataclass(frozen=True)
class Breakdown:
    """Predicted ms of each part of one inference, their sum, and (with a power profile) edge joules."""

    head_ms: float
    encode_ms: float
    uplink_ms: float
    rtt_ms: float
    downlink_ms: float
    fixed_ms: float
    loss_ms: float
    queue_ms: float
    decode_ms: float
    tail_ms: float
    energy_j: float | None = None

    @property
    def total_ms(self) -> float:
        return (self.head_ms + self.encode_ms + self.uplink_ms + self.rtt_ms + self.downlink_ms + self.fixed_ms
                + self.loss_ms + self.queue_ms + self.decode_ms + self.tail_ms)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "total_ms": self.total_ms}


def predict(
    cand: Candidate,
    network: Network,
    transport: Transport = Transport(),
    *,
    queue_ms: float = 0.0,
    edge: DeviceProfile | None = None,
) -> Breakdown:
    """The latency model for ``cand`` on ``network``; energy in J when ``edge`` has a power profile."""
    if cand.kind == EDGE_ONLY:
        parts = Breakdown(cand.head_ms, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    else:
        up = cand.bytes_per_sample + transport.request_bytes
        down = transport.response_bytes
        parts = Breakdown(
            head_ms=cand.head_ms,
            encode_ms=cand.encode_ms,
            uplink_ms=network.transfer_ms(up),
            rtt_ms=network.rtt_ms,
            downlink_ms=network.transfer_ms(down),
            fixed_ms=transport.fixed_ms,
            loss_ms=network.loss_ms(up) + network.loss_ms(down),
            queue_ms=queue_ms,
            decode_ms=cand.decode_ms,
            tail_ms=cand.tail_ms,
        )
    power = edge.power if edge is not None else None
    if power is None:
        return parts
    compute = parts.head_ms + parts.encode_ms
    radio = parts.uplink_ms + parts.downlink_ms
    idle = parts.total_ms - compute - radio
    energy = 1e-3 * (power.compute_w * compute + power.radio_w * radio + power.idle_w * idle)
    return Breakdown(**{**asdict(parts), "energy_j": energy})


def _cost_candidate(profile: ModelProfile, cost: CodecCost, edge: DeviceProfile, cloud: DeviceProfile) -> Candidate:
    kind = CLOUD_ONLY if cost.split == INPUT else SPLIT
    return Candidate(
        kind=kind,
        split=cost.split,
        codec=cost.codec,
        params=dict(cost.params),
        bytes_per_sample=cost.bytes_per_sample,
        top1_loss=cost.top1_loss,
        head_ms=edge.head(profile, cost.split),
        encode_ms=edge.encode(cost),
        decode_ms=cloud.decode(cost),
        tail_ms=cloud.tail(profile, cost.split),
    )


def candidates(
    profile: ModelProfile,
    edge: DeviceProfile,
    cloud: DeviceProfile,
    costs: Iterable[CodecCost] | None = None,
) -> list[Candidate]:
    """Edge-only, every profiled (split, codec setting), and cloud-only for every picture codec setting."""
    out = [Candidate(EDGE_ONLY, None, None, {}, 0.0, 0.0, edge.head(profile, "full"), 0.0, 0.0, 0.0)]
    out += [_cost_candidate(profile, c, edge, cloud) for c in (profile.codecs if costs is None else costs)]
    return out


@dataclass
class Scored:
    """A candidate with its predicted breakdown on one network."""

    candidate: Candidate
    breakdown: Breakdown
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return self.breakdown.total_ms
