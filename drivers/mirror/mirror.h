/* SPDX-License-Identifier: MIT */
/*
 * The mirror: devmm's simulated device driver, modelled on the kernel's HMM
 * test driver and built only on <devmm/devmm.h>, as an out-of-tree driver
 * would be. It is the reference example for driver writers: read mirror.c
 * top to bottom (docs/mirror.md is the map).
 *
 * A device (struct mirror_device) has a name, a type (device-private or
 * device-coherent memory) and a size in pages, registered with devmm in
 * chunks (one pgmap each) created as they are needed. A process opens the
 * device's mirror of itself (struct mirror): a device page table kept in
 * step with the CPU's through an interval notifier. The commands are those
 * of /work/shared/spec/mirror-device.md §3; each returns 0 or -errno and
 * fills a struct mirror_result.
 */
#ifndef DEVMM_MIRROR_H
#define DEVMM_MIRROR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <devmm/devmm.h>

#define MIRROR_DEFAULT_PAGES 65536UL
#define MIRROR_DEFAULT_CHUNK 16384UL
#define MIRROR_FAULT_WINDOW 32UL	  /* pages per hmm_range_fault window */
#define MIRROR_MIGRATE_WINDOW 512UL	  /* pages per migrate_vma window */
#define MIRROR_FAULT_TIMEOUT_MS 1000	  /* bound on -EBUSY retries */

/* Where copy-on-write copies of a coherent device's pages go. */
enum mirror_cow { MIRROR_COW_SYSTEM, MIRROR_COW_DEVICE };

struct mirror_device_config {
	enum dmm_memory_type type;
	uint64_t pages;		/* 0: MIRROR_DEFAULT_PAGES */
	uint64_t chunk_pages;	/* 0: MIRROR_DEFAULT_CHUNK */
	enum mirror_cow cow;	/* COHERENT only */
	bool no_contents;	/* contents=none: needs a metadata-only system
				 * (whose devices never have contents anyway) */
};

struct mirror_chunk;
struct mirror;

struct mirror_device {
	struct dmm_system *sys;
	char name[32];
	enum dmm_memory_type type;
	uint64_t size, chunk_pages;
	enum mirror_cow cow;
	bool contents;			/* false: metadata only, no data commands */
	pthread_mutex_t lock;		/* protects everything below */
	struct mirror_chunk **chunks;	/* the registered chunks (NULL slots after release) */
	unsigned int nr_chunks, cap_chunks;
	uint64_t *free_list;		/* free device pfns, size entries (mmap'd) */
	size_t free_list_bytes;
	uint64_t nr_free;
	uint64_t used;			/* device pages handed out and not freed */
	uint64_t in_chunks;		/* pages of all live chunks */
	bool fail_next;			/* fail-next-alloc armed */
	struct mirror *mirrors;		/* this device's per-process mirrors */
	_Atomic unsigned long frees;	/* folio_free calls */
	_Atomic unsigned long migrations_to_ram; /* CPU faults that moved a page */
};

/* The device page table's tags. */
enum mirror_tag { MIRROR_NONE = 0, MIRROR_READ = 1, MIRROR_WRITE = 2, MIRROR_ATOMIC = 3 };

struct mirror_ptab; /* device page table: virtual page -> (pfn, tag) */

struct mirror {
	struct mirror_device *dev;
	struct dmm_mm *mm;
	pthread_mutex_t lock;		/* the driver lock: the table, and the notifier sequence */
	struct mirror_ptab *pt;
	struct dmm_mmu_interval_notifier notifier; /* over the whole address space */
	struct mirror *next;		/* in dev->mirrors, under dev->lock */
};

struct mirror_result {
	uint64_t cpages;	/* pages processed */
	uint64_t faults;	/* fault passes */
};

int mirror_device_create(struct dmm_system *sys, const char *name, const struct mirror_device_config *cfg,
			 struct mirror_device **out);
/* Release the device's memory (every page evicted to system RAM), close
 * every mirror still open, free the device. */
void mirror_device_destroy(struct mirror_device *dev);

/* Open (or find) dev's mirror of mm. */
int mirror_open(struct mirror_device *dev, struct dmm_mm *mm, struct mirror **out);
/* Close it: the notifier and the table go; device memory stays valid. */
void mirror_close(struct mirror *m);
/* The open mirror of mm, or NULL. */
struct mirror *mirror_find(struct mirror_device *dev, struct dmm_mm *mm);

/* The commands (mirror-device.md §3). buf holds npages * 4096 bytes; it
 * is written only on success. buf NULL (read, write, migrate-to-dev,
 * exclusive): the command without its data (the same faults, migrations,
 * table entries and cpages), on any device. On a device without contents
 * a command given a buf, and atomic-add, fail with -EOPNOTSUPP before
 * doing anything. */
int mirror_read(struct mirror *m, uint64_t addr, uint64_t npages, void *buf, struct mirror_result *res);
int mirror_write(struct mirror *m, uint64_t addr, uint64_t npages, const void *buf,
		 struct mirror_result *res);
int mirror_migrate_to_dev(struct mirror *m, uint64_t addr, uint64_t npages, void *buf,
			  struct mirror_result *res);
int mirror_migrate_to_sys(struct mirror *m, uint64_t addr, uint64_t npages, struct mirror_result *res);
int mirror_snapshot(struct mirror *m, uint64_t addr, uint64_t npages, uint8_t *bytes,
		    struct mirror_result *res);
int mirror_exclusive(struct mirror *m, uint64_t addr, uint64_t npages, void *buf, struct mirror_result *res);
int mirror_check_exclusive(struct mirror *m, uint64_t addr, uint64_t npages);
int mirror_atomic_add(struct mirror *m, uint64_t addr, uint64_t npages, uint32_t value,
		      struct mirror_result *res);
int mirror_release(struct mirror_device *dev);
void mirror_fail_next_alloc(struct mirror_device *dev);
void mirror_pool(struct mirror_device *dev, uint64_t *used, uint64_t *free);

/* Snapshot bytes (mirror-device.md §4). */
#define MIRROR_SNAP_ERROR 0xff
#define MIRROR_SNAP_ZERO 0x10
#define MIRROR_SNAP_OWN_PRIVATE 0x20
#define MIRROR_SNAP_OTHER_PRIVATE 0x30
#define MIRROR_SNAP_OWN_COHERENT 0x40
#define MIRROR_SNAP_OTHER_COHERENT 0x50
#define MIRROR_SNAP_READ 0x01
#define MIRROR_SNAP_WRITE 0x02
#define MIRROR_SNAP_PMD 0x04
#define MIRROR_SNAP_PUD 0x08

#endif /* DEVMM_MIRROR_H */
