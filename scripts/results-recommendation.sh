#!/usr/bin/env bash
# Reproduces docs/results-recommendation.md: next-item ranking on MovieLens 100k (recbole's
# ml-100k) and rating prediction on movielens-ratings.
#   1. Choices, on validation only: the classic recommenders' hyper-parameters (movielens-next
#      dev split), the rating models' (movielens-ratings train questions), and the reranker's
#      weight (als+bm25 on the first VALID_USERS dev users).
#   2. Test split (each user's last movie): every classic recommender on every user, sampled-99
#      and full ranking; the model reranking als's top 20 (als+bm25) on the first LLM_USERS
#      users in both protocols; the model alone (bm25 over all 100 candidates) and with the
#      preference summary on the first FEW_USERS; every cold user (at most 20 movies before)
#      with and without personas; a RAG-aware global LoRA (trained with tailor train-adapter on
#      the test users' histories, MAX_ITEMS most recent each) on the first LORA_USERS.
#   3. movielens-ratings, whole dev split: the rating baselines beside item-mean and svd.
# Writes RUNS_DIR/table.md (every test-split method in one table), RUNS_DIR/report.md, RUNS_DIR/choices/*.md, RUNS_DIR/moves.md, the figures under
# RUNS_DIR/figures/RUN and each step's seconds in RUNS_DIR/times.txt.
# Usage: bash scripts/results-recommendation.sh [RUNS_DIR]   (reruns resume finished runs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/recommendation}
valid=${VALID_USERS:-200}
users=${LLM_USERS:-200}
few=${FEW_USERS:-100}
lora_users=${LORA_USERS:-50}
max_items=${MAX_ITEMS:-1}
tailor=".venv/bin/tailor"
python=".venv/bin/python"
classic="popular,item-knn,als,bpr"
mkdir -p "$runs/choices"
timed() {  # NAME COMMAND...: run it, append its seconds to times.txt
  local name=$1 start
  shift
  start=$(date +%s)
  "$@"
  echo "$name $(( $(date +%s) - start )) s (load average $(cut -d' ' -f1-3 /proc/loadavg))" >> "$runs/times.txt"
}
step() {  # NAME TASK SPLIT METHODS [EXTRA...]
  local name=$1 task=$2 split=$3 methods=$4
  shift 4
  timed "$name" $tailor eval --task "$task" --data "$runs/data" --split "$split" --method "$methods" \
    --out "$runs/$name" "$@"
}
echo "start $(date -u +%FT%TZ), $(nproc) cores" >> "$runs/times.txt"
[ -f "$runs/data/test_questions.json" ] || $tailor data build movielens-next --out "$runs/data"
[ -f "$runs/ratings-data/dev_questions.json" ] || $tailor data build movielens-ratings --out "$runs/ratings-data"

# 1. Choices on validation.
timed choose-ranking $python benchmarks/recommenders.py ranking --data "$runs/data" > "$runs/choices/ranking.md"
timed choose-ratings $python benchmarks/recommenders.py ratings --data "$runs/ratings-data" > "$runs/choices/ratings.md"
step valid-rerank movielens-next dev als,als+bm25 --limit "$valid"
$python benchmarks/recommenders.py rerank "$runs/valid-rerank" > "$runs/choices/rerank.md"

# 2. Test split.
step classic-sampled movielens-next test "$classic"
step classic-full movielens-next-full test "$classic"
step llm-sampled movielens-next test als,als+bm25 --limit "$users"
step llm-full movielens-next-full test als,als+bm25 --limit "$users"
step llm-alone movielens-next test als,bm25,als+summary+bm25 --limit "$few"
cold=$($python -c "import json, sys; print(','.join(q['user_id'] for q in json.load(open(sys.argv[1])) \
  if len(q['profile']) <= 20))" "$runs/data/test_questions.json")
step cold movielens-next test item-knn,als,als+bm25,als+persona+bm25 --users "$cold"
timed train-adapter $tailor train-adapter --task movielens-next --data "$runs/data" --split test --scope global \
  --method bm25 --max-items "$max_items" --threads 1 --out "$runs/adapters"
# float32 weights for both model methods (the global adapter merged into the OpenVINO float32 model).
step lora movielens-next test als,als+bm25,als+lora+bm25 --limit "$lora_users" --backend default:fp32 \
  --adapters "$runs/adapters"

# 3. Ratings.
timed ratings $tailor eval --task movielens-ratings --data "$runs/ratings-data" \
  --method global-mean,user-mean,item-bias,item-mean,svd --out "$runs/ratings"

{
  for name in classic-sampled classic-full llm-sampled llm-full llm-alone cold lora valid-rerank; do
    $tailor report "$runs/$name" --versus als --figures "$runs/figures/$name"
  done
  $tailor report "$runs/ratings" --versus user-mean --figures "$runs/figures/ratings"
} > "$runs/report.md"
$python benchmarks/recommenders.py table "$runs" > "$runs/table.md"
{
  $python benchmarks/recommenders.py moves "$runs/llm-sampled"
  $python benchmarks/recommenders.py moves "$runs/cold"
} > "$runs/moves.md"
echo "end $(date -u +%FT%TZ)" >> "$runs/times.txt"
echo "table in $runs/table.md, report in $runs/report.md, choices in $runs/choices, moves in $runs/moves.md; times in $runs/times.txt"
