#!/bin/sh
# deps.sh — make sure the Debian packages pare needs are installed.
# As root: installs what is missing with apt-get. Otherwise: prints the exact install line and fails.
# Usage: tools/deps.sh [build|run|all|check|fuzz|bench]   (default: all = build + run, what make test needs)
#   check: all + CHECK (make check);  fuzz: build + CHECK (make fuzz)
#   bench: all, plus BENCH (make bench) — optional: when they cannot be installed (not root, or apt fails) the
#   install line is printed and the bench runs without them (its PyTorch section records that it was skipped)
#   MPI (OpenMPI: mpirun and the headers) is optional the same way for build, all, check and bench: installed
#   as root, else the install line is printed and pare builds without MPI (tests/t_mpi.sh then skips)
set -u
BUILD="gcc make pkg-config libdnnl-dev libopenblas-dev liblua5.4-dev libhdf5-dev libgsl-dev libcjson-dev libpng-dev"
RUN="gnuplot-nox hdf5-tools python3-h5py perl fortunes"
# the fuzz build: clang, its sanitizer and libFuzzer runtimes (libclang_rt.fuzzer), and its OpenMP
# (libomp); gcc's own ASan/UBSan runtimes come with gcc
CHECK="clang libclang-rt-dev libomp-dev"
# the PyTorch reference of make bench (bench/torch_ref.py, run with /usr/bin/python3; ~220 packages with its deps)
BENCH="python3-torch"
# MPI (issue 17, docs/distributed.md): distributed sweeps and data-parallel training under mpirun
MPI="openmpi-bin libopenmpi-dev"
case "${1:-all}" in
  build) want="$BUILD" ;;
  run) want="$RUN" ;;
  check) want="$BUILD $RUN $CHECK" ;;
  fuzz) want="$BUILD $CHECK" ;;
  *) want="$BUILD $RUN" ;;
esac
optional=""
case "${1:-all}" in
  bench) optional="$BENCH $MPI" ;;
  run | fuzz) ;;
  *) optional="$MPI" ;;
esac
is_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=""
for p in $want; do
  is_missing "$p" && missing="$missing $p"
done
opt_missing=""
for p in $optional; do
  is_missing "$p" && opt_missing="$opt_missing $p"
done
if [ -n "$opt_missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "pare: installing optional Debian packages:$opt_missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends $opt_missing >/tmp/pare-apt.log 2>&1; then
      apt-get update -q >>/tmp/pare-apt.log 2>&1
      apt-get install -y -q --no-install-recommends $opt_missing >>/tmp/pare-apt.log 2>&1 ||
        echo "pare: could not install$opt_missing (see /tmp/pare-apt.log); going on without them" >&2
    fi
  else
    echo "pare: optional Debian packages missing:$opt_missing (without python3-torch make bench's PyTorch comparison is" \
      "skipped; without OpenMPI pare builds without MPI and its tests skip)" >&2
    echo "pare: install them with:  sudo apt-get install -y --no-install-recommends$opt_missing" >&2
  fi
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "pare: installing missing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends $missing >/tmp/pare-apt.log 2>&1; then
    apt-get update -q >>/tmp/pare-apt.log 2>&1
    apt-get install -y -q --no-install-recommends $missing >>/tmp/pare-apt.log 2>&1 || {
      echo "pare: apt-get install failed; see /tmp/pare-apt.log" >&2
      exit 1
    }
  fi
  exit 0
fi
echo "pare: missing Debian packages:$missing" >&2
echo "pare: install them with:  sudo apt-get install -y$missing" >&2
exit 1
