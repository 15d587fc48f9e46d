"""Long fuzz run of weightport's readers (sniffer, safetensors header parser, read_checkpoint).

Runs hypothesis with the same strategies and property as ``tests/formats/test_fuzz.py`` in rounds
until ``--seconds`` have passed, then prints (and optionally writes as Markdown) how many examples
ran, the outcome counts and any failure (an exception other than ``WeightportError``).

    PYTHONPATH=src python scripts/fuzz_formats.py --seconds 300 --out benchmarks/results/fuzz_formats.md
"""

from __future__ import annotations

import argparse
import collections
import platform
import signal
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.formats.fuzz_harness import EXTENSIONS, check, mutated, silence  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz")
    parser.add_argument("--round", type=int, default=500, help="hypothesis examples per round")
    parser.add_argument("--out", type=Path, help="write a Markdown summary here")
    args = parser.parse_args()
    silence()

    def hang(signum: int, frame: object) -> None:
        raise TimeoutError("one example ran for more than 30 s")

    signal.signal(signal.SIGALRM, hang)
    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[str] = []

    @settings(max_examples=args.round, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=mutated(), extension=st.sampled_from(EXTENSIONS))
    def round_(data: bytes, extension: str) -> None:
        signal.alarm(30)  # a hang counts as a failure
        try:
            outcomes[check(data, extension)] += 1
        finally:
            signal.alarm(0)

    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < args.seconds:
        rounds += 1
        try:
            round_()
        # record the (shrunk) failure and keep fuzzing
        except Exception:
            failures.append(traceback.format_exc(limit=3))
    elapsed = time.monotonic() - start
    total = sum(outcomes.values())
    lines = [
        "# Fuzzing the readers (`scripts/fuzz_formats.py`)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; python {platform.python_version()}",
        f"- duration: {elapsed:.0f} s, {rounds} hypothesis rounds of up to {args.round} examples",
        f"- examples run (incl. shrinking): {total} ({total / max(elapsed, 1e-9):.1f}/s)",
        f"- failures (an exception other than WeightportError, a crash or a hang): {len(failures)}",
        "",
        "| outcome of read_checkpoint | examples |",
        "|---|---|",
        *[f"| {name} | {count} |" for name, count in outcomes.most_common()],
        "",
        "Inputs: valid safetensors, torch zip, torch legacy, Lightning .ckpt, .npz, a shard index, a plain",
        "pickle and a minimal header, each mutated by 1-4 byte flips/sets/truncations/insertions/deletions",
        "(plus 10 % plain random bytes), saved under a random checkpoint extension; each input goes through",
        "`sniff_format`, `read_safetensors_header` and `read_checkpoint`.",
    ]
    if failures:
        lines += ["", "## Failures", "", *[f"```\n{f}\n```" for f in failures[:5]]]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
