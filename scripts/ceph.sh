#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for the tests: one mon, one mgr and one
# OSD on 127.0.0.1, everything (config, keyrings, data, logs, pid files) under
# one directory, no systemd, no kernel module, no block device.
#
#   scripts/ceph.sh packages    install Debian's Ceph packages (root)
#   scripts/ceph.sh prepare VENV   packages, then the runtime role links Ceph's
#                               Python bindings into VENV (as on a node)
#   scripts/ceph.sh start DIR   make and start a cluster in DIR (empty or absent);
#                               prints the shell variables of DIR/env
#   scripts/ceph.sh stop DIR    stop the cluster's daemons by pid; DIR stays
#   scripts/ceph.sh purge DIR   stop, then remove DIR
#
# DIR/env gives CEPH_CONF, CEPH_POOL (an RBD pool), CEPH_USER (cinder: rbd
# caps on the pool only) and CEPH_KEYRING (that user's keyring). The OSD keeps
# its data in memory (memstore), so a stopped cluster is gone; pool size 1.
# Environment: CINDERLIB_CEPH_OSD_BYTES (memstore size, default 12 GiB: RBD
# images are thin, only written objects take memory), CINDERLIB_CEPH_WAIT
# (seconds to wait for each daemon, default 300: the VM emulates its CPU).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PACKAGES=(ceph-mon ceph-mgr ceph-osd ceph-common python3-rados python3-rbd)
DAEMONS=(mgr.x osd.0 mon.a)  # stop order
POOL=volumes
USER_NAME=cinder
OSD_BYTES="${CINDERLIB_CEPH_OSD_BYTES:-12884901888}"
WAIT="${CINDERLIB_CEPH_WAIT:-300}"

packages() {
    cl_install_packages "${PACKAGES[@]}"
}

