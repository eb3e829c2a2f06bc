/*
 * percpu-ref: an independent C build of the 2.6.36 area-map placement, reading the replay
 * format (docs/replay-format.md) and writing the same output lines as `percpu-sim replay`.
 *
 * It exists for two reasons: the benchmark's baseline (the same algorithm, compiled), and a
 * differential test (test/replay/differential.test.ts) that feeds both implementations the
 * same random traces and demands identical output. It models placement only: slots, area
 * maps, map extension, chunk creation, reclaim, the early maps and slab. Pages, memory and
 * failure injection are the TypeScript machine's business, and never fail here.
 *
 * Bad input is not diagnosed beyond what the differential test needs: the TypeScript
 * replayer is the one with the error contract.
 *
 * Build: cc -O2 -o percpu-ref percpu-ref.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	PAGE = 4096,
	MIN_UNIT = 64 << 10,
	SLOT_SHIFT = 5,
	DFL_MAP = 16,
	EARLY_SLOTS = 128,
	EARLY_SIZE = 12 << 10,
	INT_SIZE = 4,
};

struct chunk {
	struct chunk *prev, *next; /* slot list; a head has id == HEAD */
	int id;
	int free_size, contig_hint;
	int map_used, map_alloc;
	int *map;
	int early;
};

#define HEAD (-100)
#define RESERVED (-1)

static int unit_size, nr_slots, slab, next_id = 1;
static struct chunk *slots;
static struct chunk *first_chunk, *reserved_chunk;

static int fls_(unsigned x) { return x ? 32 - __builtin_clz(x) : 0; }
static int size_to_slot_(int size) { int s = fls_(size) - SLOT_SHIFT + 2; return s < 1 ? 1 : s; }
static int size_to_slot(int size) { return size == unit_size ? nr_slots - 1 : size_to_slot_(size); }
static int chunk_slot(struct chunk *c)
{
	if (c->free_size < INT_SIZE || c->contig_hint < INT_SIZE)
		return 0;
	return size_to_slot(c->free_size);
}

static void unlink_(struct chunk *c) { c->prev->next = c->next; c->next->prev = c->prev; }
static void add_after(struct chunk *c, struct chunk *at) { c->next = at->next; c->prev = at; at->next->prev = c; at->next = c; }
static void add_before(struct chunk *c, struct chunk *at) { add_after(c, at->prev); }

static void relocate(struct chunk *c, int oslot)
{
	int nslot = chunk_slot(c);
	if (c == reserved_chunk || oslot == nslot)
		return;
	if (oslot >= 0 || c->next)
		unlink_(c);
	if (oslot < nslot)
		add_after(c, &slots[nslot]);
	else
		add_before(c, &slots[nslot]);
}

static int need_to_extend(struct chunk *c)
{
	int n = DFL_MAP;
	if (c->map_alloc >= c->map_used + 2)
		return 0;
	while (n < c->map_used + 2)
		n *= 2;
	return n;
}

static int extend(struct chunk *c, int n)
{
	int *m;
	if (!slab)
		return -1;
	if (n <= c->map_alloc)
		return 0;
	m = calloc(n, sizeof(int));
	memcpy(m, c->map, c->map_alloc * sizeof(int));
	if (!c->early)
		free(c->map);
	c->map = m;
	c->map_alloc = n;
	c->early = 0;
	return 0;
}

static void split(struct chunk *c, int i, int head, int tail)
{
	int extra = !!head + !!tail;
	memmove(&c->map[i + extra], &c->map[i], (c->map_used - i) * sizeof(int));
	c->map_used += extra;
	if (head) {
		c->map[i + 1] = c->map[i] - head;
		c->map[i++] = head;
	}
	if (tail) {
		c->map[i++] -= tail;
		c->map[i] = tail;
	}
}

static int max_(int a, int b) { return a > b ? a : b; }

