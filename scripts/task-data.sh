# Sourced by the results scripts: task_data NAME DATA builds a packaged task's data into
# DATA unless it is there (commits from $COMMITS_LOG: its data is not packaged). Needs $tailor.
task_data() {
  local name=$1 data=$2
  [ -f "$data/dev_questions.json" ] && return 0
  if [ "$name" = commits ]; then
    $tailor data build commits --log "${COMMITS_LOG:?COMMITS_LOG is needed for the commits task}" --out "$data"
  else
    $tailor data build "$name" --out "$data"
  fi
}
