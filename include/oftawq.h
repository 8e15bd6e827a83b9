/* oftawq.h: public API of liboftawq - OFT adapters on AWQ 4-bit linear layers, on OpenCL devices. */
#ifndef OFTAWQ_H
#define OFTAWQ_H

#include <stddef.h>
#include <stdint.h>

#include "oftawq_version.h"

#if defined(OFTAWQ_STATIC)
#  define OFTAWQ_API
#elif defined(_WIN32)
#  if defined(OFTAWQ_BUILDING)
#    define OFTAWQ_API __declspec(dllexport)
#  else
#    define OFTAWQ_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define OFTAWQ_API __attribute__((visibility("default")))
#else
#  define OFTAWQ_API
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#  define OFTAWQ_NODISCARD __attribute__((warn_unused_result))
#else
#  define OFTAWQ_NODISCARD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*-*****************************************************************
 *  Introduction
 *
 *  liboftawq runs OFT (orthogonal fine-tuning) adapters, as trained with
 *  Hugging Face PEFT, in front of AWQ 4-bit quantized linear layers
 *  (AutoAWQ "GEMM" layout) on an OpenCL 1.2+ device. It computes the same
 *  numbers as PEFT's AwqOFTLinear.
 *
 *  Conventions
 *  - Every function that can fail returns an oftawq_status: OFTAWQ_OK (0),
 *    a negative error, or (for the dispatch factory only) the positive
 *    OFTAWQ_NOT_APPLICABLE. Outputs go through pointer arguments and are set
 *    to a defined value (NULL / 0) on failure.
 *  - Handles are opaque; every *_create has a *_destroy that accepts NULL.
 *  - Structs that may grow start with a `size` field; fill them with their
 *    *_init() function before setting fields.
 *  - The library never aborts, exits or prints. Details of the last error
 *    (file, tensor, shape, OpenCL code, compiler log) are kept per context:
 *    oftawq_context_last_error(). Warnings go to an optional log callback.
 *
 *  Threads
 *  An oftawq_context, and every object created from it, is not thread-safe:
 *  use it from one thread at a time. Distinct contexts may be used
 *  concurrently from different threads.
 *******************************************************************/

/*-*****************************************************************
 *  Status codes
 *******************************************************************/

/* One list yields the enum, oftawq_status_name() and oftawq_status_message(). */
#define OFTAWQ_STATUS_LIST(X)                                                             \
  X(OK,                    0, "success")                                                  \
  X(NOT_APPLICABLE,        1, "the target is not an AWQ GEMM layer; no layer was made")   \
  X(E_INVALID_ARGUMENT,   -1, "invalid argument")                                         \
  X(E_NO_DEVICE,          -2, "no OpenCL device (no platform, no matching device or no OpenCL library)") \
  X(E_OUT_OF_MEMORY,      -3, "out of host memory")                                       \
  X(E_DEVICE_MEMORY,      -4, "out of device memory")                                     \
  X(E_BUILD,              -5, "OpenCL program build failed")                              \
  X(E_OPENCL,             -6, "OpenCL runtime error")                                     \
  X(E_IO,                 -7, "file input/output error")                                  \
  X(E_FORMAT,             -8, "malformed file or tensor")                                 \
  X(E_UNSUPPORTED,        -9, "unsupported format, layer kind or configuration")          \
  X(E_INCOMPATIBLE_VERSION, -10, "incompatible producer version")                         \
  X(E_NOT_FOUND,         -11, "not found")                                                \
  X(E_EXISTS,            -12, "already exists")                                           \
  X(E_DEVICE_UNSUPPORTED, -13, "the device lacks a required OpenCL capability")           \
  X(E_MERGE_REFUSED,     -14, "merging OFT into AWQ weights is not possible")             \
  X(E_INTERNAL,          -15, "internal error")

typedef enum oftawq_status {
#define OFTAWQ_STATUS_ENUM_(name, value, message) OFTAWQ_##name = value,
  OFTAWQ_STATUS_LIST(OFTAWQ_STATUS_ENUM_)
#undef OFTAWQ_STATUS_ENUM_
  OFTAWQ_STATUS_LAST_ = -15
} oftawq_status;

/*! oftawq_status_name() :
 *  @return : the enum name without prefix ("OK", "E_BUILD"...); "UNKNOWN" for
 *            a value not in the list. Never NULL, static storage. */
OFTAWQ_API const char *oftawq_status_name(oftawq_status status);

/*! oftawq_status_message() :
 *  @return : a one-line English description; "unknown status" for a value not
 *            in the list. Never NULL, static storage. */
OFTAWQ_API const char *oftawq_status_message(oftawq_status status);

/*-*****************************************************************
 *  Version
 *******************************************************************/

/*! oftawq_version() : @return : OFTAWQ_VERSION_HEX of the library at run time. */
OFTAWQ_API unsigned oftawq_version(void);
/*! oftawq_version_string() : @return : "MAJOR.MINOR.PATCH" of the library at run time. */
OFTAWQ_API const char *oftawq_version_string(void);

/*! oftawq_version_compare() :
 *  Orders two version strings by PEP 440, exactly as Python's
 *  packaging.version.Version does: epochs ("1!0.1"), release numbers with
 *  zero padding ("0.2" == "0.2.0"), pre-releases (a/alpha, b/beta,
 *  rc/c/pre/preview), post-releases (".post1", "-1", rev, r), dev releases
 *  ("0.2.0.dev1" < "0.2.0a1" < "0.2.0" < "0.2.0.post1"), local labels
 *  ("0.2.0+cu121" > "0.2.0"), case-insensitive, optional leading "v",
 *  surrounding whitespace ignored.
 *  @result : receives -1, 0 or 1 (a < b, a == b, a > b); untouched on error.
 *  @return : OFTAWQ_OK, or OFTAWQ_E_INVALID_ARGUMENT for a NULL or unparsable string. */
OFTAWQ_API oftawq_status oftawq_version_compare(const char *a, const char *b, int *result);

/*-*****************************************************************
 *  Text from files and callers
 *******************************************************************/

/*! oftawq_escape() :
 *  Copies `text` with everything that could act on a terminal or split a line
 *  escaped: newline, carriage return and tab as \n \r \t, other control bytes
 *  and bytes that are not valid UTF-8 as \xHH, C1 controls, line separators and
 *  bidirectional overrides as \uHHHH. Printable UTF-8 is kept; escaped text
 *  escapes to itself. Every message of the library (last errors, log
 *  callbacks, `why` buffers) is already escaped this way, so that a crafted
 *  tensor name or path cannot print a fake second line; use this for the
 *  untrusted strings an application prints itself.
 *  @buf    : receives the result, truncated at an escape's boundary and
 *            NUL-terminated when capacity > 0 (may be NULL with capacity 0).
 *  @needed : receives the full length without the NUL (may be NULL).
 *  @return : OFTAWQ_OK, or OFTAWQ_E_INVALID_ARGUMENT for a NULL text, or a NULL
 *            buf with a capacity. */
OFTAWQ_API oftawq_status oftawq_escape(const char *text, char *buf, size_t capacity, size_t *needed);

/*-*****************************************************************
 *  Logging
 *******************************************************************/

typedef enum oftawq_log_level {
  OFTAWQ_LOG_ERROR = 0,
  OFTAWQ_LOG_WARNING = 1,
  OFTAWQ_LOG_INFO = 2,
  OFTAWQ_LOG_DEBUG = 3
} oftawq_log_level;

/* Receives one message (no trailing newline). `message` is valid only during the call. */
typedef void (*oftawq_log_fn)(void *user, oftawq_log_level level, const char *message);

/*-*****************************************************************
 *  Devices
 *******************************************************************/

#define OFTAWQ_INFO_STRING 256

/* Capabilities of one OpenCL device. Strings are NUL-terminated, truncated if longer. */
typedef struct oftawq_device_info {
  size_t size;                          /* sizeof(oftawq_device_info), set by _init */
  unsigned platform_index;              /* the P of a "P:D" selector */
  unsigned device_index;                /* the D of a "P:D" selector */
  char platform_name[OFTAWQ_INFO_STRING];
  char platform_version[OFTAWQ_INFO_STRING];
  char name[OFTAWQ_INFO_STRING];
  char vendor[OFTAWQ_INFO_STRING];
  char version[OFTAWQ_INFO_STRING];     /* CL_DEVICE_VERSION */
  char driver_version[OFTAWQ_INFO_STRING];
  char opencl_c_version[OFTAWQ_INFO_STRING];
  int opencl_c_major, opencl_c_minor;   /* parsed from opencl_c_version */
  int is_gpu, is_cpu;
  int has_fp16;                         /* cl_khr_fp16: half arithmetic */
  int has_fp64;
  int has_subgroups;                    /* cl_khr_subgroups / cl_intel_subgroups / OpenCL 2.1+ */
  int unified_memory;                   /* CL_DEVICE_HOST_UNIFIED_MEMORY */
  int local_mem_is_local;               /* dedicated local memory (not emulated in global) */
  uint64_t local_mem_size;
  uint64_t global_mem_size;
  uint64_t max_alloc_size;
  size_t max_work_group_size;
  unsigned compute_units;
} oftawq_device_info;

OFTAWQ_API void oftawq_device_info_init(oftawq_device_info *info);

/*! oftawq_device_list() :
 *  Enumerates every device of every OpenCL platform.
 *  @infos    : array of `capacity` entries, each initialised with _init (may be NULL if capacity is 0).
 *              A caller built against an older, smaller struct gets each entry filled as far as its
 *              `size` (the array's stride is infos[0].size; every entry must have the same size).
 *  @count    : receives the total number of devices (may exceed capacity; only the
 *              first `capacity` are written).
 *  @opencl_library : builds with --enable-opencl-dlopen: path or soname of the
 *              OpenCL library (NULL: $OFTAWQ_OPENCL_LIBRARY, then the usual vendor
 *              paths); ignored otherwise.
 *  @return : OFTAWQ_OK; OFTAWQ_E_NO_DEVICE when there is no OpenCL library or platform
 *            (then *count = 0); OFTAWQ_E_INVALID_ARGUMENT for a NULL count, NULL infos with a
 *            capacity, or entry sizes that differ or are below the first fields. */
