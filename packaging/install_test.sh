#!/usr/bin/env bash
# The installed artefacts, as users get them (make dist-test; make test runs it):
#   1. VERSION == medinfer_version() == the Python package's, SONAME == libmedinfer.so.<ABI>
#   2. ABI: exported functions == include/medinfer.symbols == the header's declarations
#   3. make install DESTDIR=... PREFIX=/opt/medinfer: files, symlinks, SONAME, .pc, CMake
#   4. C: examples/c/score.c built with `pkg-config --cflags --libs medinfer` only, run
#   5. C++: examples/cpp built with CMake find_package(MedInfer) only, run
#   6. make uninstall leaves nothing behind
#   7. the wheel: platform tag, the .so inside; installed into a fresh virtualenv (+ numpy),
#      scores noshow_xgb.json with an empty environment; then examples/python/walkthrough.py
#      runs against that install (its xgboost/lightgbm/pandas/matplotlib borrowed from .venv)
#   8. make dist: the tarballs' contents and SHA256SUMS
# Needs `make lib` first. Installs cmake (apt) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-.venv/bin/python}
LIB=.build/release/libmedinfer.so
VERSION=$(cat VERSION)
ABI=$(sed -n 's/^#define MEDINFER_ABI_VERSION \([0-9]*\).*/\1/p' include/medinfer.h)
WORK=$ROOT/.build/packaging/test
rm -rf "$WORK"; mkdir -p "$WORK"
start=$SECONDS
step() { printf '== [%3ds] %s\n' $((SECONDS - start)) "$*"; }
fail() { echo "install_test: FAILED: $*" >&2; exit 1; }
[ -f "$LIB" ] || fail "$LIB is missing: run make lib"

if ! command -v cmake >/dev/null; then
    echo "installing cmake (apt)"
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq cmake >/dev/null
fi

step "1. version and SONAME"
make --no-print-directory version-check

step "2. ABI check"
packaging/check_abi.sh "$LIB"

step "3. make install DESTDIR=$WORK/stage PREFIX=/opt/medinfer"
make --no-print-directory install DESTDIR="$WORK/stage" PREFIX=/opt/medinfer > "$WORK/install.log"
P=$WORK/stage/opt/medinfer      # relocatable: consumers use the staged tree as the prefix
for f in include/medinfer.h lib/libmedinfer.so.$ABI.$VERSION lib/pkgconfig/medinfer.pc \
         lib/cmake/MedInfer/MedInferConfig.cmake lib/cmake/MedInfer/MedInferConfigVersion.cmake; do
    [ -f "$P/$f" ] && [ ! -L "$P/$f" ] || fail "$P/$f is missing or not a regular file"
done
[ "$(readlink "$P/lib/libmedinfer.so.$ABI")" = "libmedinfer.so.$ABI.$VERSION" ] || fail "libmedinfer.so.$ABI symlink"
[ "$(readlink "$P/lib/libmedinfer.so")" = "libmedinfer.so.$ABI" ] || fail "libmedinfer.so symlink"
soname=$(readelf -d "$P/lib/libmedinfer.so.$ABI.$VERSION" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libmedinfer.so.$ABI" ] || fail "SONAME is '$soname'"
echo "   $(ls "$P/lib" | tr '\n' ' ') SONAME $soname"

step "4. C with pkg-config only (examples/c/score.c)"
export PKG_CONFIG_PATH=$P/lib/pkgconfig
[ "$(pkg-config --modversion medinfer)" = "$VERSION" ] || fail "pkg-config --modversion medinfer"
libdir=$(pkg-config --variable=libdir medinfer)
# shellcheck disable=SC2046
cc -std=c99 -O2 -Wall -Wextra -Werror examples/c/score.c $(pkg-config --cflags --libs medinfer) \
    -Wl,-rpath,"$libdir" -o "$WORK/score"
ldd "$WORK/score" | grep "libmedinfer.so.$ABI => $libdir" > /dev/null || fail "score does not load $libdir/libmedinfer.so.$ABI: $(ldd "$WORK/score")"
env -i "$WORK/score" examples/models/noshow_xgb.json examples/models/sample_rows.csv > "$WORK/score.out"
grep -q "probability" "$WORK/score.out" || fail "score printed no probabilities"
# The same rows as the build-tree library gives (make demo's score).
cc -std=c99 -O2 -Iinclude examples/c/score.c -L.build/release -lmedinfer -Wl,-rpath,"$ROOT/.build/release" -o "$WORK/score-tree"
"$WORK/score-tree" examples/models/noshow_xgb.json examples/models/sample_rows.csv > "$WORK/score-tree.out"
cmp -s "$WORK/score.out" "$WORK/score-tree.out" || fail "installed and build-tree score differ"
echo "   $(grep -c . "$WORK/score.out") lines, identical to the build tree's"
unset PKG_CONFIG_PATH

step "5. C++ with CMake find_package(MedInfer) only (examples/cpp)"
cmake -S examples/cpp -B "$WORK/cpp" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release > "$WORK/cmake.log" 2>&1 \
    || { cat "$WORK/cmake.log"; fail "cmake configure"; }
cmake --build "$WORK/cpp" > "$WORK/cmake-build.log" 2>&1 || { cat "$WORK/cmake-build.log"; fail "cmake build"; }
out=$(env -i "$WORK/cpp/minimal" examples/models/noshow_xgb.json Age=42 SMS_Received=1)
echo "$out" | sed 's/^/   /'
echo "$out" | grep -q "^prediction: 0\.[0-9]*$" || fail "minimal printed no prediction"
# A version the package cannot satisfy is refused.
mkdir -p "$WORK/cpp-v2"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(v LANGUAGES NONE)\nfind_package(MedInfer 99 REQUIRED)\n' > "$WORK/cpp-v2/CMakeLists.txt"
if cmake -S "$WORK/cpp-v2" -B "$WORK/cpp-v2/b" -DCMAKE_PREFIX_PATH="$P" > "$WORK/cmake-v2.log" 2>&1; then
    fail "find_package(MedInfer 99) succeeded"
fi

step "6. make uninstall"
make --no-print-directory uninstall DESTDIR="$WORK/stage" PREFIX=/opt/medinfer > /dev/null
left=$(find "$WORK/stage" \( -type f -o -type l \) | sed "s|$WORK/stage||")
[ -z "$left" ] || fail "uninstall left: $left"

step "7. the wheel in a fresh virtualenv"
make --no-print-directory wheel WHEEL_OUT="$WORK/wheel" > "$WORK/wheel.log" 2>&1 || { cat "$WORK/wheel.log"; fail "make wheel"; }
whl=$(ls "$WORK"/wheel/medinfer-"$VERSION"-*.whl)
case "$(basename "$whl")" in *-none-any.whl) fail "$whl is not platform-specific";; esac
"$PY" - "$whl" <<'PYEOF' || fail "wheel contents"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert "medinfer/libmedinfer.so" in names and "medinfer/py.typed" in names, names
PYEOF
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "$whl" numpy > "$WORK/pip.log" 2>&1 \
    || { cat "$WORK/pip.log"; fail "pip install"; }
