/* SPDX-License-Identifier: MIT */
/*
 * The system: simulated physical memory and the objects that live on it.
 *
 * RAM is one anonymous reservation of (nr_frames + 1) * 4 KiB, mapped with
 * MAP_NORESERVE so that frames never touched cost nothing; pfn 0 is the
 * shared zero page and pfns 1..nr_frames are allocatable. Metadata lives in
 * a parallel array of struct dmm_page. Both are published through the
 * section table (128 MiB per section), which later also maps device memory
 * ranges above RAM, so pfn_to_page() is one lookup for every kind of frame.
 */
#include <stdio.h>
#include <sys/mman.h>

#include "internal.h"

static void *reserve(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void publish_ram_sections(struct dmm_system *sys)
{
	uint64_t total = sys->nr_frames + 1;

	for (uint64_t s = 0; s * PAGES_PER_SECTION < total; s++) {
		struct dmm_section *sec = &sys->sys_sections[s];

		sec->pages = sys->frames + s * PAGES_PER_SECTION;
		sec->mem = sys->arena ? sys->arena + s * PAGES_PER_SECTION * PAGE_SIZE : NULL;
		sec->nr = DMM_MIN(PAGES_PER_SECTION, total - s * PAGES_PER_SECTION);
		atomic_store_explicit(&sys->sections[s], sec, memory_order_release);
	}
}

static void init_zero_page(struct dmm_system *sys)
{
	struct dmm_page *zero = &sys->frames[0];

	atomic_store(&zero->flags, PG_reserved | PG_uptodate);
	/* The zero page's refcount and mapcount stay 0: it is never counted. */
}

int dmm_system_create(const struct dmm_system_config *cfg, struct dmm_system **out)
{
	struct dmm_system_config def = { 0 };
	struct dmm_system *sys;

	if (!out)
		return -EINVAL;
	if (!cfg)
		cfg = &def;
	if (cfg->nr_frames > DMM_MAX_SYSTEM_FRAMES || (cfg->flags & ~(DMM_SYS_PRETOUCH | DMM_SYS_NO_CONTENTS)) ||
	    (cfg->mthp_orders & ~DMM_MTHP_ORDERS_ALLOWED) || cfg->thp_mode > DMM_THP_ALWAYS ||
	    (cfg->thp_flags & ~DMM_THP_NO_HUGE_ZERO))
		return -EINVAL;
	sys = calloc(1, sizeof(*sys));
	if (!sys)
		return -ENOMEM;
	sys->nr_frames = cfg->nr_frames ? cfg->nr_frames : 262144;
	/* Metadata only: no arena at all, and every data path checks
	 * sys->arena (page_has_contents) before it touches a byte. */
	sys->arena_bytes = cfg->flags & DMM_SYS_NO_CONTENTS ? 0 : (sys->nr_frames + 1) * PAGE_SIZE;
	sys->meta_bytes = (sys->nr_frames + 1) * sizeof(struct dmm_page);
	sys->arena = sys->arena_bytes ? reserve(sys->arena_bytes) : NULL;
	sys->frames = reserve(sys->meta_bytes);
	if ((sys->arena_bytes && !sys->arena) || !sys->frames) {
		if (sys->arena)
			munmap(sys->arena, sys->arena_bytes);
		if (sys->frames)
			munmap(sys->frames, sys->meta_bytes);
		free(sys);
		return -ENOMEM;
	}
	publish_ram_sections(sys);
	init_zero_page(sys);
	frames_init(sys);
	wait_table_init(sys);
	pthread_mutex_init(&sys->mm_list_lock, NULL);
	list_init(&sys->mms);
	sys->next_mm_id = 1;
	atomic_store(&sys->mthp_orders, cfg->mthp_orders);
	atomic_store(&sys->thp_mode, cfg->thp_mode);
	atomic_store(&sys->thp_huge_zero, !(cfg->thp_flags & DMM_THP_NO_HUGE_ZERO));
	pthread_mutex_init(&sys->file_list_lock, NULL);
	list_init(&sys->files);
	pthread_mutex_init(&sys->pgmap_lock, NULL);
	list_init(&sys->pgmaps);
	sys->device_pfn_base = (sys->nr_frames + 1 + PAGES_PER_SECTION - 1) & ~(PAGES_PER_SECTION - 1);
	if ((cfg->flags & DMM_SYS_PRETOUCH) && sys->arena)
		dmm_system_prefault(sys, sys->nr_frames);
	/* DEVMM_INJECT arms fault injection in every system (docs/reliability.md);
	 * a malformed value is reported once and ignored. */
	if (getenv("DEVMM_INJECT") && dmm_inject_parse(sys, getenv("DEVMM_INJECT")))
		fprintf(stderr, "devmm: DEVMM_INJECT=\"%s\" does not parse; ignored\n", getenv("DEVMM_INJECT"));
	*out = sys;
	return 0;
}

int dmm_system_prefault(struct dmm_system *sys, uint64_t n)
{
	if (!sys)
		return -EINVAL;
	if (!sys->arena)
		return 0; /* metadata only: there is no memory to touch */
	if (n > sys->nr_frames)
		n = sys->nr_frames;
	/* Writing zeros keeps never-used frames zero, as the allocator assumes. */
	for (uint64_t pfn = 1; pfn <= n; pfn++) {
		volatile uint8_t *b = sys->arena + pfn * PAGE_SIZE;
		uint8_t v = b[0];
		b[0] = v;
	}
	return 0;
}

void dmm_system_destroy(struct dmm_system *sys)
{
	if (!sys)
		return;
	/* Every live address space exits; then every file goes. */
	for (;;) {
		struct dmm_mm *mm = NULL;

		pthread_mutex_lock(&sys->mm_list_lock);
		if (!list_empty(&sys->mms))
			mm = container_of(sys->mms.next, struct dmm_mm, node);
		pthread_mutex_unlock(&sys->mm_list_lock);
		if (!mm)
			break;
		dmm_mm_exit(mm);
	}
	for (;;) {
		struct dmm_file *f = NULL;

		pthread_mutex_lock(&sys->file_list_lock);
		if (!list_empty(&sys->files)) {
			f = container_of(sys->files.next, struct dmm_file, node);
			list_del(&f->node);
		}
		pthread_mutex_unlock(&sys->file_list_lock);
		if (!f)
			break;
		filemap_release(f);
		pthread_mutex_destroy(&f->lock);
		pthread_rwlock_destroy(&f->i_mmap_lock);
		free(f->pages);
		free(f);
	}
	pgmaps_destroy(sys);
	/* Whatever was unregistered or unlinked for lockless readers is freed
	 * now (the callbacks of other systems run too: they are due). */
	rcu_barrier();
	wait_table_destroy(sys);
	for (unsigned int i = 0; i < NR_SHARDS; i++)
		pthread_mutex_destroy(&sys->shards[i].lock);
	pthread_mutex_destroy(&sys->large_free.lock);
	pthread_mutex_destroy(&sys->deferred_split.lock);
	pthread_mutex_destroy(&sys->mm_list_lock);
	pthread_mutex_destroy(&sys->file_list_lock);
	pthread_mutex_destroy(&sys->pgmap_lock);
	if (sys->arena)
		munmap(sys->arena, sys->arena_bytes);
	munmap(sys->frames, sys->meta_bytes);
	free(sys);
}

int dmm_system_set_longterm_coherent(struct dmm_system *sys, enum dmm_longterm_coherent mode)
{
	if (!sys || (mode != DMM_LONGTERM_COHERENT_MIGRATE && mode != DMM_LONGTERM_COHERENT_FAIL))
		return -EINVAL;
	atomic_store(&sys->longterm_coherent, mode);
	return 0;
}

int dmm_system_set_mthp(struct dmm_system *sys, unsigned int orders)
{
	if (!sys || (orders & ~DMM_MTHP_ORDERS_ALLOWED))
		return -EINVAL;
	atomic_store(&sys->mthp_orders, orders);
	return 0;
}

int dmm_system_set_thp(struct dmm_system *sys, enum dmm_thp_mode mode, unsigned int flags)
{
	if (!sys || (unsigned int)mode > DMM_THP_ALWAYS || (flags & ~DMM_THP_NO_HUGE_ZERO))
		return -EINVAL;
	atomic_store(&sys->thp_huge_zero, !(flags & DMM_THP_NO_HUGE_ZERO));
	atomic_store(&sys->thp_mode, (unsigned int)mode);
	return 0;
}

int dmm_system_fail_thp_alloc(struct dmm_system *sys, unsigned int n)
{
	if (!sys)
		return -EINVAL;
	atomic_store(&sys->thp_fail_next, n);
	return 0;
}

bool dmm_system_has_contents(const struct dmm_system *sys)
{
	return sys && sys->arena;
}

uint64_t dmm_system_nr_frames(const struct dmm_system *sys)
{
	return sys ? sys->nr_frames : 0;
}

uint64_t dmm_system_nr_free(const struct dmm_system *sys)
{
	if (!sys)
		return 0;
	return sys->nr_frames - (uint64_t)frames_used((struct dmm_system *)sys);
}

uint64_t page_to_pfn(struct dmm_system *sys, const struct dmm_page *page)
{
	if (likely(page >= sys->frames && page <= sys->frames + sys->nr_frames))
		return (uint64_t)(page - sys->frames);
	return page->pgmap->pfn_start + (uint64_t)(page - page->pgmap->pages);
}

void *page_address(struct dmm_system *sys, const struct dmm_page *page)
{
	struct dmm_pgmap *pgmap;

	/* Callers check page_has_contents first: metadata-only memory has
	 * no bytes to point at. */
	DMM_BUG_ON(!sys->arena);
	if (likely(page >= sys->frames && page <= sys->frames + sys->nr_frames))
		return sys->arena + (uint64_t)(page - sys->frames) * PAGE_SIZE;
	pgmap = page->pgmap;
	/* The CPU never touches device-private memory (invariant 4). */
	DMM_BUG_ON(pgmap->type != DMM_MEMORY_DEVICE_COHERENT);
	return pgmap->mem + (uint64_t)(page - pgmap->pages) * PAGE_SIZE;
}

/*
 * Whole-page copies and clears use non-temporal stores where the CPU has
 * them: the destination is usually cold (a frame just allocated), and
 * streaming stores skip the read-for-ownership of every line, which is a
 * third of the cost of a cached memcpy on a cold page. The sfence orders
 * them before the entry that publishes the page.
 */
#if defined(__SSE2__) && !defined(DMM_TSAN)
#include <emmintrin.h>

void copy_page_mem(void *dst, const void *src)
{
	__m128i *d = dst;
	const __m128i *s = src;

	for (unsigned int i = 0; i < PAGE_SIZE / 16; i += 4) {
		__m128i a = _mm_load_si128(s + i), b = _mm_load_si128(s + i + 1);
		__m128i c = _mm_load_si128(s + i + 2), e = _mm_load_si128(s + i + 3);

		_mm_stream_si128(d + i, a);
		_mm_stream_si128(d + i + 1, b);
		_mm_stream_si128(d + i + 2, c);
		_mm_stream_si128(d + i + 3, e);
	}
	_mm_sfence();
}

void clear_page_mem(void *dst)
{
	__m128i *d = dst, z = _mm_setzero_si128();

	for (unsigned int i = 0; i < PAGE_SIZE / 16; i += 4) {
		_mm_stream_si128(d + i, z);
		_mm_stream_si128(d + i + 1, z);
		_mm_stream_si128(d + i + 2, z);
		_mm_stream_si128(d + i + 3, z);
	}
	_mm_sfence();
}
#else
void copy_page_mem(void *dst, const void *src)
{
	sim_memcpy(dst, src, PAGE_SIZE);
}

void clear_page_mem(void *dst)
{
	sim_memset0(dst, PAGE_SIZE);
}
#endif

void copy_page_contents(struct dmm_system *sys, struct dmm_page *dst, struct dmm_page *src)
{
	/* A metadata-only system has no bytes on either side (its device
	 * memory has none either): the copy is the state change alone. */
	if (!sys->arena)
		return;
	copy_page_mem(page_address(sys, dst), page_address(sys, src));
}