OFTAWQ_API oftawq_status oftawq_device_list(const char *opencl_library, oftawq_device_info *infos,
                                            size_t capacity, size_t *count);

/*-*****************************************************************
 *  Context
 *******************************************************************/

typedef struct oftawq_context oftawq_context;

typedef struct oftawq_context_options {
  size_t size;                /* sizeof(oftawq_context_options), set by _init */
  /* Device selector: "cpu", "gpu", "P:D" (platform and device index), or a
   * case-insensitive substring of the device name. NULL or "": $OFTAWQ_DEVICE,
   * and if that is unset, the first GPU, else the first device. */
  const char *device;
  /* Folder for compiled program binaries and tuning results. NULL or "":
   * memory only. oftawq_cache_dir_default() gives the usual folder. The
   * folder is created if missing; if it cannot be written the context
   * warns and keeps its caches in memory. Copied at creation. */
  const char *cache_dir;
  int profiling;              /* non-zero: the queue records profiling events (benchmarks) */
  oftawq_log_fn log;          /* NULL: warnings are dropped */
  void *log_user;
  const char *opencl_library; /* see oftawq_device_list(); ignored unless built with dlopen */
} oftawq_context_options;

/*! oftawq_context_options_init() : fills the defaults (all NULL / 0) and `size`. */
OFTAWQ_API void oftawq_context_options_init(oftawq_context_options *options);

/*! oftawq_context_create() :
 *  Selects a device, creates an OpenCL context and an in-order queue on it.
 *  @options : may be NULL for the defaults.
 *  @out     : receives the new context (caller owns; oftawq_context_destroy), NULL on failure.
 *  @return  : OFTAWQ_OK; OFTAWQ_E_NO_DEVICE when there is no OpenCL library, no
 *             platform or no device matching the selector (the detail goes to the
 *             log callback at OFTAWQ_LOG_ERROR, since there is no context to hold it);
 *             OFTAWQ_E_OPENCL, OFTAWQ_E_OUT_OF_MEMORY, OFTAWQ_E_INVALID_ARGUMENT. */
OFTAWQ_API OFTAWQ_NODISCARD oftawq_status oftawq_context_create(const oftawq_context_options *options,
                                                                oftawq_context **out);

/*! oftawq_context_destroy() : releases the context and its caches; NULL is a no-op.
 *  Every object created from the context must be destroyed first. */
OFTAWQ_API void oftawq_context_destroy(oftawq_context *ctx);

/*! oftawq_context_last_error() :
 *  @return : the detail of the last error on this context (may span several
 *            lines when it carries a compiler log); "" if none. Owned by the
 *            context, valid until the next call on it. Never NULL (also for a NULL ctx). */
OFTAWQ_API const char *oftawq_context_last_error(const oftawq_context *ctx);

/*! oftawq_context_device_info() : copies the capabilities of the context's device. */
OFTAWQ_API oftawq_status oftawq_context_device_info(const oftawq_context *ctx, oftawq_device_info *info);

/*! oftawq_context_cache_dir() :
 *  @return : the folder the context caches into, or NULL when it caches in memory only
 *            (none was given, or it could not be written). Owned by the context. */
OFTAWQ_API const char *oftawq_context_cache_dir(const oftawq_context *ctx);

/* Counters of the program cache, for tests and cold/warm start measurements. */
typedef struct oftawq_context_stats {
  size_t size;                       /* sizeof(oftawq_context_stats), set by _init */
  uint64_t programs_from_source;     /* compiled from OpenCL C */
  uint64_t programs_from_binary;     /* loaded from the persistent binary cache */
  uint64_t programs_from_memory;     /* found already built in this context */
  uint64_t binaries_rejected;        /* cache entries found corrupt, truncated or foreign */
  uint64_t binaries_written;         /* cache entries written */
  uint64_t tuning_rejected;          /* tuning databases found corrupt or foreign */
} oftawq_context_stats;

OFTAWQ_API void oftawq_context_stats_init(oftawq_context_stats *stats);
OFTAWQ_API oftawq_status oftawq_context_get_stats(const oftawq_context *ctx, oftawq_context_stats *stats);

/*-*****************************************************************
 *  Cache folder
 *******************************************************************/

/*! oftawq_cache_dir_default() :
 *  Writes the usual cache folder into `buf`: $OFTAWQ_CACHE_DIR if set and
 *  non-empty, else $XDG_CACHE_HOME/oftawq, else $HOME/.cache/oftawq.
 *  @return : OFTAWQ_OK; OFTAWQ_E_NOT_FOUND when none of these variables is set;
 *            OFTAWQ_E_INVALID_ARGUMENT when `buf` is NULL or too small (then buf is ""
 *            if capacity > 0). */
OFTAWQ_API oftawq_status oftawq_cache_dir_default(char *buf, size_t capacity);

typedef struct oftawq_cache_summary {
  size_t size;                       /* sizeof(oftawq_cache_summary), set by _init */
  uint64_t program_entries;          /* program binaries */
  uint64_t program_bytes;
  uint64_t tuning_entries;           /* entries of valid tuning databases */
} oftawq_cache_summary;

OFTAWQ_API void oftawq_cache_summary_init(oftawq_cache_summary *summary);

/*! oftawq_cache_summarize() : counts what a cache folder holds (a missing folder holds nothing).
 *  @return : OFTAWQ_OK, OFTAWQ_E_INVALID_ARGUMENT, OFTAWQ_E_IO (unreadable folder). */
OFTAWQ_API oftawq_status oftawq_cache_summarize(const char *dir, oftawq_cache_summary *summary);

/*-*****************************************************************
 *  Data types
 *******************************************************************/

/* Element type of activations in memory. Math is fp32 whatever the dtype; results are rounded to
 * nearest even into it. BF16 follows PEFT and AutoAWQ with a bf16 model: x is taken to fp32 for the
 * rotation and rounded back to bf16, then to fp16 for the AWQ matmul, whose fp16 result is returned
 * rounded to bf16 (a NaN stays a NaN: the quiet NaN 0x7fc0). */
typedef enum oftawq_dtype {
  OFTAWQ_F32 = 0,
  OFTAWQ_F16 = 1,
  OFTAWQ_BF16 = 2
} oftawq_dtype;

/*-*****************************************************************
 *  OFT adapters (PEFT OFTConfig / OFTRotationModule)
 *******************************************************************/

/* An OFT adapter configuration; _init() fills PEFT's defaults. */
typedef struct oftawq_oft_config {
  size_t size;                   /* sizeof(oftawq_oft_config), set by _init */
  int r;                         /* number of blocks, >= 0; 0 = derive from oft_block_size (default 0);
                                  * values above in_features are adjusted to it, as PEFT does */
  int oft_block_size;            /* block size b, >= 0; 0 = derive from r (default 32); the resolved b
                                  * must not exceed OFTAWQ_MAX_OFT_BLOCK */
  double module_dropout;         /* stored, any value; PEFT >= 0.16 never applies it (a non-zero value
                                  * gets a warning) (default 0) */
  int coft;                      /* constrained OFT: project the weights (default 0) */
  double eps;                    /* COFT radius (default 6e-5); read only with coft, then it must be
                                  * finite; eps <= 0 is computed as PEFT does, with a warning */
  int block_share;               /* one R shared by all blocks (default 0) */
  int fan_in_fan_out;            /* stored; AwqOFTLinear ignores it (default 0) */
  int init_weights;              /* 1: zeros (R = I); 0: N(0, 0.1^2) from `seed` (default 1) */
  int use_cayley_neumann;        /* 1: Cayley-Neumann series; 0: exact Cayley (default 1) */
  int num_cayley_neumann_terms;  /* n <= OFTAWQ_MAX_NEUMANN_TERMS (default 5); n <= 1 gives R = I, as in
                                  * PEFT; read only with use_cayley_neumann */
  const char *peft_version;      /* PEFT that trained the adapter; below 0.18.0 selects the older
                                  * Neumann formula. NULL: the current formula. Copied. */
  uint64_t seed;                 /* generator seed for init_weights = 0 (default 0) */
} oftawq_oft_config;

OFTAWQ_API void oftawq_oft_config_init(oftawq_oft_config *config);

/* Bounds oftawq_oft_resolve() checks before anything is allocated.
 * - in_features: a layer wider than this is refused (far above any model's hidden or MLP size).
 * - The resolved block size b: R holds weight_rows * b * b floats, and building it costs about 2 b^3 flops
 *   per block and Neumann term (b = 4096 on in_features 4096: 64 MiB and 0.14 TFLOP per term).
 * - num_cayley_neumann_terms: building R takes n - 2 batched b x b matrix products per block, so at the
 *   limit, b = 32 and in_features 4096 (128 blocks), one R build is about 2.1 GFLOP, against 25 MFLOP
 *   for PEFT's default n = 5 (R is built once per weight update, not per forward). Trained adapters use
 *   a handful of terms. */
#define OFTAWQ_MAX_IN_FEATURES (1 << 20)
#define OFTAWQ_MAX_OFT_BLOCK 4096
#define OFTAWQ_MAX_NEUMANN_TERMS 256

/* The layout an adapter takes on a layer with `in_features` inputs (SPEC 3.1). */
typedef struct oftawq_oft_shape {
  size_t size;                   /* sizeof(oftawq_oft_shape), set by _init */
  int in_features;               /* d = r * block_size */
  int r;                         /* blocks */
  int block_size;                /* b */
  int weight_rows;               /* 1 with block_share, else r */
  int n_elements;                /* b(b-1)/2: weight columns */
  int legacy_neumann;            /* 1: the pre-0.18 formula I + 2 sum_{k=1}^{n-1} Q^k */
} oftawq_oft_shape;

OFTAWQ_API void oftawq_oft_shape_init(oftawq_oft_shape *shape);

