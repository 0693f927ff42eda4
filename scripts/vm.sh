#!/usr/bin/env bash
# A Debian VM with a full kernel (device-mapper, LIO, iSCSI) for the molecule
# "vm" scenario, on hosts whose own kernel lacks them. qemu emulates the CPU
# (-accel tcg: nested KVM hangs on the machines this was made on).
#
#   scripts/vm.sh host-packages  install what the host needs (qemu, debootstrap)
#   scripts/vm.sh build    build the image unless the cache has it
#   scripts/vm.sh start    build if needed, boot a fresh copy, wait for SSH
#   scripts/vm.sh ssh ...  run a command in the VM as root
#   scripts/vm.sh stop     power the VM off and drop its copy of the image
#   scripts/vm.sh reset    hard reset of the running VM (its disk kept), wait for SSH
#   scripts/vm.sh status   print the SSH address, port and key of a running VM
#
# The image is made from Debian packages only: debootstrap into a cache
# directory outside the repo, keyed by a hash of its recipe (this file, the
# runtime role's pins, the test pins it takes), reused while the recipe is
# unchanged. It holds the runtime role's virtual environment, built from wheels
# made on this host, so the role finds it complete instead of running pip
# under CPU emulation.
# The VM boots a throwaway copy-on-write layer over the image and is reached
# over SSH on 127.0.0.1 only (qemu user-mode networking).
#
# Environment: CINDERLIB_VM_CACHE (default /var/cache/cinderlib-storage/vm),
# CINDERLIB_VM_RUN (default /var/tmp/cinderlib-vm), CINDERLIB_VM_MIRROR (the
# Debian mirror; default: the first one in this host's apt sources),
# CINDERLIB_VM_MEMORY (MiB, default 3072), CINDERLIB_VM_CPUS (default 2),
# CINDERLIB_VM_CPU_MODEL (qemu's -cpu, default max).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

SUITE=bookworm
IMAGE_SIZE=24G  # sparse; cinderlib's suite after the rest of the scenario filled 12G (clones copy whole volumes)
VM_CACHE="${CINDERLIB_VM_CACHE:-/var/cache/cinderlib-storage/vm}"
VM_RUN="${CINDERLIB_VM_RUN:-/var/tmp/cinderlib-vm}"
VM_MEMORY="${CINDERLIB_VM_MEMORY:-3072}"
VM_CPUS="${CINDERLIB_VM_CPUS:-2}"
VM_CPU_MODEL="${CINDERLIB_VM_CPU_MODEL:-max}"
GUEST_VENV=/opt/cinderlib-storage/venv
PINS="${CINDERLIB_REPO}/roles/runtime/files/constraints.txt"
DRIVER_MAP="${CINDERLIB_REPO}/roles/runtime/vars/main.yml"
# Drivers the scenario runs besides LVM: their Python requirements (from the
# role's mapping: krest for kaminario) go into the image's venv too.
GUEST_DRIVERS=(kaminario)
# What the scenario's peer_suite.yml runs cinderlib 5.2.0's own suite with:
# pytest (and what it needs) and ddt, at the versions of requirements/constraints.txt.
GUEST_TEST_PACKAGES=(pytest iniconfig packaging pluggy pygments ddt)
TEST_PINS="${CINDERLIB_REPO}/requirements/constraints.txt"

# What the converge needs in the guest: systemd and SSH to be reached, Python
# for Ansible, what the runtime role would install for LVM with LIO and iSCSI
# attach, for Kaminario (iSCSI and FC attach: sysfsutils) and for RBD with
# krbd attach (it then finds everything and installs nothing; apt under CPU
# emulation took four minutes for sysfsutils alone), and the Ceph daemons of the cluster rbd.yml starts (scripts/ceph.sh).
GUEST_PACKAGES=(
    linux-image-amd64 systemd-sysv udev dbus kmod openssh-server sudo
    python3 python3-venv iproute2 procps util-linux e2fsprogs
    lvm2 thin-provisioning-tools targetcli-fb python3-rtslib-fb open-iscsi lsscsi sysfsutils
    ceph-common python3-rados python3-rbd ceph-mon ceph-mgr ceph-osd
)
HOST_PACKAGES=(qemu-system-x86 qemu-utils debootstrap openssh-client e2fsprogs)

