"""What proves a structural pairing that module paths leave open, during a load.

Structural alignment leaves a group of same-shaped modules unpaired when only registration order
would pair them (:mod:`weightport.layout.sibling_order`). A load proves such a group, when it can,
with the source architecture: the one ``verify=`` builds, a ``torchvision:``/``timm:`` source's, or
the known library architecture whose key layout the checkpoint has (:mod:`weightport.layout.known`).

1. The two models' dataflow (:mod:`weightport.layout.dataflow`, traced on the meta device) pairs the
   group when it tells its members apart.
2. Otherwise, when the load will be verified against that architecture (``verify`` not off), the
   pairing by order stands on the verification: a wrong one fails it and the load is refused.

Without a source architecture nothing proves the group, and the load is refused
(:class:`~weightport.errors.AmbiguousMappingError`, with the rename rules that decide it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from weightport.keys import parent
from weightport.layout.sibling_order import GroupProof

if TYPE_CHECKING:
    from torch import nn

    from weightport.loading.equivalence import Builder
    from weightport.loading.options import LoadOptions
    from weightport.loading.source_io import OpenedSource

logger = logging.getLogger("weightport")


class LoadProver:
    """The :data:`~weightport.layout.structural.Prover` of one load; builds and traces only when asked.

    Args:
        module: The model loaded into.
        opened: The opened source (its source, canonical tensors and original keys).
        origin: Key after layout and rename rules → the checkpoint key it came from.
        options: The load options (``verify``).
    """

    def __init__(self, module: nn.Module, opened: OpenedSource, origin: dict[str, str], options: LoadOptions) -> None:
        self._module, self._opened, self._origin, self._options = module, opened, origin, options
        self._dataflow: Any = None
        self._builder: Builder | None = None
        self._decided = False

    def _architecture(self) -> Builder | None:
        if not self._decided:
            from weightport.loading.equivalence import source_architecture

            self._decided = True
            self._builder = source_architecture(self._opened.source, self._opened.tensors, self._module,
                                                self._options.verify)
        return self._builder

    def _prover(self) -> Any:
        from weightport.layout.dataflow import DataflowProver
        from weightport.loading.equivalence import SourceArchitecture
        from weightport.loading.fast import FastPathUnavailable, build_on_meta
        from weightport.loading.noinit import build_without_init

        if self._dataflow is None:
            build = self._architecture()
            reference = None
            if build is not None:
                try:
                    reference = build.take_built() if isinstance(build, SourceArchitecture) else None
                    reference = reference or build_on_meta(lambda: build_without_init(build)[0])
                except FastPathUnavailable:
                    try:
                        reference = build()
                    except Exception as exc:  # the builder itself fails: nothing to prove with
                        logger.info("weightport: the source architecture could not be built: %s", exc)
            canonical = {self._opened.original_keys[k]: k for k in self._opened.tensors}
            paths = {parent(k): parent(canonical[o]) for k, o in self._origin.items() if o in canonical}
            self._dataflow = DataflowProver(reference, self._module, paths) if reference is not None else False
        return self._dataflow

    def __call__(self, source: Sequence[str], target: Sequence[str]) -> GroupProof | None:
        prover = self._prover()
        proof = prover(source, target) if prover else None
        if proof is None and self._architecture() is not None and self._options.verify not in (False, None):
            proof = GroupProof(dict(zip(source, target)), "verification",
                               "same shapes, paired by order among them; proven by the verification of the outputs")
        return proof
