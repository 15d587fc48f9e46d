"""``weightport plan``: the dry run against a model the user names, and its exit code."""

from __future__ import annotations

import json

from tests.cli.conftest import run_cli


def test_plan_that_loads_exits_0_and_saves_reusable_rules(ckpts, tmp_path):
    rules = tmp_path / "rules.json"
    result = run_cli("--json", "plan", str(ckpts["ckpt"]), "--model", f"{ckpts['models']}:TinyNet",
                     "--save", str(rules))
    assert result.code == 0, result.err
    data = result.json()
    assert data["ok"] is True and data["coverage"] == 1.0
    assert data["counts"]["loaded"] == 14 and data["counts"]["missing"] == 0
    assert data["source"]["container"] == "state_dict"
    assert {r["source_key"]: r["target_key"] for r in data["loaded"]}["model.fc.weight"] == "fc.weight"
    saved = json.loads(rules.read_text())
    # The smallest rule set: one prefix rule explains all 14 renames (not 14 per-key regexes).
    assert saved["source"] == f"file:{ckpts['ckpt']}" and saved["rename"] == {"^model\\.": ""}
    again = run_cli("--json", "plan", str(ckpts["ckpt"]), "--model", f"{ckpts['models']}:TinyNet",
                    "--rename", str(rules), "--match", "exact")
    assert again.code == 0, again.err
    assert {r["source_key"]: r["target_key"] for r in again.json()["loaded"]} == {
        r["source_key"]: r["target_key"] for r in data["loaded"]}


def test_plan_that_would_fail_a_strict_load_exits_3(ckpts):
    spec = f"{ckpts['models']}:tiny_with_extra"
    result = run_cli("plan", str(ckpts["safetensors"]), "--model", spec, "--num-classes", "10")
    assert result.code == 3
    assert "[WOULD FAIL]" in result.out and "missing: extra.{weight,bias}" in result.out
    assert "a load would fail: 2 model weight(s) are not in" in result.out
    # The hint is in the command's spelling, and following it works.
    assert "hint: pass --no-strict to keep their current values, or --reinit KEY ... to re-initialise" in result.out
    assert "strict=False" not in result.out and "reinit=[" not in result.out
    assert result.err == ""
    followed = run_cli("plan", str(ckpts["safetensors"]), "--model", spec, "--num-classes", "10", "--reinit", "extra")
    assert followed.code == 0, followed.out


def test_plan_into_another_architecture_exits_3_and_json_errors_are_json(ckpts):
    args = ("plan", str(ckpts["safetensors"]), "--model", "torchvision:vit_b_16")
    result = run_cli(*args)
    assert result.code == 3, (result.out, result.err)
    assert result.error_lines[0].startswith("error: the checkpoint and the model are not the same architecture")
    as_json = run_cli("--json", *args)
    assert as_json.code == 3
    assert as_json.json()["error"] == {"type": "ArchitectureMismatchError", "exit_code": 3,
                                       "message": result.error_lines[0].removeprefix("error: "),
                                       "hint": result.error_lines[1].removeprefix("hint: ")}


def test_plan_options_reach_the_planner(ckpts, capsys):
    from weightport.cli import main

    spec = f"{ckpts['models']}:tiny_with_extra"
    # The 5-class head is 6% of this tiny model: more than the default head rule re-initialises unnamed.
    assert main(["--json", "plan", str(ckpts["ddp"]), "--model", spec, "--num-classes", "5", "--no-strict"]) == 3
    assert json.loads(capsys.readouterr().out)["hint"] == "if that is what you want, name it: --reinit fc"
    assert main(["--json", "plan", str(ckpts["ddp"]), "--model", spec, "--num-classes", "5", "--no-strict",
                 "--reinit", "fc"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["strict"] is False and data["missing"] == ["extra.weight", "extra.bias"]
    assert sorted(data["reinitialized"]) == ["fc.bias", "fc.weight"]
    assert main(["plan", str(ckpts["ddp"]), "--model", spec, "--exclude", "fc", "--reinit", "extra", "fc"]) == 0
    assert "a load would succeed" in capsys.readouterr().out


def test_a_bad_model_spec_is_a_usage_error(ckpts, capsys):
    from weightport.cli import main

    assert main(["plan", str(ckpts["ddp"]), "--model", "no_colon"]) == 2
    assert capsys.readouterr().err.startswith("error: --model 'no_colon' is not MODULE:CALLABLE\nhint: e.g.")
    assert main(["plan", str(ckpts["ddp"]), "--model", f"{ckpts['models']}:Nope"]) == 2
    assert "has no attribute 'Nope'" in capsys.readouterr().err
