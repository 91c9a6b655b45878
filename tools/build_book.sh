#!/usr/bin/env bash
# Build the book (the README's `make book`): offline assets, Colab notebooks, then Jupyter Book with every chapter
# executed. Any warning or cell error fails the build. Run from anywhere:
#
#     bash tools/build_book.sh            # uses .venv/bin of the checkout (BIN=... to use another)
#     BOOK_EXECUTE=cache bash tools/build_book.sh   # while writing: re-execute only the chapters whose code changed
#                                                 # (jupyter-cache in _build/.jupyter_cache; library changes are NOT
#                                                 # detected, so the default, force, is what CI and releases use)
#
# Steps
#   1. book/_static/vendor/plotly.min.js  <- the installed plotly package (pada_lite.plotting.show needs it)
#   2. book/_static/vendor/mathjax/       <- npm package mathjax@$MATHJAX_VERSION, cached in data/cache/book-vendor
#   3. book/<page>.ipynb                  <- tools/colab_notebooks.py: the MyST sources plus an install cell (Colab;
#                                            committed, so that the launch buttons find them on GitHub); it also
#                                            sets _config.yml's repository url/branch from pada_lite/project.py
#   4. jupyter-book build . --all -W -n --keep-going   (notebooks executed: execute_notebooks: force)
# Everything else written here is git-ignored (book/_static/vendor/, data/cache/, _build/).
# The chapters train small supernets with torch. Each page runs with one thread (OMP_NUM_THREADS=1 unless set): on a
# machine busy with other jobs two threads oversubscribe the cores (measured on a shared 2-core machine: 20x slower
# than one thread); the pages' stated run times are measured with one thread.
# python tools/time_chapters.py [book/<page>.md ...] times pages one by one the same way, with the machine's load.
set -euo pipefail
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${BIN:-$ROOT/.venv/bin}"
PY="$BIN/python"
MATHJAX_VERSION="${MATHJAX_VERSION:-3.2.2}"
STATIC="book/_static"
VENDOR="$STATIC/vendor"
NPM_CACHE="data/cache/book-vendor"

fail() { echo "build_book.sh: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

SECONDS=0
[ -x "$PY" ] || fail "$PY not found: create the environment first (make venv), or set BIN to a folder with python and jupyter-book"
[ -x "$BIN/jupyter-book" ] || fail "$BIN/jupyter-book not found: install the book extra (pip install -e '.[book]')"
# Jupyter Book adds every .js/.css below <root>/_static to every page; the book's static folder is book/_static.
[ -e _static ] && fail "a _static/ folder exists at the repository root; the book's static files live in $STATIC/ (see _config.yml)"

# Published data files: offline (CI, classroom) read them from the shared mirror beside the checkout.
if [ -z "${PADA_LITE_MIRROR:-}" ] && [ -d "$ROOT/../shared/data/mirror" ]; then
  PADA_LITE_MIRROR="$(cd "$ROOT/../shared/data/mirror" && pwd)"
  export PADA_LITE_MIRROR
fi
echo "PADA_LITE_MIRROR=${PADA_LITE_MIRROR:-<unset: files come from data/cache or GitHub>}"
# pada_lite.plotting.show: emit figures as text/html only (myst-nb warns on the plotly mime type; -W fails on it)
export PADA_LITE_FIGURES=html

# ---------------------------------------------------------------------------------------------- 1. plotly.js
step "vendoring plotly.js"
mkdir -p "$VENDOR"
PLOTLY_JS="$("$PY" -c 'import pathlib, plotly; print(pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js")')"
[ -f "$PLOTLY_JS" ] || fail "the installed plotly package has no $PLOTLY_JS"
cp "$PLOTLY_JS" "$VENDOR/plotly.min.js"