/*! oftawq_oft_resolve() :
 *  Validates `config` for a layer of `in_features` inputs and derives r and b
 *  exactly as PEFT does: when b (or r) does not divide d, it is adjusted to the
 *  nearest divisor (ties to the lower, >= d gives d) and a warning naming the
 *  old and new values goes to `log`.
 *  What PEFT accepts is accepted: num_cayley_neumann_terms <= 1 (R = I), any
 *  module_dropout (warned when non-zero: it has no effect), eps unread without
 *  coft and computed as PEFT does when <= 0 with coft (warned).
 *  @return : OFTAWQ_OK; OFTAWQ_E_INVALID_ARGUMENT with a reason in `why` (may be
 *            NULL) for: both or neither of r / oft_block_size set, negative values,
 *            in_features outside [1, OFTAWQ_MAX_IN_FEATURES], a resolved block size
 *            above OFTAWQ_MAX_OFT_BLOCK, more than OFTAWQ_MAX_NEUMANN_TERMS terms (with
 *            use_cayley_neumann), a non-finite eps (with coft), an unparsable
 *            peft_version. */
OFTAWQ_API oftawq_status oftawq_oft_resolve(const oftawq_oft_config *config, int in_features, oftawq_log_fn log,
                                            void *log_user, oftawq_oft_shape *shape, char *why, size_t why_capacity);

typedef struct oftawq_oft oftawq_oft;

/*! oftawq_oft_create() :
 *  An adapter on the context's device. `weights` holds weight_rows x n_elements
 *  floats (row-major, PEFT's oft_R.weight) and `count` must equal that product;
 *  NULL weights (count 0) means "initialise per config->init_weights". With
 *  coft, the weights are projected at once (checkpoints may hold unprojected
 *  ones). R is built on the device on first use and cached until the weights change.
 *  @out    : the adapter (caller owns; oftawq_oft_destroy), NULL on failure.
 *  @return : OFTAWQ_OK, OFTAWQ_E_INVALID_ARGUMENT (config, wrong count, NaN/Inf weights;
 *            detail in oftawq_context_last_error), OFTAWQ_E_DEVICE_MEMORY, OFTAWQ_E_OUT_OF_MEMORY. */
OFTAWQ_API OFTAWQ_NODISCARD oftawq_status oftawq_oft_create(oftawq_context *ctx, const oftawq_oft_config *config,
                                                            int in_features, const float *weights, size_t count,
                                                            oftawq_oft **out);

/*! oftawq_oft_destroy() : NULL is a no-op. */
OFTAWQ_API void oftawq_oft_destroy(oftawq_oft *oft);

/*! oftawq_oft_set_weights() : replaces the weights (same count as at creation);
 *  R is rebuilt on next use. On error the old weights stay. */
OFTAWQ_API oftawq_status oftawq_oft_set_weights(oftawq_oft *oft, const float *weights, size_t count);

/*! oftawq_oft_get_shape() : the resolved layout. */
OFTAWQ_API oftawq_status oftawq_oft_get_shape(const oftawq_oft *oft, oftawq_oft_shape *shape);

/*! oftawq_oft_get_config() : the configuration (peft_version points into the adapter). */
OFTAWQ_API oftawq_status oftawq_oft_get_config(const oftawq_oft *oft, oftawq_oft_config *config);

/*! oftawq_oft_get_weights() : the weights in use (after the COFT projection), count floats. For a trainable
 *  adapter (oftawq_layer_set_trainable), the device copy the optimizer updates, as its last step left it
 *  (like PEFT's parameter; COFT projects it again before R is next built). */
OFTAWQ_API oftawq_status oftawq_oft_get_weights(const oftawq_oft *oft, float *weights, size_t count);

/*! oftawq_oft_get_rotation() :
 *  Builds R if needed and copies it to the host: weight_rows blocks of b x b
 *  floats, row-major (count = weight_rows * b * b). */
OFTAWQ_API oftawq_status oftawq_oft_get_rotation(oftawq_oft *oft, float *R, size_t count);

/*! oftawq_oft_prepare() : builds R on the device now if the weights changed (otherwise
 *  the first rotation does it); returns when R is ready. */
OFTAWQ_API oftawq_status oftawq_oft_prepare(oftawq_oft *oft);

/*! oftawq_oft_rotate() :
 *  y = x . BD(R) for `rows` rows of in_features elements of `dtype` in host
 *  memory (any leading shape flattened to rows). Math in fp32; F16 results are
 *  rounded to nearest even. x and y may be the same array. Blocks until done. */
OFTAWQ_API oftawq_status oftawq_oft_rotate(oftawq_oft *oft, oftawq_dtype dtype, const void *x, void *y, size_t rows);

/*! oftawq_oft_rebuild_count() : how many times R was built (tests, cache checks). */
OFTAWQ_API uint64_t oftawq_oft_rebuild_count(const oftawq_oft *oft);

/*-*****************************************************************
 *  AWQ GEMM base layers (AutoAWQ WQLinear_GEMM)
 *******************************************************************/

/* Host tensors of one AWQ GEMM layer; the library copies them to the device.
 * K = in_features, N = out_features, G = group size (-1 means K). */
typedef struct oftawq_awq_tensors {
  size_t size;                   /* sizeof(oftawq_awq_tensors), set by _init */
  int K, N, G;
  const int32_t *qweight;        /* [K][N/8], nibble order {0,2,4,6,1,3,5,7} */
  const int32_t *qzeros;         /* [K/G][N/8] */
  const uint16_t *scales;        /* [K/G][N], IEEE fp16 bits */
  const uint16_t *bias;          /* [N] fp16 bits, or NULL */
} oftawq_awq_tensors;

OFTAWQ_API void oftawq_awq_tensors_init(oftawq_awq_tensors *tensors);

typedef struct oftawq_awq oftawq_awq;

/* Which kernel computes the matmul. AUTO picks by the number of rows M. */
typedef enum oftawq_awq_path {
  OFTAWQ_AWQ_AUTO = 0,
  OFTAWQ_AWQ_GEMV = 1,           /* fused dequant GEMV, split-K, one pass over the weight for up to 8 rows (decode) */
  OFTAWQ_AWQ_GEMM = 2,           /* fused dequant GEMM, row groups per work-group (medium M) */
  OFTAWQ_AWQ_DENSE = 3           /* dequantise into the context's bounded scratch, tiled to the device's largest
                                  * buffer, then CLBlast's SGEMM (large M) */
} oftawq_awq_path;

/*! oftawq_awq_create() :
 *  Validates the tensors (K % G == 0, N % 8 == 0, all pointers but bias set,
 *  sizes that do not overflow) and uploads them once.
 *  @return : OFTAWQ_OK, OFTAWQ_E_INVALID_ARGUMENT (detail names the tensor and the
 *            expected vs found shape), OFTAWQ_E_DEVICE_MEMORY, OFTAWQ_E_OUT_OF_MEMORY. */
OFTAWQ_API OFTAWQ_NODISCARD oftawq_status oftawq_awq_create(oftawq_context *ctx, const oftawq_awq_tensors *tensors,
                                                            oftawq_awq **out);
OFTAWQ_API void oftawq_awq_destroy(oftawq_awq *awq);

/*! oftawq_awq_get_shape() : K (in_features), N (out_features), G (group size, resolved) and
 *  whether there is a bias; any output may be NULL. */
OFTAWQ_API oftawq_status oftawq_awq_get_shape(const oftawq_awq *awq, int *K, int *N, int *G, int *has_bias);

/*! oftawq_awq_set_path() : forces a path (tests, benchmarks); AUTO restores the choice by M.
 *  DENSE without CLBlast falls back to GEMM. */
OFTAWQ_API oftawq_status oftawq_awq_set_path(oftawq_awq *awq, oftawq_awq_path path);

/*! oftawq_awq_path_for() : the path AUTO takes for `rows` rows. */
OFTAWQ_API oftawq_awq_path oftawq_awq_path_for(const oftawq_awq *awq, size_t rows);

/*! oftawq_awq_forward() :
 *  y = x . W + bias for `rows` rows of K elements in host memory; y has rows x N
 *  elements of the same dtype. As AutoAWQ: x is rounded to fp16 first and y is
 *  the fp16-rounded result in the input dtype; sums are fp32 (AutoAWQ's CUDA
 *  kernels sum in fp16 in places, so results may differ from it by fp16 rounding).
 *  Blocks until done. */
OFTAWQ_API oftawq_status oftawq_awq_forward(oftawq_awq *awq, oftawq_dtype dtype, const void *x, void *y, size_t rows);

/*-*****************************************************************
 *  AwqOFTLinear: OFT adapters in front of an AWQ GEMM layer
 *******************************************************************/

typedef struct oftawq_layer oftawq_layer;

#define OFTAWQ_MAX_ADAPTER_NAME 128

/*! oftawq_layer_create() : a layer over a new AWQ base layer, with no adapters yet
 *  (forward = the base layer until one is added). */
OFTAWQ_API OFTAWQ_NODISCARD oftawq_status oftawq_layer_create(oftawq_context *ctx, const oftawq_awq_tensors *base,
                                                              oftawq_layer **out);
OFTAWQ_API void oftawq_layer_destroy(oftawq_layer *layer);

/*! oftawq_layer_base(), oftawq_layer_quant_linear_module() :
 *  the AWQ base layer; both return the same object (PEFT's `base_layer` and its
 *  alias `quant_linear_module`). Owned by the layer. */
OFTAWQ_API oftawq_awq *oftawq_layer_base(oftawq_layer *layer);
OFTAWQ_API oftawq_awq *oftawq_layer_quant_linear_module(oftawq_layer *layer);

/*! oftawq_layer_add_adapter() :
 *  Adds an OFT adapter named `name` (1..OFTAWQ_MAX_ADAPTER_NAME-1 bytes) for
 *  in_features = K. weights: as oftawq_oft_create (NULL/0 = config->init_weights).
 *  The first adapter added becomes the active list; later ones are inactive
 *  until named in oftawq_layer_set_active(). The base layer is not re-uploaded.
 *  @return : OFTAWQ_OK, OFTAWQ_E_EXISTS (name taken), OFTAWQ_E_INVALID_ARGUMENT, ... */
OFTAWQ_API oftawq_status oftawq_layer_add_adapter(oftawq_layer *layer, const char *name,
                                                  const oftawq_oft_config *config, const float *weights,
                                                  size_t count);

/*! oftawq_layer_set_adapter_weights() : replaces an adapter's weights (OFTAWQ_E_NOT_FOUND for an unknown name). */
OFTAWQ_API oftawq_status oftawq_layer_set_adapter_weights(oftawq_layer *layer, const char *name,
                                                          const float *weights, size_t count);

