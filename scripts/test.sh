#!/usr/bin/env bash
# make test: the whole suite in two pytest processes side by side, one core each. The modules
# that run a real Celery fleet (Redis, workers, the sandbox under uvicorn) spend most of their
# minute waiting on those processes, so they run beside everything else rather than after it
# (140 s instead of 180-190 s on this 2-core machine), and with them the three that spend
# theirs building and running the project elsewhere (update-spec on a copy, a sixth vendor's
# wheel, a live recording replayed): about 20 s off the other process, which had grown to
# 170-176 s. Given arguments (PYTEST_ARGS), one process runs just those.
set -u
py="$1"
shift
start=$(date +%s)
fleet=(tests/test_celery.py tests/test_celery_callbacks.py tests/test_update_spec.py tests/test_sixth_vendor.py tests/test_live.py)
if [ $# -gt 0 ]; then
  "$py" -m pytest --durations=10 "$@"
  status=$?
else
  log=$(mktemp)
  "$py" -m pytest --durations=5 "${fleet[@]}" >"$log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null; rm -f "$log"' EXIT
  "$py" -m pytest --durations=10 "${fleet[@]/#/--ignore=}"
  status=$?
  wait "$pid"
  fleet_status=$?
  echo "=== the Celery fleet's modules and three that build elsewhere (${fleet[*]}), run beside the rest:"
  cat "$log"
  [ "$status" -eq 0 ] && status=$fleet_status
fi
echo "make test: $(($(date +%s) - start)) s on $(nproc) cores"
exit "$status"
