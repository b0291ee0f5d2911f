/* mpi.c — dist.h on MPI (OpenMPI here; nothing OpenMPI-specific but the launcher's environment names).
 *
 * Implements: initialisation only under a launcher, rank/size, local mode, the collectives on a
 * communicator of their own, and the distributed sweep's work queue: a server thread on rank 0 that
 * answers "done with k, here is its row, what next?" within a millisecond while rank 0's main thread
 * runs points itself.
 *
 * Deliberately not here: surviving a dead rank (MPI aborts the job; the results file is what survives),
 * parallel HDF5 (rank 0 is the one writer: docs/distributed.md says why), one-sided or RMA counters,
 * anything tensor-parallel. Point-to-point (pipeline stages): copied non-blocking sends, blocking receives,
 * on a communicator of their own.
 *
 * Threads: MPI_THREAD_MULTIPLE is asked for. The server thread polls (MPI_Iprobe, then 1 ms asleep)
 * instead of blocking in MPI_Recv, because OpenMPI's blocking receive spins a core, and rank 0 needs its
 * core for its own points. Only rank 0's main thread touches HDF5 and Lua.
 */
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/timer.h"
#include "dist/dist.h"

enum { TAG_ASK = 7101, TAG_GIVE = 7102 };

static struct {
    int inited, rank, size, thread_level, local;
    MPI_Comm coll;  /* collectives (training) */
    MPI_Comm queue; /* the sweep's asks and answers */
    MPI_Comm p2p;   /* pipeline stages' activations and gradients */
} W = {.size = 1};

static pare_status mpi_fail(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return pare_fail(PARE_EINTERNAL, "MPI: %s failed on rank %d: %s", what, W.rank, msg);
}

int pare_dist_available(void) { return 1; }

const char *pare_dist_library(void)
{
    static char text[MPI_MAX_LIBRARY_VERSION_STRING];
    if (!text[0]) {
        int len = 0;
        MPI_Get_library_version(text, &len);
        text[strcspn(text, "\n")] = '\0';
        char *comma = strchr(text, ','); /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
        if (comma) *comma = '\0';
    }
    return text;
}

pare_status pare_dist_init(void)
{
    if (W.inited) return PARE_OK;
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK") && !getenv("PMI_SIZE"))
        return PARE_OK; /* not started by a launcher: a world of one, MPI never initialised */
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &W.thread_level);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Init_thread");
    W.inited = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &W.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &W.size);
    MPI_Comm_dup(MPI_COMM_WORLD, &W.coll);
    MPI_Comm_dup(MPI_COMM_WORLD, &W.queue);
    MPI_Comm_dup(MPI_COMM_WORLD, &W.p2p);
    MPI_Comm_set_errhandler(W.p2p, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(W.coll, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(W.queue, MPI_ERRORS_RETURN);
    return PARE_OK;
}

void pare_dist_finalize(void)
{
    if (!W.inited) return;
    MPI_Comm_free(&W.coll);
    MPI_Comm_free(&W.queue);
    pare_dist_send_wait();
    MPI_Comm_free(&W.p2p);
    MPI_Finalize();
    W.inited = 0;
    W.rank = 0, W.size = 1;
}

int pare_dist_rank(void) { return W.rank; }
int pare_dist_size(void) { return W.size; }

int pare_dist_set_local(int on)
{
    int was = W.local;
    W.local = on != 0;
    return was;
}
int pare_dist_local(void) { return W.local; }
int pare_dist_data_parallel(void) { return W.size > 1 && !W.local; }

/* ---- collectives ---- */

pare_status pare_dist_barrier(void)
{
    if (!W.inited) return PARE_OK;
    int rc = MPI_Barrier(W.coll);
    return rc == MPI_SUCCESS ? PARE_OK : mpi_fail(rc, "MPI_Barrier");
}

/* MPI counts are int: sum in chunks of at most 2^30 elements. */
static pare_status allreduce(void *buf, int64_t n, MPI_Datatype t, size_t elem)
{
    if (!W.inited || W.size == 1) return PARE_OK;
    for (int64_t at = 0; at < n;) {
        int64_t c = n - at > (1 << 30) ? (1 << 30) : n - at;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)at * elem, (int)c, t, MPI_SUM, W.coll);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce");
        at += c;
    }
    return PARE_OK;
}
pare_status pare_dist_allreduce_sum_f32(float *buf, int64_t n) { return allreduce(buf, n, MPI_FLOAT, sizeof(float)); }
pare_status pare_dist_allreduce_sum_f64(double *buf, int64_t n) { return allreduce(buf, n, MPI_DOUBLE, sizeof(double)); }

/* ---- point-to-point ---- */

typedef struct pending_send { MPI_Request req; void *copy; } pending_send;
static pending_send *sends;
static int nsends, capsends;