# GUEST_TEST_PACKAGES as name==version from TEST_PINS, leaving out those the
# runtime pins have already (same source, same versions).
test_pip_packages() {
    "${VENV}/bin/python" - "${TEST_PINS}" "${PINS}" "${GUEST_TEST_PACKAGES[@]}" <<'EOF'
import re
import sys

def pins(path):
    found = {}
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            match = re.match(r'([A-Za-z0-9._-]+)==(\S+)', line)
            if match:
                found[re.sub(r'[-_.]+', '-', match.group(1).lower())] = match.group(0)
    return found

test_pins, runtime_pins = pins(sys.argv[1]), pins(sys.argv[2])
for name in sys.argv[3:]:
    if name not in runtime_pins:
        print(test_pins[name])
EOF
}

# What the image is made from: the functions and settings that build it (not
# the rest of this file, so that changing how the VM is run keeps the image).
recipe_hash() {
    { declare -f build configure_guest test_pip_packages driver_pip_packages chroot_mount
      cat "${PINS}" "${DRIVER_MAP}"
      printf '%s\n' "${SUITE}" "${IMAGE_SIZE}" "${GUEST_VENV}" "${GUEST_PACKAGES[@]}" "${GUEST_DRIVERS[@]}"
      test_pip_packages; } | sha256sum | cut -c1-16
}

# The pip_packages the runtime role's mapping gives these drivers, one a line.
driver_pip_packages() {
    "${VENV}/bin/python" - "${DRIVER_MAP}" "$@" <<'EOF'
import sys
import yaml
with open(sys.argv[1], encoding='utf-8') as handle:
    drivers = yaml.safe_load(handle)['__cinderlib_runtime_builtin_drivers']
for name in sys.argv[2:]:
    for requirement in drivers[name].get('pip_packages', []):
        print(requirement)
EOF
}

need_root() {
    [[ ${EUID} -eq 0 ]] || cl_die "scripts/vm.sh $1 needs root (debootstrap, chroot): sudo $0 $1"
}

host_packages() {
    cl_install_packages "${HOST_PACKAGES[@]}"
}

# The mirror this host's apt already uses: the image comes from the same place.
debian_mirror() {
    if [[ -n ${CINDERLIB_VM_MIRROR:-} ]]; then
        printf '%s\n' "${CINDERLIB_VM_MIRROR}"
        return
    fi
    local uri
    uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}')"
    if [[ -z ${uri} ]]; then
        uri="$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
            /etc/apt/sources.list 2>/dev/null | head -n 1)"
    fi
    [[ -n ${uri} ]] || cl_die "no Debian mirror in this host's apt sources; set CINDERLIB_VM_MIRROR"
    printf '%s\n' "${uri}"
}

CHROOT_MOUNTS=()
chroot_mount() {  # chroot_mount ROOT: /proc, /sys and /dev for package scripts
    local root=$1 dir
    for dir in proc sys dev dev/pts; do
        mount --bind "/${dir}" "${root}/${dir}"
        CHROOT_MOUNTS=("${root}/${dir}" "${CHROOT_MOUNTS[@]}")
    done
}

chroot_umount() {
    local dir
    for dir in "${CHROOT_MOUNTS[@]}"; do
        umount -l "${dir}" 2>/dev/null || true
    done
    CHROOT_MOUNTS=()
}

