"""Output equivalence (the `verify=` option): run the source architecture and the loaded target on one input.

A load can pair every tensor and still be wrong (a transposed kernel, BN eps, a channel order). When
the source architecture can be built — a ``torchvision:`` or ``timm:`` source, or a builder the user
gives — both models run on the same input and the largest output difference is reported; above the
tolerance it is a :class:`~weightport.errors.VerificationError`.

When the target's head was re-initialised, both heads are replaced by ``Identity`` (in place while the
two run, then put back: no weight is copied) so that the features feeding them are compared instead.
A 1-channel target is fed a grey image and the source the same image repeated on 3 channels (the
channels fitter makes these equal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weightport.errors import UsageError, VerificationError
from weightport.keys import parent
from weightport.layout.head import head_modules
from weightport.loading.hints import hyperparameter_hint
from weightport.loading.hyperparams import describe_differences, hyperparameter_differences, hyperparameter_distance
from weightport.loading.state import load_state

if TYPE_CHECKING:
    import torch
    from torch import nn

    from weightport.registry.source import Source
    from weightport.report import LoadPlan

Builder = Callable[[], "nn.Module"]


@dataclass
class Verification:
    """The outcome of a verification: the largest absolute output difference and what was compared."""

    max_abs_diff: float
    tolerance: float
    input_shape: tuple[int, ...]
    compared: str  # "logits" or "features (heads replaced by Identity)"
    differences: list[str] = field(default_factory=list)  # hyper-parameters that differ, in words
    against: str = ""  # the architecture compared with, when it was recognised or derived

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        out = {"max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance, "passed": self.passed,
               "input_shape": list(self.input_shape), "compared": self.compared}
        if self.differences:
            out["differences"] = list(self.differences)
        if self.against:
            out["against"] = self.against
        return out


def source_builder(source: Source) -> Builder | None:
    """A builder of the source's own architecture (random init), when the source names one."""
    arch = source.meta.get("architecture")
    if not arch:
        return None
    if source.scheme == "torchvision":
        def build_tv() -> nn.Module:
            import torchvision

            return torchvision.models.get_model(arch, weights=None)

        return build_tv
    if source.scheme == "timm":
        def build_timm() -> nn.Module:
            import timm

            return timm.create_model(arch, pretrained=False)

        return build_timm
    return None


class SourceArchitecture:
    """A builder of the architecture a checkpoint was saved from, and where it came from.

    Calling it builds the architecture (random weights). ``built`` is the build the choice among several
    known architectures was made on (meta device, no initialisation), handed to the verification once
    so that it is not built twice.
    """

    def __init__(self, build: Builder, against: str, note: str | None = None, built: nn.Module | None = None,
                 others: list[tuple[str, Builder]] | None = None) -> None:
        self._build, self.against, self.note, self._built = build, against, note, built
        #: The other known architectures the checkpoint's key layout fits (``(uri, builder)``): a state dict
        #: does not say which of them wrote it, so a refusal names what each would need.
        self.others = others or []

    def __call__(self) -> nn.Module:
        return self._build()

    def take_built(self) -> nn.Module | None:
        """The meta build made while choosing, once (a second caller builds its own)."""
        built, self._built = self._built, None
        return built


