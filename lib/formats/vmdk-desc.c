/* vmdk-desc.c - the VMDK descriptor: a small text file (or a text area
 * embedded in a sparse extent) of "key = value" lines and extent lines
 * ("RW 20480 SPARSE "disk-s001.vmdk""), with '#' comments.
 *
 * The parser is lenient with what varies between writers (CRLF, blank
 * lines, quotes or none, spaces around '=', unknown keys, lines it does not
 * understand) and strict with what is used to open files and compute sizes
 * (extent lines, CIDs, the version).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdk-int.h"

void scimg_int_vmdk_desc_free(struct vmdk_desc *d)
{
	size_t i;

	if (!d)
		return;
	free(d->create_type);
	free(d->encoding);
	free(d->parent_hint);
	free(d->adapter_type);
	free(d->hw_version);
	free(d->tools_version);
	free(d->long_content_id);
	free(d->uuid);
	free(d->cylinders);
	free(d->heads);
	free(d->sectors);
	for (i = 0; i < d->n_ext; i++)
		free(d->ext[i].file);
	free(d->ext);
	memset(d, 0, sizeof(*d));
}

static int is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Parse decimal digits at *P (at most up to END) into *V; false on none
 * or overflow. */
static int parse_u64(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t r = 0;

	if (s >= end || !isdigit((unsigned char)*s))
		return 0;
	while (s < end && isdigit((unsigned char)*s)) {
		if (!scimg_mul_ok(r, 10, &r) || !scimg_add_ok(r, (uint64_t)(*s - '0'), &r))
			return 0;
		s++;
	}
	*p = s;
	*v = r;
	return 1;
}

static int parse_hex32(const char *s, uint32_t *v)
{
	uint32_t r = 0;
	int n = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; *s; s++, n++) {
		int c = (unsigned char)*s, d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return 0;
		if (n >= 8)
			return 0;
		r = (r << 4) | (uint32_t)d;
	}
	if (n == 0)
		return 0;
	*v = r;
	return 1;
}

static char *dup_range(const char *s, const char *e)
{
	char *r = malloc((size_t)(e - s) + 1);

	if (r) {
		memcpy(r, s, (size_t)(e - s));
		r[e - s] = '\0';
	}
	return r;
}

/* Replace *SLOT with a copy of [S, E). */
static int set_str(char **slot, const char *s, const char *e)
{
	char *r = dup_range(s, e);

	if (!r)
		return -ENOMEM;
	free(*slot);
	*slot = r;
	return 0;
}

struct line_ctx {
	struct scimg_ctx *ctx;
	const char *name;
	uint64_t off;     /* file offset of the line */
	unsigned line;
};

#define LINE_ERR(lc, fmt, ...) \
	scimg_int_err((lc)->ctx, -EINVAL, "'%s': VMDK descriptor line %u (offset %llu): " fmt, \
		      (lc)->name, (lc)->line, (unsigned long long)(lc)->off, __VA_ARGS__)

static int parse_extent(struct line_ctx *lc, const char *p, const char *end,
			enum vmdk_access access, struct vmdk_desc *d)
{
	struct vmdk_desc_extent *x;
	const char *t, *q;
	uint64_t sectors, offset = 0;
	size_t tl;
	int has_offset = 0;
	char *file = NULL;

