/* optim.c: optimizers on the device - torch.optim.AdamW and plain SGD over trainable adapters, gradient-norm
 * clipping as torch.nn.utils.clip_grad_norm_, zeroing, and state to save and resume (SPEC 12). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/layer.h"
#include "engines/oft_grad.h"
#include "runtime/buffer.h"
#include "runtime/program.h"

/* The gradient reduction: work-group size and work-groups per parameter. */
#define SUMSQ_WG 64
#define SUMSQ_GROUPS 16
/* torch.nn.utils.clip_grad_norm_ divides by total_norm + 1e-6. */
#define CLIP_EPS 1e-6f

typedef struct param {
  oftawq_layer *layer;
  oftawq_oft *oft;
  char *name;
  cl_mem m, v;               /* AdamW exp_avg, exp_avg_sq */
  uint64_t step;
} param;

struct oftawq_optimizer {
  oftawq_context *ctx;
  oftawq_optimizer_options o;
  param *params;
  size_t n;
  cl_mem partial;            /* [n][SUMSQ_GROUPS] sums of squares */
  size_t partial_bytes;
  oftawq__kernel_list *kernels;
};

void oftawq_optimizer_options_init(oftawq_optimizer_options *o)
{
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->kind = OFTAWQ_OPTIMIZER_ADAMW;
  o->lr = 1e-3;
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->eps = 1e-8;
  o->weight_decay = 1e-2;
  o->max_grad_norm = 0.0;
}

static int nonneg(double v) { return isfinite(v) && v >= 0.0; }

oftawq_status oftawq_optimizer_create(oftawq_context *ctx, const oftawq_optimizer_options *o, oftawq_optimizer **out)
{
  oftawq_optimizer *opt;
  if (!ctx) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!out) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_optimizer_create: NULL output");
  *out = NULL;
  if (!o || o->size < sizeof *o) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL or uninitialised options");
  if (o->kind != OFTAWQ_OPTIMIZER_ADAMW && o->kind != OFTAWQ_OPTIMIZER_SGD)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "unknown optimizer kind %d", (int)o->kind);
  if (!nonneg(o->lr) || !nonneg(o->eps) || !nonneg(o->weight_decay) || !nonneg(o->max_grad_norm))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "lr (%g), eps (%g), weight_decay (%g) and max_grad_norm (%g) must be finite and >= 0", o->lr,
                        o->eps, o->weight_decay, o->max_grad_norm);
  if (!(o->beta1 >= 0.0 && o->beta1 < 1.0) || !(o->beta2 >= 0.0 && o->beta2 < 1.0))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "betas (%g, %g) must be in [0, 1)", o->beta1, o->beta2);
  if (!(opt = calloc(1, sizeof *opt))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  opt->ctx = ctx;
  opt->o = *o;
  *out = opt;
  return OFTAWQ_OK;
}

void oftawq_optimizer_destroy(oftawq_optimizer *opt)
{
  size_t i;
  if (!opt) return;
  for (i = 0; i < opt->n; i++) {
    if (opt->params[i].m) clReleaseMemObject(opt->params[i].m);
    if (opt->params[i].v) clReleaseMemObject(opt->params[i].v);
    free(opt->params[i].name);
  }
  if (opt->partial) clReleaseMemObject(opt->partial);
  oftawq__kernel_list_free(opt->kernels);
  free(opt->params);
  free(opt);
}

size_t oftawq_optimizer_param_count(const oftawq_optimizer *opt) { return opt ? opt->n : 0; }