def source_architecture(source: Source, tensors: dict[str, Any], module: nn.Module,
                        verify: Any = "auto") -> SourceArchitecture | None:
    """The architecture a checkpoint was saved from, when it is known; the one place that decides it.

    ``verify=``'s builder when it is one, else the source's own (a ``torchvision:``/``timm:`` source),
    else the known architecture whose key layout the checkpoint has (:func:`weightport.layout.known.recognise`);
    when several have it (timm's ``efficientnet_b0`` and ``tf_efficientnet_b0``), the one whose
    hyper-parameters are closest to ``module``'s (:func:`~weightport.loading.hyperparams.hyperparameter_distance`).
    """
    if callable(verify):
        return SourceArchitecture(verify, "")
    derived = source_builder(source)
    if derived is not None:
        return SourceArchitecture(derived, f"{source.scheme}:{source.meta.get('architecture')}")
    from weightport.layout.known import recognise

    candidates = recognise(tensors)
    if not candidates:
        return None
    if len(candidates) == 1:
        return SourceArchitecture(candidates[0].builder(), candidates[0].uri)
    built: dict[str, nn.Module | None] = {}
    distances: dict[str, float] = {}
    for c in candidates:  # built one at a time: one with nothing different is the closest there can be
        built[c.uri] = _on_meta(c.builder())
        distances[c.uri] = _distance(built[c.uri], module)
        if distances[c.uri] == 0:
            break
    chosen = min((c for c in candidates if c.uri in distances), key=lambda c: distances[c.uri])
    note = (f"the checkpoint's key layout fits {', '.join(c.uri for c in candidates)}; verified against "
            f"{chosen.uri}, whose hyper-parameters are closest to the model's")
    others = [(c.uri, c.builder()) for c in candidates if c.uri != chosen.uri]
    return SourceArchitecture(chosen.builder(), chosen.uri, note, built[chosen.uri], others)


def _other_architectures(others: list[tuple[str, Builder]], target: nn.Module,
                         pairs: dict[str, str]) -> list[tuple[str, list[str], str]]:
    """For each other architecture the checkpoint's layout fits: ``(uri, its differences from the model, the
    hint that makes the model compute what it computes)``. Only on a refusal: they are built on meta here."""
    described = []
    for uri, build in others:
        reference = _on_meta(build)
        if reference is None:
            continue
        differences = hyperparameter_differences(reference, target, pairs)
        lines = describe_differences(differences) or ["no hyper-parameter (it computes differently elsewhere)"]
        hint = hyperparameter_hint(differences, reference, target, pairs) if differences else "load with rename="
        described.append((uri, lines, hint))
    return described


def _on_meta(build: Builder) -> nn.Module | None:
    """``build()`` on the meta device without drawing its initialisation, or None when it cannot be."""
    from weightport.loading.fast import build_on_meta
    from weightport.loading.noinit import build_without_init

    try:
        return build_on_meta(lambda: build_without_init(build)[0])
    except Exception:
        return None


def _distance(reference: nn.Module | None, module: nn.Module) -> float:
    return hyperparameter_distance(reference, module) if reference is not None else float("inf")


@dataclass
class AutoVerification:
    """What ``verify="auto"`` decided: the source architecture to verify against (or none) and why."""

    builder: SourceArchitecture | None
    against: str
    note: str | None = None


def auto_verification(source: Source, tensors: dict[str, Any], module: nn.Module) -> AutoVerification:
    """Verify by default a load that mapped another implementation's layout, when its architecture is known:
    a ``torchvision:``/``timm:`` source, or a checkpoint whose key layout is a known architecture's.

    Its callers ask it only for a plan that maps another layout (``LoadPlan.maps_another_layout``): they decide
    that before importing this module, so a load by its own names imports no verification."""
    found = source_architecture(source, tensors, module)
    if found is None:
        return AutoVerification(None, "", "not verified: the checkpoint's architecture is not known; pass "
                                "verify=<a function building it> to compare outputs")
    return AutoVerification(found, found.against, found.note)