	while (p < end && is_blank(*p))
		p++;
	if (!parse_u64(&p, end, &sectors))
		return LINE_ERR(lc, "extent size is '%.*s', expected a number of sectors",
				(int)(end - p > 40 ? 40 : end - p), p);
	if (sectors == 0)
		return LINE_ERR(lc, "extent size is 0, expected at least %d sector", 1);
	while (p < end && is_blank(*p))
		p++;
	t = p;
	while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
		p++;
	tl = (size_t)(p - t);
	if (tl == 0 || tl >= sizeof(x->type))
		return LINE_ERR(lc, "extent type is '%.*s', expected FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE or SESPARSE",
				(int)(end - t > 40 ? 40 : end - t), t);
	while (p < end && is_blank(*p))
		p++;
	if (p < end && *p == '"') {
		q = memchr(p + 1, '"', (size_t)(end - p - 1));
		if (!q)
			return LINE_ERR(lc, "extent file name has no closing quote%s", "");
		if (q == p + 1)
			return LINE_ERR(lc, "extent file name is empty%s", "");
		file = dup_range(p + 1, q);
		if (!file)
			return scimg_int_err(lc->ctx, -ENOMEM, "out of memory");
		if (memchr(file, '\0', (size_t)(q - p - 1)) != NULL) {
			free(file);
			return LINE_ERR(lc, "extent file name contains a NUL byte%s", "");
		}
		p = q + 1;
		while (p < end && is_blank(*p))
			p++;
		if (p < end) {
			if (!parse_u64(&p, end, &offset)) {
				free(file);
				return LINE_ERR(lc, "extent offset is '%.*s', expected a number of sectors",
						(int)(end - p > 40 ? 40 : end - p), p);
			}
			has_offset = 1;
			while (p < end && is_blank(*p))
				p++;
		}
	} else if (!(tl == 4 && strncmp(t, "ZERO", 4) == 0)) {
		return LINE_ERR(lc, "extent of type '%.*s' has no quoted file name", (int)tl, t);
	}
	if (p < end) {
		free(file);
		return LINE_ERR(lc, "unexpected '%.*s' after the extent description",
				(int)(end - p > 40 ? 40 : end - p), p);
	}
	if (d->n_ext >= VMDK_MAX_EXTENTS) {
		free(file);
		return LINE_ERR(lc, "more than %d extents", VMDK_MAX_EXTENTS);
	}
	x = realloc(d->ext, (d->n_ext + 1) * sizeof(*x));
	if (!x) {
		free(file);
		return scimg_int_err(lc->ctx, -ENOMEM, "out of memory");
	}
	d->ext = x;
	x = &d->ext[d->n_ext++];
	memset(x, 0, sizeof(*x));
	x->access = access;
	x->sectors = sectors;
	memcpy(x->type, t, tl);
	x->type[tl] = '\0';
	x->file = file;
	x->offset = offset;
	x->has_offset = has_offset;
	x->line = lc->line;
	return 0;
}

static int parse_kv(struct line_ctx *lc, const char *p, const char *end,
		    struct vmdk_desc *d)
{
	const char *k = p, *ke, *v, *ve;
	char key[64], val[32];
	char **slot = NULL;
	int ret;

