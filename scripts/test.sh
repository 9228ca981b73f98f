#!/usr/bin/env bash
# make test: the whole suite in three pytest processes side by side on this 2-core machine. Most
# of the suite's time is waiting, not computing (hostile servers trickling, sandboxes served in
# their own processes, pseudo-terminals, a real Celery fleet): one process for everything took
# 173-193 s, and its CPU was busy well under half of it. So:
#   1. the modules that run a real Celery fleet (Redis, workers, the sandbox under uvicorn), with
#      the three that build and run the project elsewhere (update-spec on a copy, a sixth
#      vendor's wheel, a live recording): about 100 s, mostly waiting on those processes;
#   2. the modules that wait on sockets, servers and terminals of their own (``waiting`` below);
#   3. everything else, a new module included.
# Given arguments (PYTEST_ARGS), one process runs just those.
set -u
py="$1"
shift
start=$(date +%s)
fleet=(tests/test_celery.py tests/test_celery_callbacks.py tests/test_update_spec.py tests/test_sixth_vendor.py tests/test_live.py)
waiting=(tests/test_security.py tests/test_boundary.py tests/test_cli_terminal.py tests/test_cli_hostile.py
  tests/test_sandbox.py tests/test_faults.py)
if [ $# -gt 0 ]; then
  "$py" -m pytest --durations=10 "$@"
  status=$?
else
  fleet_log=$(mktemp)
  waiting_log=$(mktemp)
  "$py" -m pytest --durations=5 "${fleet[@]}" >"$fleet_log" 2>&1 &
  fleet_pid=$!
  "$py" -m pytest --durations=5 "${waiting[@]}" >"$waiting_log" 2>&1 &
  waiting_pid=$!
  trap 'kill "$fleet_pid" "$waiting_pid" 2>/dev/null; rm -f "$fleet_log" "$waiting_log"' EXIT
  "$py" -m pytest --durations=10 "${fleet[@]/#/--ignore=}" "${waiting[@]/#/--ignore=}"
  status=$?
  wait "$waiting_pid"
  waiting_status=$?
  wait "$fleet_pid"
  fleet_status=$?
  echo "=== the modules that wait on sockets, servers and terminals of their own (${waiting[*]}), run beside the rest:"
  cat "$waiting_log"
  echo "=== the Celery fleet's modules and three that build elsewhere (${fleet[*]}), run beside the rest:"
  cat "$fleet_log"
  [ "$status" -eq 0 ] && status=$waiting_status
  [ "$status" -eq 0 ] && status=$fleet_status
fi
echo "make test: $(($(date +%s) - start)) s on $(nproc) cores"
exit "$status"
