"""``python -m weightport_bench.finetune``: the fine-tune benchmark."""

import sys

from weightport_bench.finetune.cli import main

if __name__ == "__main__":
    sys.exit(main())