/*! oftawq_layer_delete_adapter() : removes an adapter (and its name from the active list). */
OFTAWQ_API oftawq_status oftawq_layer_delete_adapter(oftawq_layer *layer, const char *name);

/*! oftawq_layer_adapter_count(), oftawq_layer_adapter_name() : the adapters in the order
 *  they were added; the name is owned by the layer (NULL for an index out of range). */
OFTAWQ_API size_t oftawq_layer_adapter_count(const oftawq_layer *layer);
OFTAWQ_API const char *oftawq_layer_adapter_name(const oftawq_layer *layer, size_t index);

/*! oftawq_layer_adapter() : the adapter object of a name, or NULL. Owned by the layer. */
OFTAWQ_API oftawq_oft *oftawq_layer_adapter(oftawq_layer *layer, const char *name);

/*! oftawq_layer_set_active() :
 *  Sets the ordered list of active adapters: forward applies them in this
 *  order (x . R_1 . R_2 ...). As in PEFT, names that are not (or no longer)
 *  adapters of the layer are skipped at forward time. n = 0 activates none. */
OFTAWQ_API oftawq_status oftawq_layer_set_active(oftawq_layer *layer, const char *const *names, size_t n);

/*! oftawq_layer_enable_adapters() : 0 disables every adapter (forward = base layer), 1 enables them again. */
OFTAWQ_API oftawq_status oftawq_layer_enable_adapters(oftawq_layer *layer, int enabled);

/*! oftawq_layer_merge() : always OFTAWQ_E_MERGE_REFUSED - a rotation cannot be folded into
 *  4-bit AWQ weights (PEFT's AwqOFTLinear refuses too). */
OFTAWQ_API oftawq_status oftawq_layer_merge(oftawq_layer *layer);

/*! oftawq_layer_forward() :
 *  AwqOFTLinear.forward on `rows` rows of K elements of `dtype` in host memory
 *  into rows x N elements of the same dtype. Adapters disabled: the base
 *  layer. Otherwise each active adapter in order rotates x in fp32 and rounds
 *  it back to the input dtype, then the AWQ layer runs. Blocks until done. */
OFTAWQ_API oftawq_status oftawq_layer_forward(oftawq_layer *layer, oftawq_dtype dtype, const void *x, void *y,
                                              size_t rows);

/*! oftawq_layer_forward_mixed() :
 *  A batch that serves several fine-tunes of one base: row i is rotated by
 *  the adapter at position adapter_index[i] of oftawq_layer_adapter_name()
 *  (-1: no adapter), then every row goes through the AWQ layer. Ignores the
 *  active list and the enabled flag.
 *  @return : OFTAWQ_E_INVALID_ARGUMENT for an index out of range. */
OFTAWQ_API oftawq_status oftawq_layer_forward_mixed(oftawq_layer *layer, oftawq_dtype dtype, const void *x, void *y,
                                                    size_t rows, const int *adapter_index);

/*! oftawq_layer_describe() :
 *  Writes PEFT's repr-style description, prefixed "oft.", e.g.
 *  "oft.AwqOFTLinear(in_features=384, out_features=1536, group_size=128, bias=True,
 *  adapters_enabled=True, adapters=[default(r=12, block_size=32, neumann_terms=5,
 *  coft=False, block_share=False, active)])". Active adapters the layer does
 *  not carry (skipped at forward, as PEFT skips them) follow as
 *  ", skipped=[name, ...]" before the closing parenthesis.
 *  @needed : receives the length without the NUL (may be NULL). Output is
 *            truncated to capacity (NUL-terminated when capacity > 0). */
OFTAWQ_API oftawq_status oftawq_layer_describe(const oftawq_layer *layer, char *buf, size_t capacity,
                                               size_t *needed);

/*-*****************************************************************
 *  The version-gated factory (PEFT dispatch_awq)
 *******************************************************************/

/* What a target layer is. Only OFTAWQ_TARGET_AWQ_GEMM gets an OFT layer. */
typedef enum oftawq_target_kind {
  OFTAWQ_TARGET_AWQ_GEMM = 0,
  OFTAWQ_TARGET_AWQ_GEMV = 1,
  OFTAWQ_TARGET_AWQ_GEMV_FAST = 2,
  OFTAWQ_TARGET_AWQ_MARLIN = 3,
  OFTAWQ_TARGET_LINEAR_F16 = 4,
  OFTAWQ_TARGET_LINEAR_F32 = 5,
  OFTAWQ_TARGET_LINEAR_BF16 = 6,
  OFTAWQ_TARGET_OTHER = 7        /* a module with weights that is no linear layer (a norm, ...) */
} oftawq_target_kind;

/* The AWQ producers whose layers PEFT has dispatched, each with its own version gate. */
typedef enum oftawq_awq_producer {
  OFTAWQ_PRODUCER_UNKNOWN = 0,   /* a version given without a producer is AutoAWQ's (the older API) */
  OFTAWQ_PRODUCER_AUTOAWQ = 1,   /* AutoAWQ's WQLinear_GEMM: PEFT 0.16-0.18 dispatch it from 0.2.0 */
  OFTAWQ_PRODUCER_GPTQMODEL = 2  /* GPT-QModel's AWQ GEMM layer: PEFT 0.19+ dispatch it from 5.6.12 */
} oftawq_awq_producer;

typedef struct oftawq_target {
  size_t size;                   /* sizeof(oftawq_target), set by _init */
  oftawq_target_kind kind;
  const char *awq_version;       /* the AWQ producer's version, or NULL when unknown (accepted) */
  oftawq_awq_tensors tensors;    /* used when kind is OFTAWQ_TARGET_AWQ_GEMM */
  oftawq_awq_producer producer;  /* which producer awq_version is of (default OFTAWQ_PRODUCER_UNKNOWN) */
} oftawq_target;

OFTAWQ_API void oftawq_target_init(oftawq_target *target);

/* The oldest producer versions the factory accepts: AutoAWQ (PEFT 0.16-0.18) and GPT-QModel (PEFT 0.19+). */
#define OFTAWQ_MIN_AWQ_VERSION "0.2.0"
#define OFTAWQ_MIN_GPTQMODEL_VERSION "5.6.12"

/*! oftawq_dispatch() :
 *  PEFT's dispatch_awq in C. For a target that is not an AWQ GEMM layer it
 *  returns OFTAWQ_NOT_APPLICABLE (> 0) and no layer. For a producer version
 *  below its gate it returns OFTAWQ_E_INCOMPATIBLE_VERSION with the detail
 *  "Found an incompatible version of auto-awq. Found version X, but only
 *  versions above 0.2.0 are supported." (GPT-QModel: "... of gptqmodel ...
 *  above 5.6.12 ..."); an unparsable version is OFTAWQ_E_INVALID_ARGUMENT (NULL
 *  means unknown and is accepted). A device below OpenCL C 1.2 is
 *  OFTAWQ_E_DEVICE_UNSUPPORTED. Otherwise it validates the tensors and the OFT
 *  config and returns a layer holding the adapter `adapter_name` (weights as in
 *  oftawq_layer_add_adapter), active. A target struct of an older, smaller size
 *  (without `producer`) is read as OFTAWQ_PRODUCER_UNKNOWN.
 *  @out : the layer (caller owns), NULL unless OFTAWQ_OK. */
OFTAWQ_API oftawq_status oftawq_dispatch(oftawq_context *ctx, const oftawq_target *target, const char *adapter_name,
                                         const oftawq_oft_config *config, const float *weights, size_t count,
                                         oftawq_layer **out);

/*-*****************************************************************
 *  Benchmarks (oftawq bench)
 *******************************************************************/

/* One benchmark point: a synthetic AWQ layer K x N (group G) with one OFT adapter (block b), M rows. */
typedef struct oftawq_bench_options {
  size_t size;                   /* sizeof(oftawq_bench_options), set by _init */
  int K, N, M, G, block_size;    /* defaults 2048, 2048, 1, 128, 32 */
  int runs;                      /* timed runs (default 5); median and min are reported */
  int warmup;                    /* untimed runs first (default 2) */
  uint64_t seed;                 /* synthetic data (default 1) */
  int paths;                     /* non-zero: also time each AWQ path forced (awq_gemv, awq_gemm, awq_dense)
                                  * and the layer with the rotation fused or separate (oft_awq_fused,
                                  * oft_awq_separate; fusion applies to the GEMV path), the layer with three
                                  * active adapters (oft_awq_3), and the exact R built on either side
                                  * (cayley_exact_host, cayley_exact_device) */
} oftawq_bench_options;

OFTAWQ_API void oftawq_bench_options_init(oftawq_bench_options *options);

#define OFTAWQ_BENCH_IMPL_NAME 32

typedef struct oftawq_bench_result {
  size_t size;                   /* sizeof(oftawq_bench_result), set by the library */
  char impl[OFTAWQ_BENCH_IMPL_NAME]; /* copy, awq, oft_awq, oft_awq_recompute, rotate, cayley_neumann,
                                      * cayley_exact, clblast_f32, clblast_f16, cpu_int4, fma (fp32 fma chains
                                      * on every lane: the device's compute ceiling, its flops the chains'
                                      * 2 per fma); with `paths`: awq_gemv,
                                      * awq_gemm, awq_dense, oft_awq_fused, oft_awq_separate, oft_awq_3,
                                      * cayley_exact_host, cayley_exact_device */
  int K, N, M, G, block_size;
  int runs;
  double median_s, min_s;        /* host clock from the first enqueue to clFinish, per call */
  double bytes;                  /* bytes that must move per call */
  double flops;                  /* floating-point operations per call */
  double gbps, gflops;           /* bytes / median, flops / median */
  int checked;                   /* 1: the output matched the reference before timing */
  double weight_bytes;           /* weights read per call (packed AWQ tensors, dense copies, the adapters' R)
                                  * as the implementation's plan reads them; 0 where it reads none */
  double weight_minimum;         /* the AWQ tensors' bytes: the least a layer call must read */
} oftawq_bench_result;

