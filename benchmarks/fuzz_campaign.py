"""The long fuzzing campaign, outside CI: the checks of `tests/test_fuzz.py` for 100,000+
cases, each reproducible by its seed.

- valid: a random valid network (`tests/fuzz_networks.random_network`, every construct
  of the language) holds every invariant of `tests/fuzz_checks.check_network`: shapes
  against a torch forward pass, params, MACs against torch's FlopCounterMode, each layer
  run by torch as the op it is, gradients to every parameter, ceil-mode average pools,
  closed SE and highway gates, the compiled source against `resdsl.load`, and a real
  `dot` render;
- mutation: a shipped network corrupted one to three times (`tests/fuzzing.mutate`)
  gets a result or a `ResdslError` with a code and a location, never another exception;
- bytes: random bytes, the same;
- hostile: a case from `tests/fuzzing.HOSTILE`: names that reach generated code
  (compiled, imported and run), special output paths (devices, FIFOs, symlinks, read-only
  and executable files), raised limits, long files, non-regular files, Unicode line
  breaks and digits; each with its own invariant.

A case that raises anything else, or runs past 60 s, is a crash; its kind and seed are
printed. `--write` puts the summary into the README's reliability section.

    python3 benchmarks/fuzz_campaign.py             # 5,000 + 100,000 + 20,000 + 5,000 cases
    python3 benchmarks/fuzz_campaign.py --mutation 1000 --valid 50 --bytes 100 --hostile 100
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from common import ROOT, write_section

sys.path.insert(0, str(ROOT))
from tests.fuzz_checks import check_network  # noqa: E402
from tests.fuzz_networks import random_network, write_network  # noqa: E402
from tests.fuzzing import check_outcome, hostile_case, mutate  # noqa: E402

CASE_SECONDS = 60
SHIPPED = sorted((ROOT / "archs").glob("*.arch"))


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"no answer within {CASE_SECONDS} s")


def run_case(kind: str, seed: int, folder: Path) -> str:
    rng = random.Random(seed)
    if kind == "valid":
        check_network(write_network(random_network(rng), folder))
        return "ok"
    if kind == "hostile":
        return hostile_case(rng, folder, SHIPPED)
    path = folder / "case.arch"
    if kind == "mutation":
        path.write_bytes(mutate(rng.choice(SHIPPED).read_bytes(), rng))
    else:
        path.write_bytes(rng.randbytes(rng.randint(0, 2000)))
    return check_outcome(path)


def worker(task: tuple[str, int, int]):
    """Run seeds [start, stop) of one kind; return outcome counts, crashes, slowest case."""
    kind, start, stop = task
    signal.signal(signal.SIGALRM, _alarm)
    outcomes, crashes, slowest = Counter(), [], (0.0, None)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for arch in SHIPPED:  # corrupt files extend their real parents
            shutil.copy(arch, folder)
        for seed in range(start, stop):
            began = time.perf_counter()
            signal.alarm(CASE_SECONDS)
            try:
                outcomes[run_case(kind, seed, folder)] += 1
            except BaseException as error:  # noqa: BLE001 - a crash is what we count
                if isinstance(error, KeyboardInterrupt):
                    raise
                outcomes["CRASH"] += 1
                crashes.append((kind, seed, "".join(traceback.format_exception_only(error))
                                .strip()[:300]))
            finally:
                signal.alarm(0)
            took = time.perf_counter() - began
            slowest = max(slowest, (took, seed), key=lambda s: s[0])
    return kind, outcomes, crashes, slowest


def warm_up() -> None:
    """Import torch and compile the grammar before any case is timed."""
    with tempfile.TemporaryDirectory() as name:
        run_case("valid", -1, Path(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--valid", type=int, default=5_000, help="random valid networks")
    parser.add_argument("--mutation", type=int, default=100_000, help="corrupted networks")
    parser.add_argument("--bytes", type=int, default=20_000, help="random byte files")
    parser.add_argument("--hostile", type=int, default=5_000,
                        help="names, output paths, limits, long, special and Unicode files")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--write", action="store_true", help="update the README's section")
    args = parser.parse_args()

    chunk = 250
    tasks = [(kind, s, min(s + chunk, args.first_seed + count))
             for kind, count in (("valid", args.valid), ("mutation", args.mutation),
                                 ("bytes", args.bytes), ("hostile", args.hostile))
             for s in range(args.first_seed, args.first_seed + count, chunk)]
    began = time.perf_counter()
    totals = {kind: Counter() for kind in ("valid", "mutation", "bytes", "hostile")}
    crashes, slowest = [], {}
    with multiprocessing.Pool(args.jobs, initializer=warm_up) as pool:
        for done, (kind, outcomes, found, slow) in enumerate(
                pool.imap_unordered(worker, tasks), 1):
            totals[kind].update(outcomes)
            crashes += found
            slowest[kind] = max(slowest.get(kind, (0.0, None)), slow, key=lambda s: s[0])
            print(f"\r{done}/{len(tasks)} chunks, {len(crashes)} crashes", end="",
                  file=sys.stderr, flush=True)
    print(file=sys.stderr)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    text = _report(args, totals, crashes, slowest, seconds, peak)
    print(text)
    if args.write:
        write_section("fuzz_campaign", text, ROOT / "README.md")
    sys.exit(1 if crashes else 0)


def _report(args, totals, crashes, slowest, seconds, peak_mb) -> str:
    cases = sum(sum(c.values()) for c in totals.values())
    command = (f"python3 benchmarks/fuzz_campaign.py --valid {args.valid} --mutation "
               f"{args.mutation} --bytes {args.bytes} --hostile {args.hostile} "
               f"--first-seed {args.first_seed} --write")
    lines = ["<!-- fuzz_campaign:start -->",
             f"`{command}` on Python {platform.python_version()}, {args.jobs} processes, "
             f"{seconds / 60:.1f} minutes: **{cases:,} cases, {len(crashes)} crashes** (a "
             f"crash is any exception but a located `ResdslError`, or no answer within "
             f"{CASE_SECONDS} s). Peak memory of a worker: {peak_mb:,.0f} MB.", "",
             "| kind | cases | built | refused with a located error | crashes | slowest case |",
             "|---|---:|---:|---:|---:|---:|"]
    for kind, outcomes in totals.items():
        total = sum(outcomes.values())
        if not total:
            continue
        built = sum(n for outcome, n in outcomes.items() if outcome.endswith("ok"))
        crashed = outcomes["CRASH"]
        took, seed = slowest[kind]
        lines.append(f"| {kind} | {total:,} | {built:,} | {total - built - crashed:,} | "
                     f"{crashed} | {took:.2f} s (seed {seed}) |")
    errors = Counter()
    for kind in ("mutation", "bytes"):
        errors.update({code: n for code, n in totals[kind].items() if code not in ("ok", "CRASH")})
    if errors:
        lines += ["", "Error codes among the refused corrupt files: "
                  + ", ".join(f"{code} {n:,}" for code, n in sorted(errors.items())) + "."]
    categories = Counter()
    for outcome, n in totals["hostile"].items():
        categories[outcome.split(": ")[0]] += n
    if categories:
        lines += ["", "Hostile cases by category (outcomes): " + "; ".join(
            f"{category} {n:,} ("
            + ", ".join(f"{o.split(': ')[1]} {m:,}" for o, m in sorted(totals["hostile"].items())
                        if o.startswith(category + ": ")) + ")"
            for category, n in sorted(categories.items())) + "."]
    for kind, seed, message in crashes[:20]:
        lines.append(f"- CRASH {kind} seed {seed}: `{message}`")
    lines.append("<!-- fuzz_campaign:end -->")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
