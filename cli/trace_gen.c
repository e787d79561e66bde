/* SPDX-License-Identifier: MIT */
/*
 * `devmm trace gen`: synthetic traces of the access patterns of
 * managed-memory.md §3.1 (streaming, strided, random uniform or Zipf, 2-D
 * stencil, CPU <-> GPU ping-pong), in trace format v1. Every choice comes
 * from one seeded generator (splitmix64), so the same arguments and seed
 * give the same bytes; the seed is written into the trace and to stderr.
 *
 * Streams are interleaved round-robin in file order (the runner runs each
 * (processor, stream) in order on its own clock; file order only breaks
 * ties). Each pass or iteration of a device pattern run by a GPU is one
 * kernel (the CPU runs no kernels, so --proc cpu writes no markers);
 * allocations are 2 MiB aligned and laid out from --base upwards, and freed
 * at the end. Docs: docs/trace-format.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "script_int.h"
#include "trace.h"

#define GEN_ALIGN (2ull << 20)
#define GEN_MAX_ZIPF_PAGES (1ull << 24) /* the Zipf table: 8 bytes a page */
#define GEN_MAX_PROCS 16

enum gen_pattern { P_STREAMING, P_STRIDED, P_RANDOM, P_STENCIL, P_PINGPONG, P_NR };

static const char *const pattern_names[P_NR] = { "streaming", "strided", "random", "stencil",
						 "pingpong" };

#define M(p) (1u << (p))
#define ALL (M(P_NR) - 1)
#define DEV (ALL & ~M(P_PINGPONG)) /* the patterns one processor runs */

enum opt_kind { O_U64, O_DOUBLE, O_FLAG, O_WORD };

struct gen {
	FILE *out;
	uint64_t rng;
	enum gen_pattern pat;
	/* options (struct gen_opt points into these) */
	uint64_t seed, streams, base, compute, arrays, bytes, passes, rows, stride, elem, pages,
		accesses, height, width, tile, halo, iters, period, rounds;
	double alpha;
	bool cpu_init, rmw, seed_set;
	const char *proc_s, *procs_s, *mix_s, *layout_s, *dist_s;
	/* derived */
	struct trace_proc proc, procs[GEN_MAX_PROCS];
	size_t nprocs;
	unsigned int mix[3]; /* weights of R, W, A */
	bool grid, zipf;
	double *cdf; /* Zipf: cumulative weights of pages 0..pages-1 */
	uint64_t *arr; /* streaming: the address of each array */
	uint64_t next; /* the next allocation address */
};

struct gen_opt {
	const char *name;
	enum opt_kind kind;
	unsigned int patterns;
	size_t off;
	const char *help;
};

#define F(field) offsetof(struct gen, field)

