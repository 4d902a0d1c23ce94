#!/usr/bin/env bash
# The measurements of docs/results-alignment.md: a seeded population of 16 simulated users
# (every combination of 4 two-pole dimensions), preference pairs sampled from the default
# model on packaged news prompts, per-user DPO, personalized soups (one DPO adapter per pole,
# merged by each user's stated weights, or by weights fitted to their training pairs) and one
# global DPO adapter (each DPO with a log-likelihood term on the chosen replies), all judged on
# 12 held-out prompts per user by each user's own reward. Each step prints its seconds. Run from the repository root:
#
#   OUT=runs/alignment bash scripts/results-alignment.sh
#
# USERS=64 draws a larger population (every combination of poles four times): the pole
# adapters' cost stays the same, the per-user adapters' grows with it.
set -euo pipefail
OUT=${OUT:-runs/alignment}
USERS=${USERS:-16}
tailor="nice -n 10 .venv/bin/tailor"
mkdir -p "$OUT"
step() {
  local name=$1; shift
  local began=$SECONDS
  "$@"
  echo "step $name: $((SECONDS - began)) s" | tee -a "$OUT/seconds.txt" >&2  # not into a step's redirected output
}
: > "$OUT/seconds.txt"
step users $tailor simulate users --n "$USERS" --seed 0 --out "$OUT/data"
step pairs $tailor simulate pairs --users "$OUT/data" --prompts 10 --eval-prompts 12 --samples 6 --max-tokens 64 \
  --seed 0 --json
train="--epochs 5 --batch-size 2 --learning-rate 3e-3 --sft-weight 1 --min-pairs 4"
step user-dpo $tailor train-preference --store "$OUT/adapters.db" --pairs "$OUT/data/train_pairs.jsonl" \
  --scope user --loss dpo $train --json
step pole-dpo $tailor train-preference --store "$OUT/adapters.db" --pairs "$OUT/data/pole_pairs.jsonl" \
  --scope pole --loss dpo $train --json
step soup-weights $tailor train-preference --store "$OUT/adapters.db" --scope soup --simulated-users "$OUT/data" --json
step global-dpo $tailor train-preference --store "$OUT/adapters.db" --scope global --loss dpo --max-pairs 10 \
  $train --json
step eval $tailor eval-preference --data "$OUT/data" --adapters "$OUT/adapters.db" \
  --method none,preference,soup,preference-global --judge default-fp32 --judge-limit 24 --out "$OUT/eval" --json \
  > "$OUT/eval.json"
# Soups whose weights are fitted to each user's training pairs instead of stated: the same
# pole adapters, in a copy of the store.
cp "$OUT/adapters.db" "$OUT/adapters-fitted.db"
step soup-fit $tailor train-preference --store "$OUT/adapters-fitted.db" --scope soup --json > "$OUT/soup-fit.json"
step eval-fitted $tailor eval-preference --data "$OUT/data" --adapters "$OUT/adapters-fitted.db" --method none,soup \
  --out "$OUT/eval-fitted" --json > "$OUT/eval-fitted.json"