build() {
    need_root build
    if [[ -e ${IMAGE_DIR}/ready ]]; then
        cl_note "image cached: ${IMAGE_DIR}"
        return 0
    fi
    host_packages
    local work root mirror start=${SECONDS}
    mkdir -p "${VM_CACHE}"
    work="$(mktemp -d "${VM_CACHE}/build.XXXXXX")"
    root="${work}/root"
    trap 'chroot_umount; rm -rf "${work}"' EXIT
    mirror="$(debian_mirror)"

    cl_step "debootstrap ${SUITE} (minbase) into ${root}"
    debootstrap --variant=minbase "${SUITE}" "${root}" "${mirror}" >"${work}/debootstrap.log" 2>&1 \
        || { tail -n 30 "${work}/debootstrap.log" >&2; cl_die "debootstrap failed"; }

    cl_step "Installing the guest's packages"
    chroot_mount "${root}"
    # Services must not start inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
    chmod 0755 "${root}/usr/sbin/policy-rc.d"
    chroot "${root}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${GUEST_PACKAGES[@]}" >"${work}/apt.log" 2>&1 \
        || { tail -n 30 "${work}/apt.log" >&2; cl_die "installing the guest's packages failed"; }
    chroot "${root}" apt-get clean
    rm -f "${root}/usr/sbin/policy-rc.d"

    cl_step "The runtime role's virtual environment, from wheels made on this host"
    mkdir -p "${work}/wheels"
    # Guest and host run the same Debian release, so the host's wheels fit.
    { cat "${PINS}"; driver_pip_packages "${GUEST_DRIVERS[@]}"; test_pip_packages; } >"${work}/pins.txt"
    "${VENV}/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "${work}/wheels" -r "${work}/pins.txt" \
        >"${work}/wheels.log" 2>&1 || { tail -n 30 "${work}/wheels.log" >&2; cl_die "pip wheel failed"; }
    mkdir -p "${root}/tmp/wheels"
    cp "${work}"/wheels/*.whl "${root}/tmp/wheels/"
    cp "${work}/pins.txt" "${root}/tmp/wheels/pins.txt"
    chroot "${root}" /usr/bin/python3 -m venv "${GUEST_VENV}"
    chroot "${root}" env PIP_CONFIG_FILE=/dev/null "${GUEST_VENV}/bin/pip" install --quiet --no-index \
        --disable-pip-version-check --find-links /tmp/wheels -r /tmp/wheels/pins.txt >"${work}/pip.log" 2>&1 \
        || { tail -n 30 "${work}/pip.log" >&2; cl_die "installing the guest's virtual environment failed"; }
    rm -rf "${root}/tmp/wheels"
    chroot_umount

    cl_step "Guest configuration"
    configure_guest "${root}" "${work}"

    cl_step "Disk image (${IMAGE_SIZE}, ext4 made from the tree)"
    cp -L "${root}"/boot/vmlinuz-* "${work}/vmlinuz"
    cp -L "${root}"/boot/initrd.img-* "${work}/initrd.img"
    mke2fs -q -t ext4 -L cinderlib-vm -d "${root}" "${work}/rootfs.img" "${IMAGE_SIZE}"
    rm -rf "${root}"

    rm -rf "${IMAGE_DIR}"
    mv "${work}" "${IMAGE_DIR}"
    trap - EXIT
    date -u +%FT%TZ >"${IMAGE_DIR}/ready"
    cl_note "built ${IMAGE_DIR} in $((SECONDS - start)) s"
}

configure_guest() {
    local root=$1 work=$2
    printf 'cinderlib-vm\n' >"${root}/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 cinderlib-vm\n' >"${root}/etc/hosts"
    printf 'LABEL=cinderlib-vm / ext4 defaults 0 1\n' >"${root}/etc/fstab"
    mkdir -p "${root}/etc/systemd/network"
    printf '[Match]\nName=e*\n\n[Network]\nDHCP=ipv4\n' >"${root}/etc/systemd/network/20-wired.network"
    chroot "${root}" systemctl enable systemd-networkd ssh iscsid >/dev/null 2>&1
    # No login prompt on the serial console is needed, nor the waits for a
    # network that user-mode networking answers at once.
    chroot "${root}" systemctl mask systemd-networkd-wait-online serial-getty@ttyS0 >/dev/null 2>&1
    # One key pair per image: the private half stays in the cache (0600).
    ssh-keygen -q -t ed25519 -N '' -C cinderlib-vm -f "${work}/id_ed25519"
    install -d -m 0700 "${root}/root/.ssh"
    install -m 0600 "${work}/id_ed25519.pub" "${root}/root/.ssh/authorized_keys"
    # A fixed initiator name: each boot starts from the same image anyway.
    printf 'InitiatorName=iqn.2004-10.com.debian:cinderlib-vm\n' >"${root}/etc/iscsi/initiatorname.iscsi"
    # The modules the lifecycle uses, loaded at boot (LIO, dm snapshots, loop, krbd).
    printf '%s\n' loop dm_snapshot dm_mod target_core_mod iscsi_target_mod target_core_iblock rbd \
        >"${root}/etc/modules-load.d/cinderlib.conf"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SSH_OPTS=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o ConnectTimeout=5)

vm_ssh() {
    [[ -e ${VM_RUN}/port ]] || cl_die "no VM is running (${VM_RUN}/port missing): scripts/vm.sh start"
    ssh "${SSH_OPTS[@]}" -i "$(cat "${VM_RUN}/key")" -p "$(cat "${VM_RUN}/port")" root@127.0.0.1 "$@"
}

running() {
    [[ -e ${VM_RUN}/pid ]] && kill -0 "$(cat "${VM_RUN}/pid")" 2>/dev/null
}

start() {
    need_root start
    build
    if running; then
        cl_note "the VM is running already (pid $(cat "${VM_RUN}/pid"), port $(cat "${VM_RUN}/port"))"
        return 0
    fi
    rm -rf "${VM_RUN}"
    mkdir -p "${VM_RUN}"
    chmod 0700 "${VM_RUN}"
    local port start=${SECONDS}
    port="$(free_port)"
    qemu-img create -q -f qcow2 -F raw -b "${IMAGE_DIR}/rootfs.img" "${VM_RUN}/disk.qcow2"
    cp "${IMAGE_DIR}/id_ed25519" "${VM_RUN}/id_ed25519"
    printf '%s\n' "${VM_RUN}/id_ed25519" >"${VM_RUN}/key"
    printf '%s\n' "${port}" >"${VM_RUN}/port"
    cl_step "Booting the VM (qemu -accel tcg, SSH on 127.0.0.1:${port})"
    qemu-system-x86_64 -accel tcg -cpu "${VM_CPU_MODEL}" -smp "${VM_CPUS}" -m "${VM_MEMORY}" \
        -kernel "${IMAGE_DIR}/vmlinuz" -initrd "${IMAGE_DIR}/initrd.img" \
        -append 'root=LABEL=cinderlib-vm rw console=ttyS0 net.ifnames=0 quiet' \
        -drive "file=${VM_RUN}/disk.qcow2,if=virtio,format=qcow2,cache=unsafe" \
        -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:22" -device virtio-net-pci,netdev=net0 \
        -display none -serial "file:${VM_RUN}/console.log" -monitor "unix:${VM_RUN}/monitor,server=on,wait=off" \
        -pidfile "${VM_RUN}/pid" -daemonize
    wait_for_ssh
    cl_note "the VM answers on SSH after $((SECONDS - start)) s ($(vm_ssh uname -r))"
}

wait_for_ssh() {
    local deadline=$((SECONDS + ${CINDERLIB_VM_BOOT_TIMEOUT:-600}))
    until vm_ssh true 2>/dev/null; do
        running || { tail -n 40 "${VM_RUN}/console.log" >&2; cl_die "qemu exited while booting"; }
        if [[ ${SECONDS} -ge ${deadline} ]]; then
            tail -n 40 "${VM_RUN}/console.log" >&2
            stop
            cl_die "the VM did not answer on SSH within ${CINDERLIB_VM_BOOT_TIMEOUT:-600} s"
        fi
        sleep 3
    done
}

# A hard reset, as a machine's reset button or a power cut does: the guest
# loses what it held in memory, its disk (the copy-on-write layer) keeps what
# it had written to it. Then the boot, until SSH answers again.
reset() {
    running || cl_die "the VM is not running: scripts/vm.sh start"
    local before after start=${SECONDS}
    before="$(vm_ssh cat /proc/sys/kernel/random/boot_id)"
    cl_step "Reset the VM (hard reset through qemu's monitor)"
    python3 - "${VM_RUN}/monitor" <<'EOF'
import socket
import sys

with socket.socket(socket.AF_UNIX) as monitor:
    monitor.settimeout(30)
    monitor.connect(sys.argv[1])
    seen = b''
    while not seen.endswith(b'(qemu) '):  # the banner, then the prompt
        seen += monitor.recv(4096)
    monitor.sendall(b'system_reset\n')
    seen = b''
    while b'(qemu) ' not in seen:  # the command echoed, then the next prompt
        seen += monitor.recv(4096)
EOF
    wait_for_ssh
    after="$(vm_ssh cat /proc/sys/kernel/random/boot_id)"
    [[ ${after} != "${before}" ]] || cl_die "the VM's boot id did not change: it was not reset"
    cl_note "the VM answers on SSH $((SECONDS - start)) s after the reset"
}

stop() {
    if running; then
        local pid
        pid="$(cat "${VM_RUN}/pid")"
        vm_ssh poweroff >/dev/null 2>&1 || true
        for _ in $(seq 1 30); do
            kill -0 "${pid}" 2>/dev/null || break
            sleep 1
        done
        kill "${pid}" 2>/dev/null || true
    fi
    rm -rf "${VM_RUN}"
}

status() {
    running || { printf 'not running\n'; return 1; }
    printf 'host=127.0.0.1 port=%s key=%s pid=%s\n' "$(cat "${VM_RUN}/port")" "$(cat "${VM_RUN}/key")" \
        "$(cat "${VM_RUN}/pid")"
}

IMAGE_DIR="${VM_CACHE}/$(recipe_hash)"

case "${1:-}" in
    host-packages) need_root host-packages; host_packages ;;
    build) build ;;
    start) start ;;
    stop) stop ;;
    reset) reset ;;
    status) status ;;
    ssh) shift; vm_ssh "$@" ;;
    image-dir) printf '%s\n' "${IMAGE_DIR}" ;;
    *) printf 'usage: %s host-packages|build|start|stop|reset|status|ssh CMD...|image-dir\n' "$0" >&2; exit 2 ;;
esac