/*! oftawq_bench_shape() :
 *  Measures every implementation on one point, after checking each one's output
 *  against the plain-C reference and warming it up. Every implementation is timed
 *  the same way: host clock from the first enqueue to clFinish (CLBlast enqueues
 *  several kernels and returns only the last one's event); the timed runs go
 *  round-robin over the implementations so that all see the same conditions. clblast_* appear only when
 *  the library was built with CLBlast (clblast_f16 also needs cl_khr_fp16).
 *  @results : room for `capacity` results; @count : how many were written.
 *  @progress : called before each implementation with its name (may be NULL).
 *  @return : OFTAWQ_OK; OFTAWQ_E_INTERNAL when an output does not match the
 *            reference (the detail names it); other errors as usual. */
OFTAWQ_API oftawq_status oftawq_bench_shape(oftawq_context *ctx, const oftawq_bench_options *options,
                                            oftawq_bench_result *results, size_t capacity, size_t *count,
                                            void (*progress)(void *user, const char *impl), void *user);

/*! oftawq_bench_train() :
 *  Times training on one point (oftawq bench --train): a synthetic K x N
 *  layer (group G) with a trainable Cayley-Neumann adapter of block b, M rows,
 *  F32, AdamW. Implementations: oft_awq (the inference forward, for
 *  comparison), train_forward, train_backward (with dx; its training forward
 *  runs first, untimed), train_step (AdamW), train_iteration (forward,
 *  backward, step and zero_grad), and with three trainable adapters
 *  train_backward_3 (the backward keeping each adapter's input) and
 *  train_backward_3_recompute (recomputing the inner ones). Each output is
 *  checked against the plain-C reference first; timing as
 *  oftawq_bench_shape(). OFTAWQ_E_INTERNAL also when training made a dense
 *  copy of W. */
OFTAWQ_API oftawq_status oftawq_bench_train(oftawq_context *ctx, const oftawq_bench_options *options,
                                            oftawq_bench_result *results, size_t capacity, size_t *count,
                                            void (*progress)(void *user, const char *impl), void *user);

/*-*****************************************************************
 *  Files: safetensors, AWQ model folders, PEFT adapter folders
 *
 *  These functions need no device. They report details in a caller
 *  buffer `why` of `why_capacity` bytes (may be NULL / 0).
 *******************************************************************/

typedef enum oftawq_tensor_dtype {
  OFTAWQ_T_F64, OFTAWQ_T_F32, OFTAWQ_T_F16, OFTAWQ_T_BF16,
  OFTAWQ_T_I64, OFTAWQ_T_I32, OFTAWQ_T_I16, OFTAWQ_T_I8,
  OFTAWQ_T_U64, OFTAWQ_T_U32, OFTAWQ_T_U16, OFTAWQ_T_U8, OFTAWQ_T_BOOL
} oftawq_tensor_dtype;

#define OFTAWQ_MAX_DIMS 8

/* A tensor of a safetensors file; name and data point into the open file (valid until it is closed). */
typedef struct oftawq_tensor {
  size_t size;                   /* sizeof(oftawq_tensor), set by _init */
  const char *name;
  oftawq_tensor_dtype dtype;
  int ndim;
  int64_t shape[OFTAWQ_MAX_DIMS];
  const void *data;              /* little-endian, possibly unaligned */
  size_t nbytes;
} oftawq_tensor;

OFTAWQ_API void oftawq_tensor_init(oftawq_tensor *tensor);

/*! oftawq_tensor_dtype_name() : "F32", "BF16"...; "?" for an unknown value. */
OFTAWQ_API const char *oftawq_tensor_dtype_name(oftawq_tensor_dtype dtype);

typedef struct oftawq_safetensors oftawq_safetensors;

/*! oftawq_safetensors_open() :
 *  Maps a .safetensors file (no copy) and checks all of it: the 8-byte
 *  little-endian header size against the file size, the JSON header, each
 *  tensor's dtype, shape and data_offsets (inside the data section, not
 *  reversed, not overlapping, dtype size x shape == byte length, no integer
 *  overflow). `__metadata__` must map strings to strings.
 *  @return : OFTAWQ_OK, OFTAWQ_E_IO (cannot open or map), OFTAWQ_E_FORMAT (detail in why). */
OFTAWQ_API oftawq_status oftawq_safetensors_open(const char *path, oftawq_safetensors **out, char *why,
                                                 size_t why_capacity);
OFTAWQ_API void oftawq_safetensors_close(oftawq_safetensors *file);
OFTAWQ_API size_t oftawq_safetensors_count(const oftawq_safetensors *file);
/*! oftawq_safetensors_get() : the index-th tensor, in header order. */
OFTAWQ_API oftawq_status oftawq_safetensors_get(const oftawq_safetensors *file, size_t index, oftawq_tensor *tensor);
/*! oftawq_safetensors_find() : a tensor by name; OFTAWQ_E_NOT_FOUND if absent. */
OFTAWQ_API oftawq_status oftawq_safetensors_find(const oftawq_safetensors *file, const char *name,
                                                 oftawq_tensor *tensor);
/*! oftawq_safetensors_metadata() : a `__metadata__` value, or NULL. Owned by the file. */
OFTAWQ_API const char *oftawq_safetensors_metadata(const oftawq_safetensors *file, const char *key);

/*! oftawq_safetensors_write() :
 *  Writes tensors (name, dtype, ndim, shape, data; nbytes must match) to
 *  `path` through a temporary file renamed on success, so a failed write
 *  leaves nothing behind. `format` metadata is set to "pt". */
OFTAWQ_API oftawq_status oftawq_safetensors_write(const char *path, const oftawq_tensor *tensors, size_t n,
                                                  char *why, size_t why_capacity);

typedef struct oftawq_model_file oftawq_model_file;

/*! oftawq_model_file_open() :
 *  Opens a Hugging Face AWQ model folder: config.json with quantization_config
 *  (AutoAWQ's "version" or GPT-QModel's "format" names the layout; or a legacy
 *  quant_config.json), and the weights: with model.safetensors.index.json,
 *  exactly the tensors of its weight_map, each read from the shard it names
 *  (other files in the folder are never read; a malformed or unreadable index
 *  is an error); without one, model.safetensors, or the folder's only
 *  *.safetensors file (several, or model.safetensors beside an index, are
 *  OFTAWQ_E_FORMAT: ambiguous). A folder that is not AWQ GEMM 4-bit with zero
 *  points is OFTAWQ_E_UNSUPPORTED, with a detail naming what it is (GPTQ, AWQ
 *  GEMV, 8-bit, not quantised...); a missing folder, or one without config.json
 *  and quant_config.json, is OFTAWQ_E_NOT_FOUND. */
OFTAWQ_API oftawq_status oftawq_model_file_open(const char *dir, oftawq_model_file **out, char *why, size_t why_capacity);
OFTAWQ_API void oftawq_model_file_close(oftawq_model_file *model);
/*! oftawq_model_file_group_size() : the configured group size (-1 = whole input). */
OFTAWQ_API int oftawq_model_file_group_size(const oftawq_model_file *model);
/*! oftawq_model_file_module_count(), oftawq_model_file_module_name() : the AWQ modules (those with a
 *  qweight, minus modules_to_not_convert), sorted by name. Names are owned by the model. */
OFTAWQ_API size_t oftawq_model_file_module_count(const oftawq_model_file *model);
OFTAWQ_API const char *oftawq_model_file_module_name(const oftawq_model_file *model, size_t index);
/*! oftawq_model_file_module() :
 *  The tensors of module `name` (e.g. "model.layers.0.self_attn.q_proj"), checked
 *  against each other: qweight I32 [K, N/8], qzeros I32 [K/G, N/8], scales F16
 *  [K/G, N], optional bias F16 [N]. Pointers stay valid until the model is closed.
 *  @return : OFTAWQ_OK, OFTAWQ_E_NOT_FOUND, OFTAWQ_E_FORMAT, OFTAWQ_E_UNSUPPORTED. */
OFTAWQ_API oftawq_status oftawq_model_file_module(const oftawq_model_file *model, const char *name, oftawq_awq_tensors *tensors,
                                             char *why, size_t why_capacity);

typedef struct oftawq_adapter_file oftawq_adapter_file;

/*! oftawq_adapter_open() :
 *  Opens a PEFT OFT adapter folder: adapter_config.json (peft_type "OFT";
 *  missing keys take PEFT's defaults; a missing peft_version means PEFT
 *  0.16-0.17 and so the pre-0.18 Neumann formula) and adapter_model.safetensors.
 *  Configs without oft_block_size (PEFT < 0.14) and oft_r / oft_s weights
 *  (PEFT 0.14-0.15) are refused with OFTAWQ_E_UNSUPPORTED. */
OFTAWQ_API oftawq_status oftawq_adapter_open(const char *dir, oftawq_adapter_file **out, char *why,
                                             size_t why_capacity);
OFTAWQ_API void oftawq_adapter_close(oftawq_adapter_file *adapter);
/*! oftawq_adapter_config() : the adapter's config (strings owned by the adapter). */
OFTAWQ_API oftawq_status oftawq_adapter_config(const oftawq_adapter_file *adapter, oftawq_oft_config *config);
/*! oftawq_adapter_weights() :
 *  The weights of `module` (key base_model.model.<module>.oft_R.weight) as
 *  floats (F16 / BF16 are converted): rows x cols, owned by the adapter.
 *  @return : OFTAWQ_OK, OFTAWQ_E_NOT_FOUND, OFTAWQ_E_FORMAT. */
OFTAWQ_API oftawq_status oftawq_adapter_weights(oftawq_adapter_file *adapter, const char *module,
                                                const float **weights, size_t *rows, size_t *cols, char *why,
                                                size_t why_capacity);

/*! oftawq_layer_load() :
 *  One call from files to a layer: opens the model folder (oftawq_model_open),
 *  loads the adapters of `adapter_dirs` under `adapter_names` (NULL: "default"
 *  for the first, then the folder's base name) with PEFT's targeting rules
 *  (oftawq_model_load_adapter), and returns the layer of `module`, which
 *  carries the adapters that target it (an adapter that does not is skipped
 *  for it, as in PEFT). The first adapter is active. Details go to the
 *  context's last error. */
