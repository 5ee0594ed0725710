"""Designing with `resdsl memory` and `resdsl diff`, side by side in one run: the time and
peak memory of asking resdsl for the activation memory of two ResNet-152s and the
difference between them (nothing allocated: read from the graph), against what a user
would otherwise do to learn the activation memory (build torchvision's ResNet-152 and
count what a training step keeps with torch's saved-tensor hooks; torchinfo's `summary`
too, where it is installed). Whole processes, interleaved A B C A B C, median wall time
and peak resident memory of each. Then the accuracy: for every bundled network, resdsl's
training activations at batch 2 against torch's saved tensors for `resdsl.load(name)`,
in float32 and, for a handful, under bf16 autocast on the CPU.

    python3 benchmarks/bench_design.py            # prints the report
    python3 benchmarks/bench_design.py --write    # and puts it into BENCHMARKS.md

Needs `pip install -e '.[test]'` (torch, torchvision). The accuracy half runs every
bundled network's forward pass on the CPU: a couple of minutes.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

from common import ROOT, print_report, run

PY = sys.executable
REPEATS = 5
BATCH = 32
A, B = "resnet152", "resnet152-v1.5"  # torchvision's ResNet-152 is the v1.5 layout
BF16 = ("resnet18", "resnet50", "cifar-resnet", "wrn", "se-resnet50")
GOALS_HEADING = "## Memory and diff: goals against these figures"

IN_PROCESS = f"""
import json, time
start = time.perf_counter()
import resdsl
imported = time.perf_counter()
a = resdsl.memory({A!r}, batch={BATCH}).activations
b = resdsl.memory({B!r}, batch={BATCH}).activations
d = resdsl.diff({A!r}, {B!r})
print(json.dumps({{"a": a, "b": b, "parts": len(d.to_dict()["parts"]),
                  "import": imported - start, "work": time.perf_counter() - imported}}))
"""
HOOKS = """
import time
start = time.perf_counter()
import torch, torchvision
from tests.saved_tensors import saved_for_backward
imported = time.perf_counter()
model = torchvision.models.resnet152()
built = time.perf_counter()
saved = saved_for_backward(model, torch.randn(2, 3, 224, 224))
print(imported - start, built - imported, time.perf_counter() - built, saved)
"""
TORCHINFO = """
import torch, torchvision
from torchinfo import summary
model = torchvision.models.resnet152()
stats = summary(model, input_size=(2, 3, 224, 224), mode="train", verbose=0)
print(int(stats.total_output_bytes))
"""
ACCURACY = f"""
import json, sys, time
import torch
import resdsl
from resdsl.bundled import bundled_archs
from tests.saved_tensors import saved_for_backward
torch.manual_seed(0)
def measure(name, amp):
    graph = resdsl.build(name)
    start = time.perf_counter()
    ours = resdsl.memory(name, batch=2, amp=amp).activations
    ours_s = time.perf_counter() - start
    x = torch.randn(2, *graph.nodes["input"]["shape"])
    start = time.perf_counter()
    model = resdsl.load(name)
    if amp:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            theirs = saved_for_backward(model, x)
    else:
        theirs = saved_for_backward(model, x)
    print(json.dumps({{"name": name, "amp": amp, "ours": ours, "torch": theirs,
                      "ours_s": ours_s, "torch_s": time.perf_counter() - start}}), flush=True)
for name in sorted(bundled_archs()):
    measure(name, None)
for name in {BF16!r}:
    measure(name, "bf16")
import torchvision
tv = saved_for_backward(torchvision.models.resnet152(), torch.randn(2, 3, 224, 224))
print(json.dumps({{"name": "torchvision", "ours": resdsl.memory({B!r}, batch=2).activations,
                  "torch": tv, "cuda": torch.cuda.is_available()}}))
