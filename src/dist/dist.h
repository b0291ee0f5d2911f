/* dist.h — MPI, optional at build time: who am I among how many processes, the few collectives the
 * engine needs (data-parallel training's gradient all-reduce), and the work queue of a distributed
 * sweep (rank 0 hands out points, a rank that finishes one asks for the next).
 *
 *     pare_dist_init();                        // main(): MPI_Init only when started by mpirun
 *     if (pare_dist_size() > 1) ...            // 1 without mpirun, and in a build without MPI
 *     pare_dist_allreduce_sum_f32(buf, n);     // in place, every rank gets the sum
 *     pare_dist_finalize();                    // main(), after a script that ended normally
 *
 * Two implementations of this one header, chosen by the Makefile: src/dist/mpi.c when OpenMPI's
 * headers are found (pkg-config ompi-c), else src/dist/serial.c (a world of one process: rank 0 of 1;
 * the collectives are copies; the sweep queue refuses). Nothing here includes mpi.h, so no other file
 * of pare needs MPI to compile.
 *
 * Local mode: inside a distributed sweep's point every rank runs its own point alone, so training there
 * must not all-reduce with the other ranks. pare_dist_set_local(1) says so; pare_dist_data_parallel()
 * is true only with more than one rank and local mode off.
 *
 * Failure semantics: MPI aborts the whole job when one rank exits without MPI_Finalize (an error, a
 * kill, os.exit). Nothing here tries to survive that; the results file (rank 0 the one writer) keeps
 * every row written before, and a rerun resumes (docs/distributed.md).
 */
#ifndef PARE_DIST_H
#define PARE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Whether this build has MPI (1) or is the serial stub (0). */
int pare_dist_available(void);
/* "Open MPI v4.1.4, ..." or "none (built without MPI)"; static text. */
const char *pare_dist_library(void);
/* MPI_Init_thread(MPI_THREAD_MULTIPLE) when the environment says an MPI launcher started this process
 * (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK set); otherwise nothing (a world of one). Safe twice. */
pare_status pare_dist_init(void);
/* MPI_Finalize when initialised (a collective: every rank must get here). */
void pare_dist_finalize(void);
int pare_dist_rank(void); /* 0 .. size-1; 0 without MPI */
int pare_dist_size(void); /* 1 without MPI or mpirun */

/* Local mode (see the top): set while a distributed sweep runs a point; returns the previous value. */
int pare_dist_set_local(int on);
int pare_dist_local(void);
/* size > 1 and not local: m:train splits its batches across the ranks. */
int pare_dist_data_parallel(void);

/* ---- collectives (every rank calls them in the same order; errors are MPI's, kept as messages) ---- */
pare_status pare_dist_barrier(void);
/* buf[0..n) summed over the ranks, in place, in MPI's reduction order (float reassociation only). */
pare_status pare_dist_allreduce_sum_f32(float *buf, int64_t n);
pare_status pare_dist_allreduce_sum_f64(double *buf, int64_t n);
/* *len bytes of root's *buf to every rank; on the others *buf is replaced by a malloc'd copy (the
 * caller frees it) and *len set. */
pare_status pare_dist_bcast_bytes(char **buf, size_t *len, int root);

/* ---- point-to-point (pipeline parallelism, src/train/pipeline.c) ----
 * send: `bytes` of buf to rank `dest` with `tag`; the data is copied and sent in the background
 * (MPI_Isend of the copy), so it returns at once and two stages that send to each other at the same
 * time (1F1B's steady state) cannot deadlock. recv: blocks until the message from `src` with `tag`
 * arrives; a message of another size is an error naming both. send_wait: every pending send is
 * complete (call before the buffers' owner goes away: the end of a step). The serial build refuses
 * (PARE_ENOTSUP: a world of one has nobody to send to). */
pare_status pare_dist_send(const void *buf, size_t bytes, int dest, int tag);
pare_status pare_dist_recv(void *buf, size_t bytes, int src, int tag);
pare_status pare_dist_send_wait(void);

/* ---- the work queue of a distributed sweep ----
 * Rank 0 (the serving rank) starts a server thread that answers the other ranks at once, whatever
 * rank 0's own point is doing, so a slow point stalls nobody:
 *
 *     rank 0                                          rank r > 0
 *     pare_dist_queue_begin(todo, n, desc, ...)
 *     while ((k = pare_dist_queue_take()) >= 0)       k = -1, row = NULL
 *         run point k; record its row                 while (pare_dist_queue_ask(k, row, &k) ok && k >= 0)
 *         drain pare_dist_queue_rows: record them          run point k -> row
 *     pare_dist_queue_end(): drains the last rows,
 *         waits for every rank's last ask
 *
 * A worker sends its finished row with its next ask; the server keeps it for rank 0's main thread to
 * record (HDF5 is touched by that thread only). Points are handed out in todo order. Progress: one line
 * on stderr per point handed out, "[k/total] desc  rank r  ETA t", unless quiet. */
typedef struct pare_dist_row {
    int64_t k;    /* the point (an index of the caller's todo list's values) */
    int rank;     /* who ran it */
    char *text;   /* the row as the worker serialised it (malloc'd; the receiver frees) */
    size_t len;
} pare_dist_row;

/* Rank 0: serve the points todo[0..n) (the caller's point numbers, e.g. 1-based indices into the
 * sweep's cartesian product), desc[i] naming todo[i] for the progress line (copied), total the
 * sweep's size (for "[k/total]"), quiet no progress. Fails on another rank, or when a queue runs. */
pare_status pare_dist_queue_begin(const int64_t *todo, int64_t n, const char *const *desc, int64_t total, int quiet);
/* Rank 0: the next point for rank 0 itself, or -1 when none is left. */
int64_t pare_dist_queue_take(void);
/* Rank 0: the rows received so far (moved to the caller: free each text, then the array). */
pare_status pare_dist_queue_rows(pare_dist_row **rows, int64_t *n);
/* Rank 0: true once every other rank has been told there is nothing left (its last row received). */
int pare_dist_queue_drained(void);
/* Rank 0: join the server thread (call once drained, after the last pare_dist_queue_rows). */
void pare_dist_queue_end(void);
/* Ranks > 0: report point done_k (-1: none yet) and its row (NULL: none), get the next point in *next
 * (-1: none left, stop asking). */
pare_status pare_dist_queue_ask(int64_t done_k, const char *row, size_t len, int64_t *next);

#endif
