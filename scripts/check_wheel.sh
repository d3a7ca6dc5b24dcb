#!/usr/bin/env bash
# The package on its own, as a user gets it: build the sdist and the wheel (python -m build), check them (twine check),
# install the wheel into a fresh virtualenv beside the pinned torch, and run `gon --version` and a 3-step `gon fit`
# from a folder outside the source tree (a module or file missing from the wheel fails here, not on a user's machine).
#
# The fresh virtualenv sees torch and torch's own requirements only, through a .pth file naming a folder of links to
# .venv's copies: reinstalling the 2.13.0 CPU build (about 1 GB unpacked) would cost most of this check's time and
# test pip, not gon. Everything else gon needs, pip installs into it from the wheel's own metadata.
# Usage: bash scripts/check_wheel.sh   (after scripts/setup.sh test; PYTHON=... picks another environment)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset PYTHONPATH  # nothing of a source tree may stand in for the installed package
SECONDS=0
quiet() { "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; echo "check_wheel: failed: $*" >&2; exit 1; }; }

echo "==> python -m build, twine check"
# from a copy of the files git tracks or would track: no build leftovers in the tree, nothing ignored in the sdist
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src" 2>/dev/null || true
quiet "$PYTHON" -m build --outdir "$work/dist" "$work/src"
"$PYTHON" -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)
echo "   ($SECONDS s)"

echo "==> a fresh virtualenv with the pinned torch only, and $(basename "$wheel") installed into it"
"$PYTHON" - "$work/torch" <<'PY'
"""Link torch and the distributions it requires (recursively) from this environment into one folder."""
import re
import sys
from importlib.metadata import distribution
from pathlib import Path

folder, todo, seen = Path(sys.argv[1]), ["torch"], set()
folder.mkdir()
while todo:
    dist = distribution(todo.pop())
    if dist.metadata["Name"].lower() in seen:
        continue
    seen.add(dist.metadata["Name"].lower())
    for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
        source = Path(dist.locate_file(top))
        if source.exists() and not (folder / top).exists():
            (folder / top).symlink_to(source)
    for requirement in dist.requires or []:
        if "extra ==" not in requirement:
            todo.append(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0])
print("   torch and", len(seen) - 1, "distributions it requires:", ", ".join(sorted(seen - {"torch"})))
PY
base=$("$PYTHON" -c 'import sys; print(sys._base_executable)')
"$base" -m venv "$work/venv"
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$work/torch" >"$site/pinned-torch.pth"
quiet "$work/venv/bin/python" -m pip install --disable-pip-version-check --no-compile -c scripts/constraints.txt "$wheel"
echo "   ($SECONDS s)"

echo "==> gon --version and a 3-step gon fit, from outside the source tree"
cd "$work"
"$work/venv/bin/python" -c 'import gon; assert "/venv/" in gon.__file__, gon.__file__'
"$work/venv/bin/gon" --version
PYTHONWARNINGS=ignore "$work/venv/bin/gon" fit --model gon --dataset fashion-mnist --max-steps 3 \
  --limit-train 64 --batch-size 16 --val-size 16 --out "$work/run" 2>&1 | tail -1
test -f "$work/run/model/model.safetensors"
echo "check_wheel: the wheel installs and trains outside the source tree ($SECONDS s)"
