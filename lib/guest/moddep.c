/* moddep.c - kernel module names and modules.dep.
 *
 * modules.dep (depmod(8)) has one line per module: "PATH: DEP DEP ...",
 * where the dependencies are the whole closure, in load order.  A driver is
 * usable from the initramfs only when the module and all of these are in
 * it: dracut's omit_drivers, or a MODULES=list of initramfs-tools, can
 * leave virtio_ring or nvme-core out while virtio_blk or nvme go in, and
 * the kernel then fails with "Unknown symbol".  Pure.
 */
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "guest.h"

#define SG_MODNAME 128

const char *const scimg_int_sg_drv_name[SG_NDRV] = {
	"xen-blkfront", "xen-netfront", "virtio_blk", "virtio_scsi", "virtio_net",
	"virtio_pci", "nvme", "sd_mod", "ata_piix", "ata_generic", "ahci",
};

const char *scimg_int_sg_where_name(enum sg_where w)
{
	switch (w) {
	case SG_BUILTIN: return "builtin";
	case SG_INITRAMFS: return "initramfs";
	case SG_INCOMPLETE: return "initramfs-incomplete";
	case SG_ROOTFS: return "module";
	default: return "missing";
	}
}

void scimg_int_sg_modname(const char *path, char *out, size_t outlen)
{
	static const char *const sfx[] = { ".ko.zst", ".ko.xz", ".ko.gz", ".ko" };
	const char *b, *e;
	size_t i, n;

	if (!outlen)
		return;
	/* one token: stop at ':', blanks or the end of the line */
	e = path + strcspn(path, ": \t\r\n");
	for (b = e; b > path && b[-1] != '/'; b--)
		;
	n = (size_t)(e - b);
	for (i = 0; i < SCIMG_ARRAY_SIZE(sfx); i++) {
		size_t l = strlen(sfx[i]);
		if (n > l && strncmp(e - l, sfx[i], l) == 0) {
			n -= l;
			break;
		}
	}
	if (n >= outlen)
		n = outlen - 1;
	for (i = 0; i < n; i++)
		out[i] = b[i] == '-' ? '_' : b[i];
	out[n] = '\0';
}

struct sg_mod {
	char *name;
	const char **deps; /* NULL-terminated, into names */
	char *names;       /* the dependency names, NUL-separated */
};

struct sg_moddep {
	struct sg_mod *mod;
	size_t n;
};

static int cmp_mod(const void *a, const void *b)
{
	return strcmp(((const struct sg_mod *)a)->name, ((const struct sg_mod *)b)->name);
}

void scimg_int_sg_moddep_free(struct sg_moddep *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++) {
		free(m->mod[i].name);
		free(m->mod[i].deps);
		free(m->mod[i].names);
	}
	free(m->mod);
	free(m);
}

/* One line: "path: dep dep"; 0, or -1 when out of memory.  Lines without a
 * ':' are ignored (modules.dep has none). */
static int parse_line(struct sg_mod *md, const char *l, size_t len)
{
	const char *colon = memchr(l, ':', len), *p, *e = l + len;
	char name[SG_MODNAME];
	size_t ndeps = 0, k = 0, used = 0;

	memset(md, 0, sizeof(*md));
	if (!colon)
		return 1;
	scimg_int_sg_modname(l, name, sizeof(name));
	if (!*name)
		return 1;
	for (p = colon + 1; p < e; p++)
		if ((*p == ' ' || *p == '\t') && p + 1 < e && p[1] != ' ' && p[1] != '\t')
			ndeps++;
	md->name = strdup(name);
	md->deps = calloc(ndeps + 1, sizeof(*md->deps));
	md->names = malloc(ndeps * SG_MODNAME + 1);
	if (!md->name || !md->deps || !md->names)
		return -1;
	for (p = colon + 1; p < e && k < ndeps;) {
		size_t tl;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		tl = strcspn(p, " \t\r\n");
		if (p >= e || !tl)
			break;
		scimg_int_sg_modname(p, md->names + used, SG_MODNAME);
		md->deps[k++] = md->names + used;
		used += strlen(md->names + used) + 1;
		p += tl;
	}
	return 0;
}

struct sg_moddep *scimg_int_sg_moddep_parse(const char *text)
{
	struct sg_moddep *m = calloc(1, sizeof(*m));
	const char *l;
	size_t cap = 0;

	if (!m)
		return NULL;
	for (l = text; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		int r;

		if (m->n == cap) {
			struct sg_mod *nm;
			cap = cap ? cap * 2 : 1024;
			nm = realloc(m->mod, cap * sizeof(*nm));
			if (!nm)
				goto nomem;
			m->mod = nm;
		}
		r = parse_line(&m->mod[m->n], l, len);
		if (r < 0) {
			m->n++;
			goto nomem;
		}
		if (r == 0)
			m->n++;
		l = e ? e + 1 : NULL;
	}
	if (m->n)
		qsort(m->mod, m->n, sizeof(*m->mod), cmp_mod);
	return m;
nomem:
	scimg_int_sg_moddep_free(m);
	return NULL;
}

static const struct sg_mod *find(const struct sg_moddep *m, const char *mod)
{
	char want[SG_MODNAME];
	struct sg_mod key;

	if (!m || !m->n)
		return NULL;
	scimg_int_sg_modname(mod, want, sizeof(want));
	key.name = want;
	return bsearch(&key, m->mod, m->n, sizeof(*m->mod), cmp_mod);
}

int scimg_int_sg_moddep_has(const struct sg_moddep *m, const char *mod)
{
	return find(m, mod) != NULL;
}

const char *const *scimg_int_sg_moddep_deps(const struct sg_moddep *m, const char *mod)
{
	const struct sg_mod *f = find(m, mod);

	return f ? (const char *const *)f->deps : NULL;
}

int scimg_int_sg_modlist_has(const char *text, const char *mod)
{
	char want[SG_MODNAME], got[SG_MODNAME];
	const char *l;

	scimg_int_sg_modname(mod, want, sizeof(want));
	for (l = text; l && *l;) {
		const char *e = strchr(l, '\n');
		scimg_int_sg_modname(l, got, sizeof(got));
		if (*got && strcmp(got, want) == 0)
			return 1;
		l = e ? e + 1 : NULL;
	}
	return 0;
}

enum sg_where scimg_int_sg_where(const struct sg_moddep *dep, const char *builtin,
				 int (*in_initrd)(void *opaque, const char *mod),
				 void *opaque, const char *mod, char **missing_dep)
{
	const char *const *d;

	if (missing_dep)
		*missing_dep = NULL;
	if (builtin && scimg_int_sg_modlist_has(builtin, mod))
		return SG_BUILTIN;
	if (in_initrd && in_initrd(opaque, mod)) {
		for (d = scimg_int_sg_moddep_deps(dep, mod); d && *d; d++) {
			/* a dependency that is built in is not listed in
			 * modules.dep; one listed must be in the initramfs */
			if (in_initrd(opaque, *d))
				continue;
			if (missing_dep)
				*missing_dep = strdup(*d);
			return SG_INCOMPLETE;
		}
		return SG_INITRAMFS;
	}
	if (scimg_int_sg_moddep_has(dep, mod))
		return SG_ROOTFS;
	return SG_MISSING;
}