static const struct gen_opt gen_opts[] = {
	{ "seed", O_U64, ALL, F(seed), "S  the seed (default: from the clock; printed)" },
	{ "streams", O_U64, ALL, F(streams), "N  concurrent streams, 1..65536 (4)" },
	{ "base", O_U64, ALL, F(base), "ADDR  first allocation, 2 MiB aligned (0x200000000)" },
	{ "proc", O_WORD, DEV, F(proc_s), "P  the processor, cpu or gpuN (gpu0)" },
	{ "mix", O_WORD, ALL & ~M(P_STENCIL), F(mix_s),
	  "r=N,w=N,a=N  weights of reads, writes, atomics (r=1; pingpong w=1)" },
	{ "compute", O_U64, DEV, F(compute), "NS  COMPUTE after every access (0: none)" },
	{ "passes", O_U64, M(P_STREAMING) | M(P_STRIDED), F(passes), "N  passes (1)" },
	{ "arrays", O_U64, M(P_STREAMING), F(arrays), "N  arrays read in lockstep (1)" },
	{ "bytes", O_U64, M(P_STREAMING), F(bytes), "B  bytes per array (16 MiB)" },
	{ "layout", O_WORD, M(P_STREAMING), F(layout_s),
	  "grid|chunk  page i on stream i mod S, or chunk s on stream s (grid)" },
	{ "cpu-init", O_FLAG, M(P_STREAMING), F(cpu_init), " the CPU writes every page first" },
	{ "rows", O_U64, M(P_STRIDED), F(rows), "N  rows walked (1024)" },
	{ "stride", O_U64, M(P_STRIDED), F(stride), "B  bytes from row to row (65536)" },
	{ "elem", O_U64, M(P_STRIDED) | M(P_RANDOM) | M(P_STENCIL), F(elem),
	  "B  element size (strided 4, random 8, stencil 4)" },
	{ "pages", O_U64, M(P_RANDOM) | M(P_PINGPONG), F(pages),
	  "N  pages of the table (random 1024) or shared (pingpong 64)" },
	{ "accesses", O_U64, M(P_RANDOM), F(accesses), "N  accesses (4 x pages)" },
	{ "dist", O_WORD, M(P_RANDOM), F(dist_s), "uniform|zipf  (uniform)" },
	{ "alpha", O_DOUBLE, M(P_RANDOM), F(alpha), "X  Zipf exponent, 0..16 (1.0)" },
	{ "rmw", O_FLAG, M(P_RANDOM), F(rmw), " read then write each element" },
	{ "height", O_U64, M(P_STENCIL), F(height), "H  rows of the grid (1024)" },
	{ "width", O_U64, M(P_STENCIL), F(width), "W  columns of the grid (1024)" },
	{ "tile", O_U64, M(P_STENCIL), F(tile), "T  tile side, at most max(H, W) (64)" },
	{ "halo", O_U64, M(P_STENCIL), F(halo), "K  halo width, at most max(H, W) (1)" },
	{ "iters", O_U64, M(P_STENCIL), F(iters), "N  iterations, in and out swapped (2)" },
	{ "procs", O_WORD, M(P_PINGPONG), F(procs_s), "P,Q,...  who takes turns (cpu,gpu0)" },
	{ "period", O_U64, M(P_PINGPONG), F(period), "NS  compute of each turn (100000)" },
	{ "rounds", O_U64, M(P_PINGPONG), F(rounds), "N  turns (20)" },
};

void trace_gen_usage(FILE *f)
{
	fprintf(f, "usage: devmm trace gen PATTERN [--seed S] [options] > FILE\n"
		   "patterns: streaming, strided, random, stencil, pingpong\n"
		   "options (the patterns that take them):\n");
	for (size_t i = 0; i < ARRAY_SIZE(gen_opts); i++) {
		const struct gen_opt *o = &gen_opts[i];
		const char *sp = strchr(o->help, ' ');
		char pats[64] = "";
		size_t n = 0;

		if (o->patterns != ALL)
			for (int p = 0; p < P_NR; p++)
				if (o->patterns & M(p))
					n += (size_t)snprintf(pats + n, sizeof(pats) - n, "%s%s",
							      n ? "," : "", pattern_names[p]);
		fprintf(f, "  --%s %.*s%*s%s%s%s%s\n", o->name, (int)(sp - o->help), o->help,
			(int)(24 - strlen(o->name) - (size_t)(sp - o->help)), "",
			sp + strspn(sp, " "), n ? " [" : "", pats, n ? "]" : "");
	}
}

/* ------------------------------------------------------------------------ */
/* Randomness                                                                */

static uint64_t rnd(struct gen *g)
{
	uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n >= 1. */
static uint64_t rnd_below(struct gen *g, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rnd(g) * n) >> 64);
}

static int zipf_table(struct gen *g)
{
	double sum = 0;

	g->cdf = script_malloc(g->pages * sizeof(*g->cdf));
	if (!g->cdf)
		return -ENOMEM;
	for (uint64_t k = 0; k < g->pages; k++) {
		sum += pow((double)(k + 1), -g->alpha);
		g->cdf[k] = sum;
	}
	return 0;
}

