#!/usr/bin/env bash
# Reproduces docs/selection.md's tables (with scripts/results-selection.sh run first): on every packaged generation task,
# the model's per-item usefulness on the first 200 train and dev questions, a dense retriever
# trained on the train file (tailor train-retriever), its order of the dev items against
# bm25's and all-MiniLM-L6-v2's (tailor eval-retriever: RUNS_DIR/TASK-ndcg.md), and its
# answers (dense:MODEL) beside the fixed methods in RUNS_DIR/TASK, the folder
# scripts/results-selection.sh writes (run that first for the whole table).
# Usage: bash scripts/results-retriever.sh [RUNS_DIR]
#   COMMITS_LOG=path/to/pytest-commits.log.gz adds the commits task (its data is not packaged);
#   TASKS="tweets debates" runs only those.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/selection}
tailor=.venv/bin/tailor
# shellcheck source=scripts/task-data.sh
. scripts/task-data.sh
tasks="tweets debates news-headlines"
[ -n "${COMMITS_LOG:-}" ] && tasks="tweets debates commits news-headlines"
tasks=${TASKS:-$tasks}
for name in $tasks; do
  data="$runs/data/$name"
  task_data "$name" "$data"
  for split in train dev; do
    start=$(date +%s)
    $tailor usefulness --task "$name" --data "$data" --split "$split" --limit 200 --out "$runs/useful/$name-$split.jsonl"
    echo "$name usefulness $split $(( $(date +%s) - start )) s" >> "$runs/times.txt"
  done
  model="$runs/retrievers/$name"
  if [ ! -f "$model/tailor-retriever.json" ]; then
    start=$(date +%s)
    $tailor train-retriever --task "$name" --data "$data" --useful "$runs/useful/$name-train.jsonl" --out "$model"
    echo "$name train-retriever $(( $(date +%s) - start )) s" >> "$runs/times.txt"
  fi
  for format in md json; do
    $tailor eval-retriever --task "$name" --data "$data" --useful "$runs/useful/$name-dev.jsonl" \
      --method "dense,dense:$model,bm25" $([ $format = json ] && echo --json) > "$runs/$name-ndcg.$format"
  done
  start=$(date +%s)
  # The fixed methods and auto are the selection script's, reused from the folder; a run's
  # results.json holds the methods it was given, so all are named.
  $tailor eval --task "$name" --data "$data" --method "none,bm25,recency,dense,hybrid,auto,dense:$model" --limit 200 \
    --out "$runs/$name"
  echo "$name eval dense:MODEL $(( $(date +%s) - start )) s" >> "$runs/times.txt"
done
folders=$(for name in $tasks; do echo "$runs/$name"; done)
# shellcheck disable=SC2086
$tailor report --versus none,bm25,recency,dense,hybrid $folders > "$runs/retriever.md"
.venv/bin/python benchmarks/selection.py "$runs" > "$runs/selection.md"
echo "tables in $runs/selection.md, $runs/*-ndcg.md and $runs/retriever.md"
