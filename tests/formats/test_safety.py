"""Hyper-parameters of classes outside the allowlist become inert placeholders; nothing is imported
or run; the user's torch safe-globals are left exactly as they were (faults rows 6, 7, 49)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from weightport.errors import PickledModelError, UnsafeCheckpointError
from weightport.formats import ReadOptions, UnresolvedObject, read_checkpoint
from weightport.formats.safety import is_function_like

from .helpers import lightning_ckpt, small_state_dict

_MODULE = """
import os, pathlib
_MARK = pathlib.Path(os.environ["WP_TEST_MARKER"])
if os.environ.get("WP_TEST_ARMED"):
    _MARK.touch()  # importing this module counts as running checkpoint code

class Config:
    def __init__(self, depth):
        self.depth = depth

    def __setstate__(self, state):
        _MARK.touch()
        self.__dict__.update(state)
"""


@pytest.fixture
def config_class(tmp_path: Path, marker: Path, monkeypatch):
    """A user class in an importable module whose import or __setstate__ creates the marker."""
    (tmp_path / "wp_evilcfg.py").write_text(_MODULE)
    monkeypatch.setenv("WP_TEST_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(tmp_path))
    import wp_evilcfg

    yield wp_evilcfg.Config
    sys.modules.pop("wp_evilcfg", None)


def _arm(monkeypatch) -> None:
    sys.modules.pop("wp_evilcfg", None)
    monkeypatch.setenv("WP_TEST_ARMED", "1")


def test_namespace_and_numpy_hparams_load_by_default(tmp_path: Path) -> None:  # rows 6, 7
    hp = {"args": argparse.Namespace(lr=0.1, depth=18), "scale": np.float64(2.5), "dtype": np.dtype("float16")}
    path = tmp_path / "m.ckpt"
    torch.save(lightning_ckpt(small_state_dict(), hp), path)
    raw = read_checkpoint(path)
    got = raw.metadata["hyper_parameters"]
    assert got["args"] == argparse.Namespace(lr=0.1, depth=18)
    assert got["scale"] == 2.5 and got["dtype"] == np.dtype("float16")
    assert "argparse.Namespace" in raw.metadata["allowlisted_globals"]


def test_unknown_class_becomes_placeholder_without_import(
    tmp_path: Path, marker: Path, config_class, monkeypatch
) -> None:
    path = tmp_path / "m.ckpt"
    torch.save(lightning_ckpt(small_state_dict(), {"cfg": config_class(3), "lr": 0.1}), path)
    _arm(monkeypatch)
    raw = read_checkpoint(path)
    cfg = raw.metadata["hyper_parameters"]["cfg"]
    assert isinstance(cfg, UnresolvedObject) and cfg.qualname == "wp_evilcfg.Config"
    assert cfg.state == {"depth": 3}
    assert cfg.to_dict() == {"class": "wp_evilcfg.Config", "args": [], "kwargs": {}, "state": {"depth": 3}}
    assert raw.metadata["stubbed_globals"] == ["wp_evilcfg.Config"]
    assert raw.metadata["hyper_parameters"]["lr"] == 0.1
    assert "wp_evilcfg" not in sys.modules and not marker.exists()


def test_placeholders_can_be_refused(tmp_path: Path, config_class, monkeypatch) -> None:  # row 6, strict variant
    path = tmp_path / "m.ckpt"
    torch.save(lightning_ckpt(small_state_dict(), {"cfg": config_class(3)}), path)
    _arm(monkeypatch)
    with pytest.raises(UnsafeCheckpointError, match="wp_evilcfg.Config"):
        read_checkpoint(path, ReadOptions(stub_unknown_classes=False))


def test_user_allowed_class_is_real(tmp_path: Path, marker: Path, config_class) -> None:
    path = tmp_path / "m.ckpt"
    torch.save(lightning_ckpt(small_state_dict(), {"cfg": config_class(3)}), path)
    raw = read_checkpoint(path, ReadOptions(allow_globals=("wp_evilcfg.Config",)))
    cfg = raw.metadata["hyper_parameters"]["cfg"]
    assert type(cfg).__name__ == "Config" and cfg.depth == 3
    assert raw.metadata["allowlisted_globals"] == ["wp_evilcfg.Config"]
    # The user trusted this class, so its __setstate__ really ran (and left the marker).
    assert marker.exists()
    marker.unlink()


def test_functions_can_never_be_allowed(tmp_path: Path, marker: Path) -> None:
    import os

    from .helpers import touch_payload

    path = tmp_path / "m.pt"
    torch.save({"x": touch_payload(marker)}, path)
    with pytest.raises(UnsafeCheckpointError):
        read_checkpoint(path, ReadOptions(allow_globals=("posix.system",)))
    assert os.system  # untouched


def test_unknown_object_inside_a_state_dict_is_refused(tmp_path: Path, config_class, monkeypatch) -> None:
    path = tmp_path / "m.pt"
    torch.save({"fc.weight": torch.ones(2), "fc.extra": config_class(1)}, path)
    _arm(monkeypatch)
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(path)
    assert "fc.extra" in str(info.value) and "wp_evilcfg.Config" in str(info.value)


def test_module_in_hparams(tmp_path: Path) -> None:  # row 8
    path = tmp_path / "m.ckpt"
    torch.save(lightning_ckpt(small_state_dict(), {"backbone": torch.nn.Linear(2, 2)}), path)
    with pytest.raises(PickledModelError, match="hyper_parameters.backbone"):
        read_checkpoint(path)


def test_user_safe_globals_are_untouched(tmp_path: Path, config_class) -> None:  # row 49
    saved = torch.serialization.get_safe_globals()
    try:
        torch.serialization.add_safe_globals([argparse.Namespace, (np.dtype, "numpy.dtype")])
        before = set(torch.serialization.get_safe_globals())
        path = tmp_path / "m.ckpt"
        hp = {"args": argparse.Namespace(a=1), "dtype": np.dtype("float32"), "cfg": config_class(2)}
        torch.save(lightning_ckpt(small_state_dict(), hp), path)
        read_checkpoint(path)
        assert set(torch.serialization.get_safe_globals()) == before
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)


def test_safe_globals_restored_after_a_refusal(tmp_path: Path) -> None:
    before = set(torch.serialization.get_safe_globals())
    path = tmp_path / "m.pt"
    torch.save({"cfg": torch.nn.Linear(1, 1)}, path)
    with pytest.raises(PickledModelError):
        read_checkpoint(path)
    assert set(torch.serialization.get_safe_globals()) == before


@pytest.mark.parametrize(
    ("name", "function_like"),
    [
        ("posix.system", True),
        ("builtins.exec", True),
        ("subprocess.Popen", True),
        ("types.CodeType", True),
        ("torch._C.Generator", True),
        ("multiprocessing.util.spawnv_passfds", True),
        ("__main__.Config", False),
        ("mypkg.models.ResNetConfig", False),
        ("NoModule", True),
    ],
)
def test_function_like_classification(name: str, function_like: bool) -> None:
    assert is_function_like(name) is function_like


def test_denied_module_is_refused_without_importing_it(tmp_path: Path) -> None:
    import subprocess

    # data.pkl = {"x": webbrowser.BackgroundBrowser("touch marker")}, written by hand.
    pkl = b"\x80\x02}q\x00X\x01\x00\x00\x00xcwebbrowser\nBackgroundBrowser\nX\x05\x00\x00\x00touchq\x01\x85Rs."
    code = (
        "import sys, zipfile\n"
        "from weightport.formats import ReadOptions, read_checkpoint\n"
        "from weightport.errors import UnsafeCheckpointError\n"
        f"p = {str(tmp_path / 'w.pt')!r}\n"
        "with zipfile.ZipFile(p, 'w') as z:\n"
        f"    z.writestr('archive/data.pkl', {pkl!r})\n"
        "try:\n"
        "    read_checkpoint(p, ReadOptions(allow_globals=('webbrowser.BackgroundBrowser',)))\n"
        "except UnsafeCheckpointError as e:\n"
        "    print('refused', 'webbrowser' in str(e), 'webbrowser' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["refused", "True", "False"]
