#!/usr/bin/env bash
# The Debian packages the test suite drives for real, checked and installed in one place.
# `npm test` runs this first (the pretest script), so the README's test command does its own
# set-up on a fresh machine, and .ci/run gets it through `npm test`.
#
#   scripts/test-tools.sh           install what is missing: apt-get as root, sudo apt-get
#                                   otherwise; with neither, exit 1 naming the command to run
#   scripts/test-tools.sh --check   install nothing; exit 1 listing what is missing
#
# Tests whose tool is missing fail at once with the same install command
# (tests/support/tools.ts), so a machine without them can never pass quietly.
set -euo pipefail

# command the tests run → the Debian package that provides it
TOOLS=(
  "socat=socat"                     # serial pseudo-terminals for the card reader tests
  "mosquitto=mosquitto"             # the interop broker (bridge in front of the gateway)
  "mosquitto_pub=mosquitto-clients" # stock MQTT clients against the gateway
  "mosquitto_sub=mosquitto-clients"
  "shellcheck=shellcheck"           # systemd/install.sh
  "systemd-analyze=systemd"         # `systemd-analyze verify` on the unit files
)

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: scripts/test-tools.sh [--check]" >&2; exit 2 ;;
esac

have() { command -v "$1" >/dev/null 2>&1; }

missing_tools=()
missing_packages=()
for entry in "${TOOLS[@]}"; do
  tool=${entry%%=*}
  package=${entry#*=}
  if ! have "$tool"; then
    missing_tools+=("$tool")
    [[ " ${missing_packages[*]} " == *" $package "* ]] || missing_packages+=("$package")
  fi
done

if ((${#missing_packages[@]} == 0)); then
  exit 0
fi

install_command="apt-get install -y --no-install-recommends ${missing_packages[*]}"
echo "test-tools: missing ${missing_tools[*]} (Debian packages: ${missing_packages[*]})" >&2
if ((check_only)); then
  if [ "$(id -u)" -eq 0 ]; then hint=""; else hint="sudo "; fi
  echo "test-tools: install them with: scripts/test-tools.sh (or: ${hint}apt-get update && ${hint}$install_command)" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-tools: no apt-get here; install the packages ${missing_packages[*]} (or your system's equivalents) and run again" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "test-tools: not root and no sudo; as root, run: apt-get update && $install_command" >&2
  exit 1
fi

echo "test-tools: installing ${missing_packages[*]}" >&2
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >/dev/null

# Installed is not the same as reachable: mosquitto lands in /usr/sbin, off many users' PATH.
still=()
for tool in "${missing_tools[@]}"; do have "$tool" || still+=("$tool"); done
if ((${#still[@]})); then
  echo "test-tools: installed, but ${still[*]} still not found on PATH ($PATH); add the folder that holds it (e.g. /usr/sbin)" >&2
  exit 1
fi
echo "test-tools: ready" >&2