# ---------------------------------------------------------------------------------------------- 2. MathJax 3
step "vendoring MathJax $MATHJAX_VERSION"
MJ_PKG="$NPM_CACHE/mathjax-$MATHJAX_VERSION/node_modules/mathjax"
if [ ! -f "$MJ_PKG/es5/tex-mml-chtml.js" ]; then
  command -v npm >/dev/null 2>&1 || fail "npm is needed once to fetch MathJax $MATHJAX_VERSION (the book serves it
  locally so that formulas render offline). Install Node.js/npm (Debian: apt-get install npm; conda: conda install
  nodejs) and run this script again; later builds reuse $NPM_CACHE."
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  npm install --prefix "$tmp" --no-audit --no-fund --no-save --loglevel=error "mathjax@$MATHJAX_VERSION" \
    || fail "npm install mathjax@$MATHJAX_VERSION failed (see above): check access to the npm registry"
  [ -f "$tmp/node_modules/mathjax/es5/tex-mml-chtml.js" ] || fail "the npm package mathjax@$MATHJAX_VERSION has no es5/tex-mml-chtml.js"
  mkdir -p "$NPM_CACHE"
  rm -rf "$NPM_CACHE/mathjax-$MATHJAX_VERSION"
  mv "$tmp" "$NPM_CACHE/mathjax-$MATHJAX_VERSION"
  trap - EXIT
fi
# the combined TeX/MathML -> CommonHTML component, the extensions it loads on demand, its fonts and its menu
rm -rf "$VENDOR/mathjax"
mkdir -p "$VENDOR/mathjax/output"
cp "$MJ_PKG/es5/tex-mml-chtml.js" "$VENDOR/mathjax/"
cp -r "$MJ_PKG/es5/input" "$MJ_PKG/es5/a11y" "$MJ_PKG/es5/ui" "$MJ_PKG/es5/sre" "$VENDOR/mathjax/"
cp -r "$MJ_PKG/es5/output/chtml" "$VENDOR/mathjax/output/"
cp "$MJ_PKG/LICENSE" "$VENDOR/mathjax/LICENSE"

# ---------------------------------------------------------------------------------------------- 3. Colab notebooks
step "writing Colab notebooks (book/*.ipynb, committed) and _config.yml's repository from pada_lite/project.py"
"$PY" tools/colab_notebooks.py || fail "tools/colab_notebooks.py failed (see above)"

# ---------------------------------------------------------------------------------------------- 4. build
config_args=()
case "${BOOK_EXECUTE:-force}" in
  force) ;;
  cache)
    mkdir -p _build
    "$PY" -c 'import sys, yaml; c = yaml.safe_load(open("_config.yml")); c["execute"]["execute_notebooks"] = "cache"
yaml.safe_dump(c, open(sys.argv[1], "w"), sort_keys=False)' _build/_config.cache.yml
    config_args=(--config _build/_config.cache.yml) ;;
  *) fail "BOOK_EXECUTE must be force (default) or cache, not '${BOOK_EXECUTE}'" ;;
esac
step "building the book (execution: ${BOOK_EXECUTE:-force}; warnings are errors)"
build_start=$SECONDS
"$BIN/jupyter-book" build . "${config_args[@]}" --all -W -n --keep-going --builder html \
  || fail "jupyter-book build failed: see the warnings/errors above (execution errors show the failing cell)"
build_s=$((SECONDS - build_start))

pages=$(find _build/html -name '*.html' -not -path '_build/html/_static/*' -not -path '_build/html/_sources/*' \
        -not -name genindex.html -not -name search.html -not -name py-modindex.html \
        -not -path '_build/html/index.html' | wc -l)
# stamp of a complete, successful build (tests/test_book_browser.py rebuilds when a book source is newer)
echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${SECONDS} s, ${pages} pages, execution ${BOOK_EXECUTE:-force}" > _build/.book-built
echo "Book built in ${SECONDS} s (jupyter-book ${build_s} s): ${pages} pages -> $ROOT/_build/html/index.html"