static int alloc_area(struct chunk *c, int size, int align)
{
	int oslot = chunk_slot(c), max_contig = 0, i, off;
	for (i = 0, off = 0; i < c->map_used; off += abs(c->map[i++])) {
		int is_last = i + 1 == c->map_used;
		int head = ((off + align - 1) & ~(align - 1)) - off, tail;
		if (c->map[i] < 0)
			continue;
		if (c->map[i] < head + size) {
			max_contig = max_(c->map[i], max_contig);
			continue;
		}
		if (head && (head < INT_SIZE || c->map[i - 1] > 0)) {
			if (c->map[i - 1] > 0)
				c->map[i - 1] += head;
			else {
				c->map[i - 1] -= head;
				c->free_size -= head;
			}
			c->map[i] -= head;
			off += head;
			head = 0;
		}
		tail = c->map[i] - head - size;
		if (tail < INT_SIZE)
			tail = 0;
		if (head || tail) {
			split(c, i, head, tail);
			if (head) {
				i++;
				off += head;
				max_contig = max_(c->map[i - 1], max_contig);
			}
			if (tail)
				max_contig = max_(c->map[i + 1], max_contig);
		}
		c->contig_hint = is_last ? max_contig : max_(c->contig_hint, max_contig);
		c->free_size -= c->map[i];
		c->map[i] = -c->map[i];
		relocate(c, oslot);
		return off;
	}
	c->contig_hint = max_contig;
	relocate(c, oslot);
	return -1;
}

static void free_area(struct chunk *c, int freeme)
{
	int oslot = chunk_slot(c), i, off;
	for (i = 0, off = 0; i < c->map_used; off += abs(c->map[i++]))
		if (off == freeme)
			break;
	if (off != freeme || i == c->map_used || c->map[i] > 0) {
		fprintf(stderr, "percpu-ref: bad free at %d\n", freeme);
		exit(3);
	}
	c->map[i] = -c->map[i];
	c->free_size += c->map[i];
	if (i > 0 && c->map[i - 1] >= 0) {
		c->map[i - 1] += c->map[i];
		c->map_used--;
		memmove(&c->map[i], &c->map[i + 1], (c->map_used - i) * sizeof(int));
		i--;
	}
	if (i + 1 < c->map_used && c->map[i + 1] >= 0) {
		c->map[i] += c->map[i + 1];
		c->map_used--;
		memmove(&c->map[i + 1], &c->map[i + 2], (c->map_used - (i + 1)) * sizeof(int));
	}
	c->contig_hint = max_(c->map[i], c->contig_hint);
	relocate(c, oslot);
}

static struct chunk *new_chunk(int id, int *map, int map_alloc, int early)
{
	struct chunk *c = calloc(1, sizeof(*c));
	c->id = id;
	c->map = map;
	c->map_alloc = map_alloc;
	c->early = early;
	return c;
}

static struct chunk *create_chunk(void)
{
	struct chunk *c;
	if (!slab)
		return NULL;
	c = new_chunk(next_id++, calloc(DFL_MAP, sizeof(int)), DFL_MAP, 0);
	c->map[c->map_used++] = unit_size;
	c->free_size = c->contig_hint = unit_size;
	return c;
}

static void reclaim(void)
{
	struct chunk *head = &slots[nr_slots - 1], *c = head->next->next, *n;
	for (; c != head; c = n) {
		n = c->next;
		unlink_(c);
		if (!c->early)
			free(c->map);
		free(c);
	}
}

static const char *err;

/* Returns the offset, or -1 with `err` set. *out is the chunk. */
static int pcpu_alloc(int size, int align, int reserved, struct chunk **out)
{
	int slot, off, n;
	struct chunk *c, *next;
	if (!size || size > MIN_UNIT || align > PAGE || align <= 0) {
		err = "illegal";
		return -1;
	}
	if (reserved && reserved_chunk) {
		c = reserved_chunk;
		if (size > c->contig_hint) {
			err = "alloc from reserved chunk failed";
			return -1;
		}
		while ((n = need_to_extend(c)))
			if (extend(c, n) < 0) {
				err = "failed to extend area map of reserved chunk";
				return -1;
			}
		off = alloc_area(c, size, align);
		if (off < 0) {
			err = "alloc from reserved chunk failed";
			return -1;
		}
		*out = c;
		return off;
	}
restart:
	for (slot = size_to_slot(size); slot < nr_slots; slot++)
		for (c = slots[slot].next, next = c->next; c->id != HEAD; c = next, next = c->next) {
			if (size > c->contig_hint)
				continue;
			if ((n = need_to_extend(c))) {
				if (extend(c, n) < 0) {
					err = "failed to extend area map";
					return -1;
				}
				goto restart;
			}
			off = alloc_area(c, size, align);
			if (off >= 0) {
				*out = c;
				return off;
			}
		}
	c = create_chunk();
	if (!c) {
		err = "failed to allocate new chunk";
		return -1;
	}
	relocate(c, -1);
	goto restart;
}