/* Page k with probability (k + 1)^-alpha / sum. */
static uint64_t zipf_page(struct gen *g)
{
	double u = (double)(rnd(g) >> 11) * 0x1p-53 * g->cdf[g->pages - 1];
	uint64_t lo = 0, hi = g->pages - 1;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (g->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static enum trace_op pick_op(struct gen *g)
{
	unsigned int total = g->mix[0] + g->mix[1] + g->mix[2], x;

	if (g->mix[0] == total)
		return TRACE_READ;
	if (g->mix[1] == total)
		return TRACE_WRITE;
	if (g->mix[2] == total)
		return TRACE_ATOMIC;
	x = (unsigned int)rnd_below(g, total);
	return x < g->mix[0] ? TRACE_READ : x < g->mix[0] + g->mix[1] ? TRACE_WRITE : TRACE_ATOMIC;
}

/* ------------------------------------------------------------------------ */
/* Records                                                                   */

static void emit_access(struct gen *g, struct trace_proc p, enum trace_op op, uint64_t addr,
			uint64_t bytes, uint64_t stream)
{
	char pb[8];
	const char *pn = trace_proc_name(p, pb);

	fprintf(g->out, "%s %s 0x%llx %llu s=%llu\n", pn, trace_op_name(op),
		(unsigned long long)addr, (unsigned long long)bytes, (unsigned long long)stream);
	if (g->compute)
		fprintf(g->out, "%s COMPUTE %llu s=%llu\n", pn, (unsigned long long)g->compute,
			(unsigned long long)stream);
}

static void emit_compute(struct gen *g, struct trace_proc p, uint64_t ns, uint64_t stream)
{
	char pb[8];

	fprintf(g->out, "%s COMPUTE %llu s=%llu\n", trace_proc_name(p, pb),
		(unsigned long long)ns, (unsigned long long)stream);
}

/* Place an allocation of @bytes (2 MiB aligned) and write its ALLOC. */
static uint64_t emit_alloc(struct gen *g, const char *name, uint64_t bytes)
{
	uint64_t a = g->next;

	g->next += (bytes + GEN_ALIGN - 1) & ~(GEN_ALIGN - 1);
	fprintf(g->out, "ALLOC %s 0x%llx %llu\n", name, (unsigned long long)a,
		(unsigned long long)bytes);
	return a;
}

/* KERNEL_BEGIN or KERNEL_END @id around work of @p: only a GPU runs
 * kernels, so nothing for the CPU. */
static void emit_kernel(struct gen *g, struct trace_proc p, bool begin, uint64_t id)
{
	if (p.is_gpu)
		fprintf(g->out, "KERNEL_%s %llu\n", begin ? "BEGIN" : "END",
			(unsigned long long)id);
}

static void emit_free(struct gen *g, uint64_t addr)
{
	fprintf(g->out, "FREE 0x%llx\n", (unsigned long long)addr);
}

/* ------------------------------------------------------------------------ */
/* Patterns                                                                  */

/* Page i of every array, on stream s (arrays in lockstep). */
static void stream_page(struct gen *g, const uint64_t *arr, uint64_t i, uint64_t s)
{
	uint64_t off = i * TRACE_PAGE_SIZE, n = g->bytes - off;

	for (uint64_t a = 0; a < g->arrays; a++)
		emit_access(g, g->proc, pick_op(g), arr[a] + off,
			    n < TRACE_PAGE_SIZE ? n : TRACE_PAGE_SIZE, s);
}

static void gen_streaming(struct gen *g)
{
	uint64_t pages = (g->bytes + TRACE_PAGE_SIZE - 1) / TRACE_PAGE_SIZE;
	uint64_t chunk = (pages + g->streams - 1) / g->streams;
	uint64_t *arr = g->arr;
	struct trace_proc cpu = { false, 0 };
	char name[32];

	for (uint64_t a = 0; a < g->arrays; a++) {
		snprintf(name, sizeof(name), "a%llu", (unsigned long long)a);
		arr[a] = emit_alloc(g, name, g->bytes);
	}
	if (g->cpu_init) {
		for (uint64_t a = 0; a < g->arrays; a++)
			for (uint64_t i = 0; i < pages; i++)
				emit_access(g, cpu, TRACE_WRITE, arr[a] + i * TRACE_PAGE_SIZE,
					    i + 1 < pages ? TRACE_PAGE_SIZE :
							    g->bytes - i * TRACE_PAGE_SIZE, 0);
		fprintf(g->out, "SYNC\n");
	}
	for (uint64_t p = 0; p < g->passes; p++) {
		emit_kernel(g, g->proc, true, p);
		if (g->grid)
			for (uint64_t i = 0; i < pages; i++)
				stream_page(g, arr, i, i % g->streams);
		else
			for (uint64_t k = 0; k < chunk; k++)
				for (uint64_t s = 0; s < g->streams; s++)
					if (s * chunk + k < pages)
						stream_page(g, arr, s * chunk + k, s);
		emit_kernel(g, g->proc, false, p);
	}
	for (uint64_t a = 0; a < g->arrays; a++)
		emit_free(g, arr[a]);
}

/* Column walks: stream s reads element s of every row. */
static void gen_strided(struct gen *g)
{
	uint64_t m = emit_alloc(g, "matrix", g->rows * g->stride);

	for (uint64_t p = 0; p < g->passes; p++) {
		emit_kernel(g, g->proc, true, p);
		for (uint64_t r = 0; r < g->rows; r++)
			for (uint64_t s = 0; s < g->streams; s++)
				emit_access(g, g->proc, pick_op(g),
					    m + r * g->stride + s * g->elem, g->elem, s);
		emit_kernel(g, g->proc, false, p);
	}
	emit_free(g, m);
}

static void gen_random(struct gen *g)
{
	uint64_t t = emit_alloc(g, "table", g->pages * TRACE_PAGE_SIZE);
	uint64_t per_page = TRACE_PAGE_SIZE / g->elem;

	emit_kernel(g, g->proc, true, 0);
	for (uint64_t i = 0; i < g->accesses; i++) {
		uint64_t page = g->zipf ? zipf_page(g) : rnd_below(g, g->pages);
		uint64_t a = t + page * TRACE_PAGE_SIZE + rnd_below(g, per_page) * g->elem;
		uint64_t s = i % g->streams;

		if (g->rmw) {
			emit_access(g, g->proc, TRACE_READ, a, g->elem, s);
			emit_access(g, g->proc, TRACE_WRITE, a, g->elem, s);
		} else {
			emit_access(g, g->proc, pick_op(g), a, g->elem, s);
		}
	}
	emit_kernel(g, g->proc, false, 0);
	emit_free(g, t);
}

/* Row segment [x0, x1) of rows [y0, y1) of the grid at @base. */
static void stencil_rows(struct gen *g, uint64_t base, enum trace_op op, uint64_t y0,
			 uint64_t y1, uint64_t x0, uint64_t x1, uint64_t s)
{
	for (uint64_t y = y0; y < y1; y++)
		emit_access(g, g->proc, op, base + (y * g->width + x0) * g->elem,
			    (x1 - x0) * g->elem, s);
}

static uint64_t sub_clip(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void gen_stencil(struct gen *g)
{
	uint64_t bytes = g->height * g->width * g->elem;
	uint64_t buf[2] = { emit_alloc(g, "grid0", bytes), emit_alloc(g, "grid1", bytes) };

	for (uint64_t it = 0; it < g->iters; it++) {
		uint64_t in = buf[it & 1], out = buf[!(it & 1)], t = 0;

		emit_kernel(g, g->proc, true, it);
		for (uint64_t y = 0; y < g->height; y += g->tile)
			for (uint64_t x = 0; x < g->width; x += g->tile, t++) {
				uint64_t s = t % g->streams;

				stencil_rows(g, in, TRACE_READ, sub_clip(y, g->halo),
					     min_u64(y + g->tile + g->halo, g->height),
					     sub_clip(x, g->halo),
					     min_u64(x + g->tile + g->halo, g->width), s);
				stencil_rows(g, out, TRACE_WRITE, y, min_u64(y + g->tile, g->height),
					     x, min_u64(x + g->tile, g->width), s);
			}
		emit_kernel(g, g->proc, false, it);
	}
	emit_free(g, buf[0]);
	emit_free(g, buf[1]);
}

/* Turn k: processor procs[k mod n] touches every page, computes for the
 * period on each of its streams, and all wait (SYNC) before the next. */
static void gen_pingpong(struct gen *g)
{
	uint64_t sh = emit_alloc(g, "shared", g->pages * TRACE_PAGE_SIZE);
	uint64_t ns = g->streams < g->pages ? g->streams : g->pages;

	for (uint64_t k = 0; k < g->rounds; k++) {
		struct trace_proc p = g->procs[k % g->nprocs];

		emit_kernel(g, p, true, k);
		for (uint64_t i = 0; i < g->pages; i++)
			emit_access(g, p, pick_op(g), sh + i * TRACE_PAGE_SIZE, TRACE_PAGE_SIZE,
				    i % ns);
		for (uint64_t s = 0; s < ns; s++)
			emit_compute(g, p, g->period, s);
		emit_kernel(g, p, false, k);
		fprintf(g->out, "SYNC\n");
	}
	emit_free(g, sh);
}

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

static int usage_err(FILE *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_err(FILE *err, const char *fmt, ...)
{
	va_list ap;

	fprintf(err, "trace gen: ");
	va_start(ap, fmt);
	vfprintf(err, fmt, ap);
	va_end(ap);
	fprintf(err, "\n(devmm trace gen --help lists the patterns and options)\n");
	return 2;
}

/* r=N,w=N,a=N (any subset, any order, N <= 1000000, not all zero). */
static bool parse_mix(const char *s, unsigned int mix[3])
{
	mix[0] = mix[1] = mix[2] = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		const char *keys = "rwa", *k = len > 2 && s[1] == '=' ? strchr(keys, s[0]) : NULL;
		uint64_t v;

		if (!k || !*k || lex_num(s + 2, len - 2, &v) != NUM_OK || v > 1000000)
			return false;
		mix[k - keys] = (unsigned int)v;
		s += len + (comma ? 1 : 0);
		if (comma && !*s)
			return false;
	}
	return mix[0] + mix[1] + mix[2] > 0;
}

static int set_opt(struct gen *g, const struct gen_opt *o, const char *v, FILE *err)
{
	void *field = (char *)g + o->off;
	uint64_t n;
	char *end;

	switch (o->kind) {
	case O_FLAG:
		*(bool *)field = true;
		return 0;
	case O_WORD:
		*(const char **)field = v;
		return 0;
	case O_DOUBLE:
		errno = 0;
		*(double *)field = strtod(v, &end);
		if (errno || end == v || *end || !(*(double *)field >= 0) ||
		    *(double *)field > 16)
			return usage_err(err, "--%s: expected a number from 0 to 16, found '%s'",
					 o->name, v);
		return 0;
	case O_U64:
		if (lex_num(v, strlen(v), &n) != NUM_OK)
			return usage_err(err, "--%s: expected a decimal or 0x number, found '%s'",
					 o->name, v);
		*(uint64_t *)field = n;
		return 0;
	}
	return 2;
}

static int parse_args(struct gen *g, int argc, char **argv, FILE *err)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '='), *v = NULL;
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		const struct gen_opt *o = NULL;

		if (strncmp(a, "--", 2))
			return usage_err(err, "unexpected argument '%s'", a);
		for (size_t k = 0; k < ARRAY_SIZE(gen_opts); k++)
			if (strlen(gen_opts[k].name) == len - 2 && !strncmp(a + 2, gen_opts[k].name, len - 2))
				o = &gen_opts[k];
		if (!o)
			return usage_err(err, "unknown option '%s'", a);
		if (!(o->patterns & M(g->pat)))
			return usage_err(err, "option --%s does not apply to pattern %s", o->name,
					 pattern_names[g->pat]);
		if (o->kind != O_FLAG) {
			v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v)
				return usage_err(err, "--%s needs a value", o->name);
		} else if (eq) {
			return usage_err(err, "--%s takes no value", o->name);
		}
		if (o->off == F(seed))
			g->seed_set = true;
		if (set_opt(g, o, v, err))
			return 2;
	}
	return 0;
}

