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

/*
 * Locks, in device id order, the devices that hold GPU memory of the
 * ntasks tasks task_ids, as each task's release would lock its own, with
 * device also among them when it is not NULL (a claim's device, which the
 * claim locks next; alone, it is left to the claim). A statement that ends
 * the runs of several tasks calls it before it locks any task row: their
 * releases (the trigger on tforge.tasks) would otherwise lock the devices
 * in the order the statement meets the tasks, and two such statements
 * meeting two devices in opposite orders deadlock. SPI connected.
 */
extern void PoolLockTaskDevices(const int64 *task_ids, int ntasks, text *also);

/* Frees the blocks of tensor "task:<task_id>", if any. SPI connected. */
extern void PoolReleaseTask(int64 task_id);

#endif							/* TFORGE_POOL_H */
