#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `make demo`: the seed scenario in a throwaway sandbox. A simulated head unit (a network
# namespace) runs two apps under carwall with policies/demo-consent.yaml (demo.yaml's scenario
# with a consent switch); an "internet" namespace holds the OEM backend, the OEM map servers and
# an offshore bug tracker. mediaplayer's embedded crash reporter tries to reach the tracker and
# is refused at once; the OEM servers are reached, over IPv4 and IPv6. Then the driver switches
# crash reports off: the crash reporter is refused even to the OEM's own collector, while
# playback keeps working. Prints one line per attempted flow, then removes everything it made.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=${DEMO_POLICY:-$top/policies/demo-consent.yaml}

sandbox_require_root || exit 1
sandbox_create "cw-demo$$" >/dev/null || { echo "demo: cannot build the sandbox" >&2; exit 1; }

cat <<EOF

carwall demo
  head unit:  network namespace $SANDBOX_HU_NETNS (192.0.2.1, 2001:db8:ffff::1)
  "internet": network namespace $SANDBOX_NET_NETNS
              OEM backend     198.51.100.20  2001:db8:51::20
              OEM map server  198.51.100.80  2001:db8:100::80
              bug tracker     203.0.113.7    2001:db8:bad::7   (offshore)
  apps:       cgroups under $SANDBOX_CGROUP_ROOT
  policy:     ${SANDBOX_POLICY#$top/}

EOF

if ! sandbox_agent_start; then
	echo "demo: carwalld did not start" >&2
	exit 1
fi
"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status | sed 's/^/  /'
echo

# APP|WHO|MODE|ADDR|PORT|EXPECT[|flowprobe flags]; APP "-" is a system service, not an app.
flows=(
	"mediaplayer|player -> OEM backend|tcp|198.51.100.20|443|allowed"
	"mediaplayer|player -> OEM backend|tcp|2001:db8:51::20|443|allowed"
	"mediaplayer|crash reporter -> bug tracker|tcp|203.0.113.7|443|refused"
	"mediaplayer|crash reporter -> bug tracker|tcp|2001:db8:bad::7|443|refused"
	"mediaplayer|crash reporter -> bug tracker|udp|203.0.113.7|514|refused"
	"mediaplayer|crash reporter -> bug tracker|udp|2001:db8:bad::7|514|refused"
	"mediaplayer|crash reporter -> tracker, v4-mapped|tcp|203.0.113.7|443|refused|--socket6"
	"mediaplayer|player -> OEM backend, wrong port|tcp|198.51.100.20|8443|refused"
	"mediaplayer|crash reporter -> OEM collector|tcp|198.51.100.20|9000|allowed"
	"navigation|maps -> OEM map server|tcp|198.51.100.80|443|allowed"
	"navigation|maps -> OEM map server|tcp|2001:db8:100::80|8443|allowed"
	"navigation|maps -> bug tracker|tcp|203.0.113.7|443|refused"
	"-|system service (not an app)|tcp|203.0.113.7|443|allowed"
)

mismatches=0 n=0 n_refused=0
# play FLOW...: each flow, one line, with its verdict, time and what the server received.
play() {
printf '%-12s %-38s %-5s %-24s %-17s %-9s %s\n' APP FLOW PROTO DESTINATION VERDICT TIME SERVER
printf '%s\n' "$(printf '%.0s-' {1..122})"
for f in "$@"; do
	IFS='|' read -r app who mode addr port expect flags <<<"$f"
	n=$((n + 1))
	[[ $expect == refused ]] && n_refused=$((n_refused + 1))
	token="demo$$-$n"
	if [[ $app == - ]]; then
		out=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$token" $flags 2>&1)
	else
		out=$(sandbox_run_app "$app" "$FLOWPROBE" "$mode" "$addr" "$port" --token "$token" $flags 2>&1)
	fi
	rc=$?
	result=$(sed -n 's/.*result=\([A-Za-z0-9_]*\).*/\1/p' <<<"$out" | head -1)
	us=$(sed -n 's/.* us=\([0-9]*\).*/\1/p' <<<"$out" | head -1)
	time_ms=$(awk -v us="${us:-0}" 'BEGIN { printf "%.2f ms", us / 1000 }')
	case $rc in
	0) verdict=allowed ;;
	1) verdict="refused (${result:-EPERM})" ;;
	*) verdict="error (${result:-exit $rc})" ;;
	esac
	proto=${mode%%-*}
	if sandbox_server_saw "$proto" "$port" "$token"; then seen="received"; else seen="nothing received"; fi
	[[ $addr == *:* ]] && dest="[$addr]:$port" || dest="$addr:$port"
	[[ -n $flags ]] && dest="[::ffff:$addr]:$port"
	mark=""
	if [[ ${verdict%% *} != "$expect" ]]; then
		mark="  <-- expected $expect"
		mismatches=$((mismatches + 1))
	fi
	printf '%-12s %-38s %-5s %-24s %-17s %-9s %s%s\n' "${app/#-/(none)}" "$who" "$proto" "$dest" \
		"$verdict" "$time_ms" "$seen" "$mark"
done
}
play "${flows[@]}"
echo
echo "TIME: from socket() to the verdict, in the app (an allowed flow includes the server's"
echo "answer). A refused connect() or sendto() fails with EPERM at once: no packet leaves the"
echo "head unit, and the server received nothing."
echo
if "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" consent list >/dev/null 2>&1; then
	echo "The driver switches crash reports off on the HMI (carwall consent set crash-reports off):"
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" consent set crash-reports off | sed 's/^/  /'
	echo
	play "mediaplayer|crash reporter -> OEM collector|tcp|198.51.100.20|9000|refused" \
		"mediaplayer|crash reporter -> OEM collector|tcp|2001:db8:51::20|9000|refused" \
		"mediaplayer|player -> OEM backend|tcp|198.51.100.20|443|allowed" \
		"mediaplayer|player -> OEM backend|tcp|2001:db8:51::20|443|allowed"
	echo
	echo "A switch only takes permissions away: nothing a switch does allows what the policy"
	echo "refuses. carwall explain names the switch:"
	"$CARWALL" explain --policy "$SANDBOX_POLICY" --app mediaplayer \
		--consent crash-reports=off 198.51.100.20:9000/tcp | sed 's/^/  /'
	echo
fi
echo "The evidence the agent kept (carwall events):"
for ((i = 0; i < 40; i++)); do
	[[ $("$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" | wc -l) -ge $n_refused ]] && break
	sleep 0.05
done
"$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" | sed 's/^/  /'
echo
if [[ $mismatches -ne 0 ]]; then
	echo "demo: $mismatches of $n flows did not get the expected verdict; agent log:" >&2
	sed 's/^/  /' "$SANDBOX_DIR/agent.log" >&2
	exit 1
fi
echo "demo: all $n flows got the expected verdict; removing the sandbox"
sandbox_agent_stop || true