/* x * y rounded up to GEN_ALIGN into *out; false on overflow. */
static bool aligned_size(uint64_t x, uint64_t y, uint64_t *out)
{
	uint64_t n;

	if (__builtin_mul_overflow(x, y, &n) || n > TRACE_ADDR_END)
		return false;
	*out = (n + GEN_ALIGN - 1) & ~(GEN_ALIGN - 1);
	return true;
}

/* Bytes of address space the pattern's allocations take; false if they
 * cannot fit below TRACE_ADDR_END. */
static bool layout_bytes(const struct gen *g, uint64_t *total)
{
	uint64_t one = 0, n = 1;

	switch (g->pat) {
	case P_STREAMING:
		n = g->arrays;
		if (!aligned_size(g->bytes, 1, &one))
			return false;
		break;
	case P_STRIDED:
		if (!aligned_size(g->rows, g->stride, &one))
			return false;
		break;
	case P_RANDOM:
	case P_PINGPONG:
		if (!aligned_size(g->pages, TRACE_PAGE_SIZE, &one))
			return false;
		break;
	case P_STENCIL:
		n = 2;
		if (!aligned_size(g->height, g->width, &one) || !aligned_size(one, g->elem, &one))
			return false;
		break;
	default:
		return false;
	}
	return !__builtin_mul_overflow(one, n, total) && *total <= TRACE_ADDR_END - g->base;
}

