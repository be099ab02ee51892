/*
 * pool.h: GPU memory pools (pool.c), and what the queue calls of them.
 */
#ifndef TFORGE_POOL_H
#define TFORGE_POOL_H

#include "postgres.h"

/* Alignment the queue allocates a task's GPU memory with, bytes. */
#define POOL_TASK_ALIGNMENT 256

/*
 * For claim_tasks(..., gpu_device): locks the device and returns the largest
 * GPU memory request (bytes) that an allocation on it is sure to satisfy
 * now, without evicting. Raises 42704 for an unknown device. The caller
 * must be connected to SPI.
 */
extern int64 PoolClaimableBytes(text *device_id);

/*
 * Allocates gpu_memory_bytes for a task just claimed on device, as tensor
 * "task:<task_id>" (no eviction); false when it does not fit. SPI connected.
 */
extern bool PoolClaimTask(text *device_id, int64 task_id, int64 gpu_memory_bytes);

/* Frees the blocks of tensor "task:<task_id>", if any. SPI connected. */
extern void PoolReleaseTask(int64 task_id);

#endif							/* TFORGE_POOL_H */
