"""Cut a model into a head (edge device) and a tail (server) with ``torch.fx``.

>>> import torch
>>> from splitcodec.models import load
>>> from splitcodec.split import list_split_points, split
>>> model = load("ref-resnet")
>>> x = torch.zeros(2, 1, 28, 28)
>>> points = {p.name: p for p in list_split_points(model, x)}
>>> points["layer2"].shape, points["layer2"].activation, points["layer2"].aliases[0]
((32, 14, 14), 'relu', 'layer2.1')
>>> head, tail = split(model, at="layer2")
>>> bool(torch.equal(tail(head(x)), model(x)))
True

A cut after node *i* of the traced graph is valid iff exactly one tensor produced at or before *i* is
consumed after it (``get_attr`` nodes, and nodes computed from them alone, are constants and are
copied to whichever side needs them).  So there is no valid cut inside a residual block, where both
the branch and the skip tensor are alive.  Cuts before the first operation or after the last one are
not listed.

A split point is named after the submodule whose output crosses the cut when there is one (the
shortest qualified name, e.g. ``layer2`` rather than ``layer2.1``/``layer2.1.relu2``); the other
module names and the fx node name are kept as ``aliases`` and are accepted by ``split(at=...)`` too.
Only modules called once get such a name.

Models that torch.fx cannot trace: an ``nn.Sequential`` is cut between its children instead
(``head`` and ``tail`` are then ``nn.Sequential``); anything else raises :class:`SplitError`.
"""

from __future__ import annotations

import difflib
import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import fx, nn

from splitcodec._fxgraph import PASS_MODULES, Graph, activation_of
from splitcodec.errors import SplitError

__all__ = ["Activation", "SplitPoint", "list_split_points", "split"]


@dataclass(frozen=True)
class Activation:
    """What produced a feature tensor: ``kind`` is ``"relu"``, ``"leaky_relu"``, ``"relu6"`` or ``"other"``.

    ``negative_slope`` is the leaky-ReLU slope (None for the other kinds).  Codecs that model the
    features' distribution take one in ``fit(features, activation=...)``.
    """

    kind: str
    negative_slope: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("relu", "leaky_relu", "relu6", "other"):
            raise SplitError(f"unknown activation kind {self.kind!r}; expected relu, leaky_relu, relu6 or other")


@dataclass(frozen=True)
class SplitPoint:
    """One place where a model can be cut.

    Attributes:
        name: unique name, accepted by ``split(model, at=name)``.
        index: position of the node producing the crossing tensor in the traced graph (child index
            for the ``nn.Sequential`` fallback).
        shape: per-sample shape of the crossing tensor (no batch dimension), e.g. ``(32, 14, 14)``.
        numel: elements per sample.
        activation: ``"relu"``, ``"leaky_relu"``, ``"relu6"`` or ``"other"``: the activation that
            produced the crossing tensor, seen through ops that keep its sign pattern (max-pool,
            flatten, reshape, identity, dropout, and ``torch.cat`` of equally activated tensors).
        negative_slope: the leaky-ReLU slope read from the model, else None.
        aliases: other names ``split(at=...)`` accepts for this cut (module names, the fx node name).
    """

    name: str
    index: int
    shape: tuple[int, ...]
    numel: int
    activation: str
    negative_slope: float | None
    aliases: tuple[str, ...] = ()

    @property
    def act(self) -> Activation:
        """The activation that produced the crossing tensor, as the typed value codecs' ``fit`` takes."""
        return Activation(self.activation, self.negative_slope)


# --------------------------------------------------------------------------------------------------
# public API


