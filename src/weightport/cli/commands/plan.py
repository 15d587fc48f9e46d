"""``weightport plan SOURCE --model MODULE:CALLABLE``: the dry run of loading a checkpoint into a model."""

from __future__ import annotations

import argparse
from typing import Any

from weightport.cli.common import add_fetch_arguments, add_load_arguments, load_options
from weightport.cli.errors import CHECK_FAILED, OK
from weightport.cli.output import Output, table
from weightport.cli.registry import Command
from weightport.cli.spelling import cli_hint


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a source string or path")
    parser.add_argument("--model", required=True, metavar="MODULE:CALLABLE",
                        help="the model to load into: mypkg.models:Net, path/to/file.py:Net, "
                        "torchvision:resnet18 or timm:resnet18 (built without weights)")
    add_load_arguments(parser)
    parser.add_argument("--save", metavar="RULES.json",
                        help="write the key mapping as rename rules, for --rename or rename= later")
    parser.add_argument("--tensors", action="store_true", help="list every tensor: source key → target key")
    parser.add_argument("--verify", nargs="?", const=True, default=False, metavar="MODULE:CALLABLE",
                        help="also load into the model and compare its outputs with the source architecture "
                        "(derived from a torchvision:/timm: source, or built by MODULE:CALLABLE); exit 3 above "
                        "--verify-tolerance")
    parser.add_argument("--verify-tolerance", type=float, default=None, metavar="TOL",
                        help="largest allowed absolute output difference (default scales with the output)")
    add_fetch_arguments(parser)


def run(args: argparse.Namespace, out: Output) -> int:
    from weightport.cli.modelspec import build_model
    from weightport.loading.api import plan

    model = build_model(args.model, num_classes=args.num_classes)
    the_plan = plan(model, args.source, **load_options(args))
    if args.save:
        the_plan.save_rules(args.save)
    data: dict[str, Any] = {**the_plan.to_dict(), "model": args.model}
    if args.save:
        data["saved_rules"] = args.save
    problem = the_plan.problem()
    if problem is None and args.verify:
        problem = _verify(model, args, data)
    message = None if problem is None else getattr(problem, "message", str(problem))
    hint = cli_hint(getattr(problem, "hint", None))
    data["problem"], data["hint"] = message, hint

    def render(console) -> None:
        console.print(str(the_plan), markup=False, highlight=False)
        if args.tensors:
            rows = ((r.source_key, r.target_key, r.how, tuple(r.source_shape), ", ".join(r.ops))
                    for r in the_plan.loaded)
            console.print(table(None, ("source key", "target key", "how", "shape", "ops"), rows))
        if args.save:
            console.print(f"rules written to {args.save}")
        if "verification" in data:
            v = data["verification"]
            console.print(f"verified: {v['compared']} differ by {v['max_abs_diff']:.3g} from the source "
                          f"architecture's (tolerance {v['tolerance']:.3g})", markup=False)
        if problem is None:
            console.print("a load would succeed" + ("" if the_plan.strict else " (not strict)"))
        else:
            # The plan above already lists the keys; say what fails and what to do, briefly.
            console.print(f"a load would fail: {str(message).split(': ', 1)[0]}", markup=False)
            if hint:
                console.print(f"hint: {hint}", markup=False)

    out.emit(data, render)
    return OK if problem is None else CHECK_FAILED


def _verify(model: Any, args: argparse.Namespace, data: dict[str, Any]) -> Exception | None:
    """Load into the (throwaway) model with verification; the error, if verification fails."""
    from weightport.cli.modelspec import build_model
    from weightport.errors import VerificationError
    from weightport.loading.api import load_weights

    builder = True if args.verify is True else (lambda: build_model(args.verify, num_classes=None))
    try:
        report = load_weights(model, args.source, **load_options(args), verify=builder,
                              verify_tolerance=args.verify_tolerance)
    except VerificationError as exc:
        return exc
    data["verification"] = report.verification
    return None


COMMAND = Command(
    name="plan",
    help="dry-run a load into a model: what matches, is renamed, adapted, missing (exit 3 if it would fail)",
    description="Build the model MODULE:CALLABLE and plan loading SOURCE into it without changing anything: "
    "tensors matched, renamed, structurally aligned, adapted, re-initialised, missing and unexpected, and "
    "the coverage. The exit code is 0 when the load would succeed under the policy (--strict by default), "
    "3 when it would fail.",
    example="  weightport plan resnet18 --model torchvision:resnet18 --num-classes 10\n"
    "  weightport plan last.ckpt --model mypkg.models:Classifier --into backbone --no-strict\n"
    "  weightport plan timm:resnet18.a1_in1k --model torchvision:resnet18 --save rules.json\n"
    "  weightport plan tv_resnet50.pth --model timm:resnet50 --verify torchvision.models:resnet50",
    configure=configure,
    run=run,
)
