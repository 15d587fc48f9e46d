"""Write ``src/weightport/layout/known_architectures.json``: the key layouts of known library architectures.

    PYTHONPATH=src python scripts/known_architectures.py

Each torchvision classification model, and each timm model of the families torchvision also
implements (and their TensorFlow-ported twins, which share a key layout but pad and normalise
differently), is built without weights (on the meta device where it can be) and fingerprinted with
:func:`weightport.layout.known.fingerprint`. A checkpoint whose fingerprint is in the table is
recognised as that architecture, so a structural load of it can be verified against it by default.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import defaultdict

import torch

from weightport.layout.known import TABLE, fingerprint

TIMM_FAMILIES = (
    "resnet", "resnext", "wide_resnet", "densenet", "vgg", "regnetx", "regnety", "efficientnet_b", "efficientnetv2",
    "tf_efficientnet_b", "tf_efficientnetv2", "efficientnet_lite", "tf_efficientnet_lite", "mobilenetv2",
    "mobilenetv3", "tf_mobilenetv3", "mnasnet", "semnasnet", "inception_v3", "tf_inception_v3", "adv_inception_v3",
    "gluon_inception_v3", "convnext_", "swin_", "swinv2_", "vit_tiny", "vit_small", "vit_base", "vit_large",
    "vit_huge", "maxvit_",
)


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def build(library: str, name: str) -> torch.nn.Module | None:
    import timm
    import torchvision

    make = (lambda: torchvision.models.get_model(name, weights=None)) if library == "torchvision" else (
        lambda: timm.create_model(name, pretrained=False))
    try:
        with torch.device("meta"):
            return make()
    except Exception:  # some builders compute on tensors (torchvision's RegNet widths): build normally
        pass
    try:
        model = make()
    except Exception as exc:
        print(f"skip {library}:{name}: {exc}", file=sys.stderr)
        return None
    return model


def main() -> int:
    import timm
    import torchvision

    warnings.filterwarnings("ignore")
    entries: dict[str, list[list[str]]] = defaultdict(list)
    names = [("torchvision", n) for n in torchvision.models.list_models(module=torchvision.models)]
    names += [("timm", n) for n in timm.list_models() if n.startswith(TIMM_FAMILIES)]
    for library, name in names:
        if (library, name) in {("torchvision", "regnet_y_128gf"), ("timm", "regnety_1280"), ("timm", "regnety_2560")}:
            continue  # 2.5 GB and more to build off the meta device
        model = build(library, name)
        if model is None:
            continue
        names_hash, shapes_hash = fingerprint(shapes(model))
        entries[names_hash].append([library, name, shapes_hash])
        del model
    TABLE.write_text(json.dumps(dict(sorted(entries.items())), indent=0, sort_keys=True) + "\n")
    print(f"{sum(len(v) for v in entries.values())} architectures, {len(entries)} key layouts -> {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
