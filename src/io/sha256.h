/* sha256.h — SHA-256 (FIPS 180-4), for the script hash in results provenance.
 *
 *     char hex[65];
 *     PARE_TRY(pare_sha256_file(hex, "experiments/x.lua"));
 */
#ifndef PARE_SHA256_H
#define PARE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct pare_sha256 {
    uint32_t h[8];
    uint64_t len;      /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
} pare_sha256;

void pare_sha256_init(pare_sha256 *c);
void pare_sha256_update(pare_sha256 *c, const void *data, size_t n);
/* 32 bytes of digest. */
void pare_sha256_final(pare_sha256 *c, uint8_t digest[32]);
/* Lower-case hex of the digest of data: hex must hold 65 bytes. */
void pare_sha256_hex(char hex[65], const void *data, size_t n);
/* The same of a file's content; PARE_EIO naming the path if it cannot be read. */
pare_status pare_sha256_file(char hex[65], const char *path);

#endif
