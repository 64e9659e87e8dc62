#!/bin/sh
# Demo OCI hook: appends its command line, environment and the container state that the
# OCI runtime passes on stdin to $DEMO_HOOK_LOG (default /tmp/nri-demo-hook.log).
log="${DEMO_HOOK_LOG:-/tmp/nri-demo-hook.log}"
{
    echo "=== $(date) pid $$: $0 $*"
    echo "environment:"
    env | sed 's/^/    /'
    echo "state:"
    sed 's/^/    /'
    echo
} >>"$log"
