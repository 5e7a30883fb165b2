# shellcheck shell=sh
# input.sh ID: what comes on stdin is job ID's stdin (the client's own, passed on), through
# the fifo its launch made for it (see job_input): said to be coming first (stdin.on, which
# the job's runner waits for), then written as the job reads it, until stdin ends (the job
# then reads its end) or the job stops reading (what is left is not read).
input=$P_JOBS/$1/stdin
[ -p "$input" ] || exit 0
: >"$input.on"
exec cat >"$input"
