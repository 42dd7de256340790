"""Graph analysis behind :mod:`splitcodec.split`: which nodes of a traced model are valid cuts, and
which activation produced a node's value.  Private: use ``splitcodec.split``."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from splitcodec.errors import SplitError
# --------------------------------------------------------------------------------------------------
# graph analysis


@dataclass(frozen=True)
class Cut:
    node: fx.Node
    index: int
    name: str
    aliases: tuple[str, ...]


class Graph:
    """A traced model and the facts about its nodes that cuts need."""

    def __init__(self, gm: fx.GraphModule) -> None:
        # No dead-code elimination: fx does not see in-place method calls (``x.add_(y)`` with an unused
        # result) as impure, so DCE could drop them.  Dead nodes are never valid cuts anyway.
        self.gm = gm
        self.nodes = list(gm.graph.nodes)
        self.pos = {n: i for i, n in enumerate(self.nodes)}
        self.const: set[fx.Node] = set()
        for n in self.nodes:
            if n.op == "get_attr" or (
                n.op.startswith("call_") and all(a in self.const for a in n.all_input_nodes)
            ):
                self.const.add(n)
        # difference array of live (non-constant) values: alive from their position to their last use
        self.last_use = {n: max((self.pos[u] for u in n.users), default=self.pos[n]) for n in self.nodes}
        delta = [0] * (len(self.nodes) + 1)
        for n in self.nodes:
            if n not in self.const and n.op != "output" and self.last_use[n] > self.pos[n]:
                delta[self.pos[n]] += 1
                delta[self.last_use[n]] -= 1
        self.live_count, running = [], 0
        for d in delta[:-1]:
            running += d
            self.live_count.append(running)
        self.cuts = self._find_cuts()

    def crossing(self, node: fx.Node) -> list[fx.Node]:
        """The non-constant values produced at or before ``node`` and consumed after it."""
        i = self.pos[node]
        return [
            n
            for n in self.nodes[: i + 1]
            if n not in self.const and n.op != "output" and self.last_use[n] > i
        ]

    def is_valid(self, node: fx.Node) -> bool:
        if node.op in ("placeholder", "output") or node in self.const:
            return False
        i = self.pos[node]
        if self.live_count[i] != 1 or self.last_use[node] <= i:
            return False
        return any(u.op != "output" for u in node.users)  # else the tail would do nothing

    def module_outputs(self) -> dict[str, fx.Node]:
        """Qualified name -> the node its (single) call returns, for modules called exactly once."""
        groups: dict[str, list[fx.Node]] = {}  # one entry per module call ("path", "path@1", ...)
        paths: dict[str, str] = {}
        calls: dict[str, int] = {}
        has_stack = any("nn_module_stack" in n.meta for n in self.nodes)
        for n in self.nodes:
            if has_stack:
                stack = (n.meta.get("nn_module_stack") or {}).items()
                entries = [(key, value[0] if isinstance(value, tuple) else str(value)) for key, value in stack]
            elif n.op == "call_module":  # a tracer without nn_module_stack: only leaf modules are known
                entries = [(f"{n.target}@{calls.get(str(n.target), 0)}", str(n.target))]
            else:
                entries = []
            for key, path in entries:
                if key not in groups:
                    calls[path] = calls.get(path, 0) + 1
                groups.setdefault(key, []).append(n)
                paths[key] = path
        out: dict[str, fx.Node] = {}
        for key, members in groups.items():
            path = paths[key]
            last = max(members, key=self.pos.__getitem__)
            member_set = set(members)
            if path and calls[path] == 1 and any(u not in member_set for u in last.users):
                out[path] = last
        return out

    def _find_cuts(self) -> list[Cut]:
        by_node: dict[fx.Node, list[str]] = {}
        for path, node in self.module_outputs().items():
            by_node.setdefault(node, []).append(path)
        node_names = {n.name for n in self.nodes}
        cuts = []
        for n in self.nodes:
            if not self.is_valid(n):
                continue
            paths = sorted(
                (p for p in by_node.get(n, []) if p not in node_names or p == n.name),
                key=lambda p: (p.count("."), len(p), p),
            )
            names = [*paths, n.name] if n.name not in paths else [*paths]
            cuts.append(Cut(node=n, index=self.pos[n], name=names[0], aliases=tuple(names[1:])))
        return cuts

    def find(self, at: str) -> Cut:
        for cut in self.cuts:
            if at == cut.name or at in cut.aliases:
                return cut
        raise SplitError(self._explain(at))

    def _explain(self, at: str) -> str:
        names = [c.name for c in self.cuts]
        node = next((n for n in self.nodes if n.name == at), None) or self.module_outputs().get(at)
        if node is not None:
            crossing = self.crossing(node)
            if node.op == "placeholder" or node in self.const:
                why = "it is an input or a constant"
            elif not node.users:
                why = "its result is never used"
            elif all(u.op == "output" for u in node.users):
                why = "it is the model's output (the tail would be empty)"
            else:
                why = f"{len(crossing)} tensors cross it ({', '.join(c.name for c in crossing[:6])})"
            msg = f"{at!r} is not a valid split point: {why}"
        else:
            everything = names + [a for c in self.cuts for a in c.aliases]
            close = difflib.get_close_matches(at, everything, n=3)
            msg = f"no split point {at!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
        shown = ", ".join(names[:60]) + (f", ... ({len(names) - 60} more)" if len(names) > 60 else "")
        return f"{msg}. Valid split points of {type(self.gm).__name__}: {shown}"


# --------------------------------------------------------------------------------------------------
# activation detection

_RELU_FUNCS = {torch.relu, torch.relu_, F.relu, F.relu_}
PASS_MODULES = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,  # scales by 1/(1-p) in training, identity in eval: the sign pattern is kept
    nn.Dropout2d,
)
_PASS_FUNCS = {torch.flatten, torch.reshape, F.max_pool2d, F.max_pool1d, F.max_pool3d, F.adaptive_max_pool2d}
_PASS_METHODS = {"flatten", "view", "reshape", "contiguous", "clone"}


def activation_of(gm: fx.GraphModule, node: fx.Node) -> tuple[str, float | None]:
    """What activation produced ``node``'s value: ("relu"|"leaky_relu"|"relu6"|"other", slope)."""
    while True:
        if node.op == "call_module":
            mod = gm.get_submodule(str(node.target))
            if isinstance(mod, nn.ReLU):
                return "relu", None
            if isinstance(mod, nn.LeakyReLU):
                return "leaky_relu", float(mod.negative_slope)
            if isinstance(mod, nn.ReLU6):
                return "relu6", None
            passes = isinstance(mod, PASS_MODULES)
        elif node.op == "call_function":
            if node.target is torch.cat:  # e.g. SqueezeNet's Fire: cat of two ReLU branches
                parts = node.args[0] if node.args else node.kwargs.get("tensors", ())
                kinds = {activation_of(gm, p) if isinstance(p, fx.Node) else ("other", None) for p in parts}  # type: ignore[union-attr]
                return kinds.pop() if len(kinds) == 1 else ("other", None)
            if node.target in _RELU_FUNCS:
                return "relu", None
            if node.target is F.leaky_relu:
                slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
                return "leaky_relu", float(slope)  # type: ignore[arg-type]
            if node.target is F.relu6:
                return "relu6", None
            passes = node.target in _PASS_FUNCS
        elif node.op == "call_method":
            if node.target in ("relu", "relu_"):
                return "relu", None
            passes = node.target in _PASS_METHODS
        else:
            passes = False
        if not passes or not node.args or not isinstance(node.args[0], fx.Node):
            return "other", None
        node = node.args[0]