def verify_load(module: nn.Module, plan: LoadPlan, source: Source, source_state: dict[str, torch.Tensor],
                builder: Builder | bool, *, tolerance: float | None = None,
                input_shape: tuple[int, ...] | None = None) -> Verification:
    """Compare ``module`` (after the load) with the source architecture loaded with ``source_state``.

    Args:
        module: The model the plan was applied to.
        plan: The applied plan (for ``into`` and the re-initialised keys).
        source: The resolved source (for its architecture and input size).
        source_state: The checkpoint's canonical tensors.
        builder: A callable building the source architecture, or ``True`` to derive it from the source.
        tolerance: The largest allowed absolute difference (default ``1e-4`` scaled by the output's size).
        input_shape: The input to use (default: the source's input size, else ``(2, C, 224, 224)``).

    Raises:
        UsageError: No builder was given and the source's architecture is unknown.
        VerificationError: The outputs differ by more than the tolerance.
    """
    build = source_builder(source) if builder is True else builder
    if not callable(build):
        raise UsageError(
            f"cannot build the architecture of {source.uri} to verify the load",
            hint="pass verify=<a function returning the source model>, e.g. verify=lambda: MyNet()",
        )
    auto = input_shape is None
    try:
        reference = _reference(build, source_state)
    except RuntimeError as exc:
        raise VerificationError(
            f"verification of {source.uri}: the source architecture does not take the checkpoint as it is "
            f"({str(exc).splitlines()[0]})",
            hint="pass verify=<a function returning the model the checkpoint was saved from>",
        ) from exc
    target = module.get_submodule(plan.into) if plan.into else module
    pairs = _module_pairs(plan)
    differences = hyperparameter_differences(reference, target, pairs)
    compared = "logits"
    heads: list[str] = []
    own: list[str] = []
    if plan.reinitialized:
        heads = _reinitialised_modules(plan)  # the planner's decision, not decided again here
        # The source architecture is another model: the same paths when it has the same kind of module there
        # (same library), else its own head by the one head rule (another implementation: torchvision's
        # MobileNetV3 `classifier` is a stack whose last layer is the head, timm's is the head itself).
        own = heads if all(_same_module_kind(reference, target, p) for p in heads) else head_modules(reference)
        compared = "features (heads replaced by Identity)"
    # Both in eval mode with their heads set aside (Identity, in place: no copy of a weight) while they run,
    # and put back as they were whatever happens (a builder may hand out a model of the user's).
    with ExitStack() as borrowed:
        borrowed.enter_context(_borrowed(reference, own))
        borrowed.enter_context(_borrowed(target, heads))
        full = _input_shape(source, target)
        # A small input first (a 64-pixel image costs little next to the load); models that only take
        # their own input size (ViT, Swin) get that.
        shapes = [input_shape] if input_shape else list(dict.fromkeys(
            [(1, full[1], 64, 64), (1, *full[1:]),
             *((1, full[1], *size[1:]) for size in _own_sizes(target, reference))]))
        out_ref, out, shape = _run_first(reference, target, shapes, auto=auto, source=source, plan=plan)
        if out.shape != out_ref.shape and not head_modules(target) and head_modules(reference):
            # A headless model (timm's num_classes=0): compare with the source's features.
            borrowed.enter_context(_borrowed(reference, head_modules(reference)))
            compared = "features (the model has no head)"
            out_ref, out = _run_both(reference, target, shape)
        if out.shape != out_ref.shape:
            raise VerificationError(
                f"verification of {source.uri}: outputs have different shapes, {tuple(out.shape)} (model) vs "
                f"{tuple(out_ref.shape)} (source architecture)",
                hint="verify compares the model the weights went into; pass verify_input_shape or a builder "
                "whose model ends where yours does",
            )
        diff, tol = _measure(out, out_ref, tolerance)
        native = (1, *full[1:])
        if auto and diff > tol and tuple(shape) != native:
            # Some architectures fix their padding for the input size they were built for (TensorFlow-style
            # static "same" padding): a smaller input is not what either model computes for. The source's own
            # input size decides.
            try:
                out_ref, out = _run_both(reference, target, native)
            except Exception:
                pass
            else:
                shape = native
                diff, tol = _measure(out, out_ref, tolerance)
    result = Verification(diff, tol, tuple(shape), compared, describe_differences(differences))
    if not result.passed or differences:  # a hyper-parameter that differs computes differently on some input
        named = ("; the two differ in what the checkpoint does not hold: " + "; ".join(result.differences)
                 if differences else "; no hyper-parameter differs, so the pairing itself is wrong")
        hint = (hyperparameter_hint(differences, reference, target, pairs) if differences else
                "map the tensors explicitly with rename={'<checkpoint key>': '<model key>'} (weightport plan "
                "shows the structural pairings), or load into the library's own implementation")
        against = getattr(build, "against", "")
        others = _other_architectures(getattr(build, "others", []), target, pairs)
        if others:
            named += "".join(f"; the checkpoint's key layout also fits {uri} (a state dict does not say which "
                             f"wrote it), which differs from the model in: {'; '.join(lines)}"
                             for uri, lines, _ in others)
            hint = "; ".join([f"if the checkpoint comes from {against}: {hint}",
                              *(f"if from {uri}: {other_hint}" for uri, _, other_hint in others)])
        raise VerificationError(
            f"verification of {source.uri} failed: the {compared} differ from the source architecture's"
            f"{f' ({against})' if against else ''} by {diff:.3g} (tolerance {tol:.3g}) on an input of shape "
            f"{tuple(shape)}{named}",
            hint=hint + "; verify=False loads without this check",
        )
    return result