OFTAWQ_API oftawq_status oftawq_layer_load(oftawq_context *ctx, const char *model_dir, const char *module,
                                           const char *const *adapter_dirs, const char *const *adapter_names,
                                           size_t n_adapters, oftawq_layer **out);

/*-*****************************************************************
 *  Models (SPEC 13): every AWQ module of a folder, with adapters applied
 *  by PEFT's targeting rules
 *
 *  A model is an AWQ folder seen as named modules. Loading an adapter
 *  applies its target_modules / exclude_modules / layers_to_transform /
 *  layers_pattern to every module name exactly as PEFT 0.18 does, asks the
 *  factory (oftawq_dispatch) about each targeted module and records the
 *  outcome. Nothing goes to the device until a module's layer is first
 *  used; a memory budget evicts the least recently used layers.
 *******************************************************************/

typedef struct oftawq_model oftawq_model;

typedef struct oftawq_model_options {
  size_t size;                   /* sizeof(oftawq_model_options), set by _init */
  uint64_t memory_budget;        /* device bytes the uploaded layers may take (oftawq_model_module.device_bytes
                                  * summed); 0 = no limit (default). Uploading a layer first evicts the least
                                  * recently used others until it fits; a layer larger than the budget alone
                                  * is still uploaded, with every other evicted */
  oftawq_awq_producer producer;  /* with producer_version: the AWQ producer the factory's version gate checks,
                                  * instead of what the checkpoint records (GPT-QModel writes meta.quantizer,
                                  * e.g. ["gptqmodel:5.6.12"], in its quantization config). Default UNKNOWN */
  const char *producer_version;  /* NULL (default): the checkpoint's record, if any; unknown is accepted */
  int record_refusals;           /* 0 (default): a targeted module the factory refuses fails the whole load,
                                  * as in PEFT; non-zero: it is recorded (OFTAWQ_OUTCOME_REFUSED, with the
                                  * reason) and the adapter loads for the other modules (oftawq inspect) */
} oftawq_model_options;

OFTAWQ_API void oftawq_model_options_init(oftawq_model_options *options);

/*! oftawq_model_open() :
 *  Opens an AWQ model folder (oftawq_model_file_open: config.json or a legacy
 *  quant_config.json, model.safetensors or the shards of its index) and lists
 *  its modules: every AWQ GEMM module (checked as oftawq_model_file_module())
 *  and every other module with weights. The weights stay memory-mapped;
 *  nothing is uploaded. The folder must stay in place while the model is open.
 *  @options : may be NULL for the defaults.
 *  @out     : the model (caller owns; oftawq_model_destroy), NULL on failure.
 *  @return  : OFTAWQ_OK; OFTAWQ_E_INVALID_ARGUMENT (NULLs, options of an older size, an unknown producer, a
 *             producer_version that is not a PEP 440 version); or the error of the folder (detail in the
 *             context's last error). */
OFTAWQ_API OFTAWQ_NODISCARD oftawq_status oftawq_model_open(oftawq_context *ctx, const char *model_dir,
                                                            const oftawq_model_options *options, oftawq_model **out);
/*! oftawq_model_destroy() : frees the model and every layer it made; NULL is a no-op. */
OFTAWQ_API void oftawq_model_destroy(oftawq_model *model);

/* One module of a model. */
typedef struct oftawq_model_module {
  size_t size;                   /* sizeof(oftawq_model_module), set by _init */
  const char *name;              /* e.g. "model.layers.0.self_attn.q_proj"; owned by the model */
  oftawq_target_kind kind;       /* OFTAWQ_TARGET_AWQ_GEMM, a full-precision linear (by its weight's dtype: a
                                  * 2-D weight, so also an embedding) or OFTAWQ_TARGET_OTHER */
  int K, N, G, has_bias;         /* AWQ GEMM: in/out features, group size, bias; others: K, N of a 2-D weight */
  uint64_t device_bytes;         /* AWQ GEMM: the layer's device buffers - qweight, qzeros, scales, bias and one
                                  * R per wrapped adapter (per-call scratch for activations comes on top) */
  int uploaded;                  /* its layer is on the device now */
} oftawq_model_module;

OFTAWQ_API void oftawq_model_module_init(oftawq_model_module *module);
/*! oftawq_model_module_count(), oftawq_model_module_get() : the modules, sorted by name. */
OFTAWQ_API size_t oftawq_model_module_count(const oftawq_model *model);
OFTAWQ_API oftawq_status oftawq_model_module_get(const oftawq_model *model, size_t index, oftawq_model_module *module);
/*! oftawq_model_module_find() : the index of a module by name; OFTAWQ_E_NOT_FOUND if the model has none. */
OFTAWQ_API oftawq_status oftawq_model_module_find(const oftawq_model *model, const char *name, size_t *index);

/*! oftawq_model_load_adapter() :
 *  Loads a PEFT OFT adapter folder as adapter `name` (1..OFTAWQ_MAX_ADAPTER_NAME-1
 *  bytes; NULL: "default" for the first adapter, else the folder's base name)
 *  and applies PEFT's targeting rules to every module: target_modules as a list
 *  matches a name equal to an entry or ending in "." + entry (then filtered by
 *  layers_to_transform with layers_pattern); as a string it is a regular
 *  expression (Python's re, see below) that must match the whole name; null
 *  takes PEFT's default for the model_type; exclude_modules likewise removes
 *  names, and so do modules_to_save. For each targeted module the outcome is
 *  recorded (oftawq_model_outcome_get): wrapped (the factory accepts it; the
 *  weights are base_model.model.<module>.oft_R.weight, checked against the r and
 *  b PEFT derives for its in_features - a file without them gives R = I when
 *  init_weights is true, as PEFT initialises them, and a refusal otherwise), not
 *  applicable (not an AWQ GEMM layer), or refused. What PEFT itself refuses
 *  fails the load with PEFT's reason: no module targeted ("Target modules ...
 *  not found in the base model. ..."), a targeted module that is no layer
 *  ("Target module ... is not supported. ..."), and, unless record_refusals, a
 *  module the factory refuses. Regular expressions: literals and escapes, ., [...],
 *  \d \w \s (ASCII) and negations, ^ $ \A \Z \b \B, (...), (?:...), (?P<n>...),
 *  |, and greedy or lazy * + ? {m,n}; others (lookarounds, backreferences, inline
 *  flags) are OFTAWQ_E_UNSUPPORTED. The first adapter loaded becomes the active
 *  list, as PEFT's from_pretrained makes it. A failed load changes nothing.
 *  @return : OFTAWQ_OK; OFTAWQ_E_EXISTS (name taken); the adapter folder's error;
 *            OFTAWQ_E_NOT_FOUND (no module targeted); a refusal's status. */
OFTAWQ_API oftawq_status oftawq_model_load_adapter(oftawq_model *model, const char *adapter_dir, const char *name);
/*! oftawq_model_adapter_count(), oftawq_model_adapter_name() : the adapters in load order (name owned by the
 *  model; NULL for an index out of range). */
OFTAWQ_API size_t oftawq_model_adapter_count(const oftawq_model *model);
OFTAWQ_API const char *oftawq_model_adapter_name(const oftawq_model *model, size_t index);
/*! oftawq_model_adapter_config() : an adapter's config as read (peft_version owned by the model). */
OFTAWQ_API oftawq_status oftawq_model_adapter_config(const oftawq_model *model, size_t index,
                                                     oftawq_oft_config *config);

/* What loading an adapter did to one module. */
typedef enum oftawq_outcome {
  OFTAWQ_OUTCOME_NOT_TARGETED = 0,   /* the adapter's rules do not select the module */
  OFTAWQ_OUTCOME_EXCLUDED = 1,       /* exclude_modules or modules_to_save remove it */
  OFTAWQ_OUTCOME_WRAPPED = 2,        /* the module's layer carries the adapter */
  OFTAWQ_OUTCOME_NOT_APPLICABLE = 3, /* targeted, but not an AWQ GEMM layer (the factory's OFTAWQ_NOT_APPLICABLE) */
  OFTAWQ_OUTCOME_REFUSED = 4         /* targeted, and refused (only with record_refusals) */
} oftawq_outcome;

typedef struct oftawq_model_outcome {
  size_t size;                   /* sizeof(oftawq_model_outcome), set by _init */
  oftawq_outcome outcome;
  oftawq_status status;          /* REFUSED: the refusal's status; OFTAWQ_NOT_APPLICABLE; else OFTAWQ_OK */
  const char *reason;            /* REFUSED, NOT_APPLICABLE, or WRAPPED without weights: why; else "" (owned by
                                  * the model) */
  oftawq_oft_shape shape;        /* WRAPPED: r, block size, formula as resolved for the module */
  int has_weights;               /* WRAPPED: 0 when the file held none for it (R = I) */
} oftawq_model_outcome;

OFTAWQ_API void oftawq_model_outcome_init(oftawq_model_outcome *outcome);
/*! oftawq_model_outcome_get() : the outcome for module `module_index` of adapter `adapter_index`. */
OFTAWQ_API oftawq_status oftawq_model_outcome_get(const oftawq_model *model, size_t module_index,
                                                  size_t adapter_index, oftawq_model_outcome *outcome);

/*! oftawq_model_set_active() :
 *  The ordered active adapters for every layer (each name must be a loaded
 *  adapter: OFTAWQ_E_NOT_FOUND otherwise). As in PEFT, a layer that does not
 *  carry an active adapter skips it. n = 0 activates none. */
OFTAWQ_API oftawq_status oftawq_model_set_active(oftawq_model *model, const char *const *names, size_t n);
/*! oftawq_model_enable_adapters() : 0 disables the adapters of every layer (forward = the base layers), 1 enables. */
OFTAWQ_API oftawq_status oftawq_model_enable_adapters(oftawq_model *model, int enabled);

/*! oftawq_model_layer() :
 *  The layer of an AWQ GEMM module with the adapters that wrap it (none: the
 *  base layer, as in PEFT), the model's active list and enabled flag; uploaded
 *  on first use, evicting least recently used layers to keep the memory budget.
 *  The layer is owned by the model and stays valid until the next call of
 *  oftawq_model_layer(), _forward() or _load_adapter() on this model (which may
 *  evict it) or its destruction. Adapter weights changed through the layer are
 *  kept when it is evicted.
 *  @return : OFTAWQ_OK; OFTAWQ_E_NOT_FOUND; OFTAWQ_E_UNSUPPORTED for a module that
 *            is not an AWQ GEMM layer; device and upload errors. */
