#!/bin/bash
# The torchrun restart test, RUNS times in a row (default 20) while BUSY jobs (default 4)
# spin on the CPUs: how often the restart path survives a loaded machine.
#   bash benchmarks/stress_restart.sh [RUNS] [BUSY]     (from the repository root, venv active)
set -u
runs=${1:-20}; busy=${2:-4}; python=${PYTHON:-python}; passed=0
spinners=()
for _ in $(seq "$busy"); do "$python" -c "while True: pass" & spinners+=($!); done
trap 'kill "${spinners[@]}" 2>/dev/null' EXIT
for i in $(seq "$runs"); do
  start=$(date +%s)
  if "$python" -m pytest -q -x -p no:cacheprovider tests/test_train_faults.py -k torchrun \
      > "/tmp/stress_restart_$i.log" 2>&1; then
    passed=$((passed + 1)); verdict=pass; rm "/tmp/stress_restart_$i.log"
  else
    verdict="FAIL (/tmp/stress_restart_$i.log)"
  fi
  echo "run $i: $verdict, $(( $(date +%s) - start )) s"
done
echo "passed $passed of $runs with $busy busy jobs on $(nproc) cores"
[ "$passed" -eq "$runs" ]
