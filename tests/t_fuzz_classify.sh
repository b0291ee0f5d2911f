#!/bin/sh
# t_fuzz_classify.sh — tools/fuzz.sh tells libhdf5's own crashes (upstream, they do not fail make
# check) from pare's (they do), on sanitizer reports shaped as clang's ASan prints them. The first case
# is the report that failed CI on 2026-12-06: a heap overflow found by the memcmp interceptor, whose
# first frame (MemcmpInterceptorCommon, linked statically into the fuzz binary) was taken for pare's.
# TAP. Run from the repo root: sh tests/t_fuzz_classify.sh
T=$(mktemp -d /tmp/pare-fuzzcls-XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
failed=0
BIN=/check/work/main/build-san/fuzz/fuzz_h5table
H5=/lib/x86_64-linux-gnu/libhdf5_serial.so.103
# case NAME EXPECTED(upstream|pare): the report is read from standard input
case_() {
  cat >"$T/report.log"
  sh tools/fuzz.sh --classify "$T/report.log" libhdf5
  rc=$?
  n=$((n + 1))
  if [ "$2" = upstream ]; then want=0; else want=1; fi
  if [ "$rc" -eq "$want" ]; then echo "ok $n - $1: $2"; else
    echo "not ok $n - $1: expected $2, fuzz.sh --classify exited $rc"
    failed=$((failed + 1))
  fi
}

case_ "memcmp interceptor over libhdf5's own buffer" upstream <<EOF
==22799==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000022352 at pc 0x56524dd11826 bp 0x7ffff5377d60 sp 0x7ffff5377510
READ of size 8 at 0x602000022352 thread T0
    #0 0x56524dd11825 in MemcmpInterceptorCommon(void*, int (*)(void const*, void const*, unsigned long), void const*, void const*, unsigned long) ($BIN+0x84825) (BuildId: acd4)
    #1 0x56524dd11c9a in memcmp ($BIN+0x84c9a) (BuildId: acd4)
    #2 0x7f850b5b42c9 in H5O_msg_read ($H5+0x1b42c9) (BuildId: e923)
    #3 0x7f850b4c3aaa in H5D_open ($H5+0xc3aaa) (BuildId: e923)
    #4 0x55a887079c87 in pare_h5_table_info /work/main/src/io/h5table.c:658:13
    #5 0x55a887076cfa in LLVMFuzzerTestOneInput /work/main/fuzz/fuzz_h5table.c:80:5

0x602000022352 is located 0 bytes to the right of 2-byte region [0x602000022350,0x602000022352)
allocated by thread T0 here:
    #0 0x56524dd3a1be in __interceptor_malloc ($BIN+0xad1be) (BuildId: acd4)
    #1 0x7f850b44e8f1 in H5FL_blk_malloc ($H5+0x14e8f1) (BuildId: e923)
    #2 0x7f850b5b3fdf in H5O_msg_read_oh ($H5+0x1b3fdf) (BuildId: e923)

SUMMARY: AddressSanitizer: heap-buffer-overflow ($BIN+0x84825) (BuildId: acd4) in MemcmpInterceptorCommon(void*, int (*)(void const*, void const*, unsigned long), void const*, void const*, unsigned long)
EOF

case_ "memcpy interceptor inside H5T_copy" upstream <<EOF
==24693==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000008b32 at pc 0x55d468b02514 bp 0x7fff416a7dd0 sp 0x7fff416a7598
    #0 0x55d468b02513 in __interceptor_memcpy ($BIN+0x84513) (BuildId: 0abd)
    #1 0x7f850b635c03  ($H5+0x235c03) (BuildId: e923)
    #2 0x7f850b63b4e5 in H5T_copy ($H5+0x23b4e5) (BuildId: e923)
    #3 0x55a887079c87 in pare_h5_open /work/main/src/io/h5table.c:300:9
allocated by thread T0 here:
    #0 0x56524dd3a1be in __interceptor_malloc ($BIN+0xad1be) (BuildId: acd4)
    #1 0x7f850b44e8f1 in H5FL_blk_malloc ($H5+0x14e8f1) (BuildId: e923)
SUMMARY: AddressSanitizer: heap-buffer-overflow ($BIN+0x84513) in __interceptor_memcpy
EOF

case_ "SEGV in H5HG_read called from pare" upstream <<EOF
==24687==ERROR: AddressSanitizer: SEGV on unknown address 0x624308000128 (pc 0x7fb444567b56 bp 0x607000000170 sp 0x7fffef03ff50 T0)
    #0 0x7fb444567b56 in H5HG_read ($H5+0x167b56) (BuildId: e923)
    #1 0x7fb44464d924 in H5T__conv_vlen ($H5+0x24d924) (BuildId: e923)
    #2 0x55a887079c87 in pare_h5_attr_get /work/main/src/io/h5table.c:658:13
SUMMARY: AddressSanitizer: SEGV ($H5+0x167b56) (BuildId: e923) in H5HG_read
EOF

case_ "memcmp interceptor called by pare" pare <<EOF
==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000022352 at pc 0x56524dd11826 bp 0x7ffff5377d60 sp 0x7ffff5377510
    #0 0x56524dd11825 in MemcmpInterceptorCommon(void*, int (*)(void const*, void const*, unsigned long), void const*, void const*, unsigned long) ($BIN+0x84825) (BuildId: acd4)
    #1 0x56524dd11c9a in memcmp ($BIN+0x84c9a) (BuildId: acd4)
    #2 0x55a887079c87 in read_col_attr /work/main/src/io/h5table.c:800:16
    #3 0x7f850b4c3aaa in H5Aiterate2 ($H5+0xc3aaa) (BuildId: e923)
SUMMARY: AddressSanitizer: heap-buffer-overflow ($BIN+0x84825) in MemcmpInterceptorCommon
EOF

case_ "libhdf5 writes past a buffer pare allocated" pare <<EOF
==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000022352 at pc 0x56524dd11826 bp 0x7ffff5377d60 sp 0x7ffff5377510
    #0 0x56524dd11825 in __interceptor_memcpy ($BIN+0x84513) (BuildId: acd4)
    #1 0x7f850b5b42c9 in H5Aread ($H5+0x1b42c9) (BuildId: e923)
    #2 0x55a887079c87 in pare_h5_attr_get /work/main/src/io/h5table.c:658:13
allocated by thread T0 here:
    #0 0x56524dd3a1be in __interceptor_malloc ($BIN+0xad1be) (BuildId: acd4)
    #1 0x55a887079c00 in pare_h5_attr_get /work/main/src/io/h5table.c:650:9
SUMMARY: AddressSanitizer: heap-buffer-overflow ($BIN+0x84513) in __interceptor_memcpy
EOF

case_ "UBSan in pare" pare <<EOF
/work/main/src/io/h5table.c:700:5: runtime error: signed integer overflow: 9223372036854775807 + 1 cannot be represented in type 'long'
    #0 0x55a887079c87 in pare_h5_table_read /work/main/src/io/h5table.c:700:5
SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior /work/main/src/io/h5table.c:700:5
EOF

case_ "leak allocated by pare" pare <<EOF
==1==ERROR: LeakSanitizer: detected memory leaks
Direct leak of 16 byte(s) in 1 object(s) allocated from:
    #0 0x56524dd3a1be in __interceptor_malloc ($BIN+0xad1be) (BuildId: acd4)
    #1 0x55a887079c00 in pare_h5_table_names /work/main/src/io/h5table.c:610:9
SUMMARY: AddressSanitizer: 16 byte(s) leaked in 1 allocation(s).
EOF

case_ "leak allocated by libhdf5" upstream <<EOF
==1==ERROR: LeakSanitizer: detected memory leaks
Direct leak of 16 byte(s) in 1 object(s) allocated from:
    #0 0x56524dd3a1be in __interceptor_malloc ($BIN+0xad1be) (BuildId: acd4)
    #1 0x7f850b44e8f1 in H5FL_blk_malloc ($H5+0x14e8f1) (BuildId: e923)
    #2 0x55a887079c00 in pare_h5_table_names /work/main/src/io/h5table.c:610:9
SUMMARY: AddressSanitizer: 16 byte(s) leaked in 1 allocation(s).
EOF

# tools/fuzz.sh --classify LOG timer: a crash inside libFuzzer's own timer handler, with no input written,
# is rerun rather than failing make check (seen once on 2026-12-07 in fuzz_attn_spec, under load).
timer_case() {
  cat >"$T/report.log"
  sh tools/fuzz.sh --classify "$T/report.log" timer
  rc=$?
  n=$((n + 1))
  if [ "$2" = timer ]; then want=0; else want=1; fi
  if [ "$rc" -eq "$want" ]; then echo "ok $n - $1: $2"; else
    echo "not ok $n - $1: expected $2, fuzz.sh --classify timer exited $rc"
    failed=$((failed + 1))
  fi
}
ATT=/work/main/build-san/fuzz/fuzz_attn_spec
timer_case "clock_gettime in libFuzzer's AlarmCallback over a oneDNN buffer" timer <<EOF
==7384==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x63200db903c0 at pc 0x5586fa9b66b2 bp 0x63200db903b0 sp 0x63200db8fb80
WRITE of size 16 at 0x63200db903c0 thread T0
    #0 0x5586fa9b66b1 in clock_gettime ($ATT+0xdb6b1) (BuildId: 9a76)
    #1 0x7f92bd2cb191 in std::chrono::_V2::system_clock::now() (/lib/x86_64-linux-gnu/libstdc++.so.6+0xcb191) (BuildId: 289e)
    #2 0x5586fa974174 in fuzzer::Fuzzer::AlarmCallback() ($ATT+0x99174) (BuildId: 9a76)
    #3 0x7f92b7e3a04f  (/lib/x86_64-linux-gnu/libc.so.6+0x3c04f) (BuildId: 93ac)
    #4 0x7f92b6149cd6  (<unknown module>)

0x63200db903c0 is located 3136 bytes to the left of 73984-byte region [0x63200db91000,0x63200dba3100)
allocated by thread T0 here:
    #0 0x5586faa12b47 in posix_memalign ($ATT+0x137b47) (BuildId: 9a76)
    #1 0x7f92b8194c71  (/lib/x86_64-linux-gnu/libdnnl.so.2+0x194c71) (BuildId: c740)

SUMMARY: AddressSanitizer: heap-buffer-overflow ($ATT+0xdb6b1) in clock_gettime
MS: 1 ChangeByte-AddressSanitizer: nested bug in the same thread, aborting.
EOF
timer_case "the same report with an input written is an input's crash" pare <<EOF
==7384==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x63200db903c0 at pc 0x5586fa9b66b2 bp 0x63200db903b0 sp 0x63200db8fb80
    #0 0x5586fa9b66b1 in clock_gettime ($ATT+0xdb6b1) (BuildId: 9a76)
    #2 0x5586fa974174 in fuzzer::Fuzzer::AlarmCallback() ($ATT+0x99174) (BuildId: 9a76)

SUMMARY: AddressSanitizer: heap-buffer-overflow ($ATT+0xdb6b1) in clock_gettime
Test unit written to fuzz/crashes/attn_spec/crash-0123
EOF
timer_case "a timer report with a frame in pare's sources is pare's" pare <<EOF
==7384==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x63200db903c0 at pc 0x5586fa9b66b2 bp 0x63200db903b0 sp 0x63200db8fb80
    #0 0x5586fa9b66b1 in clock_gettime ($ATT+0xdb6b1) (BuildId: 9a76)
    #2 0x5586fa974174 in fuzzer::Fuzzer::AlarmCallback() ($ATT+0x99174) (BuildId: 9a76)
    #3 0x5586fa974174 in pare_now_ns /work/main/src/core/timer.c:12:3

SUMMARY: AddressSanitizer: heap-buffer-overflow ($ATT+0xdb6b1) in clock_gettime
EOF
timer_case "an ordinary pare crash is not a timer crash" pare <<EOF
==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000022352
    #0 0x55a887079c00 in pare_h5_table_names /work/main/src/io/h5table.c:610:9

SUMMARY: AddressSanitizer: heap-buffer-overflow
EOF

echo "1..$n"
[ "$failed" -eq 0 ]