OFTAWQ_API oftawq_status oftawq_model_layer(oftawq_model *model, const char *module, oftawq_layer **layer);
/*! oftawq_model_forward() : oftawq_layer_forward() on the layer of `module` (see oftawq_model_layer()). */
OFTAWQ_API oftawq_status oftawq_model_forward(oftawq_model *model, const char *module, oftawq_dtype dtype,
                                              const void *x, void *y, size_t rows);

/* Device memory of a model's layers. */
typedef struct oftawq_model_stats {
  size_t size;                   /* sizeof(oftawq_model_stats), set by _init */
  uint64_t device_bytes;         /* of the layers uploaded now */
  uint64_t total_bytes;          /* of every AWQ module's layer, were all uploaded at once */
  uint64_t memory_budget;        /* as given (0: none) */
  size_t layers_uploaded;        /* layers on the device now */
  uint64_t uploads;              /* layers uploaded so far (again after an eviction) */
  uint64_t evictions;            /* layers evicted to keep the budget (or because an adapter load changed them) */
} oftawq_model_stats;

OFTAWQ_API void oftawq_model_stats_init(oftawq_model_stats *stats);
OFTAWQ_API oftawq_status oftawq_model_get_stats(const oftawq_model *model, oftawq_model_stats *stats);

/*! oftawq_model_save_adapter() :
 *  Writes adapter `name` as one PEFT folder `dir` (oftawq_adapter_write): the
 *  weights of every module it wraps - read from the device for layers that are
 *  uploaded (so trained or changed weights are saved), else as loaded or as kept
 *  when their layer was evicted - with the adapter's config and target_modules
 *  naming exactly those modules, so PEFT (and oftawq_model_load_adapter) wraps
 *  the same modules again. COFT weights are saved as projected, as PEFT saves
 *  them after a forward.
 *  @return : OFTAWQ_OK; OFTAWQ_E_NOT_FOUND (no such adapter); OFTAWQ_E_INVALID_ARGUMENT
 *            (it wraps no module); OFTAWQ_E_IO; details in the context's last error. */
OFTAWQ_API oftawq_status oftawq_model_save_adapter(oftawq_model *model, const char *name, const char *dir);

/*-*****************************************************************
 *  Autotuning (oftawq tune)
 *
 *  Tuned launch parameters and the rows at which each AWQ path takes over
 *  are kept per device in the context's cache folder (and in memory) and
 *  used by every later context on the same device, driver and library.
 *******************************************************************/

typedef struct oftawq_tune_options {
  size_t size;                   /* sizeof(oftawq_tune_options), set by _init */
  double budget_s;               /* wall-clock budget for the whole search (default 60) */
  int runs;                      /* timed runs per candidate; the median counts (default 3) */
  void (*progress)(void *user, double fraction, const char *what); /* may be NULL */
  void *user;
  int test_inject_wrong;         /* tests: offer a deliberately wrong, fastest candidate; it must be rejected */
  int max_candidates;            /* at most this many candidates per search unit (layout, each rows bucket's
                                  * AWQ plans, rotation, R build); 0: no limit (default). With a budget that
                                  * does not run out, a search of a known size (tests, quick tuning) */
} oftawq_tune_options;

OFTAWQ_API void oftawq_tune_options_init(oftawq_tune_options *options);

typedef struct oftawq_tune_report {
  size_t size;                   /* sizeof(oftawq_tune_report), set by _init */
  unsigned candidates_timed;     /* built, checked against the reference and timed */
  unsigned candidates_rejected;  /* failed to build or gave a wrong result */
  unsigned classes_tuned;        /* shape classes that got a database entry */
  double elapsed_s;
  double longest_step_s;         /* the longest stretch of work between two looks at the clock (one candidate:
                                  * compile, check and timed runs; or a synthetic layer's setup). The search
                                  * starts nothing once the budget is spent, so elapsed_s stays within
                                  * budget_s plus about one such step */
} oftawq_tune_report;

OFTAWQ_API void oftawq_tune_report_init(oftawq_tune_report *report);

/*! oftawq_tune_shape() :
 *  Tunes, within the time budget, the device layout of a K x N layer's
 *  weights (group G), the AWQ path and its launch parameters for every rows
 *  bucket (1, 2, 3-4, 5-8, 9-64, 65-256, >256), the rotation and R build for
 *  OFT block size b, on synthetic layers. Each candidate is built, its output checked
 *  against the reference (a wrong one never wins), then timed (median of
 *  `runs`, host clock enqueue to clFinish, alike for every candidate).
 *  Results go to the database (and to the cache folder when the context has
 *  one). A shape whose weight or activations no buffer of the device holds is
 *  OFTAWQ_E_INVALID_ARGUMENT before anything is allocated. `report` may be NULL. */
OFTAWQ_API oftawq_status oftawq_tune_shape(oftawq_context *ctx, int K, int N, int G, int block_size,
                                           const oftawq_tune_options *options, oftawq_tune_report *report);

/*! oftawq_tune_layer() : oftawq_tune_shape() for a layer's base shape and its first adapter's block size. */
OFTAWQ_API oftawq_status oftawq_tune_layer(oftawq_layer *layer, const oftawq_tune_options *options,
                                           oftawq_tune_report *report);

/* What a kernel will use for a call. */
typedef struct oftawq_kernel_params {
  size_t size;                   /* sizeof(oftawq_kernel_params), set by _init */
  char description[192];         /* e.g. "path=gemv split=8 cols=16 rpi=1" */
  int tuned;                     /* 1: from the tuning database; 0: the device-type default */
} oftawq_kernel_params;

OFTAWQ_API void oftawq_kernel_params_init(oftawq_kernel_params *params);

/*! oftawq_query_params() :
 *  The parameters `kernel` ("awq" for the base layer K x N with group G,
 *  "oft_rotate" for block size b, "oft_cayley" for building R of block size b)
 *  will use for `rows` rows on this context. OFTAWQ_E_INVALID_ARGUMENT for a
 *  shape no layer has (N not a multiple of 8, G not dividing K, b < 1). */
OFTAWQ_API oftawq_status oftawq_query_params(const oftawq_context *ctx, const char *kernel, int K, int N, int G,
                                             int block_size, size_t rows, oftawq_kernel_params *params);

/*! oftawq_tune_count(), oftawq_tune_entry() : the context's tuned entries, as "key: value" lines. */
OFTAWQ_API size_t oftawq_tune_count(const oftawq_context *ctx);
OFTAWQ_API oftawq_status oftawq_tune_entry(const oftawq_context *ctx, size_t index, char *buf, size_t capacity);

/*! oftawq_tune_export() : writes the context's entries to a database file (to ship with an app). */
OFTAWQ_API oftawq_status oftawq_tune_export(oftawq_context *ctx, const char *path);
/*! oftawq_tune_import() :
 *  Merges the entries of a database file made on the same device, driver and
 *  library (others are refused with OFTAWQ_E_UNSUPPORTED); a corrupt file is
 *  OFTAWQ_E_FORMAT. Saved to the cache folder when the context has one. */
OFTAWQ_API oftawq_status oftawq_tune_import(oftawq_context *ctx, const char *path);

/*! oftawq_cache_tuning() :
 *  Calls `fn` for each entry of every valid tuning database in a cache folder
 *  (without a device): the device it was tuned on, then the "key: value" line. */
OFTAWQ_API oftawq_status oftawq_cache_tuning(const char *dir,
                                             void (*fn)(void *user, const char *device, const char *entry),
                                             void *user);

/*-*****************************************************************
 *  Training (SPEC 12): backward through OFT on AWQ, optimizers, saving
 *
 *  An adapter of a layer becomes trainable with oftawq_layer_set_trainable():
 *  its weights then live on the device, where an optimizer updates them, and
 *  it gets a gradient buffer. One training iteration is
 *    oftawq_layer_forward_train()  - the forward's output; keeps the inputs
 *                                    of the active adapters for the backward
 *    oftawq_layer_backward()       - dx from dy, and the gradient of every
 *                                    trainable active adapter added to its buffer
 *    oftawq_optimizer_step()       - updates the weights on the device
 *    oftawq_optimizer_zero_grad()
 *  The gradients are what PEFT's autograd computes for AwqOFTLinear with the
 *  AWQ base frozen: dx = dy . W^T (W = (q - z) s, fp32 sums) through every
 *  active adapter in reverse order (g . BD(R)^T, rounded to the input dtype
 *  after each adapter as the forward rounds), and for a trainable adapter
 *  dR = sum over rows of x_blk^T . g_blk (summed over blocks with
 *  block_share), taken back through the Cayley map (exact, or the Neumann
 *  series with the adapter's formula) to its packed weights. The fp16 casts
 *  of AutoAWQ count as the identity in the backward (SPEC 12): with F32
 *  activations dy and dx stay fp32. With COFT, the weights are projected
 *  (in place, not differentiated) before R is built after every change,
 *  so before the first training forward after each step, as PEFT does.
 *  Training takes F32 or F16 activations.
 *******************************************************************/

/*! oftawq_layer_set_trainable() :
 *  trainable = 1: adapter `name` becomes trainable - its weights move to the
 *  device (where they stay until the layer is destroyed) and it gets a
 *  gradient buffer, zeroed. A fresh adapter made with init_weights (zeros,
 *  R = I, PEFT's default) or a loaded one can both be trained.
 *  trainable = 0: the gradient buffer is released; the weights stay as trained.
 *  @return : OFTAWQ_OK, OFTAWQ_E_NOT_FOUND (no such adapter), OFTAWQ_E_DEVICE_MEMORY. */
OFTAWQ_API oftawq_status oftawq_layer_set_trainable(oftawq_layer *layer, const char *name, int trainable);

/*! oftawq_layer_is_trainable() : *trainable receives 1 or 0. */
OFTAWQ_API oftawq_status oftawq_layer_is_trainable(const oftawq_layer *layer, const char *name, int *trainable);

