"""A short GPU check (run on a lent H200, torch 2.11): the fast path and load_weights with CUDA models,
verify on CUDA (reference run on the same device), bf16 targets. Result: benchmarks/results/gpu_check.json."""
import json
import os
import time

import timm
import torch
import torchvision
from torch import nn

import weightport
from weightport import PretrainedMixin

out = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
dev = torch.device("cuda")

class Holder(PretrainedMixin, nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.net = timm.create_model("resnet50", pretrained=False, num_classes=num_classes)

src = torchvision.models.resnet50()
torch.save(src.state_dict(), "/tmp/r50.pth")
from safetensors.torch import save_file

save_file(src.state_dict(), "/tmp/r50.safetensors")

t = time.perf_counter()
m = Holder.from_pretrained("/tmp/r50.safetensors", num_classes=10, load_options={"verify": torchvision.models.resnet50, "verify_input_shape": (2, 3, 128, 128)})
out["from_pretrained_s"] = time.perf_counter() - t
out["path"] = m.weightport_report.path
out["verify_cpu"] = m.weightport_report.verification
m = m.to(dev)
x = torch.randn(4, 3, 128, 128, device=dev)
with torch.no_grad():
    y = m.net(x)
out["cuda_forward_shape"] = list(y.shape)
loss = m.net(x).logsumexp(-1).mean(); loss.backward()
opt = torch.optim.SGD(m.parameters(), lr=0.01); opt.step()
out["trained_step"] = True

# load_weights into a model already on the GPU, with verify on the GPU, and into bf16
target = timm.create_model("resnet50", pretrained=False).to(dev)
rep = weightport.load_weights(target, "/tmp/r50.pth", verify=torchvision.models.resnet50, verify_input_shape=(2, 3, 128, 128))
out["load_into_cuda_verify"] = rep.verification
out["param_device"] = str(next(target.parameters()).device)
bf = timm.create_model("resnet50", pretrained=False).to(dev, torch.bfloat16)
import warnings

with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    rep = weightport.load_weights(bf, "/tmp/r50.safetensors")
out["bf16_dtype"] = str(next(bf.parameters()).dtype)
out["bf16_lossy_warning"] = any("loses precision" in str(x.message) for x in w)
print(json.dumps(out, indent=1, default=str))
os.makedirs(os.environ.get("OUT", "/tmp/out"), exist_ok=True)
json.dump(out, open(os.path.join(os.environ.get("OUT", "/tmp/out"), "gpu_check.json"), "w"), indent=1, default=str)
