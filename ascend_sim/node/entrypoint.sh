#!/bin/sh
# SIMULATOR (ascend-sim): container command of a simulated Ascend node.
# Lays out the node from /etc/ascend-sim/host.json, then hands over to sim-init (PID 1), which runs sshd on the
# node's own loopback address and keeps it stopped while the host-down / partition faults say so.
# The host key is generated only when missing, so `podman start` after a stop keeps it (known_hosts stays valid).
set -eu
: "${ASCEND_SIM_ADDR:?ASCEND_SIM_ADDR (the loopback address to listen on) is not set}"
/usr/bin/python3 /opt/ascend-sim/node/sim-apply
KEY=/etc/ssh/ssh_host_ed25519_key
[ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -f "$KEY"
mkdir -p /run/sshd
echo "ascend-sim: node $(hostname) ready, sshd on $ASCEND_SIM_ADDR:22" >&2
exec /usr/bin/python3 /opt/ascend-sim/node/sim-init --address "$ASCEND_SIM_ADDR" --host-key "$KEY"
