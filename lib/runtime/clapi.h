/* clapi.h: the one place the library includes the OpenCL headers, and the run-time loader of libOpenCL. */
#ifndef OFTAWQ_CLAPI_H
#define OFTAWQ_CLAPI_H

#ifndef CL_TARGET_OPENCL_VERSION
#  define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "oftawq.h"

/* Makes the OpenCL entry points callable. With --enable-opencl-dlopen it loads
 * libOpenCL once per process (`path`, else $OFTAWQ_OPENCL_LIBRARY, else the
 * usual Android/Linux vendor names); otherwise it does nothing.
 * @return : OFTAWQ_OK or OFTAWQ_E_NO_DEVICE (with a detail in `why`, which may be NULL). */
oftawq_status oftawq__opencl_load(const char *path, char *why, size_t why_capacity);

#endif /* OFTAWQ_CLAPI_H */