"""


def _installed(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def speed() -> tuple[list[str], dict]:
    resdsl = [PY, "-m", "resdsl"]
    ways = {
        f"`resdsl memory {A} --batch {BATCH}`": [[*resdsl, "memory", A, "--batch", str(BATCH)]],
        f"`resdsl memory {B} --batch {BATCH}`": [[*resdsl, "memory", B, "--batch", str(BATCH)]],
        f"`resdsl diff {A} {B}`": [[*resdsl, "diff", A, B]],
        "one Python process: `resdsl.memory` of both and `resdsl.diff`": [[PY, "-c", IN_PROCESS]],
        "torchvision's `resnet152()` and a training forward under `saved_tensors_hooks`, "
        "batch 2": [[PY, "-c", HOOKS]],
    }
    missing = []
    if _installed("torchinfo"):
        ways["torchinfo `summary` of torchvision's `resnet152()`, batch 2, train mode"] = [
            [PY, "-c", TORCHINFO]]
    else:
        missing.append("torchinfo")
    times = {way: [] for way in ways}
    memory = {way: 0.0 for way in ways}
    outputs = {}
    for _ in range(REPEATS):  # interleaved: A B C A B C ...
        for way, commands in ways.items():
            for cmd in commands:
                wall, rss, out = run(cmd)
                times[way].append(wall)
                memory[way] = max(memory[way], rss)
                outputs[way] = out
    names = list(ways)
    three = [sum(times[w][i] for w in names[:3]) for i in range(REPEATS)]
    inproc = json.loads(outputs[names[3]])
    *split, hooks = outputs[names[4]].split()
    split, hooks = [float(x) for x in split], int(hooks)
    ours = statistics.median(times[names[3]])
    figures = {
        names[0]: f"{mib(inproc['a'])} at batch {BATCH}",
        names[1]: f"{mib(inproc['b'])} at batch {BATCH}",
        names[2]: f"{inproc['parts']} parts",
        names[3]: f"both of the above and the diff (import {inproc['import']:.2f} s, "
                  f"the work {inproc['work']:.2f} s)",
        names[4]: f"{mib(hooks)} at batch 2 (import {split[0]:.2f} s, the model "
                  f"{split[1]:.2f} s, the forward {split[2]:.2f} s)",
    }
    if len(names) > 5:
        figures[names[5]] = f"{mib(int(outputs[names[5]].split()[-1]))} of outputs"
    hooks_median = statistics.median(times[names[4]])
    rows = [f"| how | what it reports | wall (s, median of {REPEATS}) | peak memory (MB) | "
            "the saved-tensor hooks take this many times as long |", "|---|---|---:|---:|---:|"]
    for index, way in enumerate(names):
        median = statistics.median(times[way])
        rows.append(f"| {way} | {figures[way]} | {median:.2f} | {memory[way]:.0f} | "
                    f"{f'{hooks_median / median:.1f}x' if index < 4 else ''} |")
    rows.insert(5, f"| the three commands above, one after another | | "
                   f"{statistics.median(three):.2f} | {max(memory[w] for w in names[:3]):.0f} | "
                   f"{hooks_median / statistics.median(three):.1f}x |")
    if missing:
        rows += ["", f"Not installed here, so not compared: {', '.join(missing)}."]
    result = {"each": {w: statistics.median(times[w]) for w in names}, "three": statistics.median(three),
              "one": ours, "names": names, "rss": memory, "bytes": inproc["b"]}
    return rows, result


def accuracy() -> tuple[list[str], dict]:
    records = [json.loads(line) for line in run([PY, "-c", ACCURACY])[2].splitlines() if line]
    tv = records.pop()
    rows = ["| network | autocast | resdsl (bytes) | torch's saved tensors (bytes) | ratio | "
            "resdsl (s) | torch: load and forward (s) |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in records:
        rows.append(f"| {r['name']} | {r['amp'] or 'fp32'} | {r['ours']:,} | {r['torch']:,} | "
                    f"{r['ours'] / r['torch']:.4f} | {r['ours_s']:.3f} | {r['torch_s']:.2f} |")
    fp32 = [r for r in records if not r["amp"]]
    half = [r for r in records if r["amp"]]
    deviation = lambda rs: max(abs(r["ours"] / r["torch"] - 1) for r in rs)
    result = {"fp32": fp32, "bf16": half, "dev32": deviation(fp32), "dev16": deviation(half),
              "equal32": sum(r["ours"] == r["torch"] for r in fp32),
              "equal16": sum(r["ours"] == r["torch"] for r in half), "tv": tv}
    return rows, result


STATE = {}


def report() -> str:
    load_before = os.getloadavg()
    versions = run([PY, "-c", "import torch, torchvision; "
                    "print(torch.__version__, torchvision.__version__)"])[2].split()
    speed_rows, speed_result = speed()
    accuracy_rows, accuracy_result = accuracy()
    load_after = os.getloadavg()
    STATE.update(speed=speed_result, accuracy=accuracy_result, load=(load_before, load_after))
    a = accuracy_result
    tv = a["tv"]
    load = lambda l: f"{l[0]:.2f}, {l[1]:.2f}, {l[2]:.2f}"
    lines = [
        "<!-- bench_design:start -->",
        "## Designing: `resdsl memory` and `resdsl diff` against torch's saved tensors",
        "",
        f"Command: `python3 benchmarks/bench_design.py --write` ({time.strftime('%Y-%m-%d')}; "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, torch {versions[0]}, "
        f"torchvision {versions[1]}; load average (1, 5, 15 min) {load(load_before)} at the "
        f"start and {load(load_after)} at the end).",
        "",
        "### Time: two ResNet-152s",
        "",
        f"Whole processes, interleaved; resdsl's run as `python -m resdsl`. resdsl reads the "
        f"activation memory of a training step off the graph; a user without it builds the "
        f"model and runs a forward pass under `torch.autograd.graph.saved_tensors_hooks` "
        f"(here `tests/saved_tensors.py`), at batch 2 since batch {BATCH} would hold "
        f"{mib(speed_result['bytes'])} for `{B}`.",
        "",
        *speed_rows,
        "",
        "### Accuracy: every bundled network at batch 2, on the CPU",
        "",
        "resdsl's `resdsl.memory(name, batch=2).activations` (bf16 rows: `amp=\"bf16\"`) "
        "against the distinct storages torch's saved-tensor hooks see in a training "
        "forward of `resdsl.load(name)` at batch 2, weights and buffers not counted "
        "(bf16 rows: under `torch.autocast(\"cpu\", dtype=torch.bfloat16)`).",
        "",
        *accuracy_rows,
        "",
        f"fp32: {a['equal32']} of {len(a['fp32'])} equal to the byte, largest deviation of "
        f"the ratio from 1 {a['dev32']:.2e}. bf16 autocast: {a['equal16']} of {len(a['bf16'])} "
        f"equal, largest deviation {a['dev16']:.2e}. torchvision's own `resnet152()` keeps "
        f"{tv['torch']:,} bytes at batch 2; `resdsl memory {B}` says {tv['ours']:,} "
        f"(ratio {tv['ours'] / tv['torch']:.4f}).",
        "<!-- bench_design:end -->",
    ]
    return "\n".join(lines)


def goal_rows() -> list[str]:
    s, a = STATE["speed"], STATE["accuracy"]
    names, each = s["names"], s["each"]
    slowest = max(each[w] for w in names[:3])
    met = slowest < 2 and s["one"] < 2
    speed_status = (
        f"met, for each command ({slowest:.2f} s at most) and for all of it in one Python "
        f"process ({s['one']:.2f} s)" if met else
        f"**missed**: the slowest command takes {slowest:.2f} s, one process {s['one']:.2f} s")
    speed_status += (
        f"; the three commands run one after another take {s['three']:.2f} s"
        f"{', over 2 s' if s['three'] >= 2 else ''}, each paying Python's and resdsl's start-up "
        "(about 0.45 s, section \"Where the start-up goes\"). `resdsl diff` alone shows each "
        "part's training activations on both sides too, but for one image (it has no `--batch`)")
    hooks = each[names[4]]
    speed_figure = (
        f"`python3 benchmarks/bench_design.py --write` (section \"Designing\" below), whole "
        f"processes, median of {REPEATS}: `memory {A} --batch {BATCH}` {each[names[0]]:.2f} s, "
        f"`memory {B}` {each[names[1]]:.2f} s, `diff` {each[names[2]]:.2f} s "
        f"({max(s['rss'][w] for w in names[:3]):.0f} MB at most); memory of both and diff in one "
        f"Python process {s['one']:.2f} s; against torchvision's ResNet-152 under saved-tensor "
        f"hooks at batch 2, {hooks:.2f} s and {s['rss'][names[4]]:.0f} MB "
        f"({hooks / s['one']:.1f}x the one resdsl process); 1-minute load average "
        f"{STATE['load'][0][0]:.1f} at the start, {STATE['load'][1][0]:.1f} at the end, on 2 cores "
        "shared with other jobs")
    dev = max(a["dev32"], a["dev16"]) if a["bf16"] else a["dev32"]
    accuracy_figure = (
        f"{a['equal32']} of {len(a['fp32'])} bundled networks equal to the byte in fp32, and "
        f"{a['equal16']} of {len(a['bf16'])} under bf16 autocast ({', '.join(BF16)}): largest "
        f"deviation of the ratio {dev:.2e}")
    accuracy_status = "met" if a["dev32"] <= 0.03 and a["dev16"] <= 0.03 else "**missed**"
    gpu = ("not measured by this script; `python -m pytest tests/test_memory.py -k gpu` is the "
           "check" if a["tv"].get("cuda") else
           "not measured: no GPU was lent to this task. `python -m pytest tests/test_memory.py "
           "-k gpu` (ResNet-50: a training step with SGD at batch 32, inference at batch 64) is "
           "ready for one")
    return [
        f"| memory and diff of two ResNet-152s under 2 s | {speed_figure} | {speed_status} |",
        f"| activation bytes within 3% of torch's saved tensors for every bundled network "
        f"(CPU, batch 2) | {accuracy_figure} | {accuracy_status} |",
        "| the whole step's memory within 5% of `torch.cuda.max_memory_allocated` on a GPU "
        f"| - | {gpu} |",
    ]


def update_goals(rows: list[str], path=ROOT / "BENCHMARKS.md") -> None:
    """Replace each goal's row (matched by its first cell) or add it to this script's goals
    table, which is made, before "The test suite", if it is not there."""
    lines = path.read_text().split("\n")
    for row in rows:
        key = row.split(" | ")[0] + " |"
        found = [i for i, line in enumerate(lines) if line.startswith(key)]
        if found:
            lines[found[0]] = row
            continue
        if GOALS_HEADING not in lines:
            at = next((i for i, line in enumerate(lines) if line == "## The test suite"),
                      next(i for i, line in enumerate(lines) if line.startswith("<!-- ")))
            lines[at:at] = [GOALS_HEADING, "", "| goal | figure | status |", "|---|---|---|", ""]
        at = lines.index(GOALS_HEADING) + 4
        while lines[at].startswith("|"):
            at += 1
        lines.insert(at, row)
    path.write_text("\n".join(lines))


def main() -> None:
    print_report("bench_design", __doc__, report)
    rows = goal_rows()
    print("\n".join(["", GOALS_HEADING, "", *rows]))
    if "--write" in sys.argv:
        update_goals(rows)


if __name__ == "__main__":
    main()
