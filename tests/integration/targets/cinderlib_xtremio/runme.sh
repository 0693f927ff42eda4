#!/usr/bin/env bash
# The seed's xtremio backend against its API simulator (see ../setup_array_simulator/run.sh).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../setup_array_simulator/run.sh" xtremio