def _run_first(reference: nn.Module, target: nn.Module, shapes: list[tuple[int, ...]], *, auto: bool,
               source: Source, plan: LoadPlan) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Both models' outputs on the first of ``shapes`` both take (only the one given when not ``auto``)."""
    try:
        for i, shape in enumerate(shapes):
            try:
                out_ref, out = _run_both(reference, target, shape)
                return out_ref, out, shape
            except Exception as exc:
                if not auto:
                    raise
                if i == len(shapes) - 1:
                    raise VerificationError(
                        f"verification of {source.uri}: the source architecture and the model did not both run on "
                        f"any of the inputs tried ({', '.join(str(s) for s in shapes)}): {exc}",
                        hint="pass verify_input_shape=(1, C, H, W) for an input both take, or verify=False",
                    ) from exc
    except VerificationError:
        raise
    except RuntimeError as exc:  # e.g. re-initialised modules inside the body, replaced by Identity
        raise VerificationError(
            f"verification of {source.uri}: the models do not run once the re-initialised modules "
            f"({', '.join(_reinitialised_modules(plan)) or 'none'}) are set aside: {str(exc).splitlines()[0]}",
            hint="verify compares what was loaded; re-initialise only the head to verify, or pass verify=False",
        ) from exc
    raise UsageError("verification was given no input shape to try")


def _reference(build: Builder, source_state: dict[str, Any]) -> nn.Module:
    """The source architecture holding the checkpoint, built without drawing an initialisation it replaces:
    on the meta device and given the checkpoint's tensors (no copy) when every tensor it holds comes from
    the checkpoint, else built on the CPU and loaded; built normally only when something the checkpoint
    does not hold would be left uninitialised."""
    from weightport.loading.fast import FastPathUnavailable, build_on_meta
    from weightport.loading.noinit import build_without_init, uninitialised_left

    built = build.take_built() if isinstance(build, SourceArchitecture) else None
    try:
        reference = built if built is not None else build_on_meta(lambda: build_without_init(build)[0])
        load_state(reference, source_state, strict=True, assign=True)
        if not any(t.is_meta for t in [*reference.parameters(), *reference.buffers()]):
            return reference
    except (FastPathUnavailable, RuntimeError, ValueError):  # e.g. a module that checks its _metadata
        pass
    reference, skipped = build_without_init(build)
    load_state(reference, source_state, strict=True)
    if uninitialised_left(reference, skipped) is None:
        return reference
    reference = build()
    load_state(reference, source_state, strict=True)
    return reference


def _measure(out: torch.Tensor, out_ref: torch.Tensor, tolerance: float | None) -> tuple[float, float]:
    """The largest absolute difference, and the tolerance (default ``1e-4`` scaled by the output's size)."""
    tol = tolerance if tolerance is not None else 1e-4 * max(1.0, float(out_ref.abs().max()))
    return float((out - out_ref).abs().max()), tol


