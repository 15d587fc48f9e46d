"""Remote source forms load into a model through load_weights, with provenance in the report."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch

import weightport
from tests.helpers.models import TinyNet, randomize_bn


def safetensors_bytes(model: torch.nn.Module) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in model.state_dict().items()})


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_url_source_loads_and_is_pinned(file_server):
    torch.manual_seed(0)
    trained = randomize_bn(TinyNet())
    body = safetensors_bytes(trained)
    url = file_server.add("/tiny.safetensors", body)
    target = TinyNet()
    report = weightport.load_weights(target, f"{url}#sha256={hashlib.sha256(body).hexdigest()}")
    assert same_weights(target, trained)
    assert report.source.sha256 == hashlib.sha256(body).hexdigest()
    assert file_server.count("GET") == 1


def test_hub_source_loads_through_the_client(hub):
    torch.manual_seed(1)
    trained = TinyNet()
    hub.add_repo("org/tiny", {"model.safetensors": safetensors_bytes(trained), "config.json": b'{"width": 8}'})
    target = TinyNet()
    report = weightport.load_weights(target, "hf:org/tiny")
    assert same_weights(target, trained)
    assert report.source.uri == "hf:org/tiny"


def test_pickle_from_a_url_loads_with_weights_only(file_server):
    torch.manual_seed(2)
    trained = TinyNet()
    buffer = io.BytesIO()
    torch.save({"state_dict": trained.state_dict()}, buffer)
    url = file_server.add("/tiny.pth", buffer.getvalue())
    target = TinyNet()
    weightport.load_weights(target, url)
    assert same_weights(target, trained)


def test_offline_load_of_a_cached_url_opens_no_socket(file_server, monkeypatch):
    trained = TinyNet()
    url = file_server.add("/tiny.safetensors", safetensors_bytes(trained))
    weightport.load_weights(TinyNet(), url)
    monkeypatch.setenv("WEIGHTPORT_OFFLINE", "1")
    target = TinyNet()
    weightport.load_weights(target, url)
    assert same_weights(target, trained) and file_server.count() == 1


@pytest.mark.parametrize("missing", ["https://weights.example.invalid/none.pth"])
def test_offline_miss_fails_without_trying_the_network(monkeypatch, missing):
    import socket

    def no_lookup(*args, **kwargs):
        raise AssertionError("an offline load looked a host up")

    monkeypatch.setenv("WEIGHTPORT_OFFLINE", "1")
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    with pytest.raises(weightport.errors.OfflineCacheMissError, match="none.pth"):
        weightport.load_weights(TinyNet(), missing)
