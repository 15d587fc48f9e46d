"""``python -m weightport.bench.finetune``: the fine-tune benchmark."""

import sys

from weightport.bench.finetune.cli import main

if __name__ == "__main__":
    sys.exit(main())