mkdir -p "$WORK/elsewhere"; cp examples/models/noshow_xgb.json "$WORK/elsewhere/"
(cd "$WORK/elsewhere" && env -i HOME="$WORK" "$WORK/venv/bin/python" - "$WORK/venv" "$VERSION" <<'PYEOF') || fail "scoring from the wheel"
import sys
from pathlib import Path
import numpy as np
import medinfer
venv, version = Path(sys.argv[1]).resolve(), sys.argv[2]
lib = Path(medinfer.library_path()).resolve()
assert venv in lib.parents and lib.parent == Path(medinfer.__file__).resolve().parent, lib
assert medinfer.__version__ == version, medinfer.__version__
model = medinfer.Model.load("noshow_xgb.json")
rows = np.full((3, model.n_features), np.nan, dtype=np.float32)
rows[1, :] = 1.0
risk = model.predict(rows)
shap = model.shap_values(rows)
assert risk.shape == (3,) and np.all((risk > 0) & (risk < 1)), risk
assert np.allclose(shap.sum(axis=1) + model.expected_value(), model.predict(rows, output="raw"), atol=1e-5)
print(f"   medinfer {medinfer.__version__} from {lib}: risks {np.round(risk, 4)}")
PYEOF
# The walkthrough as a user with the wheel installed runs it: a copy of examples/ outside
# the repository (so its sys.path line finds no python/ binding and no .build/), the
# training libraries it compares against taken from .venv through a .pth file that comes
# after the fresh venv's own site-packages, so medinfer and numpy are the fresh ones.
if ! "$PY" -c 'import xgboost, lightgbm, pandas, matplotlib' 2>/dev/null; then
    echo "   SKIPPED walkthrough.py: xgboost/lightgbm/pandas/matplotlib are not in $PY (make python-deps installs them)"
else
mkdir -p "$WORK/user/examples"
cp -r examples/python examples/models examples/images "$WORK/user/examples/"
shared=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
own=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$shared" > "$own/zz-shared-training-libraries.pth"
(cd "$WORK/user" && env -i HOME="$WORK" MPLBACKEND=Agg "$WORK/venv/bin/python" examples/python/walkthrough.py > "$WORK/walkthrough.log" 2>&1) \
    || { tail -20 "$WORK/walkthrough.log"; fail "walkthrough.py against the wheel"; }
grep -q "^library: $own/medinfer/libmedinfer.so" "$WORK/walkthrough.log" \
    || fail "walkthrough did not use the wheel's library: $(grep '^library:' "$WORK/walkthrough.log")"
echo "   walkthrough.py: $(wc -l < "$WORK/walkthrough.log") lines, $(grep '^library:' "$WORK/walkthrough.log")"
fi

step "8. make dist"
make --no-print-directory dist DIST_DIR="$WORK/dist" > "$WORK/dist.log" 2>&1 || { cat "$WORK/dist.log"; fail "make dist"; }
(cd "$WORK/dist" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS"
[ "$(grep -c . "$WORK/dist/SHA256SUMS")" = 3 ] || fail "SHA256SUMS should list 3 files"
bin=$(ls "$WORK"/dist/medinfer-"$VERSION"-linux-*.tar.gz)
tar -tzf "$bin" | sed 's|^[^/]*/||' | LC_ALL=C sort > "$WORK/bin.list"
for f in include/medinfer.h lib/libmedinfer.so lib/libmedinfer.so.$ABI lib/libmedinfer.so.$ABI.$VERSION \
         lib/pkgconfig/medinfer.pc lib/cmake/MedInfer/MedInferConfig.cmake README.md CHANGELOG.md; do
    grep -qx "$f" "$WORK/bin.list" || fail "$f is not in $(basename "$bin")"
done
tar -tzf "$WORK/dist/medinfer-$VERSION.tar.gz" | grep -x "medinfer-$VERSION/Package.swift" > /dev/null || fail "source tarball"
# The unpacked binary tarball is a working prefix too.
mkdir -p "$WORK/unpacked" && tar -C "$WORK/unpacked" -xzf "$bin"
PKG_CONFIG_PATH=$(echo "$WORK"/unpacked/*/lib/pkgconfig) pkg-config --exists "medinfer = $VERSION" || fail "unpacked .pc"
echo "   $(cd "$WORK/dist" && ls | tr '\n' ' ')"

step "install test passed"
