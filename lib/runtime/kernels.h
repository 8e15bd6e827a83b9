/* kernels.h: the table of OpenCL sources embedded at build time (generated lib/cl_kernels.c). */
#ifndef OFTAWQ_KERNELS_H
#define OFTAWQ_KERNELS_H

#include <stddef.h>

typedef struct oftawq__kernel_source {
  const char *name;      /* file name without ".cl" */
  const char *source;    /* NUL-terminated */
  size_t length;         /* without the NUL */
} oftawq__kernel_source;

/* Terminated by an entry whose name is NULL. */
extern const oftawq__kernel_source oftawq__kernel_sources[];

/* The embedded source of a family, or NULL. */
const oftawq__kernel_source *oftawq__kernel_source_find(const char *name);

#endif /* OFTAWQ_KERNELS_H */
