"""A short GPU check, run on a lent H200 (torch 2.11 there).

Covers the fast path and ``load_weights`` with CUDA models, ``verify`` on CUDA (the reference runs on
the model's device, so both use the same kernels), and a bf16 target. The result of the last run is
``benchmarks/results/gpu_check.json``. Run: ``WEIGHTPORT_CACHE=/tmp/wc PYTHONPATH=src python3 scripts/gpu_check.py``.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

import weightport
from weightport import PretrainedMixin

SHAPE = (2, 3, 128, 128)


class Holder(PretrainedMixin, nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.net = timm.create_model("resnet50", pretrained=False, num_classes=num_classes)


def main() -> dict:
    out: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    dev = torch.device("cuda")
    src = torchvision.models.resnet50()
    torch.save(src.state_dict(), "/tmp/r50.pth")
    save_file(src.state_dict(), "/tmp/r50.safetensors")

    t = time.perf_counter()
    options = {"verify": torchvision.models.resnet50, "verify_input_shape": SHAPE}
    model = Holder.from_pretrained("/tmp/r50.safetensors", num_classes=10, load_options=options)
    out["from_pretrained_s"] = time.perf_counter() - t
    out["path"] = model.weightport_report.path
    out["verify_cpu"] = model.weightport_report.verification
    model = model.to(dev)
    x = torch.randn(4, 3, 128, 128, device=dev)
    with torch.no_grad():
        out["cuda_forward_shape"] = list(model.net(x).shape)
    model.net(x).logsumexp(-1).mean().backward()
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    out["trained_step"] = True

    target = timm.create_model("resnet50", pretrained=False).to(dev)
    report = weightport.load_weights(target, "/tmp/r50.pth", verify=torchvision.models.resnet50,
                                     verify_input_shape=SHAPE)
    out["load_into_cuda_verify"] = report.verification
    out["param_device"] = str(next(target.parameters()).device)

    bf16 = timm.create_model("resnet50", pretrained=False).to(dev, torch.bfloat16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        weightport.load_weights(bf16, "/tmp/r50.safetensors")
    out["bf16_dtype"] = str(next(bf16.parameters()).dtype)
    out["bf16_lossy_warning"] = any("loses precision" in str(w.message) for w in caught)
    return out


if __name__ == "__main__":
    result = main()
    print(json.dumps(result, indent=1, default=str))
    folder = os.environ.get("OUT", "/tmp/out")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "gpu_check.json"), "w") as fh:
        json.dump(result, fh, indent=1, default=str)
