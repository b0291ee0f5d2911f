# lib.sh — what the MPI shell tests (tests/t_mpi*.sh) share; sourced from the repo root with MPI_TEST_NAME set.
# Checks that this pare has MPI and that mpirun exists (else: TAP's "1..0 # SKIP" with the reason, exit 0), makes
# the temporary directory $T (removed on exit), and sets
#   MPIRUN_BASE  timeout 300 mpirun --oversubscribe --bind-to none, with make check's ASan settings
#   MPIRUN       $MPIRUN_BASE -n 2
#   ok STATUS DESCRIPTION, has TEXT PATTERN, and the counters n, failed
PARE=${PARE:-./${PARE_BUILD:-build}/pare}
if [ ! -x "$PARE" ]; then echo "Bail out! $PARE is not built"; exit 1; fi
if ! "$PARE" info | grep -q '^mpi: *Open MPI'; then
  echo "1..0 # SKIP this build of pare has no MPI ($("$PARE" info | sed -n 's/^mpi: *//p'))"
  exit 0
fi
if ! command -v mpirun >/dev/null 2>&1; then
  echo "1..0 # SKIP mpirun not found (apt-get install openmpi-bin)"
  exit 0
fi
T=$(mktemp -d "/tmp/pare-${MPI_TEST_NAME:-mpi}-XXXXXX")
trap 'rm -rf "$T"' EXIT
# CI runs as root; mpirun refuses root without these. No core binding: other jobs share the machine.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN_BASE="timeout 300 mpirun --oversubscribe --bind-to none"
# make check (ASan): OpenMPI keeps allocations from MPI_Init to exit that are not pare's (leaks are still
# checked in the runs without mpirun), and its memory patcher rewrites malloc's entry points, which are
# ASan's there (open-mpi/ompi#13069, #12584: OMPI_MCA_memory=^patcher is the documented way around it)
if [ "${PARE_SANITIZED:-0}" = 1 ]; then
  MPIRUN_BASE="env ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 OMPI_MCA_memory=^patcher $MPIRUN_BASE"
fi
MPIRUN="$MPIRUN_BASE -n 2"
n=0
failed=0
ok() { # ok COND-STATUS DESCRIPTION
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
has() { printf '%s' "$1" | grep -q -- "$2"; }
