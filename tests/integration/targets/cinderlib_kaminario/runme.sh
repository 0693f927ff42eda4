#!/usr/bin/env bash
# The seed's kaminario backend against its API simulator (see ../../array_simulator/run.sh).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../../array_simulator/run.sh" kaminario
