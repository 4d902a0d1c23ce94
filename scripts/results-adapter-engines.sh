#!/usr/bin/env bash
# lora+bm25 with each task's global adapter on the default engine (the adapter merged into
# the OpenVINO model) against the float32 transformers model applying it with PEFT: the
# same 200 dev questions, examples/s and the main metric paired (docs/results-adapters.md),
# after the merged model is made (its one-off export is timed apart).
#   TASKS="tweets commits" by default (commits needs COMMITS_LOG=path/to/pytest-commits.log.gz:
#   its data is not packaged); LIMIT=200.
# Usage: bash scripts/results-adapter-engines.sh [RUNS_DIR]   (reruns resume finished runs)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/task-data.sh
runs=${1:-runs/adapter-engines}
limit=${LIMIT:-200}
tailor=".venv/bin/tailor"
python=".venv/bin/python"
tasks=${TASKS:-tweets${COMMITS_LOG:+ commits}}
mkdir -p "$runs"
echo "start $(date -u +%FT%TZ), $(nproc) cores" >> "$runs/times.txt"
for name in $tasks; do
  data="$runs/data/$name"
  task_data "$name" "$data"
  adapters="$runs/$name-adapters"
  start=$(date +%s)
  $tailor train-adapter --task "$name" --data "$data" --split train --scope global --method bm25 --threads 1 \
    --out "$adapters"
  echo "$name train-adapter $(( $(date +%s) - start )) s" >> "$runs/times.txt"
  # The first use of an adapter on the default engine exports the model with it merged in
  # (once, then kept under $TAILOR_HOME): done here on two questions, timed apart.
  start=$(date +%s)
  $tailor eval --task "$name" --data "$data" --backend default --method lora+bm25 --adapters "$adapters" \
    --limit 2 --out "$runs/$name-first-use"
  echo "$name first use on the default engine (merged export) $(( $(date +%s) - start )) s" >> "$runs/times.txt"
  for backend in default default-fp32; do
    start=$(date +%s)
    $tailor eval --task "$name" --data "$data" --backend "$backend" --method lora+bm25 --adapters "$adapters" \
      --limit "$limit" --out "$runs/$name-$backend"
    echo "$name $backend $(( $(date +%s) - start )) s (load average $(cut -d' ' -f1-3 /proc/loadavg))" >> "$runs/times.txt"
  done
done
for name in $tasks; do
  $python benchmarks/adapter_engines.py "$runs/$name-default" "$runs/$name-default-fp32"
  echo
done > "$runs/report.md"
echo "tables in $runs/report.md, times in $runs/times.txt"
