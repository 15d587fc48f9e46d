from __future__ import annotations

import pytest

from weightport.errors import InvalidSourceError
from weightport.fetch.mirror import mirror_url


def test_longest_prefix_wins():
    spec = "https://a/=https://m1/;https://a/deep/=https://m2/"
    assert mirror_url("https://a/deep/x.pth", spec) == "https://m2/x.pth"
    assert mirror_url("https://a/x.pth", spec) == "https://m1/x.pth"
    assert mirror_url("https://b/x.pth", spec) == "https://b/x.pth"


def test_environment_read_when_called(monkeypatch):
    assert mirror_url("https://a/x") == "https://a/x"
    monkeypatch.setenv("WEIGHTPORT_MIRROR", "https://a/=http://127.0.0.1:1/")
    assert mirror_url("https://a/x") == "http://127.0.0.1:1/x"


def test_bad_entry_says_how_to_write_it():
    with pytest.raises(InvalidSourceError, match="WEIGHTPORT_MIRROR"):
        mirror_url("https://a/x", "https://a/")