static int parse_procs(struct gen *g, FILE *err)
{
	const char *s = g->procs_s;

	g->nprocs = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);

		if (g->nprocs == GEN_MAX_PROCS ||
		    !trace_proc_parse(s, len, &g->procs[g->nprocs++]) || (comma && !comma[1]))
			return usage_err(err, "--procs: expected up to 16 of cpu, gpu0 .. gpu63, "
					 "separated by ',', found '%s'", g->procs_s);
		s += len + (comma ? 1 : 0);
	}
	return g->nprocs ? 0 : usage_err(err, "--procs: expected a processor");
}

/* Words into their meanings, and every value within its bounds. */
static int check_opts(struct gen *g, FILE *err)
{
	uint64_t total;

	if (!g->streams || g->streams > TRACE_MAX_STREAM + 1ull)
		return usage_err(err, "--streams: expected 1 to 65536");
	if (g->base % GEN_ALIGN || g->base < TRACE_ADDR_MIN || g->base >= TRACE_ADDR_END)
		return usage_err(err, "--base: expected a multiple of 2 MiB from 0x200000 up to "
				 "2^47");
	if (!trace_proc_parse(g->proc_s, strlen(g->proc_s), &g->proc))
		return usage_err(err, "--proc: expected cpu or gpu0 .. gpu63, found '%s'",
				 g->proc_s);
	if (!parse_mix(g->mix_s, g->mix))
		return usage_err(err, "--mix: expected r=N,w=N,a=N (any of them, not all 0), "
				 "found '%s'", g->mix_s);
	if (g->compute > TRACE_MAX_NS || g->period > TRACE_MAX_NS)
		return usage_err(err, "--compute and --period: at most 10^15 ns");
	if (!strcmp(g->layout_s, "grid") || !strcmp(g->layout_s, "chunk"))
		g->grid = !strcmp(g->layout_s, "grid");
	else
		return usage_err(err, "--layout: expected grid or chunk, found '%s'",
				 g->layout_s);
	if (!strcmp(g->dist_s, "uniform") || !strcmp(g->dist_s, "zipf"))
		g->zipf = !strcmp(g->dist_s, "zipf");
	else
		return usage_err(err, "--dist: expected uniform or zipf, found '%s'", g->dist_s);
	if (!g->arrays || g->arrays > 1024 || !g->bytes || !g->rows || !g->pages ||
	    !g->height || !g->width || !g->tile || !g->elem || g->elem > TRACE_PAGE_SIZE)
		return usage_err(err, "--arrays (1..1024), --bytes, --rows, --pages, --height, "
				 "--width, --tile and --elem (1..4096) must be at least 1");
	/* Beyond the grid's larger side a tile or halo changes nothing, and
	 * bounded so, y + tile + halo cannot wrap around. */
	if (g->pat == P_STENCIL &&
	    (g->tile > max_u64(g->height, g->width) || g->halo > max_u64(g->height, g->width)))
		return usage_err(err, "--tile and --halo: at most the larger of --height and "
				 "--width");
	if (g->pat == P_RANDOM && TRACE_PAGE_SIZE % g->elem)
		return usage_err(err, "--elem: random needs a divisor of 4096");
	if (g->pat == P_RANDOM && g->zipf && g->pages > GEN_MAX_ZIPF_PAGES)
		return usage_err(err, "--pages: zipf takes at most 2^24 pages");
	if (g->pat == P_STRIDED && g->stride / g->elem < g->streams)
		return usage_err(err, "--stride: a row must hold an element per stream "
				 "(stride >= elem x streams)");
	if (g->pat == P_PINGPONG && parse_procs(g, err))
		return 2;
	if (!layout_bytes(g, &total))
		return usage_err(err, "the allocations do not fit below 2^47 from --base");
	if (g->accesses == UINT64_MAX)
		g->accesses = 4 * g->pages;
	return 0;
}

