#!/usr/bin/env bash
# Runs every offedge test, after installing what the tests need from
# Debian's packages when missing (as root, with apt-get): the real engines
# the integration tests drive (nginx, stunnel4, HAProxy, redis-server,
# PostgreSQL, slowhttptest, wrk, socat, Prometheus and Alertmanager),
# graphviz to validate the DOT output, chromium for the dashboard's
# browser test, nftables and iproute2 for the
# firewall tests (which create network namespaces, so they need root),
# pebble (with pebble-challtestsrv) for the ACME tests.
# Then gofmt, go vet, staticcheck and go test.
#
#   bash scripts/test.sh            # everything (as root: apt-get installs what is missing)
#   scripts/test.sh -run TestLab    # extra arguments go to go test
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }

missing=()
have nginx        || missing+=(nginx-light)
have stunnel4     || missing+=(stunnel4)
have haproxy      || missing+=(haproxy)
have redis-server || missing+=(redis-server)
have_postgres     || missing+=(postgresql)
have slowhttptest || missing+=(slowhttptest)
have wrk          || missing+=(wrk)
have socat        || missing+=(socat)
have patch        || missing+=(patch)
have dot          || missing+=(graphviz)
have systemd-analyze || missing+=(systemd)
have promtool     || missing+=(prometheus)
have amtool       || missing+=(prometheus-alertmanager)
have nft          || missing+=(nftables)  # firewall tests read the ruleset back
have ip           || missing+=(iproute2)  # network namespaces of the firewall tests
have pebble       || missing+=(pebble)    # the ACME tests run pebble and pebble-challtestsrv on loopback
have chromium     || missing+=(chromium)  # the dashboard's browser test
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing ${missing[*]}; run as root (or with sudo) so apt-get can install them" >&2
    exit 1
  fi
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start their daemons; the tests start their own on
# loopback, so stop the system ones (ignore failures where there is no init).
for svc in nginx haproxy redis-server stunnel4 postgresql prometheus prometheus-alertmanager; do
  (service "$svc" stop >/dev/null 2>&1 || true)
done

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== go test"
# The reference files beside the checkout make extra tests run; in CI they
# must be there (testutil.RequireReference fails the test otherwise).
go test -count=1 -timeout 20m "$@" ./...
