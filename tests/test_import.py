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


def test_every_public_name_resolves():
    import weightport

    for name in weightport.__all__:
        value = getattr(weightport, name)
        assert value is not None, name
    assert callable(weightport.resolve) and callable(weightport.list_sources)
