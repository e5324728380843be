#!/usr/bin/env bash
# Builds the offedge Debian package: the binary (version and commit stamped),
# its man pages and completion scripts generated from the command table, the
# systemd unit and the settings file, packed by nfpm.
#
#   scripts/package.sh              # dist/offedge_VERSION_ARCH.deb
#   OUT=/tmp/x scripts/package.sh   # somewhere else
#   VERSION=1.2.0 scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
OUT=${OUT:-dist}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -z "${VERSION:-}" ]; then
	# Debian versions must start with a digit: 0.0~git<date>.<commit>
	# until the project tags releases.
	VERSION="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$commit"
	if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
		VERSION="$VERSION+modified"
	fi
fi
arch=$(go env GOARCH)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

echo "building offedge $VERSION ($arch)"
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.Version=$VERSION -X main.Commit=$commit" \
	-o "$build/offedge" ./cmd/offedge
mkdir -p "$build/man" "$build/completion"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)} \
	"$build/offedge" __man "$build/man" >/dev/null
gzip -9n "$build"/man/*.1
"$build/offedge" completion bash >"$build/completion/offedge.bash"
"$build/offedge" completion zsh >"$build/completion/_offedge"
"$build/offedge" completion fish >"$build/completion/offedge.fish"

OFFEDGE_VERSION=$VERSION OFFEDGE_ARCH=$arch OFFEDGE_BUILD=$build \
	go run "$NFPM" package --config packaging/nfpm.yaml --packager deb --target "$OUT/"
ls "$OUT"/offedge_*.deb
