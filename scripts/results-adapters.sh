#!/usr/bin/env bash
# Reproduces the RAG-aware adapter tables of docs/results-adapters.md: per
# generation task, one global LoRA trained on the train split's bm25 prompts (`lora+bm25`)
# and one on the bare prompt (`lora`, the no-retrieval control), then `none`, `bm25`,
# `lora+bm25` and `lora` on the same dev questions (at most 200), and the paired differences
# against `bm25` and `lora`.
# Times on 2 cores, 1 torch thread for training: debates 7 min 12 s (this script, measured);
# from the separately timed trainings and evals: tweets about 23 min, commits about 23 min,
# news-headlines about 46 min.
# Usage: bash scripts/results-adapters.sh [RUNS_DIR]
#   TASKS="debates tweets" picks tasks (default: news-headlines tweets debates, and commits
#   when COMMITS_LOG=path/to/pytest-commits.log.gz is given: its data is not packaged).
#   THREADS=N torch threads for training (default 1).
# Reruns resume: adapters already trained for the same data are kept, predictions reused.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/task-data.sh
runs=${1:-runs/results-adapters}
tailor=.venv/bin/tailor
threads=${THREADS:-1}
tasks=${TASKS:-news-headlines tweets debates${COMMITS_LOG:+ commits}}
for name in $tasks; do
  data="$runs/data/$name"
  task_data "$name" "$data"
  adapters="$runs/$name-adapters"
  start=$(date +%s)
  for prompt in bm25 none; do
    $tailor train-adapter --task "$name" --data "$data" --split train --scope global --method "$prompt" \
      --threads "$threads" --out "$adapters"
  done
  # `default:fp32`: every method on float32 weights (the global adapter merged into the
  # OpenVINO float32 model; docs/results-adapters.md's tables ran the adapter methods on
  # `--backend default-fp32`, the transformers model with PEFT).
  $tailor eval --task "$name" --data "$data" --backend default:fp32 --method none,bm25,lora+bm25,lora \
    --adapters "$adapters" --limit 200 --out "$runs/$name"
  echo "$name $(( $(date +%s) - start )) s" >> "$runs/times.txt"
done
for name in $tasks; do $tailor report "$runs/$name" --versus bm25,lora; echo; done > "$runs/report.md"
echo "tables in $runs/report.md"