def _trace(model: nn.Module) -> Graph | None:
    """The analysed fx graph of ``model``; None for an untraceable nn.Sequential."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # fx raises TraceError, TypeError, NotImplementedError, ...
        if isinstance(model, nn.Sequential) and len(model) > 1:
            return None
        raise SplitError(
            f"torch.fx cannot trace {type(model).__name__} ({type(e).__name__}: {e}). split() needs a model "
            "that torch.fx.symbolic_trace can trace: no control flow on tensor values and no unsupported "
            "Python in forward (a chain of modules can instead be an nn.Sequential, cut between its children)."
        ) from e
    return Graph(gm)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode without gradients, then restore every submodule's own training flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, flag in flags:
            m.training = flag


def _point(name: str, index: int, value: object, act: tuple[str, float | None], aliases: tuple[str, ...]) -> SplitPoint:
    if not isinstance(value, torch.Tensor):
        raise SplitError(f"split point {name!r} carries a {type(value).__name__}, not a tensor")
    shape = tuple(int(s) for s in value.shape[1:])
    return SplitPoint(
        name=name,
        index=index,
        shape=shape,
        numel=math.prod(shape),
        activation=act[0],
        negative_slope=act[1],
        aliases=aliases,
    )


def _tensor_values(graph: Graph, example_input: torch.Tensor) -> dict[fx.Node, object]:
    """Run the graph once, keeping the value of every cut node (shape only; values are not copied)."""
    wanted = {c.node for c in graph.cuts}
    values: dict[fx.Node, object] = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> object:
            result = super().run_node(n)
            if n in wanted:
                values[n] = result if not isinstance(result, torch.Tensor) else torch.empty(result.shape, device="meta")
            return result

    with _eval_mode(graph.gm):
        _Recorder(graph.gm).run(example_input)
    return values


def list_split_points(model: nn.Module, example_input: torch.Tensor) -> list[SplitPoint]:
    """Every valid cut of ``model`` in graph order, with shapes measured on ``example_input`` (N×C×H×W).

    The model is run once in eval mode under ``torch.no_grad()``; its training flags are restored.
    Cuts whose crossing value is not a single tensor are left out.
    """
    graph = _trace(model)
    if graph is None:
        return _sequential_points(model, example_input)  # type: ignore[arg-type]
    values = _tensor_values(graph, example_input)
    return [
        _point(c.name, c.index, values[c.node], activation_of(graph.gm, c.node), c.aliases)
        for c in graph.cuts
        if isinstance(values.get(c.node), torch.Tensor)
    ]


def split(model: nn.Module, at: str, example_input: torch.Tensor | None = None) -> tuple[nn.Module, nn.Module]:
    """Cut ``model`` at split point ``at`` into ``(head, tail)`` with ``tail(head(x))`` equal to ``model(x)``.

    Both are ``torch.fx.GraphModule`` s sharing ``model``'s parameters and submodules (``nn.Sequential``
    for the untraceable-Sequential fallback).  With ``example_input`` the :class:`SplitPoint` (shape,
    activation) is measured and attached to both as ``.splitcodec_split_point``; without it that
    attribute is None.  Raises :class:`SplitError` naming the valid split points if ``at`` is not one.
    """
    graph = _trace(model)
    if graph is None:
        return _split_sequential(model, at, example_input)  # type: ignore[arg-type]
    cut = graph.find(at)
    head, tail = _build_head(graph, cut.node), _build_tail(graph, cut.node)
    point = None
    if example_input is not None:
        value = _tensor_values(graph, example_input)[cut.node]
        point = _point(cut.name, cut.index, value, activation_of(graph.gm, cut.node), cut.aliases)
    for part in (head, tail):
        part.training = model.training
        part.splitcodec_split_point = point
    return head, tail


def _copy_with_inputs(graph: fx.Graph, node: fx.Node, env: dict[fx.Node, fx.Node]) -> fx.Node:
    """Copy ``node`` into ``graph`` after (recursively) copying any of its inputs not yet in ``env``."""
    for arg in node.all_input_nodes:
        if arg not in env:
            _copy_with_inputs(graph, arg, env)
    env[node] = graph.node_copy(node, lambda a: env[a])
    return env[node]


def _build_head(g: Graph, cut: fx.Node) -> fx.GraphModule:
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in g.nodes[: g.pos[cut] + 1]:  # everything up to the cut, dead in-place ops included
        if n.op == "placeholder" or n not in g.const:  # (constants are copied when first used)
            _copy_with_inputs(graph, n, env)
    graph.output(env[cut])
    return fx.GraphModule(g.gm, graph, class_name="Head")


def _build_tail(g: Graph, cut: fx.Node) -> fx.GraphModule:
    graph = fx.Graph()
    placeholder = graph.placeholder(cut.name)
    placeholder.meta = dict(cut.meta)
    env: dict[fx.Node, fx.Node] = {cut: placeholder}
    for n in g.nodes[g.pos[cut] + 1 :]:
        _copy_with_inputs(graph, n, env)  # earlier constants are copied on demand
    return fx.GraphModule(g.gm, graph, class_name="Tail")


# --------------------------------------------------------------------------------------------------
# nn.Sequential fallback (models fx cannot trace)


def _sequential_points(model: nn.Sequential, example_input: torch.Tensor) -> list[SplitPoint]:
    children = list(model.named_children())
    points = []
    with _eval_mode(model):
        x = example_input
        for i, (name, child) in enumerate(children[:-1]):
            x = child(x)
            points.append(_point(name, i, x, _module_activation(model, children, i), ()))
    return points


def _module_activation(model: nn.Sequential, children: list[tuple[str, nn.Module]], i: int) -> tuple[str, float | None]:
    for _, child in reversed(children[: i + 1]):
        if isinstance(child, nn.ReLU):
            return "relu", None
        if isinstance(child, nn.LeakyReLU):
            return "leaky_relu", float(child.negative_slope)
        if isinstance(child, nn.ReLU6):
            return "relu6", None
        if not isinstance(child, PASS_MODULES):
            break
    return "other", None


def _split_sequential(model: nn.Sequential, at: str, example_input: torch.Tensor | None) -> tuple[nn.Module, nn.Module]:
    children = list(model.named_children())
    names = [name for name, _ in children[:-1]]
    if at not in names:
        close = difflib.get_close_matches(at, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SplitError(
            f"no split point {at!r}{hint}. {type(model).__name__} is not fx-traceable, so it can only be cut "
            f"between its children: {', '.join(names)}"
        )
    k = names.index(at) + 1
    head, tail = nn.Sequential(OrderedDict(children[:k])), nn.Sequential(OrderedDict(children[k:]))
    point = None
    if example_input is not None:
        point = _sequential_points(model, example_input)[k - 1]
    for part in (head, tail):
        part.training = model.training
        part.splitcodec_split_point = point
    return head, tail