static void defaults(struct gen *g)
{
	g->streams = 4;
	g->base = 0x200000000ull;
	g->proc_s = "gpu0";
	g->mix_s = g->pat == P_PINGPONG ? "w=1" : "r=1";
	g->arrays = 1;
	g->bytes = 16u << 20;
	g->passes = 1;
	g->layout_s = "grid";
	g->rows = 1024;
	g->stride = 65536;
	g->elem = g->pat == P_RANDOM ? 8 : 4;
	g->pages = g->pat == P_PINGPONG ? 64 : 1024;
	g->accesses = UINT64_MAX; /* 4 x pages */
	g->dist_s = "uniform";
	g->alpha = 1.0;
	g->height = g->width = 1024;
	g->tile = 64;
	g->halo = 1;
	g->iters = 2;
	g->procs_s = "cpu,gpu0";
	g->period = 100000;
	g->rounds = 20;
}

static uint64_t clock_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
	       ((uint64_t)getpid() << 32);
}

/* The memory a pattern needs, allocated before anything is written: out of
 * memory then leaves the output empty, like a usage error. */
static int gen_prepare(struct gen *g)
{
	if (g->pat == P_STREAMING) {
		g->arr = script_malloc(g->arrays * sizeof(*g->arr));
		if (!g->arr)
			return -ENOMEM;
	}
	if (g->pat == P_RANDOM && g->zipf)
		return zipf_table(g);
	return 0;
}

