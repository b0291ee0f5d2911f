/* serial.c — dist.h without MPI: the build's default when OpenMPI's headers are absent (the Makefile
 * links this file instead of mpi.c). A world of one process: rank 0 of 1, collectives leave their
 * buffers as they are (the sum over one rank), the sweep's work queue refuses (pare.sweep never asks
 * for it when size is 1).
 *
 * Deliberately not here: any emulation of several ranks (threads, fork). `mpirun -n 2 pare run` of this
 * build starts two independent single-process runs, which the Lua side cannot tell apart from one;
 * `pare info` and pare.mpi.available say that this build has no MPI.
 */
#include "dist/dist.h"

int pare_dist_available(void) { return 0; }
const char *pare_dist_library(void) { return "none (built without MPI: install libopenmpi-dev and rebuild)"; }
pare_status pare_dist_init(void) { return PARE_OK; }
void pare_dist_finalize(void) {}
int pare_dist_rank(void) { return 0; }
int pare_dist_size(void) { return 1; }

static int local_mode;
int pare_dist_set_local(int on)
{
    int was = local_mode;
    local_mode = on != 0;
    return was;
}
int pare_dist_local(void) { return local_mode; }
int pare_dist_data_parallel(void) { return 0; }

pare_status pare_dist_barrier(void) { return PARE_OK; }
pare_status pare_dist_allreduce_sum_f32(float *buf, int64_t n) { (void)buf, (void)n; return PARE_OK; }
pare_status pare_dist_allreduce_sum_f64(double *buf, int64_t n) { (void)buf, (void)n; return PARE_OK; }
pare_status pare_dist_bcast_bytes(char **buf, size_t *len, int root) { (void)buf, (void)len, (void)root; return PARE_OK; }

static pare_status no_mpi(void) { return pare_fail(PARE_ENOTSUP, "distributed sweep: this build of pare has no MPI"); }
pare_status pare_dist_queue_begin(const int64_t *todo, int64_t n, const char *const *desc, int64_t total, int quiet)
{
    (void)todo, (void)n, (void)desc, (void)total, (void)quiet;
    return no_mpi();
}
int64_t pare_dist_queue_take(void) { return -1; }
pare_status pare_dist_queue_rows(pare_dist_row **rows, int64_t *n)
{
    *rows = NULL, *n = 0;
    return no_mpi();
}
int pare_dist_queue_drained(void) { return 1; }
void pare_dist_queue_end(void) {}
pare_status pare_dist_queue_ask(int64_t done_k, const char *row, size_t len, int64_t *next)
{
    (void)done_k, (void)row, (void)len;
    *next = -1;
    return no_mpi();
}

static pare_status no_p2p(void)
{
    return pare_fail(PARE_ENOTSUP, "point-to-point send/recv (pipeline parallelism): this build of pare has no MPI");
}
pare_status pare_dist_send(const void *buf, size_t bytes, int dest, int tag)
{
    (void)buf, (void)bytes, (void)dest, (void)tag;
    return no_p2p();
}
pare_status pare_dist_recv(void *buf, size_t bytes, int src, int tag)
{
    (void)buf, (void)bytes, (void)src, (void)tag;
    return no_p2p();
}
pare_status pare_dist_send_wait(void) { return PARE_OK; }
