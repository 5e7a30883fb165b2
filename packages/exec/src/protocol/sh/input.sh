# shellcheck shell=sh
# input.sh ID: what comes on stdin is job ID's stdin (the client's own, passed on), through
# the fifo its launch makes for it (see job_input). Sent with the launch, it waits for the
# job to appear (for 11 s at most), says the input is coming (stdin.on, which the job's
# runner waits for), then writes it as the job reads it, until stdin ends (the job then
# reads its end) or the job stops reading (what is left is not read).
job=$P_JOBS/$1
n=0
until [ -d "$job" ]; do
  [ "$n" -lt 200 ] || exit 0
  if [ "$n" -lt 100 ]; then sleep 0.01; else sleep 0.1; fi
  n=$((n + 1))
done
[ -p "$job/stdin" ] || exit 0
: >"$job/stdin.on"
exec cat >"$job/stdin"
