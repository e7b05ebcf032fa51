# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# The flow inventory as a test that sources scripts/sandbox.sh reads it: a field of one record
# of `carwall flows --json` (the agent's saved inventory in the sandbox's state folder), and a
# bounded wait until the field says what the test expects.

# inv_field APP ADDR PORT PROTO VERDICT FIELD: the field of that record ("-" when there is no
# such record, "null" when the field is absent), from the snapshot file SNAP when set; with
# INV_HOST set, only a record of that host counts.
inv_field() {
	if [[ -n ${SNAP:-} ]]; then
		cat "$SNAP"
	else
		"$CARWALL" flows --state-dir "$SANDBOX_STATE_DIR" --json 2>/dev/null
	fi | python3 -c '
import json, os, sys
app, addr, port, proto, verdict, field = sys.argv[1:]
for a in json.load(sys.stdin)["apps"]:
    for d in a["domains"]:
        for h in d["hosts"]:
            for f in h["flows"]:
                if os.environ.get("INV_HOST") not in (None, f.get("host")):
                    continue
                if (f["app"], f["address"], str(f["port"]), f["proto"], f["verdict"]) == (app, addr, port, proto, verdict):
                    v = f.get(field)
                    print(v if isinstance(v, str) else json.dumps(v)); sys.exit(0)
print("-")' "$@"
}

# wait_field EXPECTED APP ADDR PORT PROTO VERDICT FIELD: bounded wait (5 s) until inv_field
# prints EXPECTED; else prints what it got and the inventory, and returns 1.
wait_field() {
	local want=$1 i got

	shift
	for ((i = 0; i < 50; i++)); do
		got=$(inv_field "$@")
		[[ $got == "$want" ]] && return 0
		sleep 0.1
	done
	echo "expected $want, got $got: $*"
	"$CARWALL" flows --state-dir "$SANDBOX_STATE_DIR" 2>&1
	return 1
}
