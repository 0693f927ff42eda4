#!/usr/bin/env bash
# The main job: bootstrap, then playbooks/main_job.yml against localhost.
# Extra arguments go to ansible-playbook (e.g. --tags lvm, --check, -v).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CINDERLIB_REPO}"

cl_as_root "$0" "$@"

"${CINDERLIB_REPO}/scripts/bootstrap.sh"

cl_step "ansible-playbook playbooks/main_job.yml $*"
exec ansible-playbook -i playbooks/inventory/localhost.yml playbooks/main_job.yml "$@"
