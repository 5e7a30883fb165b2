# shellcheck shell=sh
# status.sh ID...: one state line per job, in one round trip (see job_state), and for a
# Slurm job a line of what Slurm says of it (see slurm_info)
for id in "$@"; do
  job_state "$P_JOBS/$id"
  slurm_info "$P_JOBS/$id"
done