# The bindings exist only as Debian packages: the runtime role links them into
# the venv, as it does on a node (tests/playbooks/rbd_runtime.yml).
prepare() {
    [[ -n ${dir} ]] || cl_die "usage: $0 prepare VENV"
    packages
    "${dir}/bin/python" -c 'import rados, rbd' 2>/dev/null && return 0
    local log
    log="$(mktemp /tmp/cinderlib-rbd-runtime.XXXXXX.log)"
    ANSIBLE_NOCOLOR=1 ansible-playbook -i localhost, "${CINDERLIB_REPO}/tests/playbooks/rbd_runtime.yml" \
        -e "rbd_venv=${dir}" >"${log}" 2>&1 || { tail -n 40 "${log}" >&2; cl_die "the runtime role failed (${log})"; }
    "${dir}/bin/python" -c 'import rados, rbd' || cl_die "Ceph's bindings are still not importable in ${dir}"
    rm -f "${log}"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ceph CMD...: the cluster's admin CLI, with this cluster's config.
ceph_cli() {
    ceph --conf "${dir}/ceph.conf" --connect-timeout 20 "$@"
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [[ ${SECONDS} -lt ${deadline} ]] || { tail -n 30 "${dir}"/log/*.log >&2 || true; cl_die "Ceph: ${what} not ready"; }
        sleep 0.2
    done
}

write_conf() {
    local fsid=$1 addrs=$2
    cat >"${dir}/ceph.conf" <<EOF
[global]
fsid = ${fsid}
mon host = ${addrs}
mon initial members = a
public network = 127.0.0.1/32
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = ${dir}/\$name.keyring
run dir = ${dir}/run
pid file = ${dir}/run/\$name.pid
admin socket = ${dir}/run/\$name.asok
log file = ${dir}/log/\$name.log
mon cluster log file = ${dir}/log/cluster.log
ms bind ipv6 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# Snapshots and pool changes commit in tens of milliseconds, not a second.
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
mon data = ${dir}/mon/\$cluster-\$id

[mgr]
mgr data = ${dir}/mgr/\$cluster-\$id
mgr disabled modules = dashboard prometheus restful

[osd]
osd data = ${dir}/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = ${OSD_BYTES}
osd max object name len = 256
osd max object namespace len = 64
EOF
}

start() {
    [[ -n ${dir} ]] || cl_die "usage: $0 start DIR"
    packages
    if [[ -e ${dir} ]] && [[ -n "$(ls -A "${dir}")" ]]; then
        cl_die "Ceph: ${dir} is not empty (purge it first)"
    fi
    mkdir -p "${dir}"/{run,log,mon/ceph-a,mgr/ceph-x,osd/ceph-0}
    chmod 0700 "${dir}"
    local fsid port v1_port addrs start=${SECONDS} osd_uuid osd_id
    fsid="$(python3 -c 'import uuid; print(uuid.uuid4())')"
    port="$(free_port)"
    v1_port="$(free_port)"
    while [[ ${v1_port} == "${port}" ]]; do v1_port="$(free_port)"; done
    # The monitor speaks both protocols: the kernel's RBD client (rbd map)
    # uses v1 unless told otherwise, and Cinder hands out the v1 address.
    addrs="[v2:127.0.0.1:${port},v1:127.0.0.1:${v1_port}]"
    write_conf "${fsid}" "${addrs}"

    ceph-authtool --create-keyring "${dir}/mon.a.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "${dir}/client.admin.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "${dir}/mon.a.keyring" --import-keyring "${dir}/client.admin.keyring" >/dev/null
    monmaptool --create --addv a "${addrs}" --fsid "${fsid}" "${dir}/monmap" >/dev/null
    ceph-mon --conf "${dir}/ceph.conf" --mkfs -i a --monmap "${dir}/monmap" --keyring "${dir}/mon.a.keyring"
    ceph-mon --conf "${dir}/ceph.conf" -i a
    wait_for "${WAIT}" "the monitor" ceph_cli mon stat

    ceph_cli auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' -o "${dir}/mgr.x.keyring" >/dev/null
    ceph-mgr --conf "${dir}/ceph.conf" -i x

    osd_uuid="$(python3 -c 'import uuid; print(uuid.uuid4())')"
    osd_id="$(ceph_cli osd new "${osd_uuid}")"
    [[ ${osd_id} == 0 ]] || cl_die "Ceph: the OSD got id ${osd_id}, not 0"
    ceph-osd --conf "${dir}/ceph.conf" -i 0 --mkfs --mkkey --no-mon-config --osd-uuid "${osd_uuid}" \
        --keyring "${dir}/osd.0.keyring" >/dev/null 2>&1 \
        || { tail -n 30 "${dir}/log/osd.0.log" >&2; cl_die "Ceph: the OSD's mkfs failed"; }
    ceph_cli auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
        -i "${dir}/osd.0.keyring" >>"${dir}/log/start.log" 2>&1
    ceph-osd --conf "${dir}/ceph.conf" -i 0 >>"${dir}/log/start.log" 2>&1
    wait_for "${WAIT}" "the OSD" sh -c "ceph --conf '${dir}/ceph.conf' osd stat -f json | grep -q '\"num_up_osds\":1'"

    # RBD's v2 clone API (clones whose parent snapshot is not protected).
    {
        ceph_cli osd set-require-min-compat-client mimic
        ceph_cli osd pool create "${POOL}" 8 8
        ceph_cli osd pool application enable "${POOL}" rbd
    } >>"${dir}/log/start.log" 2>&1
    rbd --conf "${dir}/ceph.conf" pool init "${POOL}"
    ceph_cli auth get-or-create "client.${USER_NAME}" mon 'profile rbd' osd "profile rbd pool=${POOL}" \
        mgr "profile rbd pool=${POOL}" -o "${dir}/client.${USER_NAME}.keyring" >/dev/null
    chmod 0600 "${dir}"/*.keyring
    # Stats read the pool from `ceph df`, which knows it only after the mgr's next report.
    wait_for "${WAIT}" "the pool in ceph df" sh -c "ceph --conf '${dir}/ceph.conf' df -f json | grep -q '\"name\":\"${POOL}\"'"

    cat >"${dir}/env" <<EOF
CEPH_CONF=${dir}/ceph.conf
CEPH_POOL=${POOL}
CEPH_USER=${USER_NAME}
CEPH_KEYRING=${dir}/client.${USER_NAME}.keyring
EOF
    cl_note "Ceph cluster up in $((SECONDS - start)) s: ${dir} (monitor at ${addrs})"
    cat "${dir}/env"
}

stop() {
    [[ -n ${dir} ]] || cl_die "usage: $0 stop DIR"
    local daemon pidfile pid i
    for daemon in "${DAEMONS[@]}"; do
        pidfile="${dir}/run/${daemon}.pid"
        [[ -f ${pidfile} ]] || continue
        pid="$(cat "${pidfile}")"
        if kill "${pid}" 2>/dev/null; then
            for ((i = 0; i < 100; i++)); do
                kill -0 "${pid}" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "${pid}" 2>/dev/null || true
        fi
        rm -f "${pidfile}"
    done
}

purge() {
    stop
    rm -rf "${dir}"
}

dir="${2:-}"
case "${1:-}" in
    packages) packages ;;
    prepare) prepare ;;
    start) start ;;
    stop) stop ;;
    purge) purge ;;
    *) printf 'usage: %s packages|prepare VENV|start DIR|stop DIR|purge DIR\n' "$0" >&2; exit 2 ;;
esac
