#!/bin/sh
# deps.sh — make sure the Debian packages pare needs are installed.
# As root: installs what is missing with apt-get. Otherwise: prints the exact install line and fails.
# Usage: tools/deps.sh [build|run|all|check|fuzz]   (default: all = build + run, what make test needs)
#   check: all + CHECK (make check);  fuzz: build + CHECK (make fuzz)
set -u
BUILD="gcc make pkg-config libdnnl-dev libopenblas-dev liblua5.4-dev libhdf5-dev libgsl-dev libcjson-dev libpng-dev"
RUN="gnuplot-nox hdf5-tools python3-h5py perl fortunes"
# the fuzz build: clang, its sanitizer and libFuzzer runtimes (libclang_rt.fuzzer), and its OpenMP
# (libomp); gcc's own ASan/UBSan runtimes come with gcc
CHECK="clang libclang-rt-dev libomp-dev"
case "${1:-all}" in
  build) want="$BUILD" ;;
  run) want="$RUN" ;;
  check) want="$BUILD $RUN $CHECK" ;;
  fuzz) want="$BUILD $CHECK" ;;
  *) want="$BUILD $RUN" ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
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
