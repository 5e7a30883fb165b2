# shellcheck shell=sh
# remove.sh STOP REMOVE SWEEP_DAYS ID...: each job's disk use, one "<id> <KiB>" line per
# job (its job dir and work dir, whole or half made). With STOP=yes a job still running is
# stopped first; with REMOVE=yes the dirs are deleted once measured (else this is a dry
# run). With SWEEP_DAYS (not -), what no job owns is swept too (see sweep).
stop=$1 remove=$2 sweep_days=$3
shift 3
for id in "$@"; do
  job=$P_JOBS/$id
  work=$P_WORKDIRS/$id
  if [ "$stop" = yes ]; then
    # (a Slurm job still queued is cancelled: nothing else keeps Slurm from starting it)
    case $(job_state "$job") in
      "$id running" | "$id running "*) stop_job "$job" 100 ;;
      "$id queued "*) [ ! -f "$job/slurm" ] || stop_job "$job" 100 ;;
    esac
  fi
  kib=$(du -sk "$job" "$work" "$work$P_PART" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
  if [ "$remove" = yes ]; then
    # (a job removed while it waits never reads its input)
    release_input "$job"
    # (the job dir goes from its name at once, in one rename: a follower reading its files
    # meanwhile reads them all, or finds none)
    gone=$P_JOBS/.$id.gone
    rm_tree "$gone"
    [ ! -d "$job" ] || mv "$job" "$gone" || exit 1
    rm_tree "$gone" "$work" "$work$P_PART" || exit 1
  fi
  echo "$id $kib"
done
[ "$sweep_days" = - ] || sweep "$sweep_days" "$remove"
