#!/usr/bin/env bash
# fuzz.sh — run every Fuzz target of the module for FUZZTIME each.
#
# go test -fuzz accepts a single target in a single package, so the targets
# are discovered first: a cheap grep finds the packages whose tests declare
# `func Fuzz…`, then `go test -list` gives the exact names (it sees only
# targets that compile, and none hidden behind build tags we do not use).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

mapfile -t dirs < <(
	grep -rlE --include='*_test.go' --exclude-dir=testdata --exclude-dir=vendor \
		--exclude-dir=.git '^func Fuzz[A-Z0-9_]' . 2>/dev/null |
		xargs -r -n1 dirname | sort -u
)
if [[ ${#dirs[@]} -eq 0 ]]; then
	echo "fuzz: no Fuzz targets in the tree"
	exit 0
fi

ran=0
for dir in "${dirs[@]}"; do
	mapfile -t names < <("$GO" test -list '^Fuzz' "$dir" | grep -E '^Fuzz')
	for name in "${names[@]}"; do
		echo "fuzz: $dir $name for $FUZZTIME"
		# -run='^$' skips the unit tests; the seed corpus still runs first.
		"$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$dir"
		ran=$((ran + 1))
	done
done
echo "fuzz: $ran target(s) passed"