/* Free the copies of the sends that have completed (all of them when wait). */
static pare_status reap_sends(int wait)
{
    int kept = 0;
    pare_status st = PARE_OK;
    for (int i = 0; i < nsends; i++) {
        int done = 0;
        int rc = wait ? MPI_Wait(&sends[i].req, MPI_STATUS_IGNORE) : MPI_Test(&sends[i].req, &done, MPI_STATUS_IGNORE);
        if (wait) done = 1;
        if (rc != MPI_SUCCESS && st == PARE_OK) st = mpi_fail(rc, wait ? "MPI_Wait (a send)" : "MPI_Test (a send)"), done = 1;
        if (done) free(sends[i].copy);
        else sends[kept++] = sends[i];
    }
    nsends = kept;
    return st;
}

pare_status pare_dist_send(const void *buf, size_t bytes, int dest, int tag)
{
    if (!W.inited || W.size == 1) return pare_fail(PARE_EINVAL, "MPI send: a world of one process has nobody to send to");
    if (dest < 0 || dest >= W.size || dest == W.rank)
        return pare_fail(PARE_EINVAL, "MPI send: rank %d cannot send to %d (%d ranks)", W.rank, dest, W.size);
    if (bytes > (size_t)1 << 30) return pare_fail(PARE_EINVAL, "MPI send: %zu bytes is more than 1 GiB", bytes);
    PARE_TRY(reap_sends(0));
    if (nsends == capsends) {
        int cap = capsends ? 2 * capsends : 16;
        pending_send *g = realloc(sends, (size_t)cap * sizeof *g);
        if (!g) return pare_fail(PARE_ENOMEM, "MPI send: out of memory");
        sends = g, capsends = cap;
    }
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy) return pare_fail(PARE_ENOMEM, "MPI send: out of memory copying %zu bytes", bytes);
    memcpy(copy, buf, bytes);
    int rc = MPI_Isend(copy, (int)bytes, MPI_BYTE, dest, tag, W.p2p, &sends[nsends].req);
    if (rc != MPI_SUCCESS) {
        free(copy);
        return mpi_fail(rc, "MPI_Isend");
    }
    sends[nsends++].copy = copy;
    return PARE_OK;
}

