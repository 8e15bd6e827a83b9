/* oft_grad.h: internal interface of oft_grad.c - a trainable adapter's weights, gradient and dR -> dw on the device. */
#ifndef OFTAWQ_OFT_GRAD_H
#define OFTAWQ_OFT_GRAD_H

#include "engines/oft.h"

/* Makes the adapter trainable: its weights go to the device (once) and a zeroed gradient buffer is made. */
oftawq_status oftawq__oft_grad_enable(oftawq_oft *oft);
/* Back to frozen: the gradient and its scratch are released (the device weights stay current). */
void oftawq__oft_grad_disable(oftawq_oft *oft);
/* Releases whatever the adapter holds for training (its destroy calls it). */
void oftawq__oft_grad_free(oftawq_oft *oft);

/* Enqueues n zeros into a float buffer (optim_zero of cl/optim.c; `kernels` caches it). */
oftawq_status oftawq__zero_floats(oftawq_context *ctx, oftawq__kernel_list **kernels, cl_mem buf, size_t n);

/* Zeroes a trainable adapter's gradient (no-op for a frozen one). */
oftawq_status oftawq__oft_grad_zero(oftawq_oft *oft);

/* The gradient buffer [weight_rows][n_elements] floats of a trainable adapter (NULL if frozen). */
cl_mem oftawq__oft_grad_buffer(const oftawq_oft *oft);

/* The optimizer changed the weights on the device: R is rebuilt (after the COFT projection) at next use. */
void oftawq__oft_device_weights_changed(oftawq_oft *oft);

/* COFT on the device weights, in place (PEFT's _project_batch). */
oftawq_status oftawq__oft_grad_project(oftawq_oft *oft);

/* Rt = R^T per block, for the backward rotation g . BD(R)^T; Rt holds weight_rows x b x b floats. */
oftawq_status oftawq__oft_grad_transpose(oftawq_oft *oft, cl_mem Rt);

/* Adds to the gradient what rows of (input x of the adapter, gradient g of its output) give:
 * dR = sum_rows x_blk^T g_blk (summed over blocks with block_share), then dR -> dQ through the exact
 * Cayley map or the adapter's Neumann series, then dw. x and g: rows x in_features of dtype. */
oftawq_status oftawq__oft_grad_accumulate(oftawq_oft *oft, oftawq_dtype dtype, cl_mem x, cl_mem g, size_t rows);

#endif /* OFTAWQ_OFT_GRAD_H */
