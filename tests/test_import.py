import subprocess
import sys


def test_import_weightport_is_cheap():
    code = (
        "import sys, weightport; "
        "heavy = [m for m in ('torch', 'timm', 'torchvision', 'lightning', 'pytorch_lightning', 'huggingface_hub') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
