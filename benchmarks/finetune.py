"""Fine-tune baselines benchmark (the same code as ``weightport bench finetune``).

python benchmarks/finetune.py                       # EfficientNet-Lite0 ImageNet weights vs scratch on digits
python benchmarks/finetune.py resnet18 scratch --arch torchvision:resnet18 --protocols linear full lp-ft --seeds 0 1 2
python benchmarks/finetune.py --devices 2 --strategy ddp   # two CPU processes
"""

import sys

from weightport_bench.finetune import main

if __name__ == "__main__":
    sys.exit(main())
