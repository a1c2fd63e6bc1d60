#!/usr/bin/env bash
# Set up a local virtual environment (.venv) and run graphtickets in it.
#
#   bash bootstrap.sh run [ARGS...]    set up, then `graphtickets run ARGS...` (the default study)
#   bash bootstrap.sh test [ARGS...]   set up, then run the test suite (pytest ARGS...)
#   bash bootstrap.sh docs             set up (with the docs extra), then build the documentation
#                                      site into docs/_build/html (warnings are errors) and check
#                                      its links and images
#   bash bootstrap.sh setup            set up only
#
# Needs only Python >= 3.11 with venv and pip. The pinned torch (constraints.txt) is installed
# first; where pip's default index gives a CUDA build of torch, point PIP_INDEX_URL or
# PIP_EXTRA_INDEX_URL at a CPU wheel index of torch before running this. Set PYTHON to choose
# the interpreter, GT_VENV to put the environment elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV="${GT_VENV:-.venv}"
what="${1:-run}"; shift || true
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "graphtickets: needs Python >= 3.11; '$PYTHON' is $("$PYTHON" -V 2>&1 || echo 'not found') (set PYTHON=python3.11)" >&2
    exit 2
fi

stamp="$VENV/.graphtickets-installed"
want="$(cat pyproject.toml constraints.txt | "$PYTHON" -c 'import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "graphtickets: setting up $VENV (first time takes a few minutes)" >&2
    [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install -q -c constraints.txt torch
    "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
    echo "$want" > "$stamp"
fi

if [[ "$what" == docs ]]; then
    docs_stamp="$VENV/.graphtickets-docs-installed"
    if [[ ! -f "$docs_stamp" || "$(cat "$docs_stamp")" != "$want" ]]; then
        echo "graphtickets: installing the documentation tools into $VENV" >&2
        "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev,docs]"
        echo "$want" > "$docs_stamp"
    fi
fi

case "$what" in
    setup) echo "graphtickets: environment ready in $VENV" >&2 ;;
    run)   exec "$VENV/bin/graphtickets" run "$@" ;;
    test)  exec "$VENV/bin/python" -m pytest -q -n 2 "$@" ;;
    docs)  rm -rf docs/_build/html docs/api/generated docs/auto_examples
           OMP_NUM_THREADS=1 MPLBACKEND=agg "$VENV/bin/python" -m sphinx -W --keep-going -q -b html docs docs/_build/html "$@"
           exec "$VENV/bin/python" docs/check_html.py docs/_build/html ;;
    *)     echo "usage: bash bootstrap.sh run|test|docs|setup [ARGS...]" >&2; exit 2 ;;
esac
