#!/usr/bin/env bash
# Reproduces docs/selection.md's table: `auto` (a method chosen per input by a selector
# trained on the train split on first use) against `none` and every fixed retrieval method,
# on every packaged generation task (all dev questions, at most 200 per task), with the
# default model on the default engine. Writes RUNS_DIR/summary.md (against none),
# RUNS_DIR/versus.md (every task's table with the paired differences against each fixed
# method) and RUNS_DIR/times.txt.
# Usage: bash scripts/results-selection.sh [RUNS_DIR]
#   COMMITS_LOG=path/to/pytest-commits.log.gz adds the commits task (its data is not packaged).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/selection}
tailor=.venv/bin/tailor
# shellcheck source=scripts/task-data.sh
. scripts/task-data.sh
methods="none,bm25,recency,dense,hybrid,auto"
tasks="tweets debates news-headlines"
[ -n "${COMMITS_LOG:-}" ] && tasks="tweets debates commits news-headlines"
for name in $tasks; do
  task_data "$name" "$runs/data/$name"
  start=$(date +%s)
  $tailor eval --task "$name" --data "$runs/data/$name" --method "$methods" --limit 200 --out "$runs/$name"
  echo "$name $(( $(date +%s) - start )) s" >> "$runs/times.txt"
done
folders=$(for name in $tasks; do echo "$runs/$name"; done)
# shellcheck disable=SC2086
$tailor report --summary $folders > "$runs/summary.md"
# shellcheck disable=SC2086
$tailor report --versus none,bm25,recency,dense,hybrid $folders > "$runs/versus.md"
echo "tables in $runs/summary.md and $runs/versus.md"
