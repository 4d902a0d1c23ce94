#!/usr/bin/env bash
# Reproduces docs/results.md: every method on every packaged real task, default model.
# About an hour on 2 CPU cores. Usage: bash scripts/results.sh [RUNS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/results}
tailor=.venv/bin/tailor
methods="none,bm25,recency,random,dense,hybrid,recency+dense,summary,summary+bm25,persona,refine"
for name in news-headlines tweets debates movielens-ratings; do
  [ -f "$runs/data/$name/dev_questions.json" ] || $tailor data build "$name" --out "$runs/data/$name"
done
$tailor eval --task news-headlines --data "$runs/data/news-headlines" --method "$methods" --limit 36 --out "$runs/news-headlines"
$tailor eval --task tweets --data "$runs/data/tweets" --method "$methods" --limit 16 --out "$runs/tweets"
$tailor eval --task debates --data "$runs/data/debates" --method "$methods" --limit 16 --out "$runs/debates"
$tailor eval --task movielens-ratings --data "$runs/data/movielens-ratings" --method "$methods" --limit 24 \
  --scoring likelihood --out "$runs/movielens-ratings"
$tailor report "$runs/news-headlines" "$runs/tweets" "$runs/debates" "$runs/movielens-ratings" \
  --figures docs/figures > "$runs/report.md"
