#!/usr/bin/env bash
# Reproduces the tables of docs/results.md: the retrieval methods against `none` on every
# packaged real task (all dev questions, at most 200 per task), and the rating methods on
# movielens-ratings against `user-mean`, with the default model on the default engine.
# Writes RUNS_DIR/summary.md (the table that opens docs/results.md: every task side by side)
# and RUNS_DIR/report.md (every task's own table).
# About 25 minutes on a 2-core machine (docs/benchmarks.md has the measured time).
# Usage: bash scripts/results.sh [RUNS_DIR]
#   COMMITS_LOG=path/to/pytest-commits.log.gz adds the commits task (its data is not packaged).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/results}
tailor=.venv/bin/tailor
methods="none,bm25,recency,dense,hybrid"
tasks="news-headlines tweets debates"
for name in $tasks movielens-ratings; do
  [ -f "$runs/data/$name/dev_questions.json" ] || $tailor data build "$name" --out "$runs/data/$name"
done
if [ -n "${COMMITS_LOG:-}" ]; then
  [ -f "$runs/data/commits/dev_questions.json" ] || $tailor data build commits --log "$COMMITS_LOG" --out "$runs/data/commits"
  tasks="$tasks commits"
fi
for name in $tasks; do
  start=$(date +%s)
  $tailor eval --task "$name" --data "$runs/data/$name" --method "$methods" --limit 200 --out "$runs/$name"
  echo "$name $(( $(date +%s) - start )) s" >> "$runs/times.txt"
done
start=$(date +%s)
$tailor eval --task movielens-ratings --data "$runs/data/movielens-ratings" \
  --method none,bm25,none+prior,bm25+prior,profile-prior,knn,item-bias,user-mean,global-mean --limit 200 \
  --out "$runs/movielens-ratings"
echo "movielens-ratings $(( $(date +%s) - start )) s" >> "$runs/times.txt"
folders=$(for name in $tasks movielens-ratings; do echo "$runs/$name"; done)
# shellcheck disable=SC2086
$tailor report --summary --versus user-mean $folders > "$runs/summary.md"
# shellcheck disable=SC2086
$tailor report $folders > "$runs/report.md"
echo "tables in $runs/summary.md and $runs/report.md"
