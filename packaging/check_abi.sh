#!/usr/bin/env bash
# ABI check: the functions libmedinfer.so exports == include/medinfer.symbols == the
# medinfer_* functions declared in include/medinfer.h.
#
#   packaging/check_abi.sh [path/to/libmedinfer.so]     (default .build/release/libmedinfer.so)
set -euo pipefail
cd "$(dirname "$0")/.."
LIB=${1:-.build/release/libmedinfer.so}
LIST=include/medinfer.symbols
HEADER=include/medinfer.h
[ -f "$LIB" ] || { echo "check_abi: $LIB is missing (make lib)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$LIB" | awk '$2=="T"{print $3}' | LC_ALL=C sort -u > "$tmp/exported"
grep -v '^#' "$LIST" | grep -v '^[[:space:]]*$' | LC_ALL=C sort -u > "$tmp/listed"
# Declarations after preprocessing (no comments): every "medinfer_xxx(".
${CC:-cc} -E -P -x c "$HEADER" | grep -oE '\bmedinfer_[A-Za-z0-9_]+[[:space:]]*\(' \
    | tr -d ' \t(' | LC_ALL=C sort -u > "$tmp/declared"

status=0
report() {  # report TITLE FILE_A FILE_B LABEL_ONLY_A LABEL_ONLY_B
    local only_a only_b
    only_a=$(LC_ALL=C comm -23 "$2" "$3"); only_b=$(LC_ALL=C comm -13 "$2" "$3")
    if [ -n "$only_a$only_b" ]; then
        status=1
        echo "ABI CHECK FAILED: $1" >&2
        [ -z "$only_a" ] || printf '  %s: %s\n' "$4" $only_a >&2
        [ -z "$only_b" ] || printf '  %s: %s\n' "$5" $only_b >&2
    fi
}
report "$LIB exports differ from $LIST" "$tmp/exported" "$tmp/listed" \
    "exported but not in $LIST" "in $LIST but not exported"
report "$HEADER declarations differ from $LIST" "$tmp/declared" "$tmp/listed" \
    "declared in $HEADER but not in $LIST" "in $LIST but not declared in $HEADER"
if [ $status -ne 0 ]; then
    echo "  (a new function: declare it in $HEADER and add it to $LIST; a removed one is an ABI break:" >&2
    echo "   bump MEDINFER_ABI_VERSION, which renames the SONAME)" >&2
    exit 1
fi
echo "abi-check: $(wc -l < "$tmp/exported") exported functions match $LIST and $HEADER"
