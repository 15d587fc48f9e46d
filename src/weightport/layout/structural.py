"""Structural alignment: pair a checkpoint's tensors with a model's when their names differ.

Two libraries that implement the same architecture register the same modules, with the same
tensor shapes, in (nearly) the same order, under different names. :func:`align` finds that
correspondence from the shapes and the module structure alone, in ``O(n log n)``:

1. **Group** tensors by their parent module (``blocks.0.bn1.weight`` → module ``blocks.0.bn1``) and
   give each module a *signature*: the multiset of its tensors' (role, shape) pairs, where roles are
   normalised across libraries (``gamma``/``beta`` → ``weight``/``bias``, ``moving_variance`` →
   ``running_var`` ...) and shapes drop size-1 dimensions (``(C, 1, 1)`` ≡ ``(C,)``).
   ``num_batches_tracked`` is left out of signatures: some exporters drop it; so are buffers the
   model derives from its configuration (``relative_position_index``: :mod:`weightport.layout.derived`).
2. **Anchor** on signatures that occur exactly once on each side (patience-diff style). The longest
   run of anchors that is in the same order on both sides cuts the two module sequences into
   segments; anchors out of that order are still paired (a unique signature is strong evidence) but
   with less confidence.
3. **Pair segments**: consecutive segments are merged into a window until every signature in the
   window occurs as often on one side as on the other. A signature found once on each side of the
   window pairs its two modules (this tolerates local reordering: a norm layer registered before its
   convolution in one library, a position embedding before or after the patch projection). Several
   modules of one signature pair only as far as something proves it
   (:mod:`weightport.layout.sibling_order`): their positions in a sequence (``blocks.3`` ↔
   ``blocks.3``), their names (``norm1`` ↔ ``ln_1``), or the caller's ``prove`` (the two models'
   dataflow, :mod:`weightport.layout.dataflow`). Registration order alone proves nothing for
   siblings (a shortcut registered before the main branch in one library, after it in another): such
   a group is left unpaired and recorded in :attr:`Alignment.ambiguous`, and
   :meth:`Alignment.raise_for_ambiguity` refuses it with the rename rules that would decide it.
4. **Fill gaps**: a window that ends with exactly one unpaired module on each side whose roles and
   ranks agree but whose shapes differ (a classifier with another class count, a stem with another
   number of input channels) pairs them with low confidence, so that fitters or re-initialisation
   can take over.
5. **Pair tensors** inside each module pair by role, then by identical leaf name, then by shape
   (with leaf-name similarity as the tie-break). Two candidates that nothing tells apart raise
   :class:`~weightport.errors.AmbiguousMappingError` listing both.

How "not the same architecture" is signalled: :func:`align` does not raise for it. A signature that
occurs a different number of times on the two sides of a window (``resnet18`` → ``resnet34``: four
``conv(64, 64, 3, 3)`` against six) cannot be paired without guessing; its modules stay unpaired and
are described in :attr:`Alignment.divergences`. :attr:`Alignment.same_architecture` is false when
there is any, and :meth:`Alignment.raise_for_divergence` raises
:class:`~weightport.errors.ArchitectureMismatchError` with the first divergences. Tensors present on
one side only (an extra head in the target, an auxiliary head in the checkpoint) are simply
unmatched; the caller decides whether that is acceptable.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from weightport.errors import AmbiguousMappingError, ArchitectureMismatchError
from weightport.layout.derived import is_derived
from weightport.layout.sibling_order import GroupProof, index_paths, order_proof
from weightport.layout.spec import TensorSpec
from weightport.text import listing

#: Proves the pairing of a group of same-shaped modules (source paths, target paths), or returns ``None``.
Prover = Callable[[Sequence[str], Sequence[str]], "GroupProof | None"]

__all__ = [
    "Alignment",
    "AmbiguousGroup",
    "Divergence",
    "GroupProof",
    "Pairing",
    "Prover",
    "align",
    "alignment_to_rules",
    "register_role_alias",
    "role_of",
]

# Leaf names that mean the same thing in different libraries. A name not listed keeps itself as its
# role when both sides use it, and is otherwise an anonymous "param" matched by shape.
_ROLE_ALIASES: dict[str, str] = {
    "weight": "weight",
    "bias": "bias",
    "gamma": "weight",
    # A per-channel layer scale: torchvision's ConvNeXt ``layer_scale (C, 1, 1)`` is timm's ``gamma (C,)``.
    # Both must have one role, or the blocks holding them never meet.
    "layer_scale": "weight",
    "lambda1": "weight",  # Hugging Face's DINOv2 layer scales (timm: ``ls1.gamma``)
    "lambda2": "weight",
    "beta": "bias",
    "kernel": "weight",
    "running_mean": "running_mean",
    "moving_mean": "running_mean",
    "running_var": "running_var",
    "moving_var": "running_var",
    "moving_variance": "running_var",
    "running_variance": "running_var",
    "num_batches_tracked": "num_batches_tracked",
    "in_proj_weight": "weight",  # torch.nn.MultiheadAttention's fused q/k/v projection
    "in_proj_bias": "bias",
    "pos_embed": "pos_embed",
    "position_embedding": "pos_embed",
    "position_embeddings": "pos_embed",
    "pos_embedding": "pos_embed",
    "cls_token": "cls_token",
    "class_token": "cls_token",
    "class_embedding": "cls_token",
    "dist_token": "dist_token",
    "distillation_token": "dist_token",
}
_ANONYMOUS = "param"
_OPTIONAL_ROLES = frozenset({"num_batches_tracked"})

# Confidence of each kind of evidence (multiplied: module-level evidence × tensor-level evidence).
_CONF_ANCHOR = 1.0
_CONF_ANCHOR_OUT_OF_ORDER = 0.85
_CONF_RANK_SINGLE = 0.98
# Several same-shaped modules: as sure as what proved their pairing (sibling_order.CONFIDENCE), never
# as sure as a pairing that a unique shape decides; less again in a window merged over anchors.
_CONF_RANK_MERGED_WINDOW = 0.75
_CONF_GAP = 0.6
_CONF_REGROUPED = 0.85
_CONF_RESHAPED = 0.95
_CONF_BY_SIMILAR_NAME = 0.9
_CONF_BY_SHAPE = 0.9


def register_role_alias(leaf_name: str, role: str) -> None:
    """Declare that a tensor named ``leaf_name`` in some library plays ``role`` (e.g. ``"scale"`` → ``"weight"``)."""
    _ROLE_ALIASES[leaf_name] = role


def role_of(key: str) -> str:
    """The normalised role of a state-dict key (``"x.gamma"`` → ``"weight"``), or ``"param"`` if unknown."""
    return _ROLE_ALIASES.get(key.rpartition(".")[2], _ANONYMOUS)


@dataclass(frozen=True)
class Pairing:
    """One structural correspondence.

    Attributes:
        source_key: The checkpoint key.
        target_key: The model key.
        confidence: How sure the alignment is, in ``(0, 1]`` (1: a shape found once on each side).
        reason: Why, in words, for the report.
    """

    source_key: str
    target_key: str
    confidence: float
    reason: str


@dataclass(frozen=True)
class Divergence:
    """A place where the two structures differ so that pairing would be a guess.

    Attributes:
        source_keys: Checkpoint keys involved (left unpaired).
        target_keys: Model keys involved (left unpaired).
        detail: What differs, in words.
    """

    source_keys: tuple[str, ...]
    target_keys: tuple[str, ...]
    detail: str


@dataclass(frozen=True)
class AmbiguousGroup:
    """Same-shaped modules that nothing but their registration order would pair (left unpaired).

    Attributes:
        source_modules: The checkpoint's modules, in checkpoint order.
        target_modules: The model's modules, in registration order.
        by_order: ``(checkpoint key, model key)`` of the pairing by order, tensor by tensor: the rename
            rules a user edits to name the right pairs.
    """

    source_modules: tuple[str, ...]
    target_modules: tuple[str, ...]
    by_order: tuple[tuple[str, str], ...]


@dataclass
class Alignment:
    """The result of :func:`align`.

    Attributes:
        pairs: The pairings found, in target order.
        unmatched_source: Checkpoint keys not paired, in checkpoint order.
        unmatched_target: Model keys not paired, in model order.
        divergences: Where the structures differ (empty when they are the same architecture).
        ambiguous: Groups of same-shaped modules left unpaired because nothing proves their pairing.
    """

    pairs: list[Pairing] = field(default_factory=list)
    unmatched_source: list[str] = field(default_factory=list)
    unmatched_target: list[str] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    ambiguous: list[AmbiguousGroup] = field(default_factory=list)

    @property
    def same_architecture(self) -> bool:
        """Whether nothing contradicts the two sides being one architecture (unmatched leftovers allowed)."""
        return not self.divergences

    def raise_for_divergence(self) -> None:
        """Raise if the structures differ.

        Raises:
            ArchitectureMismatchError: There are divergences; the message shows the first ones.
        """
        if self.divergences:
            raise ArchitectureMismatchError(
                "the checkpoint and the model are not the same architecture:\n  "
                + listing((f"- {d.detail}" for d in self.divergences), 5, sep="\n  "),
                hint="load into the matching architecture, or give explicit rename rules for the part you want",
            )

    def raise_for_ambiguity(self) -> None:
        """Refuse a pairing that only registration order would decide.

        Raises:
            AmbiguousMappingError: Some group is ambiguous; the message names each group's candidates on
                both sides, the hint gives the rename rules of the pairing by order to correct and pass.
        """
        if not self.ambiguous:
            return
        groups = [f"checkpoint {', '.join(g.source_modules)} ↔ model {', '.join(g.target_modules)}"
                  for g in self.ambiguous]
        rules = {f"^{re.escape(s)}$": t for g in self.ambiguous for s, t in g.by_order}
        error = AmbiguousMappingError(
            f"{len(self.ambiguous)} group(s) of modules with the same shapes could be paired in more than one "
            "way, and only their registration order would decide (siblings such as a shortcut and a main "
            "branch are registered in any order): " + listing(groups, 4, sep="; "),
            hint="name the pairs with rename= — these rules pair them by order; exchange the model keys "
            f"where that is wrong and pass them: rename={rules!r}; or pass verify=<a function building the "
            "checkpoint's model> so that the two models' dataflow proves the pairing",
        )
        error.rename = rules  # type: ignore[attr-defined]
        raise error


@dataclass
class _Module:
    path: str
    position: int
    tensors: list[TensorSpec]
    signature: tuple[tuple[str, tuple[int, ...]], ...] = ()


def _counted(key: str) -> bool:
    """Whether a tensor counts in its module's signature (optional and derived tensors do not)."""
    return role_of(key) not in _OPTIONAL_ROLES and not is_derived(key)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _modules(specs: Sequence[TensorSpec], shared_leaves: set[str]) -> list[_Module]:
    """Group specs by parent module, in first-appearance order, and compute signatures."""
    groups: dict[str, list[TensorSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.key.rpartition(".")[0], []).append(spec)
    modules = []
    for position, (path, tensors) in enumerate(groups.items()):
        signature = sorted(
            (_signature_role(t.key, shared_leaves), _squeezed(t.shape))
            for t in tensors
            if _counted(t.key)
        )
        modules.append(_Module(path, position, tensors, tuple(signature)))
    return modules


def _signature_role(key: str, shared_leaves: set[str]) -> str:
    leaf = key.rpartition(".")[2]
    role = role_of(key)
    # An unknown leaf name both libraries use (``q_bias``) is as good as a role; otherwise anonymous.
    return f"name:{leaf}" if role == _ANONYMOUS and leaf in shared_leaves else role


def _longest_increasing(pairs: list[tuple[int, int]]) -> set[int]:
    """Indices into ``pairs`` (sorted by first item) of a longest run increasing in the second item."""
    tails: list[int] = []  # smallest tail value of an increasing run of each length
    tail_index: list[int] = []
    parent = [-1] * len(pairs)
    for i, (_, value) in enumerate(pairs):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[k] = value
            tail_index[k] = i
        parent[i] = tail_index[k - 1] if k else -1
    chosen: set[int] = set()
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        chosen.add(i)
        i = parent[i]
    return chosen


def _balanced_windows(
    src_modules: list[_Module],
    tgt_modules: list[_Module],
    cuts: list[tuple[int, int]],
    paired_src: set[int],
    paired_tgt: set[int],
) -> Iterator[tuple[list[_Module], list[_Module], int]]:
    """Unpaired modules between consecutive cuts, merged until every signature is balanced.

    Yields ``(source modules, target modules, number of segments merged)``; the last window is
    yielded at the end whether balanced or not.
    """
    window_src: list[_Module] = []
    window_tgt: list[_Module] = []
    segments = 0
    balance: dict[tuple, int] = defaultdict(int)  # source count - target count, per signature
    unbalanced = 0  # signatures whose balance is not zero
    s_start = t_start = 0
    for s_cut, t_cut in [*cuts, (len(src_modules), len(tgt_modules))]:
        for modules, window, paired, step, start, stop in (
            (src_modules, window_src, paired_src, 1, s_start, s_cut),
            (tgt_modules, window_tgt, paired_tgt, -1, t_start, t_cut),
        ):
            for m in modules[start:stop]:
                if m.position in paired:
                    continue
                window.append(m)
                before = balance[m.signature]
                balance[m.signature] = before + step
                unbalanced += (before == 0) - (before == -step)
        segments += 1
        s_start, t_start = s_cut + 1, t_cut + 1
        if unbalanced == 0 or s_cut == len(src_modules):
            if window_src or window_tgt:
                yield window_src, window_tgt, segments
            window_src, window_tgt, segments = [], [], 0
            balance.clear()
            unbalanced = 0


def align(source: Sequence[TensorSpec], target: Sequence[TensorSpec], *, min_confidence: float = 0.5,
          prove: Prover | None = None) -> Alignment:
    """Pair checkpoint tensors with model tensors by structure.

    Args:
        source: The checkpoint's tensors, in checkpoint order.
        target: The model's tensors, in ``state_dict()`` (registration) order.
        min_confidence: Pairings less sure than this are dropped (their keys stay unmatched).
        prove: Asked to prove the pairing of a group of same-shaped modules that their paths do not
            (:mod:`weightport.layout.sibling_order`); without it, or when it returns ``None``, the group
            stays unpaired in :attr:`Alignment.ambiguous`.

    Returns:
        The pairings, the unmatched keys of each side and the divergences (see the module docs).

    Raises:
        AmbiguousMappingError: Two pairings are equally plausible; the message lists the candidates.
    """
    source_leaves = {s.key.rpartition(".")[2] for s in source}
    shared = {t.key.rpartition(".")[2] for t in target} & source_leaves
    src_modules = _modules(source, shared)
    tgt_modules = _modules(target, shared)

    module_pairs: list[tuple[_Module, _Module, float, str]] = []
    paired_src: set[int] = set()
    paired_tgt: set[int] = set()

    def pair(s: _Module, t: _Module, confidence: float, reason: str) -> None:
        module_pairs.append((s, t, confidence, reason))
        paired_src.add(s.position)
        paired_tgt.add(t.position)

    def pair_tensor(s: TensorSpec, t: TensorSpec) -> None:
        # A pairing across modules grouped differently: wrap each tensor as a one-tensor module.
        sm = _Module(s.key.rpartition(".")[0], -1, [s])
        tm = _Module(t.key.rpartition(".")[0], -1, [t])
        module_pairs.append((sm, tm, _CONF_REGROUPED, "same role and shape, grouped into other modules"))

    # 2. anchors: signatures found exactly once on each side.
    src_by_sig: dict[tuple, list[_Module]] = defaultdict(list)
    tgt_by_sig: dict[tuple, list[_Module]] = defaultdict(list)
    for m in src_modules:
        src_by_sig[m.signature].append(m)
    for m in tgt_modules:
        tgt_by_sig[m.signature].append(m)
    anchors = sorted(
        (src_by_sig[sig][0].position, tgt_by_sig[sig][0].position)
        for sig in src_by_sig
        if len(src_by_sig[sig]) == 1 and len(tgt_by_sig.get(sig, ())) == 1
    )
    in_order = _longest_increasing(anchors)
    for i, (s_pos, t_pos) in enumerate(anchors):
        if i in in_order:
            pair(src_modules[s_pos], tgt_modules[t_pos], _CONF_ANCHOR, "only module of its shapes on both sides")
        else:
            pair(
                src_modules[s_pos],
                tgt_modules[t_pos],
                _CONF_ANCHOR_OUT_OF_ORDER,
                "only module of its shapes on both sides (registered in another order)",
            )

    # 3-4. segments between in-order anchors, merged into balanced windows, then gaps.
    cuts = [anchors[i] for i in sorted(in_order)]
    divergences: list[Divergence] = []
    ambiguous: list[AmbiguousGroup] = []
    src_index = index_paths(m.path for m in src_modules)
    tgt_index = index_paths(m.path for m in tgt_modules)

    def proven(src_list: list[_Module], tgt_list: list[_Module]) -> GroupProof | None:
        src_paths, tgt_paths = [m.path for m in src_list], [m.path for m in tgt_list]
        proof = order_proof(src_paths, tgt_paths, src_index, tgt_index)
        if proof is None and prove is not None:
            proof = prove(src_paths, tgt_paths)
        if proof is not None and proof.covers(src_paths, tgt_paths):
            return proof
        ambiguous.append(_ambiguous_group(src_list, tgt_list))
        return None

    for window_src, window_tgt, segments in _balanced_windows(src_modules, tgt_modules, cuts, paired_src, paired_tgt):
        _pair_window(window_src, window_tgt, segments, pair, pair_tensor, divergences, proven)

    # 5. tensors inside each module pair (tensors without a counterpart stay unmatched).
    pairs = [
        Pairing(sk, tk, round(confidence * tensor_conf, 4), f"{reason}; {tensor_reason}")
        for s, t, confidence, reason in module_pairs
        for sk, tk, tensor_conf, tensor_reason in _pair_tensors(s, t)
        if confidence * tensor_conf >= min_confidence
    ]

    target_order = {spec.key: i for i, spec in enumerate(target)}
    pairs.sort(key=lambda p: target_order[p.target_key])
    paired_source_keys = {p.source_key for p in pairs}
    paired_target_keys = {p.target_key for p in pairs}
    return Alignment(
        pairs=pairs,
        unmatched_source=[s.key for s in source if s.key not in paired_source_keys],
        unmatched_target=[t.key for t in target if t.key not in paired_target_keys],
        divergences=divergences,
        ambiguous=ambiguous,
    )


def _ambiguous_group(src_list: list[_Module], tgt_list: list[_Module]) -> AmbiguousGroup:
    by_order: list[tuple[str, str]] = []
    for s, t in zip(src_list, tgt_list):
        try:
            by_order.extend((sk, tk) for sk, tk, _, _ in _pair_tensors(s, t))
        except AmbiguousMappingError:
            continue
    return AmbiguousGroup(tuple(m.path for m in src_list), tuple(m.path for m in tgt_list), tuple(by_order))


def _pair_window(
    window_src: list[_Module],
    window_tgt: list[_Module],
    segments: int,
    pair: Callable[[_Module, _Module, float, str], None],
    pair_tensor: Callable[[TensorSpec, TensorSpec], None],
    divergences: list[Divergence],
    proven: Callable[[list[_Module], list[_Module]], GroupProof | None],
) -> None:
    """Pair the modules of each balanced signature in a window, as far as ``proven`` proves a group of
    several; record the unbalanced ones."""
    by_sig_src: dict[tuple, list[_Module]] = defaultdict(list)
    by_sig_tgt: dict[tuple, list[_Module]] = defaultdict(list)
    for m in window_src:
        by_sig_src[m.signature].append(m)
    for m in window_tgt:
        by_sig_tgt[m.signature].append(m)
    left_src: list[_Module] = []
    left_tgt: list[_Module] = []
    for sig, src_list in by_sig_src.items():
        tgt_list = by_sig_tgt.get(sig, [])
        if len(src_list) == len(tgt_list) == 1:
            if segments > 1:
                pair(src_list[0], tgt_list[0], _CONF_RANK_MERGED_WINDOW, "same shapes, in a locally reordered window")
            else:
                pair(src_list[0], tgt_list[0], _CONF_RANK_SINGLE, "same shapes at the same place")
        elif len(src_list) == len(tgt_list):
            proof = proven(src_list, tgt_list)
            if proof is None:
                continue
            confidence, reason = proof.confidence, proof.reason
            if segments > 1 and proof.kind == "position":
                confidence, reason = min(confidence, _CONF_RANK_MERGED_WINDOW), f"{reason} (locally reordered)"
            by_path = {m.path: m for m in tgt_list}
            for s in src_list:
                pair(s, by_path[proof.pairs[s.path]], confidence, reason)
        elif tgt_list:
            divergences.append(
                Divergence(
                    tuple(t.key for m in src_list for t in m.tensors),
                    tuple(t.key for m in tgt_list for t in m.tensors),
                    f"{len(src_list)} checkpoint module(s) with tensors {_show(sig)} "
                    f"({_paths(src_list)}) against {len(tgt_list)} in the model ({_paths(tgt_list)})",
                )
            )
        else:
            left_src.extend(src_list)
    left_tgt.extend(m for sig, lst in by_sig_tgt.items() if sig not in by_sig_src for m in lst)
    # 4. gap: one module left on each side with the same roles and ranks, only the sizes differ.
    if len(left_src) == 1 and len(left_tgt) == 1 and _same_roles_fitting(left_src[0], left_tgt[0]):
        pair(left_src[0], left_tgt[0], _CONF_GAP, "the one module left at this place on each side, shapes differ")
    elif left_src and left_tgt and not _pair_regrouped(left_src, left_tgt, pair, pair_tensor):
        # Both sides have modules here that nothing pairs: a different structure, not an extra part.
        divergences.append(
            Divergence(
                tuple(t.key for m in left_src for t in m.tensors),
                tuple(t.key for m in left_tgt for t in m.tensors),
                f"{len(left_src)} checkpoint module(s) ({_paths(left_src)}) and {len(left_tgt)} model module(s) "
                f"({_paths(left_tgt)}) at the same place have no counterpart of the same shapes",
            )
        )


def _pair_regrouped(
    left_src: list[_Module], left_tgt: list[_Module], pair: Callable[[_Module, _Module, float, str], None],
    pair_tensor: Callable[[TensorSpec, TensorSpec], None],
) -> bool:
    """Pair leftover tensors one by one when the libraries group them into modules differently.

    Only when every (role, shape) the two sides share occurs as often on both (e.g. a class token and
    a position embedding held by the root module in one library and by an ``embeddings`` module and
    an ``encoder`` module in another), and only one side has tensors the other lacks (a checkpoint's
    classifier against a headless model stays unpaired) -- or what each side lacks is one whole module
    whose roles and ranks match the other's, only the sizes differ (torchvision's ``heads.head`` with
    1000 classes against timm's ``head`` with 5: the gap rule's pair, for the head rule to decide);
    otherwise nothing is paired.
    """
    by_src: dict[tuple, list[TensorSpec]] = defaultdict(list)
    by_tgt: dict[tuple, list[TensorSpec]] = defaultdict(list)
    for modules, groups in ((left_src, by_src), (left_tgt, by_tgt)):
        for m in modules:
            for t in m.tensors:
                if _counted(t.key):
                    groups[(role_of(t.key), _squeezed(t.shape))].append(t)
    shared = by_src.keys() & by_tgt.keys()
    if not shared or any(len(by_src[k]) != len(by_tgt[k]) for k in shared):
        return False
    gap: tuple[_Module, _Module] | None = None
    if by_src.keys() - shared and by_tgt.keys() - shared:
        gap = _one_module_each(left_src, [t for k in by_src.keys() - shared for t in by_src[k]],
                               left_tgt, [t for k in by_tgt.keys() - shared for t in by_tgt[k]])
        if gap is None:
            return False  # each side has tensors the other lacks: a different structure, not an extra part
    for key in shared:
        src_list = by_src[key]
        if key[0] == _ANONYMOUS and len(src_list) > 1:
            return False  # nameless tensors of one shape, in modules that do not correspond: a guess
        for s, t in zip(src_list, by_tgt[key]):
            pair_tensor(s, t)
    if gap is not None:
        pair(*gap, _CONF_GAP, "the one module left at this place on each side, shapes differ")
    return True


def _one_module_each(left_src: list[_Module], unshared_src: list[TensorSpec], left_tgt: list[_Module],
                     unshared_tgt: list[TensorSpec]) -> tuple[_Module, _Module] | None:
    """The two modules, when the tensors only one side has are exactly one whole module on each side and the
    two have the same roles and ranks (only the sizes differ)."""
    def whole(modules: list[_Module], unshared: list[TensorSpec]) -> _Module | None:
        keys = {t.key for t in unshared}
        owners = [m for m in modules if keys & {t.key for t in m.tensors}]
        if len(owners) != 1 or {t.key for t in owners[0].tensors if _counted(t.key)} != keys:
            return None
        return owners[0]

    s, t = whole(left_src, unshared_src), whole(left_tgt, unshared_tgt)
    if s is None or t is None or not _same_roles_fitting(s, t):
        return None
    return s, t


def _same_roles_fitting(a: _Module, b: _Module) -> bool:
    """Same roles, and each role's tensors of one rank, or a conv kernel against the Linear it equals."""
    from weightport.layout.fit.flatten import kernel_and_linear

    if _roles_and_ranks(a) == _roles_and_ranks(b):
        return True
    sa, sb = _role_shapes(a), _role_shapes(b)
    return [r for r, _ in sa] == [r for r, _ in sb] and all(
        len(x) == len(y) or kernel_and_linear(x, y) for (_, x), (_, y) in zip(sa, sb)
    )


def _role_shapes(module: _Module) -> list[tuple[str, tuple[int, ...]]]:
    return sorted((role_of(t.key), t.shape) for t in module.tensors if _counted(t.key))


def _roles_and_ranks(module: _Module) -> list[tuple[str, int]]:
    return sorted((role_of(t.key), len(t.shape)) for t in module.tensors if _counted(t.key))


def _show(signature: tuple) -> str:
    return ", ".join(f"{role}{list(shape)}" for role, shape in signature) or "(none)"


def _paths(modules: list[_Module], limit: int = 4) -> str:
    return listing((m.path or "<root>" for m in modules), limit)


_TOKEN = re.compile(r"[a-z]+|\d+")


def _tokens(name: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(name.lower()))


def _pair_tensors(s: _Module, t: _Module) -> Iterator[tuple[str, str, float, str]]:
    """Pair the tensors of two paired modules: by role, by identical leaf name, then by shape."""
    src_left = list(s.tensors)
    tgt_left = list(t.tensors)

    def shape_note(a: TensorSpec, b: TensorSpec) -> tuple[float, str]:
        if a.shape == b.shape:
            return 1.0, "shape equal"
        if _squeezed(a.shape) == _squeezed(b.shape):
            return _CONF_RESHAPED, f"shape {a.shape}->{b.shape} (size-1 dims)"
        return 1.0, f"shape differs {a.shape} vs {b.shape}"

    def take(
        matcher: Callable[[TensorSpec, TensorSpec], bool], confidence: float, how: str
    ) -> Iterator[tuple[str, str, float, str]]:
        """Pair each tensor that ``matcher`` ties to exactly one counterpart, with no rival for it."""
        for a in list(src_left):
            candidates = [b for b in tgt_left if matcher(a, b)]
            rivals = [x for x in src_left if x is not a and candidates and matcher(x, candidates[0])]
            if len(candidates) == 1 and not rivals:
                b = candidates[0]
                factor, note = shape_note(a, b)
                src_left.remove(a)
                tgt_left.remove(b)
                yield a.key, b.key, confidence * factor, f"{how}, {note}"

    def same_role(a: TensorSpec, b: TensorSpec) -> bool:
        role = role_of(a.key)
        return role != _ANONYMOUS and role == role_of(b.key)

    def same_leaf(a: TensorSpec, b: TensorSpec) -> bool:
        return a.key.rpartition(".")[2] == b.key.rpartition(".")[2]

    def same_shape(a: TensorSpec, b: TensorSpec) -> bool:
        return role_of(a.key) == role_of(b.key) == _ANONYMOUS and _squeezed(a.shape) == _squeezed(b.shape)

    yield from take(same_role, 1.0, "same role")
    yield from take(same_leaf, 1.0, "same tensor name")
    yield from take(same_shape, _CONF_BY_SHAPE, "only tensor of its shape")
    # What is left has rivals: break ties by leaf-name similarity, or refuse.
    for a in list(src_left):
        candidates = [b for b in tgt_left if same_shape(a, b)]
        if not candidates:
            continue
        a_tokens = _tokens(a.key.rpartition(".")[2])
        scored = sorted(
            ((len(a_tokens & _tokens(b.key.rpartition(".")[2])), b) for b in candidates),
            key=lambda x: -x[0],
        )
        best = scored[0][0]
        if len(scored) > 1 and scored[1][0] == best:
            raise AmbiguousMappingError(
                f"checkpoint tensor {a.key!r} {a.shape} could equally go to any of "
                + ", ".join(repr(b.key) for score, b in scored if score == best)
                + f" (module {s.path or '<root>'!r} → {t.path or '<root>'!r});"
                " their names and shapes do not tell them apart",
                hint=f"name the right target with a rename rule, e.g. rename={{{'^' + re.escape(a.key) + '$'!r}: "
                f"{scored[0][1].key!r}}} (rules are re.sub patterns on checkpoint keys)",
            )
        b = scored[0][1]
        src_left.remove(a)
        tgt_left.remove(b)
        yield a.key, b.key, _CONF_BY_SIMILAR_NAME, "closest name among tensors of its shape"


def alignment_to_rules(alignment: Alignment, *, regex: bool = False) -> dict[str, str]:
    """A rename table of the alignment's pairs, to save as JSON, review, and reuse as explicit rules.

    Args:
        alignment: The result of :func:`align`.
        regex: Write each source key as an anchored, escaped pattern (``^blocks\\.0\\.weight$``) for
            rename options that take regular expressions; by default the keys are exact.

    Returns:
        ``{source_key: target_key}`` (or ``{pattern: target_key}``), in target order.
    """
    if regex:
        return {f"^{re.escape(p.source_key)}$": p.target_key for p in alignment.pairs}
    return {p.source_key: p.target_key for p in alignment.pairs}
