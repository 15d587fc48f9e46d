"""Prove which same-shaped module of one model is which of another's, from how data flows through them.

Two implementations of one architecture compute the same thing: a shortcut convolution reads the
block's input and feeds the residual sum, the main branch's first convolution feeds a norm layer that
feeds another convolution. Where module paths cannot tell two same-shaped siblings apart
(:mod:`weightport.layout.sibling_order`), their places in the dataflow can:

1. **Trace** each model on the meta device (no memory, no computation): its parameters and buffers
   are replaced by meta tensors (``torch.func.functional_call``), a meta input is fed, and every
   torch function called is recorded (a ``TorchFunctionMode``). An op belongs to the module whose
   parameter (or a tensor made from its parameters alone) it consumes.
2. **Graph**: each parameter-owning module gets its nearest parameterised producers and consumers,
   looking through parameter-free ops (activations, additions, reshapes).
3. **Refine labels** Weisfeiler-Lehman style over both graphs at once: a module's label starts as its
   signature (its tensors' roles and shapes) and each round becomes the label with its producers' and
   consumers' labels.
4. **Accept** a pairing of a group only when, in some round, the group's members have labels unique
   within the group on each side that match one-to-one; the first round where the two sides' labels
   of the group stop agreeing ends the search (not proven).

Anything that cannot be traced on meta (data-dependent control flow, ``.item()``) proves nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weightport.layout.sibling_order import GroupProof, Indexes, index_paths, order_proof

if TYPE_CHECKING:
    from torch import nn

__all__ = ["DataflowProver", "ModuleGraph", "trace"]

logger = logging.getLogger("weightport")

INPUT = "<input>"
ROUNDS = 6


@dataclass
class ModuleGraph:
    """Parameter-owning modules of a model and their nearest parameterised neighbours in its dataflow.

    Attributes:
        signatures: Module path → its tensors' (role, squeezed shape), sorted.
        producers: Module path → modules whose output reaches it through parameter-free ops only.
        consumers: The inverse of ``producers``.
    """

    signatures: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    producers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    consumers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def _signature(tensors: list[tuple[str, Any]]) -> tuple[Any, ...]:
    from weightport.layout.structural import role_of

    return tuple(sorted((role_of(name), tuple(d for d in t.shape if d != 1)) for name, t in tensors))


def _input_shape(model: nn.Module) -> tuple[int, ...]:
    from torch import nn

    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = tuple(cfg.get("input_size") or ())
    image_size = getattr(model, "image_size", None)
    if not size and isinstance(image_size, int):
        size = (3, image_size, image_size)
    if not size:
        size = (3, 224, 224)
    in_chans = next((m.in_channels for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), size[0])
    return (1, in_chans, *size[1:])


def trace(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> ModuleGraph | None:
    """The module graph of ``model`` traced on the meta device, or ``None`` when it cannot be traced."""
    import torch
    from torch.func import functional_call
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves

    graph = ModuleGraph()
    state: dict[str, torch.Tensor] = {}
    owner: dict[int, frozenset[str]] = {}  # tensor made from one module's parameters alone -> that module
    frontier: dict[int, frozenset[str]] = {}  # data tensor -> the parameterised modules it last came from
    alive: list[torch.Tensor] = []  # ids stay unique while the trace runs
    for path, sub in model.named_modules():
        own = [(n, t) for n, t in [*sub.named_parameters(recurse=False), *sub.named_buffers(recurse=False)]
               if t is not None]
        for name, t in own:
            meta = torch.empty(t.shape, dtype=t.dtype, device="meta")
            state[f"{path}.{name}" if path else name] = meta
            owner[id(meta)] = frozenset({path})
            alive.append(meta)
        if own:
            graph.signatures[path] = _signature(own)

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
            outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
            if not outputs:
                return out
            owners = frozenset().union(*(owner[id(t)] for t in inputs if id(t) in owner))
            data = [t for t in inputs if id(t) not in owner]
            alive.extend(outputs)
            if owners and not data:
                for t in outputs:
                    owner[id(t)] = owners
                return out
            came_from = frozenset().union(*(frontier.get(id(t), frozenset()) for t in data))
            if owners:
                for module in owners:
                    graph.producers[module].update(came_from - {module})
                    for producer in came_from - {module}:
                        graph.consumers[producer].add(module)
                came_from = owners
            for t in outputs:
                owner.pop(id(t), None)
                frontier[id(t)] = came_from
            return out

    x = torch.empty(input_shape or _input_shape(model), device="meta")
    frontier[id(x)] = frozenset({INPUT})
    modes = {sub: sub.training for sub in model.modules()}
    model.eval()  # as it is used, and a training batch norm refuses a batch of one
    try:
        with torch.no_grad(), Recorder():
            functional_call(model, state, (x,), strict=False)
    except Exception as exc:  # data-dependent code, a model that needs real values
        logger.info("weightport: %s cannot be traced on the meta device: %s", type(model).__name__, exc)
        return None
    finally:
        for sub, training in modes.items():
            sub.training = training
    graph.signatures[INPUT] = ("input",)
    return graph


def _refined(graphs: Sequence[ModuleGraph]) -> list[list[dict[str, int]]]:
    """The labels of every round, for each graph, in one label space."""
    space: dict[Any, int] = {}
    labels = [{m: space.setdefault(("sig", s), len(space)) for m, s in g.signatures.items()} for g in graphs]
    rounds = [labels]
    for _ in range(ROUNDS):
        labels = [
            {m: space.setdefault((old[m],
                                  tuple(sorted(old.get(p, -1) for p in g.producers.get(m, ()))),
                                  tuple(sorted(old.get(c, -1) for c in g.consumers.get(m, ())))), len(space))
             for m in g.signatures}
            for g, old in zip(graphs, labels)
        ]
        rounds.append(labels)
    return rounds


class DataflowProver:
    """Proves pairings between the modules of two models from their dataflow (see the module docs).

    Args:
        source: The checkpoint's architecture (any device; only shapes are used).
        target: The model loaded into.
        source_paths: Maps an alignment's checkpoint module path to the path in ``source`` (when the
            checkpoint's keys were renamed before alignment); identity when not given.
    """

    def __init__(self, source: nn.Module, target: nn.Module, source_paths: dict[str, str] | None = None) -> None:
        self._models = (source, target)
        self._source_paths = source_paths or {}
        self._rounds: list[list[dict[str, int]]] | None = None
        self._traced = False
        self._index: tuple[Indexes, Indexes] | None = None

    def _labels(self) -> list[list[dict[str, int]]] | None:
        if not self._traced:
            self._traced = True
            graphs = [trace(m) for m in self._models]
            if all(g is not None for g in graphs):
                self._rounds = _refined([g for g in graphs if g is not None])
        return self._rounds

    def _indexes(self) -> tuple[Indexes, Indexes]:
        if self._index is None:
            source, target = (index_paths(name for name, _ in m.named_modules()) for m in self._models)
            self._index = (source, target)
        return self._index

    def __call__(self, source: Sequence[str], target: Sequence[str]) -> GroupProof | None:
        """A proven one-to-one pairing of the modules ``source`` with ``target``, or ``None``.

        The finest labels on which the two sides still agree split the group into parts; a part of one
        module on each side is paired, a larger one (the same module in consecutive blocks) only as
        far as its members' positions in a sequence prove (:func:`~weightport.layout.sibling_order.order_proof`).
        """
        rounds = self._labels()
        if rounds is None:
            return None
        in_source = [self._source_paths.get(p, p) for p in source]
        agreed = None
        for src_labels, tgt_labels in rounds:
            if any(p not in src_labels for p in in_source) or any(p not in tgt_labels for p in target):
                return None  # a module the forward pass never uses
            a = [src_labels[p] for p in in_source]
            b = [tgt_labels[p] for p in target]
            if sorted(a) != sorted(b):
                break
            agreed = (a, b)
        if agreed is None:
            return None
        parts_src: dict[int, list[str]] = defaultdict(list)
        parts_tgt: dict[int, list[str]] = defaultdict(list)
        for path, label in zip(in_source, agreed[0]):
            parts_src[label].append(path)
        for path, label in zip(target, agreed[1]):
            parts_tgt[label].append(path)
        back = dict(zip(in_source, source))
        pairs: dict[str, str] = {}
        src_index, tgt_index = self._indexes()
        for label, members in parts_src.items():
            if len(members) == 1:
                pairs[back[members[0]]] = parts_tgt[label][0]
                continue
            proof = order_proof(members, parts_tgt[label], src_index, tgt_index)
            if proof is None:
                return None
            pairs.update({back[s]: t for s, t in proof.pairs.items()})
        return GroupProof(pairs, "dataflow", "same shapes, paired by their places in the two models' dataflow"
                          + (" and their position in a sequence" if len(parts_src) < len(source) else ""))
