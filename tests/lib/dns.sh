# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# The test resolver of a test that sources scripts/sandbox.sh and tests/lib/procs.sh: a dnsmasq
# in the sandbox's "internet" namespace on 192.0.2.2 port 53 (the policies' trusted resolver)
# that answers the records the test gives it and nothing else (no upstream, no hosts file; TTL
# 300 unless a record says otherwise). Each test keeps its own records:
#
#     dns_start "$out" api.music.example --host-record=api.music.example,198.51.100.81 ...

# dns_start DIR NAME DNSMASQ_ARGS...: starts dnsmasq (PIDS[dnsmasq]) with the test's records
# and options, its pid file, log and output in DIR, and waits (bounded, 5 s) until it answers
# NAME to an unmanaged process; returns 1 if it never did.
dns_start() {
	local dir=$1 name=$2 i

	shift 2
	# shellcheck disable=SC2054 # commas are dnsmasq's
	sandbox_in_net dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
		--listen-address="$SANDBOX_GW_V4" --port=53 --user=root --local-ttl=300 \
		--pid-file="$dir/dnsmasq.pid" --log-facility="$dir/dnsmasq.log" "$@" \
		</dev/null >"$dir/dnsmasq.out" 2>&1 &
	# shellcheck disable=SC2034,SC2154 # PIDS: procs.sh's associative array
	PIDS[dnsmasq]=$!
	for ((i = 0; i < 50; i++)); do
		sandbox_in_net python3 "$SANDBOX_REPO/tests/integration/dns_tool.py" query \
			--server "$SANDBOX_GW_V4" "$name" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