	while (p < end && (isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'))
		p++;
	ke = p;
	while (p < end && is_blank(*p))
		p++;
	if (ke == k || p >= end || *p != '=')
		return 0; /* not a key = value line: ignored */
	p++;
	while (p < end && is_blank(*p))
		p++;
	if (p < end && *p == '"') {
		v = p + 1;
		ve = memchr(v, '"', (size_t)(end - v));
		if (!ve)
			ve = end; /* unbalanced quote: take the rest */
	} else {
		v = p;
		ve = end;
	}
	if ((size_t)(ke - k) >= sizeof(key))
		return 0; /* no key we know is that long */
	memcpy(key, k, (size_t)(ke - k));
	key[ke - k] = '\0';

	if (!strcasecmp(key, "version")) {
		uint64_t ver;
		const char *s = v;
		if (!parse_u64(&s, ve, &ver) || s != ve || ver < 1 || ver > 3)
			return LINE_ERR(lc, "version is '%.*s', expected 1, 2 or 3",
					(int)(ve - v > 40 ? 40 : ve - v), v);
		d->version = (int)ver;
		return 0;
	}
	if (!strcasecmp(key, "CID") || !strcasecmp(key, "parentCID")) {
		int parent = key[0] == 'p' || key[0] == 'P';
		uint32_t cid;
		if ((size_t)(ve - v) >= sizeof(val))
			return LINE_ERR(lc, "%s is '%.20s...', expected 8 hex digits", key, v);
		memcpy(val, v, (size_t)(ve - v));
		val[ve - v] = '\0';
		if (!parse_hex32(val, &cid))
			return LINE_ERR(lc, "%s is '%s', expected 8 hex digits", key, val);
		if (parent) {
			d->parent_cid = cid;
			d->has_parent_cid = 1;
		} else {
			d->cid = cid;
			d->has_cid = 1;
		}
		return 0;
	}
	if (!strcasecmp(key, "createType"))
		slot = &d->create_type;
	else if (!strcasecmp(key, "encoding") || !strcasecmp(key, "ddb.encoding"))
		slot = &d->encoding;
	else if (!strcasecmp(key, "parentFileNameHint"))
		slot = &d->parent_hint;
	else if (!strcasecmp(key, "ddb.adapterType"))
		slot = &d->adapter_type;
	else if (!strcasecmp(key, "ddb.virtualHWVersion"))
		slot = &d->hw_version;
	else if (!strcasecmp(key, "ddb.toolsVersion"))
		slot = &d->tools_version;
	else if (!strcasecmp(key, "ddb.longContentID"))
		slot = &d->long_content_id;
	else if (!strcasecmp(key, "ddb.uuid") || !strcasecmp(key, "ddb.uuid.image"))
		slot = &d->uuid;
	else if (!strcasecmp(key, "ddb.geometry.cylinders"))
		slot = &d->cylinders;
	else if (!strcasecmp(key, "ddb.geometry.heads"))
		slot = &d->heads;
	else if (!strcasecmp(key, "ddb.geometry.sectors"))
		slot = &d->sectors;
	if (!slot)
		return 0; /* unknown key */
	if (memchr(v, '\0', (size_t)(ve - v)))
		return LINE_ERR(lc, "value of %s contains a NUL byte", key);
	ret = set_str(slot, v, ve);
	if (ret < 0)
		return scimg_int_err(lc->ctx, ret, "out of memory");
	return 0;
}

int scimg_int_vmdk_desc_parse(struct scimg_ctx *ctx, const char *name,
			      uint64_t base, const char *text, size_t len,
			      struct vmdk_desc *d)
{
	const char *p = text, *nul, *end;
	struct line_ctx lc = { ctx, name, base, 0 };
	int ret;

	memset(d, 0, sizeof(*d));
	nul = memchr(text, '\0', len);
	end = nul ? nul : text + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *e;

		if (!eol)
			eol = end;
		lc.line++;
		lc.off = base + (uint64_t)(p - text);
		e = eol;
		while (e > s && is_blank(e[-1]))
			e--;
		while (s < e && is_blank(*s))
			s++;
		p = eol < end ? eol + 1 : end;
		if (s == e || *s == '#')
			continue;
		if (e - s > 3 && !strncmp(s, "RW", 2) && is_blank(s[2]))
			ret = parse_extent(&lc, s + 3, e, VMDK_ACCESS_RW, d);
		else if (e - s > 7 && !strncmp(s, "RDONLY", 6) && is_blank(s[6]))
			ret = parse_extent(&lc, s + 7, e, VMDK_ACCESS_RDONLY, d);
		else if (e - s > 9 && !strncmp(s, "NOACCESS", 8) && is_blank(s[8]))
			ret = parse_extent(&lc, s + 9, e, VMDK_ACCESS_NOACCESS, d);
		else
			ret = parse_kv(&lc, s, e, d);
		if (ret < 0) {
			scimg_int_vmdk_desc_free(d);
			return ret;
		}
	}
	return 0;
}

size_t scimg_int_vmdk_desc_build(const struct vmdk_desc_out *o, char *buf,
				 size_t cap)
{
	unsigned long long cyl;
	unsigned heads;
	int n, ide = strcmp(o->adapter_type, "ide") == 0;

	/* Geometry as VMware computes it: 16 heads for IDE (at most 16383
	 * cylinders), 255 heads for SCSI adapters (at most 65535). */
	heads = ide ? 16 : 255;
	cyl = (o->sectors + heads * 63ull - 1) / (heads * 63ull);
	if (ide && cyl > 16383)
		cyl = 16383;
	if (!ide && cyl > 65535)
		cyl = 65535;
	n = snprintf(buf, cap,
		     "# Disk DescriptorFile\n"
		     "version=1\n"
		     "encoding=\"UTF-8\"\n"
		     "CID=%08x\n"
		     "parentCID=ffffffff\n"
		     "createType=\"%s\"\n"
		     "\n"
		     "# Extent description\n"
		     "RW %llu %s \"%s\"%s\n"
		     "\n"
		     "# The Disk Data Base\n"
		     "#DDB\n"
		     "\n"
		     "ddb.longContentID = \"%08x%08x%08x%08x\"\n"
		     "ddb.virtualHWVersion = \"%s\"\n"
		     "ddb.geometry.cylinders = \"%llu\"\n"
		     "ddb.geometry.heads = \"%u\"\n"
		     "ddb.geometry.sectors = \"63\"\n"
		     "ddb.adapterType = \"%s\"\n"
		     "ddb.toolsVersion = \"%s\"\n",
		     o->cid, o->create_type, (unsigned long long)o->sectors,
		     o->extent_type, o->extent_file,
		     strcmp(o->extent_type, "FLAT") == 0 ? " 0" : "",
		     o->rand[0], o->rand[1], o->rand[2], o->cid,
		     o->hw_version, cyl, heads, o->adapter_type, o->tools_version);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}