def _run_both(reference: nn.Module, target: nn.Module, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    x_ref = x.repeat(1, 3, *([1] * (x.dim() - 2))) if x.dim() >= 2 and shape[1] == 1 else x
    with torch.no_grad():
        # Both run where the target runs, so that both use the same kernels (TF32 on GPUs...).
        device, dtype = _placement(target)
        reference.to(device=device, dtype=dtype)
        out_ref = _first_tensor(reference(x_ref.to(device=device, dtype=dtype))).float().cpu()
        out = _first_tensor(target(x.to(device=device, dtype=dtype))).float().cpu()
    return out_ref, out


def _own_sizes(*models: nn.Module) -> list[tuple[int, ...]]:
    """Input sizes the models declare (timm's ``pretrained_cfg``, torchvision's ``image_size``)."""
    sizes = []
    for m in models:
        cfg = getattr(m, "pretrained_cfg", None) or {}
        if cfg.get("input_size"):
            sizes.append(tuple(cfg["input_size"]))
        image_size = getattr(m, "image_size", None)
        if isinstance(image_size, int):
            sizes.append((3, image_size, image_size))
    return sizes


def _module_pairs(plan: LoadPlan) -> dict[str, str]:
    """Source module path → target module path (relative to ``plan.into``), from the loaded tensors."""
    prefix = f"{plan.into}." if plan.into else ""
    pairs: dict[str, str] = {}
    for r in plan.loaded:
        target = r.target_key[len(prefix):] if r.target_key.startswith(prefix) else r.target_key
        pairs.setdefault(parent(r.source_key), parent(target))
    return pairs


def _reinitialised_modules(plan: LoadPlan) -> list[str]:
    """The modules owning the keys the plan re-initialised, relative to the module loaded into."""
    prefix = f"{plan.into}." if plan.into else ""
    owners = dict.fromkeys(parent(r.key[len(prefix):] if r.key.startswith(prefix) else r.key)
                           for r in plan.reinitialized)
    return [o for o in owners if o]


def _same_module_kind(reference: nn.Module, target: nn.Module, path: str) -> bool:
    """Whether both models have a module of the same class at ``path``."""
    try:
        return type(reference.get_submodule(path)) is type(target.get_submodule(path))
    except AttributeError:
        return False


def _set_aside(model: nn.Module, paths: list[str]) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace the modules at ``paths`` by ``Identity`` in place (no copy of any weight).

    Returns:
        ``(parent, name, module)`` for each replaced module, in order, to put them back.
    """
    from torch import nn

    replaced = []
    for path in paths:
        parent_path, _, name = path.rpartition(".")
        owner = model.get_submodule(parent_path) if parent_path else model
        replaced.append((owner, name, owner.get_submodule(name)))
        setattr(owner, name, nn.Identity())
    return replaced


@contextmanager
def _borrowed(model: nn.Module, heads: list[str]) -> Iterator[None]:
    """``model`` in eval mode with its ``heads`` set aside (``Identity``) while the block runs; afterwards,
    whatever happens in it, every module is back in its place with its own training mode."""
    modes = [(m, m.training) for m in model.modules()]
    replaced: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        model.eval()
        for path in heads:  # one at a time, so that a failure half-way still puts back what was replaced
            replaced += _set_aside(model, [path])
        yield
    finally:
        for owner, name, original in reversed(replaced):
            setattr(owner, name, original)
        for m, training in modes:
            m.training = training


def _input_shape(source: Source, target: nn.Module) -> tuple[int, ...]:
    from torch import nn

    size: tuple[int, ...] = (3, 224, 224)
    if source.preprocessing is not None and source.preprocessing.input_size:
        size = tuple(source.preprocessing.input_size)
    in_chans = next((m.in_channels for m in target.modules() if isinstance(m, nn.modules.conv._ConvNd)), size[0])
    return (2, in_chans, *size[1:])


def _first_tensor(output: Any) -> torch.Tensor:
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (list, tuple)) and output:
        return _first_tensor(output[0])
    if isinstance(output, dict) and output:
        return _first_tensor(next(iter(output.values())))
    raise VerificationError(f"cannot compare a model output of type {type(output).__name__}")


def _placement(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model computes (its first parameter's device and dtype)."""
    import torch

    first = next(iter(model.parameters()), None)
    return (first.device, first.dtype) if first is not None else (torch.device("cpu"), torch.float32)