/* A zeroed state buffer of `count` floats (made once per parameter: zeros uploaded from the host). */
static oftawq_status state_buffer(oftawq_optimizer *opt, size_t count, cl_mem *out)
{
  float *zeros = calloc(count ? count : 1, sizeof *zeros);
  cl_int err = CL_SUCCESS;
  *out = NULL;
  if (!zeros) return oftawq__fail(opt->ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  *out = clCreateBuffer(opt->ctx->cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, (count ? count : 1) * sizeof(float),
                        zeros, &err);
  free(zeros);
  if (!*out) return oftawq__cl_fail(opt->ctx, err, "allocating %zu bytes of optimizer state", count * sizeof(float));
  return OFTAWQ_OK;
}

oftawq_status oftawq_optimizer_add(oftawq_optimizer *opt, oftawq_layer *layer, const char *name)
{
  oftawq_context *ctx;
  oftawq_oft *oft;
  param p, *grown;
  oftawq_status status;
  size_t i, need;
  if (!opt) return OFTAWQ_E_INVALID_ARGUMENT;
  ctx = opt->ctx;
  if (!layer || !name) return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "oftawq_optimizer_add: NULL layer or name");
  if (oftawq__layer_context(layer) != ctx)
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "the layer belongs to another context");
  if (!(oft = oftawq_layer_adapter(layer, name))) return oftawq__fail(ctx, OFTAWQ_E_NOT_FOUND, "no adapter named '%s'", name);
  if (!oftawq__oft_grad_buffer(oft))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT, "adapter '%s' is not trainable (oftawq_layer_set_trainable)",
                        name);
  for (i = 0; i < opt->n; i++)
    if (opt->params[i].oft == oft) return oftawq__fail(ctx, OFTAWQ_E_EXISTS, "adapter '%s' was added already", name);
  memset(&p, 0, sizeof p);
  p.layer = layer;
  p.oft = oft;
  if (!(p.name = oftawq__strdup(name))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if (opt->o.kind == OFTAWQ_OPTIMIZER_ADAMW &&
      ((status = state_buffer(opt, oft->weight_count, &p.m)) < 0 || (status = state_buffer(opt, oft->weight_count, &p.v)) < 0))
    goto fail;
  need = (opt->n + 1) * SUMSQ_GROUPS * sizeof(float);
  if ((status = oftawq__scratch(ctx, &opt->partial, &opt->partial_bytes, need)) < 0) goto fail;
  if (!(grown = realloc(opt->params, (opt->n + 1) * sizeof *grown))) {
    status = oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  opt->params = grown;
  opt->params[opt->n++] = p;
  return OFTAWQ_OK;
fail:
  if (p.m) clReleaseMemObject(p.m);
  if (p.v) clReleaseMemObject(p.v);
  free(p.name);
  return status;
}

/* The parameter still exists as trainable (the caller may have frozen or deleted it). */
static oftawq_status check_param(oftawq_optimizer *opt, const param *p)
{
  if (oftawq_layer_adapter(p->layer, p->name) != p->oft || !oftawq__oft_grad_buffer(p->oft))
    return oftawq__fail(opt->ctx, OFTAWQ_E_INVALID_ARGUMENT, "parameter '%s' is no longer a trainable adapter", p->name);
  return OFTAWQ_OK;
}

static oftawq_status kernel(oftawq_optimizer *opt, const char *name, cl_kernel *k)
{
  char opts[32];
  snprintf(opts, sizeof opts, "-DOPT_WG=%d", SUMSQ_WG);
  return oftawq__kernel_cached(opt->ctx, &opt->kernels, "optim", opts, name, k);
}

/* The total squared 2-norm of every gradient, summed on the device per parameter and in double here. */
static oftawq_status grad_sumsq(oftawq_optimizer *opt, double *total)
{
  oftawq_context *ctx = opt->ctx;
  float *part = NULL;
  oftawq_status status = OFTAWQ_OK;
  size_t i, j, g, l;
  cl_kernel k;
  cl_int err;
  *total = 0.0;
  if (!(part = malloc(opt->n * SUMSQ_GROUPS * sizeof *part))) return oftawq__fail(ctx, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
  if ((status = kernel(opt, "optim_sumsq", &k)) < 0) goto done;
  for (i = 0; i < opt->n; i++) {
    cl_mem grad = oftawq__oft_grad_buffer(opt->params[i].oft);
    cl_uint n = (cl_uint)opt->params[i].oft->weight_count, offset = (cl_uint)(i * SUMSQ_GROUPS);
    err = OFTAWQ__ARG(k, 0, grad) | OFTAWQ__ARG(k, 1, n) | OFTAWQ__ARG(k, 2, opt->partial) | OFTAWQ__ARG(k, 3, offset);
    g = SUMSQ_GROUPS * SUMSQ_WG;
    l = SUMSQ_WG;
    status = err != CL_SUCCESS ? oftawq__cl_fail(ctx, err, "setting optim_sumsq arguments")
                               : oftawq__enqueue(ctx, k, "optim_sumsq", 1, &g, &l, 0, NULL, NULL);
    if (status < 0) goto done;
  }
  err = clEnqueueReadBuffer(ctx->queue, opt->partial, CL_TRUE, 0, opt->n * SUMSQ_GROUPS * sizeof *part, part, 0, NULL,
                            NULL);
  if (err != CL_SUCCESS) {
    status = oftawq__cl_fail(ctx, err, "reading the gradient sums");
    goto done;
  }
  for (i = 0; i < opt->n; i++)
    for (j = 0; j < SUMSQ_GROUPS; j++) *total += part[i * SUMSQ_GROUPS + j];
done:
  free(part);
  return status;
}

oftawq_status oftawq_optimizer_step(oftawq_optimizer *opt, double *grad_norm)
{
  oftawq_context *ctx;
  oftawq_status status;
  double sumsq, norm;
  cl_uint clip = 0;
  cl_float coef = 1.0f;
  size_t i;
  if (grad_norm) *grad_norm = 0.0;
  if (!opt) return OFTAWQ_E_INVALID_ARGUMENT;
  ctx = opt->ctx;
  for (i = 0; i < opt->n; i++)
    if ((status = check_param(opt, &opt->params[i])) < 0) return status;
  if (opt->n == 0) return OFTAWQ_OK;
  if ((status = grad_sumsq(opt, &sumsq)) < 0) return status;
  norm = sqrt(sumsq);
  if (!isfinite(norm))
    return oftawq__fail(ctx, OFTAWQ_E_INVALID_ARGUMENT,
                        "the gradient is not finite (NaN or infinity); no step was taken and the weights are unchanged");
  if (grad_norm) *grad_norm = norm;
  if (opt->o.max_grad_norm > 0) { /* clip_grad_norm_: scale by min(1, max / (norm + 1e-6)), in fp32 */
    cl_float c = (cl_float)opt->o.max_grad_norm / ((cl_float)norm + CLIP_EPS);
    clip = 1;
    coef = c < 1.0f ? c : 1.0f;
  }
  for (i = 0; i < opt->n; i++) {
    param *p = &opt->params[i];
    cl_mem grad = oftawq__oft_grad_buffer(p->oft), w = p->oft->w_dev;
    cl_uint n = (cl_uint)p->oft->weight_count;
    size_t g = n;
    cl_kernel k;
    cl_int err;
    if (opt->o.kind == OFTAWQ_OPTIMIZER_ADAMW) {
      /* scalars as PyTorch computes them in Python (double), then used by fp32 kernels */
      double t = (double)(p->step + 1);
      double bc1 = 1.0 - pow(opt->o.beta1, t), bc2 = 1.0 - pow(opt->o.beta2, t);
      cl_float decay = (cl_float)(1.0 - opt->o.lr * opt->o.weight_decay), c1 = (cl_float)(1.0 - opt->o.beta1);
      cl_float beta2 = (cl_float)opt->o.beta2, c2 = (cl_float)(1.0 - opt->o.beta2), bc2_sqrt = (cl_float)sqrt(bc2);
      cl_float neg_step = (cl_float)(-(opt->o.lr / bc1)), eps = (cl_float)opt->o.eps;
      if ((status = kernel(opt, "optim_adamw", &k)) < 0) return status;
      err = OFTAWQ__ARG(k, 0, w) | OFTAWQ__ARG(k, 1, grad) | OFTAWQ__ARG(k, 2, p->m) | OFTAWQ__ARG(k, 3, p->v) |
            OFTAWQ__ARG(k, 4, n) | OFTAWQ__ARG(k, 5, clip) | OFTAWQ__ARG(k, 6, coef) | OFTAWQ__ARG(k, 7, decay) |
            OFTAWQ__ARG(k, 8, c1) | OFTAWQ__ARG(k, 9, beta2) | OFTAWQ__ARG(k, 10, c2) | OFTAWQ__ARG(k, 11, bc2_sqrt) |
            OFTAWQ__ARG(k, 12, neg_step) | OFTAWQ__ARG(k, 13, eps);
    } else {
      cl_float neg_lr = (cl_float)(-opt->o.lr);
      if ((status = kernel(opt, "optim_sgd", &k)) < 0) return status;
      err = OFTAWQ__ARG(k, 0, w) | OFTAWQ__ARG(k, 1, grad) | OFTAWQ__ARG(k, 2, n) | OFTAWQ__ARG(k, 3, clip) |
            OFTAWQ__ARG(k, 4, coef) | OFTAWQ__ARG(k, 5, neg_lr);
    }
    if (err != CL_SUCCESS) return oftawq__cl_fail(ctx, err, "setting optimizer arguments");
    if (n && (status = oftawq__enqueue(ctx, k, "optimizer step", 1, &g, NULL, 0, NULL, NULL)) < 0) return status;
    p->step++;
    oftawq__oft_device_weights_changed(p->oft);
  }
  return OFTAWQ_OK;
}

oftawq_status oftawq_optimizer_zero_grad(oftawq_optimizer *opt)
{
  oftawq_status status;
  size_t i;
  if (!opt) return OFTAWQ_E_INVALID_ARGUMENT;
  for (i = 0; i < opt->n; i++)
    if ((status = check_param(opt, &opt->params[i])) < 0 || (status = oftawq__oft_grad_zero(opt->params[i].oft)) < 0)
      return status;
  return OFTAWQ_OK;
}

/* The parameter `index` with a state of `count` floats (0 for SGD). */
static oftawq_status state_param(oftawq_optimizer *opt, size_t index, size_t count, const void *a, const void *b,
                                 param **out)
{
  size_t want;
  if (!opt) return OFTAWQ_E_INVALID_ARGUMENT;
  if (index >= opt->n)
    return oftawq__fail(opt->ctx, OFTAWQ_E_INVALID_ARGUMENT, "parameter %zu of %zu", index, opt->n);
  *out = &opt->params[index];
  want = opt->o.kind == OFTAWQ_OPTIMIZER_ADAMW ? (*out)->oft->weight_count : 0;
  if (count != want || (count && (!a || !b)))
    return oftawq__fail(opt->ctx, OFTAWQ_E_INVALID_ARGUMENT, "parameter %zu has a state of %zu floats each, got %zu",
                        index, want, count);
  return OFTAWQ_OK;
}

oftawq_status oftawq_optimizer_get_state(oftawq_optimizer *opt, size_t index, float *exp_avg, float *exp_avg_sq,
                                         size_t count, uint64_t *step)
{
  param *p = NULL;
  oftawq_status status;
  cl_int err = CL_SUCCESS;
  if ((status = state_param(opt, index, count, exp_avg, exp_avg_sq, &p)) < 0) return status;
  if (!step) return oftawq__fail(opt->ctx, OFTAWQ_E_INVALID_ARGUMENT, "NULL step");
  if (count) {
    err = clEnqueueReadBuffer(opt->ctx->queue, p->m, CL_TRUE, 0, count * sizeof(float), exp_avg, 0, NULL, NULL);
    if (err == CL_SUCCESS)
      err = clEnqueueReadBuffer(opt->ctx->queue, p->v, CL_TRUE, 0, count * sizeof(float), exp_avg_sq, 0, NULL, NULL);
  }
  if (err != CL_SUCCESS) return oftawq__cl_fail(opt->ctx, err, "reading optimizer state");
  *step = p->step;
  return OFTAWQ_OK;
}

oftawq_status oftawq_optimizer_set_state(oftawq_optimizer *opt, size_t index, const float *exp_avg,
                                         const float *exp_avg_sq, size_t count, uint64_t step)
{
  param *p = NULL;
  oftawq_status status;
  size_t i;
  cl_int err = CL_SUCCESS;
  if ((status = state_param(opt, index, count, exp_avg, exp_avg_sq, &p)) < 0) return status;
  for (i = 0; i < count; i++)
    if (!isfinite(exp_avg[i]) || !isfinite(exp_avg_sq[i]) || exp_avg_sq[i] < 0)
      return oftawq__fail(opt->ctx, OFTAWQ_E_INVALID_ARGUMENT, "state element %zu is not finite (or exp_avg_sq < 0)", i);
  if (count) {
    err = clEnqueueWriteBuffer(opt->ctx->queue, p->m, CL_TRUE, 0, count * sizeof(float), exp_avg, 0, NULL, NULL);
    if (err == CL_SUCCESS)
      err = clEnqueueWriteBuffer(opt->ctx->queue, p->v, CL_TRUE, 0, count * sizeof(float), exp_avg_sq, 0, NULL, NULL);
  }
  if (err != CL_SUCCESS) return oftawq__cl_fail(opt->ctx, err, "writing optimizer state");
  p->step = step;
  return OFTAWQ_OK;
}
