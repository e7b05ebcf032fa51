#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The flow suite (test_flows.sh) once in production mode, the agent's default: the same flows,
# refusals, lifecycle and broken-policy steps, with every policy a bundle signed by a key of
# the agent's trust folder for its target (test_flows.sh runs in developer mode otherwise).
CARWALL_FLOWS_MODE=production exec bash "$(dirname "$0")/test_flows.sh"
