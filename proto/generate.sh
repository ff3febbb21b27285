#!/usr/bin/env bash
# generate.sh — regenerate the Go code of Tollgate's protobuf API.
# Installs protoc (Debian's protobuf-compiler) and protoc-gen-go when missing.
# Run from anywhere: `make proto` calls it.
set -euo pipefail

readonly PROTOC_GEN_GO_VERSION=v1.36.12
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v protoc >/dev/null 2>&1; then
	echo "generate.sh: installing protoc (apt-get install protobuf-compiler)" >&2
	if [ "$(id -u)" -eq 0 ]; then
		apt-get install -y protobuf-compiler >&2 || { apt-get update >&2 && apt-get install -y protobuf-compiler >&2; }
	else
		sudo apt-get install -y protobuf-compiler >&2 || { sudo apt-get update >&2 && sudo apt-get install -y protobuf-compiler >&2; }
	fi
fi

gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
plugin="$gobin/protoc-gen-go"
if [ ! -x "$plugin" ] || ! "$plugin" --version 2>/dev/null | grep -q "${PROTOC_GEN_GO_VERSION}"; then
	echo "generate.sh: installing protoc-gen-go ${PROTOC_GEN_GO_VERSION}" >&2
	go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
fi

cd "$here"
protoc --plugin=protoc-gen-go="$plugin" -I . \
	--go_out=. --go_opt=paths=source_relative \
	tollgate/v1/*.proto
echo "generate.sh: generated $(ls tollgate/v1/*.pb.go | tr '\n' ' ')" >&2