static void (*const gens[P_NR])(struct gen *) = { gen_streaming, gen_strided, gen_random,
						    gen_stencil, gen_pingpong };

int trace_gen_main(int argc, char **argv, FILE *out, FILE *err)
{
	struct gen g = { .out = out };
	int p;

	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		trace_gen_usage(argc < 1 ? err : out);
		return argc < 1 ? 2 : 0;
	}
	for (p = 0; p < P_NR && strcmp(argv[0], pattern_names[p]); p++)
		;
	if (p == P_NR)
		return usage_err(err, "unknown pattern '%s'", argv[0]);
	g.pat = (enum gen_pattern)p;
	defaults(&g);
	if (parse_args(&g, argc, argv, err) || check_opts(&g, err))
		return 2;
	if (gen_prepare(&g)) {
		free(g.cdf);
		free(g.arr);
		fprintf(err, "trace gen: out of memory\n");
		return 1;
	}
	if (!g.seed_set)
		g.seed = clock_seed();
	g.rng = g.seed;
	g.next = g.base;
	fprintf(out, "# devmm trace v1\n# devmm trace gen");
	for (int i = 0; i < argc; i++)
		fprintf(out, " %s", argv[i]);
	if (!g.seed_set)
		fprintf(out, " --seed %llu", (unsigned long long)g.seed);
	fprintf(out, "\n# seed %llu\n", (unsigned long long)g.seed);
	fprintf(err, "trace gen: seed %llu\n", (unsigned long long)g.seed);
	gens[g.pat](&g);
	free(g.cdf);
	free(g.arr);
	if (fflush(out) || ferror(out)) {
		fprintf(err, "trace gen: write error: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