static void pcpu_free(struct chunk *c, int off)
{
	struct chunk *pos, *head = &slots[nr_slots - 1];
	free_area(c, off);
	if (c->free_size == unit_size)
		for (pos = head->next; pos != head; pos = pos->next)
			if (pos != c) {
				reclaim();
				break;
			}
}

/* ------------------------------------------------------------------ boot */

static long roundup_(long x, long y) { return (x + y - 1) / y * y; }

static void boot(int static_size, int reserved_size, int dyn_size, int cpus, int nodes, int atom)
{
	long size_sum = roundup_(static_size + reserved_size + (dyn_size > EARLY_SIZE ? dyn_size : EARLY_SIZE), PAGE);
	long min_unit = size_sum > MIN_UNIT ? size_sum : MIN_UNIT, alloc_size = roundup_(min_unit, atom);
	int upa = alloc_size / min_unit, max_upa, best = 1, last = 1 << 30, g, i, cnt[64] = { 0 }, groups = nodes < cpus ? nodes : cpus;
	int dyn = size_sum - static_size - reserved_size;
	int *smap, *dmap;
	while (alloc_size % upa || (alloc_size / upa) % PAGE)
		upa--;
	max_upa = upa;
	for (i = 0; i < cpus; i++)
		cnt[(long)i * nodes / cpus]++;
	if (nodes == 1)
		groups = 1;
	else {
		groups = 0;
		for (g = 0; g < nodes; g++)
			if (cnt[g])
				cnt[groups++] = cnt[g];
	}
	for (upa = max_upa; upa; upa--) {
		int allocs = 0, wasted = 0;
		if (alloc_size % upa || (alloc_size / upa) % PAGE)
			continue;
		for (g = 0; g < groups; g++) {
			int a = (cnt[g] + upa - 1) / upa;
			allocs += a;
			wasted += a * upa - cnt[g];
		}
		if (wasted > cpus / 3)
			continue;
		if (allocs > last)
			break;
		last = allocs;
		best = upa;
	}
	unit_size = alloc_size / best;
	nr_slots = size_to_slot_(unit_size) + 2;
	slots = calloc(nr_slots, sizeof(*slots));
	for (i = 0; i < nr_slots; i++) {
		slots[i].id = HEAD;
		slots[i].next = slots[i].prev = &slots[i];
	}
	smap = calloc(EARLY_SLOTS, sizeof(int));
	first_chunk = new_chunk(reserved_size ? RESERVED : 0, smap, EARLY_SLOTS, 1);
	first_chunk->free_size = reserved_size ? reserved_size : dyn;
	first_chunk->contig_hint = first_chunk->free_size;
	first_chunk->map[first_chunk->map_used++] = -static_size;
	if (first_chunk->free_size)
		first_chunk->map[first_chunk->map_used++] = first_chunk->free_size;
	if (reserved_size) {
		reserved_chunk = first_chunk;
		dmap = calloc(EARLY_SLOTS, sizeof(int));
		first_chunk = new_chunk(0, dmap, EARLY_SLOTS, 1);
		first_chunk->free_size = first_chunk->contig_hint = dyn;
		first_chunk->map[first_chunk->map_used++] = -(static_size + reserved_size);
		first_chunk->map[first_chunk->map_used++] = dyn;
	}
	relocate(first_chunk, -1);
	printf("{\"op\":\"boot\",\"unit_size\":%d,\"static_size\":%d,\"reserved_size\":%d,\"dyn_size\":%d}\n", unit_size, static_size, reserved_size, dyn);
}

/* ------------------------------------------------------------------ input */

struct entry {
	char *id;
	struct chunk *chunk; /* NULL: the allocation failed */
	int off, live;
};

static struct entry *table;
static unsigned long table_size = 1 << 16, table_used;

static unsigned long hash(const char *s)
{
	unsigned long h = 1469598103934665603UL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211UL;
	return h;
}

