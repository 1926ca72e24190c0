/* Shared by the fuzz targets and the plain replay driver. */
#ifndef BL_FUZZ_H
#define BL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <apr_pools.h>

/* libFuzzer's entry point; each target defines it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh pool for one input, under a process-wide parent created on first
 * use (APR initialised once). The caller destroys it. */
apr_pool_t *bl_fuzz_input_pool(void);

#endif
