"""``weightport list``: aliases, torchvision and timm names."""

from __future__ import annotations

from tests.cli.conftest import run_cli


def test_list_filters_by_glob_and_reports_each_table():
    result = run_cli("--json", "list", "resnet18")
    assert result.code == 0, result.err
    by_scheme = {item["scheme"]: item for item in result.json()}
    assert by_scheme["torchvision"]["uri"] == "torchvision:resnet18.IMAGENET1K_V1"
    assert by_scheme["torchvision"]["num_classes"] == 1000
    assert by_scheme["timm"]["name"] == "resnet18" and by_scheme["timm"]["default_tag"]
    assert all(item["name"] == "resnet18" for item in result.json())


def test_list_table_and_scheme_filter(capsys):
    from weightport.cli import main

    assert main(["list", "--scheme", "torchvision", "resnet1*"]) == 0
    out = capsys.readouterr().out
    assert "resnet101" in out and "resnet18" in out and "timm:" not in out
    assert "source(s) matching 'resnet1*'" in out