static struct entry *lookup(const char *id, int create)
{
	unsigned long i;
	if (create && table_used * 2 >= table_size) {
		struct entry *old = table;
		unsigned long n = table_size;
		table_size *= 2;
		table = calloc(table_size, sizeof(*table));
		table_used = 0;
		for (i = 0; i < n; i++)
			if (old[i].id) {
				struct entry *e = lookup(old[i].id, 1);
				*e = old[i];
			}
		free(old);
	}
	for (i = hash(id) & (table_size - 1); table[i].id; i = (i + 1) & (table_size - 1))
		if (!strcmp(table[i].id, id))
			return &table[i];
	if (!create)
		return NULL;
	table[i].id = strdup(id);
	table_used++;
	return &table[i];
}

/* The value of "key" in a one-line JSON object: a string into buf, or a number. */
static int field(const char *line, const char *key, char *buf, size_t bufsz, long *num)
{
	char pat[64];
	const char *p;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		return 0;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p == '"') {
		size_t n = 0;
		for (p++; *p && *p != '"' && n + 1 < bufsz; p++) {
			if (*p == '\\' && p[1])
				p++;
			buf[n++] = *p;
		}
		buf[n] = 0;
		return 1;
	}
	if (num) {
		if (!strncmp(p, "true", 4))
			*num = 1;
		else if (!strncmp(p, "false", 5))
			*num = 0;
		else
			*num = strtol(p, NULL, 10);
	}
	return 1;
}

int main(int argc, char **argv)
{
	static char line[4096];
	FILE *in = argc > 1 && strcmp(argv[1], "-") ? fopen(argv[1], "r") : stdin;
	if (!in) {
		perror(argv[1]);
		return 2;
	}
	table = calloc(table_size, sizeof(*table));
	while (fgets(line, sizeof(line), in)) {
		char op[32], id[1024];
		long a = 0, b = 0, c = 0, cpus = 4, nodes = 1, atom = PAGE;
		if (!field(line, "op", op, sizeof(op), NULL))
			continue;
		if (!strcmp(op, "boot")) {
			field(line, "static_size", NULL, 0, &a);
			field(line, "reserved_size", NULL, 0, &b);
			field(line, "dyn_size", NULL, 0, &c);
			field(line, "cpus", NULL, 0, &cpus);
			field(line, "nodes", NULL, 0, &nodes);
			field(line, "atom_size", NULL, 0, &atom);
			boot(a, b, c, cpus, nodes, atom);
		} else if (!strcmp(op, "alloc")) {
			struct chunk *ch = NULL;
			struct entry *e;
			long reserved = 0;
			int off;
			field(line, "id", id, sizeof(id), NULL);
			field(line, "size", NULL, 0, &a);
			field(line, "align", NULL, 0, &b);
			field(line, "reserved", NULL, 0, &reserved);
			off = pcpu_alloc(a, b, reserved, &ch);
			e = lookup(id, 1);
			e->live = 1;
			e->chunk = off >= 0 ? ch : NULL;
			e->off = off;
			fputs("{\"op\":\"alloc\",\"id\":\"", stdout);
			fputs(id, stdout);
			if (off < 0 && !strcmp(err, "illegal"))
				printf("\",\"chunk\":null,\"error\":\"illegal size (%ld) or align (%ld) for percpu allocation\"}\n", a, b);
			else if (off < 0)
				printf("\",\"chunk\":null,\"error\":\"%s\"}\n", err);
			else if (ch->id == RESERVED)
				printf("\",\"chunk\":\"reserved\",\"offset\":%d}\n", off);
			else
				printf("\",\"chunk\":%d,\"offset\":%d}\n", ch->id, off);
		} else if (!strcmp(op, "free")) {
			struct entry *e;
			field(line, "id", id, sizeof(id), NULL);
			e = lookup(id, 0);
			if (e && e->live && e->chunk)
				pcpu_free(e->chunk, e->off);
			if (e)
				e->live = 0;
			printf("{\"op\":\"free\",\"id\":\"%s\"}\n", id);
		} else if (!strcmp(op, "slab_online")) {
			slab = 1;
			puts("{\"op\":\"slab_online\"}");
		} else if (!strcmp(op, "init_late")) {
			puts("{\"op\":\"init_late\"}");
		}
	}
	return 0;
}
