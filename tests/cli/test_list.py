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


def test_without_a_pattern_families_are_listed_a_page_at_a_time_in_plain_columns():
    result = run_cli("list")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["family", "scheme", "names", "e.g."]
    assert len(lines) == 1 + 50 + 1  # header, the default --limit of rows, the summary
    assert "showing 50 (--limit 0 for all, a pattern for names)" in lines[-1]
    assert not any(c in result.out for c in "│┃━")  # not a terminal: no box drawing, no wrapped cells
    families = {line.split()[0] for line in lines[1:-1]}
    assert {"resnet", "efficientnet"} & families
    everything = run_cli("--json", "list", "--limit", "0")
    assert {"resnet", "vit", "convnextv2"} <= {f["family"] for f in everything.json()}


def test_the_libraries_index_is_kept_and_read_without_importing_them(tmp_path):
    import os
    from pathlib import Path

    from tests.cli.conftest import REPO, SRC

    first = run_cli("--json", "list", "resnet18")
    assert first.code == 0, first.err
    assert list((Path(os.environ["WEIGHTPORT_CACHE"]) / "index").glob("sources-*.json"))
    # A timm and a torchvision that cannot even be imported: the listing is the same, from the index.
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("timm", "torchvision"):
        (broken / f"{name}.py").write_text(f"raise ImportError('{name} must not be imported to list')\n")
    path = os.pathsep.join([str(broken), str(SRC), str(REPO), os.environ.get("PYTHONPATH", "")])
    again = run_cli("--json", "list", "resnet18", env={"PYTHONPATH": path})
    assert again.code == 0, again.err
    assert again.json() == first.json()
