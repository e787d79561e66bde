/* SPDX-License-Identifier: MIT */
/*
 * The managed device: a simulated GPU for the policy engine
 * (include/devmm/policy.h). It owns device-private memory (one pgmap) and
 * a device page table; an access that misses the table does not fault
 * memory in itself, as the mirror does, but writes a fault record into the
 * engine's fault buffer and stalls its stream until a replay, like a GPU
 * with replayable faults. The engine services the buffer and calls back
 * to allocate, copy, map and unmap; CPU faults on its pages
 * (migrate_to_ram) go to the engine's policy. Public headers only.
 *
 * Lock: dev->lock (a leaf driver lock) guards the table, the free list and
 * the cancelled faults. The engine calls map and unmap under its own lock,
 * so the order is eng->lock -> dev->lock; the driver never calls the engine
 * while holding dev->lock.
 */
#ifndef DEVMM_MANAGED_H
#define DEVMM_MANAGED_H

#include <devmm/devmm.h>
#include <devmm/policy.h>

struct managed_dev;

struct managed_stats {
	uint64_t accesses, hits, faults, replays, cancels, maps, unmaps, allocs, frees;
};

/*
 * managed_dev_create - a device of @pages pages of device-private memory,
 * registered with @eng as a processor (managed_dev_proc says which).
 * @fault_buffer_entries 0: the engine's default (8192).
 * Errors: -EINVAL (NULL, pages 0), -ENOMEM, those of dmm_memremap_pages
 * and dmm_engine_add_device.
 */
int managed_dev_create(struct dmm_system *sys, struct dmm_engine *eng, uint64_t pages,
		       unsigned int fault_buffer_entries, struct managed_dev **out);
/* Unregister the memory: call after dmm_engine_destroy (which brings the
 * pages home) or once no process maps a page of the device. */
void managed_dev_destroy(struct managed_dev *dev);
unsigned int managed_dev_proc(const struct managed_dev *dev);
/* Device pages handed out now. */
uint64_t managed_dev_used(struct managed_dev *dev);
void managed_dev_stats(struct managed_dev *dev, struct managed_stats *out);
/* Tests: @fn runs after each copy of a device page out of the device
 * (no driver lock held, inside an engine move); NULL: none. Set while the
 * device is idle. */
void managed_dev_set_copy_hook(struct managed_dev *dev, void (*fn)(void *arg, uint64_t dpfn), void *arg);

/*
 * managed_access - the device's stream @stream accesses [addr, addr + len)
 * (any span): READ copies into @buf, WRITE copies from it, ATOMIC adds
 * the 32-bit value at @buf to the word at @addr (len 4, aligned) and
 * returns the old one in @buf. Returns 0 when done; -EAGAIN when a page
 * missed: a fault record was written for every missing page and nothing
 * was done (the access replays whole after the next replay); -EFAULT (or
 * the engine's error) when the engine cancelled a fault of this access;
 * -ENOSPC when the fault buffer overflowed; -EINVAL for bad arguments.
 */
int managed_access(struct managed_dev *dev, uint32_t stream, uint64_t addr, enum dmm_access op, void *buf,
		   size_t len);

/*
 * managed_run - managed_access, servicing the fault buffer
 * (dmm_engine_service) and retrying until the access completes. Errors:
 * those of managed_access except -EAGAIN; -EBUSY when 64 service rounds
 * made no progress (the device is out of memory: eviction is issue 16).
 */
int managed_run(struct managed_dev *dev, uint32_t stream, uint64_t addr, enum dmm_access op, void *buf,
		size_t len);

#endif /* DEVMM_MANAGED_H */
