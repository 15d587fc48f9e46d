"""Fine-tune baselines benchmark (the same code as ``weightport bench finetune``).

python benchmarks/finetune.py                       # EfficientNet-Lite0/1/2 ImageNet weights vs scratch, 3 seeds
python benchmarks/finetune.py --source ./my.ckpt --source-arch ./my.ckpt=resnet18 --source scratch:resnet18
python benchmarks/finetune.py --model pkg.Classifier --data pkg.Data --body encoder --source ./enc.pt --source scratch
python benchmarks/finetune.py --devices 2 --strategy ddp   # two CPU processes
"""

import sys

from weightport_bench.finetune import main

if __name__ == "__main__":
    sys.exit(main())
