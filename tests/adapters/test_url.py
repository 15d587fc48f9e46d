from __future__ import annotations

import pytest

from weightport.errors import InvalidSourceError
from weightport.registry import resolve


def test_url_with_pin():
    s = resolve("https://h.example/a/m.pth#sha256=" + "AB" * 32)
    assert (s.scheme, s.location, s.filename, s.sha256) == ("https", "https://h.example/a/m.pth", "m.pth", "ab" * 32)


def test_http_url_without_pin():
    s = resolve("http://h.example/m.safetensors")
    assert (s.scheme, s.sha256) == ("http", None)


@pytest.mark.parametrize("bad", ["https://h/m.pth#sha256=123", "https://h/m.pth#md5=" + "a" * 32])
def test_bad_fragment(bad):
    with pytest.raises(InvalidSourceError, match="sha256"):
        resolve(bad)


def test_resolving_and_fetching_urls_imports_no_ml_library(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, weightport; from weightport.registry import resolve, get_adapter;"
        "s = resolve('https://h.example/m.pth'); get_adapter(s.scheme); resolve('hf:a/b'); resolve('pkg:x/y.pth');"
        "heavy = [m for m in ('torch', 'torchvision', 'timm', 'huggingface_hub') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(src)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
