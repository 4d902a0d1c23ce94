#!/usr/bin/env bash
# Reproduces the long-form table of docs/results.md: the packaged news-openings task (an
# article's opening sentences from its headline, per outlet), every retrieval and prompting
# method on the default engine, then one global RAG-aware adapter (trained on the train
# split's bm25 prompts) against none and bm25 on float32 weights, on the same questions.
# Usage: bash scripts/results-longform.sh [RUNS_DIR]   (THREADS=N torch threads for training, default 2)
# Reruns resume: predictions already written are reused, a trained adapter is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/results-longform}
tailor=.venv/bin/tailor
threads=${THREADS:-2}
data="$runs/data"
mkdir -p "$runs"
[ -f "$data/val.json" ] || $tailor data build news-openings --out "$data"
start=$(date +%s)
$tailor eval --task news-openings --data "$data" --split dev \
  --method none,bm25,recency,dense,hybrid,summary,persona,refine --out "$runs/methods"
echo "methods $(( $(date +%s) - start )) s" >> "$runs/times.txt"
start=$(date +%s)
$tailor train-adapter --task news-openings --data "$data" --split train --scope global --method bm25 \
  --threads "$threads" --out "$runs/adapters"
echo "train-adapter $(( $(date +%s) - start )) s" >> "$runs/times.txt"
start=$(date +%s)
# `default:fp32`: none and bm25 on float32 weights, as the adapter method (the float32
# transformers model with the adapter) runs.
$tailor eval --task news-openings --data "$data" --split dev --backend default:fp32 \
  --method none,bm25,lora+bm25 --adapters "$runs/adapters" --out "$runs/adapter"
echo "adapter eval $(( $(date +%s) - start )) s" >> "$runs/times.txt"
$tailor report "$runs/methods" --versus none
$tailor report "$runs/adapter" --versus bm25