pare_status pare_dist_recv(void *buf, size_t bytes, int src, int tag)
{
    if (!W.inited || W.size == 1) return pare_fail(PARE_EINVAL, "MPI recv: a world of one process has nobody to receive from");
    if (src < 0 || src >= W.size || src == W.rank)
        return pare_fail(PARE_EINVAL, "MPI recv: rank %d cannot receive from %d (%d ranks)", W.rank, src, W.size);
    MPI_Status stt;
    int rc = MPI_Probe(src, tag, W.p2p, &stt);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Probe");
    int count = 0;
    MPI_Get_count(&stt, MPI_BYTE, &count);
    if ((size_t)count != bytes)
        return pare_fail(PARE_EINTERNAL, "MPI recv on rank %d: the message from rank %d (tag %d) has %d bytes, %zu expected",
                         W.rank, src, tag, count, bytes);
    rc = MPI_Recv(buf, (int)bytes, MPI_BYTE, src, tag, W.p2p, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Recv");
    return reap_sends(0);
}

pare_status pare_dist_send_wait(void)
{
    if (!W.inited) return PARE_OK;
    pare_status st = reap_sends(1);
    if (!nsends) {
        free(sends);
        sends = NULL, capsends = 0;
    }
    return st;
}

pare_status pare_dist_bcast_bytes(char **buf, size_t *len, int root)
{
    if (!W.inited || W.size == 1) return PARE_OK;
    if (root < 0 || root >= W.size) return pare_fail(PARE_EINVAL, "MPI broadcast: root %d is not a rank of %d", root, W.size);
    uint64_t n = W.rank == root ? (uint64_t)*len : 0;
    int rc = MPI_Bcast(&n, 1, MPI_UINT64_T, root, W.coll);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    if (n > (uint64_t)1 << 30) return pare_fail(PARE_EINVAL, "MPI broadcast: %llu bytes is more than 1 GiB", (unsigned long long)n);
    char *b = W.rank == root ? *buf : malloc(n + 1);
    if (!b) return pare_fail(PARE_ENOMEM, "MPI broadcast: out of memory for %llu bytes", (unsigned long long)n);
    rc = MPI_Bcast(b, (int)n, MPI_BYTE, root, W.coll);
    if (rc != MPI_SUCCESS) {
        if (W.rank != root) free(b);
        return mpi_fail(rc, "MPI_Bcast");
    }
    if (W.rank != root) {
        b[n] = '\0';
        *buf = b, *len = (size_t)n;
    }
    return PARE_OK;
}

/* ---- the sweep's work queue ---- */

static struct {
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    int64_t *todo;       /* (n) */
    char **desc;         /* (n) */
    int64_t n, next, total, completed;
    int quiet;
    int64_t t0;          /* ns */
    pare_dist_row *rows; /* (nrows, capacity cap) received, not yet taken */
    int64_t nrows, cap;
    int released;        /* ranks told "none left" */
    int failed;          /* the server thread's MPI call failed (its message printed) */
    int root_busy;       /* rank 0 took a point and has not asked again */
} Q = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fmt_eta(char *b, size_t n, double s)
{
    if (s != s || s < 0) snprintf(b, n, "?");
    else if (s < 90) snprintf(b, n, "%ds", (int)(s + 0.5));
    else if (s < 5400) snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

/* The next point for `rank`, printing its progress line; Q.mu held. */
static int64_t take_locked(int rank)
{
    if (Q.next >= Q.n) return -1;
    int64_t i = Q.next++;
    if (!Q.quiet) {
        char eta[32] = "?";
        if (Q.completed > 0) {
            double el = (double)(pare_now_ns() - Q.t0) * 1e-9;
            fmt_eta(eta, sizeof eta, el / (double)Q.completed * (double)(Q.n - Q.completed));
        }
        fprintf(stderr, "[%lld/%lld] %s  rank %d  ETA %s\n", (long long)Q.todo[i], (long long)Q.total, Q.desc[i], rank, eta);
    }
    return Q.todo[i];
}

static int push_row_locked(int64_t k, int rank, const char *text, size_t len)
{
    if (Q.nrows == Q.cap) {
        int64_t cap = Q.cap ? 2 * Q.cap : 16;
        pare_dist_row *r = realloc(Q.rows, (size_t)cap * sizeof *r);
        if (!r) return -1;
        Q.rows = r, Q.cap = cap;
    }
    char *t = malloc(len + 1);
    if (!t) return -1;
    memcpy(t, text, len);
    t[len] = '\0';
    Q.rows[Q.nrows++] = (pare_dist_row){k, rank, t, len};
    return 0;
}

/* Answer every ask until each other rank has been told there is nothing left. An ask is
 * [int64 done_k][uint8 has_row][row bytes]; the answer one int64 (-1: stop). */
static void *serve(void *arg)
{
    (void)arg;
    char *buf = NULL;
    size_t bufcap = 0;
    while (Q.released < W.size - 1) {
        int flag = 0;
        MPI_Status s;
        int rc = MPI_Iprobe(MPI_ANY_SOURCE, TAG_ASK, W.queue, &flag, &s);
        if (rc != MPI_SUCCESS) goto fail;
        if (!flag) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        int count = 0;
        MPI_Get_count(&s, MPI_BYTE, &count);
        if ((size_t)count + 1 > bufcap) {
            char *b = realloc(buf, (size_t)count + 1);
            if (!b) goto fail;
            buf = b, bufcap = (size_t)count + 1;
        }
        if ((rc = MPI_Recv(buf, count, MPI_BYTE, s.MPI_SOURCE, TAG_ASK, W.queue, MPI_STATUS_IGNORE)) != MPI_SUCCESS) goto fail;
        int64_t done_k = -1, next;
        if (count >= 9) memcpy(&done_k, buf, sizeof done_k);
        pthread_mutex_lock(&Q.mu);
        if (done_k >= 0) Q.completed++;
        int bad = done_k >= 0 && buf[8] && push_row_locked(done_k, s.MPI_SOURCE, buf + 9, (size_t)count - 9) != 0;
        next = take_locked(s.MPI_SOURCE);
        pthread_mutex_unlock(&Q.mu);
        if (bad) fprintf(stderr, "pare: rank 0 ran out of memory for the row of point %lld from rank %d\n", (long long)done_k,
                         s.MPI_SOURCE);
        if ((rc = MPI_Send(&next, 1, MPI_INT64_T, s.MPI_SOURCE, TAG_GIVE, W.queue)) != MPI_SUCCESS) goto fail;
        if (next < 0) {
            pthread_mutex_lock(&Q.mu);
            Q.released++;
            pthread_mutex_unlock(&Q.mu);
        }
    }
    free(buf);
    return NULL;
fail:
    fprintf(stderr, "pare: the sweep's server on rank 0 failed (MPI or memory); the job cannot go on\n");
    pthread_mutex_lock(&Q.mu);
    Q.failed = 1;
    pthread_mutex_unlock(&Q.mu);
    free(buf);
    return NULL;
}

static void queue_free(void)
{
    for (int64_t i = 0; i < Q.n; i++) free(Q.desc ? Q.desc[i] : NULL);
    free(Q.desc), free(Q.todo);
    for (int64_t i = 0; i < Q.nrows; i++) free(Q.rows[i].text);
    free(Q.rows);
    Q.desc = NULL, Q.todo = NULL, Q.rows = NULL;
    Q.n = Q.next = Q.nrows = Q.cap = Q.completed = 0;
    Q.released = Q.failed = Q.root_busy = 0;
}

pare_status pare_dist_queue_begin(const int64_t *todo, int64_t n, const char *const *desc, int64_t total, int quiet)
{
    if (W.rank != 0) return pare_fail(PARE_EINVAL, "distributed sweep: rank %d cannot serve points (rank 0 does)", W.rank);
    if (Q.running) return pare_fail(PARE_EINVAL, "distributed sweep: a sweep is already being served (nested pare.sweep?)");
    if (W.size > 1 && W.thread_level < MPI_THREAD_MULTIPLE)
        return pare_fail(PARE_ENOTSUP, "distributed sweep: the MPI library gives thread level %d, not MPI_THREAD_MULTIPLE",
                         W.thread_level);
    queue_free();
    Q.todo = malloc((size_t)(n ? n : 1) * sizeof *Q.todo);
    Q.desc = calloc((size_t)(n ? n : 1), sizeof *Q.desc);
    if (!Q.todo || !Q.desc) goto nomem;
    Q.n = n; /* set before the copies: queue_free walks desc[0..n) */
    for (int64_t i = 0; i < n; i++) {
        Q.todo[i] = todo[i];
        if (!(Q.desc[i] = strdup(desc[i] ? desc[i] : ""))) goto nomem;
    }
    Q.total = total, Q.quiet = quiet, Q.t0 = pare_now_ns();
    if (W.size > 1) {
        if (pthread_create(&Q.thread, NULL, serve, NULL) != 0) {
            queue_free();
            return pare_fail(PARE_EINTERNAL, "distributed sweep: cannot start the server thread");
        }
    }
    Q.running = 1;
    return PARE_OK;
nomem:
    queue_free();
    return pare_fail(PARE_ENOMEM, "distributed sweep: out of memory for %lld points", (long long)n);
}

int64_t pare_dist_queue_take(void)
{
    pthread_mutex_lock(&Q.mu);
    if (Q.root_busy) Q.completed++; /* asking again: rank 0's previous point is done */
    int64_t k = Q.running ? take_locked(0) : -1;
    Q.root_busy = k >= 0;
    pthread_mutex_unlock(&Q.mu);
    return k;
}

pare_status pare_dist_queue_rows(pare_dist_row **rows, int64_t *n)
{
    pthread_mutex_lock(&Q.mu);
    *rows = Q.rows, *n = Q.nrows;
    Q.rows = NULL, Q.nrows = Q.cap = 0;
    int failed = Q.failed;
    pthread_mutex_unlock(&Q.mu);
    if (failed) return pare_fail(PARE_EINTERNAL, "distributed sweep: the server thread on rank 0 failed");
    return PARE_OK;
}

int pare_dist_queue_drained(void)
{
    pthread_mutex_lock(&Q.mu);
    int d = Q.failed || Q.released >= W.size - 1;
    pthread_mutex_unlock(&Q.mu);
    return d;
}

void pare_dist_queue_end(void)
{
    if (!Q.running) return;
    if (W.size > 1) pthread_join(Q.thread, NULL);
    Q.running = 0;
    queue_free();
}

pare_status pare_dist_queue_ask(int64_t done_k, const char *row, size_t len, int64_t *next)
{
    *next = -1;
    if (!W.inited || W.rank == 0) return pare_fail(PARE_EINVAL, "distributed sweep: rank 0 serves points, it does not ask");
    if (len > (size_t)1 << 30) return pare_fail(PARE_EINVAL, "distributed sweep: a row of %zu bytes is too large", len);
    size_t n = 9 + (row ? len : 0);
    char *msg = malloc(n);
    if (!msg) return pare_fail(PARE_ENOMEM, "distributed sweep: out of memory for a row of %zu bytes", len);
    memcpy(msg, &done_k, sizeof done_k);
    msg[8] = row != NULL;
    if (row) memcpy(msg + 9, row, len);
    int rc = MPI_Send(msg, (int)n, MPI_BYTE, 0, TAG_ASK, W.queue);
    free(msg);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Send (a sweep's ask)");
    /* a non-blocking receive polled with a 1 ms sleep: rank 0 answers within a few ms, and a blocking
     * MPI_Recv would spin this core the whole time */
    MPI_Request rq;
    if ((rc = MPI_Irecv(next, 1, MPI_INT64_T, 0, TAG_GIVE, W.queue, &rq)) != MPI_SUCCESS) return mpi_fail(rc, "MPI_Irecv");
    for (;;) {
        int flag = 0;
        if ((rc = MPI_Test(&rq, &flag, MPI_STATUS_IGNORE)) != MPI_SUCCESS) return mpi_fail(rc, "MPI_Test");
        if (flag) break;
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
    return PARE_OK;
}
