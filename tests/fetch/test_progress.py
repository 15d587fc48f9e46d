"""When the download bar is drawn, and in which units sizes are written."""

from __future__ import annotations

import pytest

from weightport.fetch.progress import show_progress
from weightport.units import format_bytes


@pytest.mark.parametrize(("env", "explicit", "shown"), [
    ({"WEIGHTPORT_PROGRESS": "1"}, None, True),
    ({"WEIGHTPORT_PROGRESS": "0"}, None, False),
    ({"HF_HUB_DISABLE_PROGRESS_BARS": "1"}, None, False),
    ({"WEIGHTPORT_PROGRESS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}, None, True),  # ours is more specific
    ({"WEIGHTPORT_PROGRESS": "1"}, False, False),  # -q / progress=False wins over everything
    ({}, None, False),  # stderr is not a terminal under pytest
])
def test_the_progress_switches_in_order(monkeypatch, env, explicit, shown) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert show_progress(explicit) is shown


def test_a_download_with_the_bar_forced_on_draws_it_in_megabytes(file_server, tmp_path, monkeypatch, capsys) -> None:
    from weightport.fetch.download import download

    monkeypatch.setenv("WEIGHTPORT_PROGRESS", "1")
    url = file_server.add("/w.bin", b"x" * 2_500_000)
    download(url, tmp_path / "w.bin", progress=None)
    err = capsys.readouterr().err
    assert "2.50M" in err or "2.5M" in err  # tqdm's SI prefix with the same divisor as format_bytes
    assert "MiB" not in err


def test_sizes_are_decimal_megabytes_everywhere() -> None:
    assert format_bytes(44_774_412) == "44.8 MB"
    assert format_bytes(999) == "999 B" and format_bytes(1_500) == "1.5 kB" and format_bytes(2_000_000_000) == "2.0 GB"