/*! oftawq_layer_forward_train() :
 *  oftawq_layer_forward() (same output, same rules for active and disabled
 *  adapters) that also keeps, on the device, what oftawq_layer_backward()
 *  needs: the input of every active adapter. A later training forward
 *  replaces what an earlier one kept. Blocks until done.
 *  @return : as oftawq_layer_forward(). */
OFTAWQ_API oftawq_status oftawq_layer_forward_train(oftawq_layer *layer, oftawq_dtype dtype, const void *x, void *y,
                                                    size_t rows);

/*! oftawq_layer_backward() :
 *  The backward of the last oftawq_layer_forward_train(): dy holds rows x N
 *  elements of `dtype` (the gradient of the loss with respect to y), dx
 *  receives rows x K (may be NULL when the input gradient is not needed).
 *  Adds the gradient of each trainable active adapter to its buffer
 *  (gradients accumulate over calls until zeroed, like PyTorch's .grad).
 *  rows = 0 does nothing (OFTAWQ_OK; dy may then be NULL). Blocks until done.
 *  @return : OFTAWQ_OK; OFTAWQ_E_INVALID_ARGUMENT when there was no training
 *            forward, its rows or dtype differ, or the adapters, their active
 *            list or their weights changed since (nothing is accumulated then). */
OFTAWQ_API oftawq_status oftawq_layer_backward(oftawq_layer *layer, oftawq_dtype dtype, const void *dy, void *dx,
                                               size_t rows);

/*! oftawq_layer_get_grad() :
 *  Copies the accumulated gradient of trainable adapter `name`:
 *  weight_rows x n_elements floats, laid out as its weights.
 *  @return : OFTAWQ_OK, OFTAWQ_E_NOT_FOUND, OFTAWQ_E_INVALID_ARGUMENT (not
 *            trainable, or count differs). */
OFTAWQ_API oftawq_status oftawq_layer_get_grad(oftawq_layer *layer, const char *name, float *grad, size_t count);

/*! oftawq_layer_zero_grad() : zeroes the gradient of every trainable adapter of the layer. */
OFTAWQ_API oftawq_status oftawq_layer_zero_grad(oftawq_layer *layer);

/*! oftawq_mse_loss() :
 *  The loss of oftawq train on host arrays: the mean over n elements of
 *  (y - target)^2 in fp32 (y of `dtype`, F32 or F16), and (when dy is not NULL)
 *  its gradient dy = (1/n) * 2 (y - target) in y's dtype, as torch computes
 *  ((y.float() - target) ** 2).mean().backward().
 *  @return : OFTAWQ_OK, OFTAWQ_E_INVALID_ARGUMENT (NULLs, another dtype). */
OFTAWQ_API oftawq_status oftawq_mse_loss(oftawq_dtype dtype, const void *y, const float *target, size_t n, void *dy,
                                         double *loss);

typedef enum oftawq_optimizer_kind {
  OFTAWQ_OPTIMIZER_ADAMW = 0,    /* torch.optim.AdamW */
  OFTAWQ_OPTIMIZER_SGD = 1       /* w -= lr * g: no momentum, no weight decay */
} oftawq_optimizer_kind;

/* An optimizer's settings; _init() fills torch.optim.AdamW's defaults. */
typedef struct oftawq_optimizer_options {
  size_t size;                   /* sizeof(oftawq_optimizer_options), set by _init */
  oftawq_optimizer_kind kind;    /* default ADAMW */
  double lr;                     /* learning rate (default 1e-3) */
  double beta1, beta2;           /* AdamW (default 0.9, 0.999) */
  double eps;                    /* AdamW (default 1e-8) */
  double weight_decay;           /* AdamW, decoupled (default 0.01) */
  double max_grad_norm;          /* > 0: before each step, scale the gradients as
                                  * torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                                  * over all the optimizer's parameters (default 0: off) */
} oftawq_optimizer_options;

OFTAWQ_API void oftawq_optimizer_options_init(oftawq_optimizer_options *options);

typedef struct oftawq_optimizer oftawq_optimizer;

/*! oftawq_optimizer_create() :
 *  An optimizer on the context's device, with no parameters yet.
 *  @return : OFTAWQ_OK, OFTAWQ_E_INVALID_ARGUMENT (non-finite or negative lr, eps,
 *            weight_decay or max_grad_norm, betas outside [0, 1), unknown kind). */
OFTAWQ_API OFTAWQ_NODISCARD oftawq_status oftawq_optimizer_create(oftawq_context *ctx,
                                                                  const oftawq_optimizer_options *options,
                                                                  oftawq_optimizer **out);

/*! oftawq_optimizer_destroy() : NULL is a no-op. Destroy it before the layers it updates. */
OFTAWQ_API void oftawq_optimizer_destroy(oftawq_optimizer *opt);

/*! oftawq_optimizer_add() :
 *  Adds the trainable adapter `name` of `layer` (same context) as the next
 *  parameter (index = the number added before), with zero state.
 *  @return : OFTAWQ_OK, OFTAWQ_E_NOT_FOUND, OFTAWQ_E_INVALID_ARGUMENT (not trainable,
 *            another context), OFTAWQ_E_EXISTS (added already). */
OFTAWQ_API oftawq_status oftawq_optimizer_add(oftawq_optimizer *opt, oftawq_layer *layer, const char *name);

/*! oftawq_optimizer_step() :
 *  One update of every parameter from its accumulated gradient (which it
 *  keeps: zero it before the next accumulation). Checks first that every
 *  gradient is finite; if one is not, nothing changes and the status is
 *  OFTAWQ_E_INVALID_ARGUMENT. The adapters' R is rebuilt at next use.
 *  @grad_norm : receives the total 2-norm of the gradients before clipping (may be NULL). */
OFTAWQ_API oftawq_status oftawq_optimizer_step(oftawq_optimizer *opt, double *grad_norm);

/*! oftawq_optimizer_zero_grad() : zeroes the gradient of every parameter. */
OFTAWQ_API oftawq_status oftawq_optimizer_zero_grad(oftawq_optimizer *opt);

/*! oftawq_optimizer_param_count() : the number of parameters added. */
OFTAWQ_API size_t oftawq_optimizer_param_count(const oftawq_optimizer *opt);

/*! oftawq_optimizer_get_state(), oftawq_optimizer_set_state() :
 *  The state of parameter `index`, to save and later resume training: AdamW's
 *  exp_avg and exp_avg_sq (count floats each, count = the adapter's weight
 *  count; NULL arrays with count 0 for SGD, which keeps none) and the number
 *  of steps taken. Setting replaces it. */
OFTAWQ_API oftawq_status oftawq_optimizer_get_state(oftawq_optimizer *opt, size_t index, float *exp_avg,
                                                    float *exp_avg_sq, size_t count, uint64_t *step);
OFTAWQ_API oftawq_status oftawq_optimizer_set_state(oftawq_optimizer *opt, size_t index, const float *exp_avg,
                                                    const float *exp_avg_sq, size_t count, uint64_t step);

/* One module's weights in an adapter folder being written. */
typedef struct oftawq_adapter_module {
  size_t size;                   /* sizeof(oftawq_adapter_module), set by _init */
  const char *module;            /* e.g. "model.layers.0.self_attn.q_proj" */
  const float *weights;          /* rows x cols, PEFT's oft_R.weight */
  size_t rows, cols;
} oftawq_adapter_module;

OFTAWQ_API void oftawq_adapter_module_init(oftawq_adapter_module *module);

/* Optional fields of a written adapter_config.json. */
typedef struct oftawq_adapter_save_options {
  size_t size;                   /* sizeof(oftawq_adapter_save_options), set by _init */
  const char *const *target_modules; /* NULL: the names of the saved modules */
  size_t n_target_modules;
  const char *base_model_name_or_path; /* NULL: null */
} oftawq_adapter_save_options;

OFTAWQ_API void oftawq_adapter_save_options_init(oftawq_adapter_save_options *options);

/* What `peft_version` a written adapter names: the PEFT release whose Cayley-Neumann formula its
 * weights were trained with (SPEC 3.3) - the current formula, or the pre-0.18 one. */
#define OFTAWQ_PEFT_VERSION_CURRENT "0.18.1"
#define OFTAWQ_PEFT_VERSION_LEGACY "0.17.1"

/*! oftawq_adapter_write() :
 *  Writes a PEFT OFT adapter folder `dir` without a device: adapter_config.json
 *  (peft_type "OFT", every OFTConfig field from `config` as PEFT writes them,
 *  target_modules, and peft_version OFTAWQ_PEFT_VERSION_LEGACY when config
 *  selects the pre-0.18 Neumann formula, else OFTAWQ_PEFT_VERSION_CURRENT) and
 *  adapter_model.safetensors with base_model.model.<module>.oft_R.weight (F32)
 *  per module. The folder (its parent must exist) is created if missing; both
 *  files are written to temporary names and renamed into place (weights
 *  first) only when both are complete, so a failure leaves no partial file
 *  and an existing folder as it was. `options` may be NULL.
 *  @return : OFTAWQ_OK, OFTAWQ_E_INVALID_ARGUMENT (NULLs, no modules, a module twice,
 *            non-finite weights), OFTAWQ_E_IO (detail in why). */
OFTAWQ_API oftawq_status oftawq_adapter_write(const char *dir, const oftawq_oft_config *config,
                                              const oftawq_adapter_module *modules, size_t n,
                                              const oftawq_adapter_save_options *options, char *why,
                                              size_t why_capacity);

/*! oftawq_adapter_save() :
 *  Saves adapter `adapter_name` of a whole model into one PEFT folder: for
 *  each i, the adapter of that name on layers[i] is stored as module
 *  modules[i] (oftawq_adapter_write). The adapters must share one config
 *  (that of layers[0]'s is written). Trained weights are read from the device.
 *  Details go to the last error of layers[0]'s context.
 *  @return : as oftawq_adapter_write(), and OFTAWQ_E_NOT_FOUND when a layer lacks the adapter. */
OFTAWQ_API oftawq_status oftawq_adapter_save(const char *dir, const char *adapter_name, const char *const *modules,
                                             oftawq_layer *const *layers, size_t n,
                                             const oftawq_adapter_save_options *options);

#ifdef __cplusplus
}
#endif

#endif /* OFTAWQ_H */
