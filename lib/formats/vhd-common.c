/* vhd-common.c - helpers shared by the VHD and VHDX drivers. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scimg-int.h"
#include "vhd-common.h"

char *scimg_int_vhd_utf16_to_utf8(const uint8_t *p, size_t nbytes, int be,
				  size_t *bad)
{
	size_t i, o = 0, cap = (nbytes / 2) * 3 + 1;
	char *s = malloc(cap);

	*bad = 0;
	if (!s) {
		*bad = SIZE_MAX;
		return NULL;
	}
	for (i = 0; i + 1 < nbytes; i += 2) {
		uint32_t c = be ? scimg_be16(p + i) : scimg_le16(p + i);

		if (c == 0)
			break;
		if (c >= 0xd800 && c <= 0xdbff) {
			uint32_t c2;
			if (i + 3 >= nbytes)
				goto bad;
			c2 = be ? scimg_be16(p + i + 2) : scimg_le16(p + i + 2);
			if (c2 < 0xdc00 || c2 > 0xdfff)
				goto bad;
			c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
			i += 2;
		} else if ((c >= 0xdc00 && c <= 0xdfff) || c < 0x20) {
			goto bad;
		}
		/* at most 4 bytes out for 4 bytes in, 3 for 2: cap suffices */
		if (c < 0x80) {
			s[o++] = (char)c;
		} else if (c < 0x800) {
			s[o++] = (char)(0xc0 | (c >> 6));
			s[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			s[o++] = (char)(0xe0 | (c >> 12));
			s[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			s[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			s[o++] = (char)(0xf0 | (c >> 18));
			s[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
			s[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			s[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	s[o] = 0;
	return s;
bad:
	*bad = i;
	free(s);
	return NULL;
}

long scimg_int_vhd_utf8_to_utf16(const char *str, uint8_t *out, size_t cap,
				 int be)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t o = 0;

	while (*s) {
		uint32_t c;
		int n, k;

		if (*s < 0x80) {
			c = *s;
			n = 0;
		} else if ((*s & 0xe0) == 0xc0) {
			c = *s & 0x1f;
			n = 1;
		} else if ((*s & 0xf0) == 0xe0) {
			c = *s & 0x0f;
			n = 2;
		} else if ((*s & 0xf8) == 0xf0) {
			c = *s & 0x07;
			n = 3;
		} else {
			return -1;
		}
		s++;
		for (k = 0; k < n; k++, s++) {
			if ((*s & 0xc0) != 0x80)
				return -1;
			c = (c << 6) | (*s & 0x3f);
		}
		if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return -1;
		if (c >= 0x10000) {
			uint16_t hi = (uint16_t)(0xd800 + ((c - 0x10000) >> 10));
			uint16_t lo = (uint16_t)(0xdc00 + ((c - 0x10000) & 0x3ff));
			if (o + 4 > cap)
				return -1;
			if (be) {
				scimg_put_be16(out + o, hi);
				scimg_put_be16(out + o + 2, lo);
			} else {
				scimg_put_le16(out + o, hi);
				scimg_put_le16(out + o + 2, lo);
			}
			o += 4;
		} else {
			if (o + 2 > cap)
				return -1;
			if (be)
				scimg_put_be16(out + o, (uint16_t)c);
			else
				scimg_put_le16(out + o, (uint16_t)c);
			o += 2;
		}
	}
	return (long)o;
}

const char *scimg_int_vhd_basename(const char *s)
{
	const char *b = s, *p;

	for (p = s; *p; p++)
		if (*p == '\\' || *p == '/' || (*p == ':' && p == s + 1))
			b = p + 1;
	return b;
}

static int cand_push(struct scimg_ctx *ctx, struct scimg_vhd_cands *c,
		     const char *name, const char *from, const char *stored)
{
	size_t i;

	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (i = 0; i < c->n; i++)
		if (!strcmp(c->c[i].name, name))
			return 0;
	if (c->n >= SCIMG_ARRAY_SIZE(c->c))
		return 0;
	c->c[c->n].name = strdup(name);
	c->c[c->n].shown = strdup(stored);
	c->c[c->n].from = from;
	if (!c->c[c->n].name || !c->c[c->n].shown) {
		free(c->c[c->n].name);
		free(c->c[c->n].shown);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	c->n++;
	return 0;
}

/* "file://localhost/a/b" or "file:///a/b" -> "/a/b" with %XX decoded. */
static char *url_to_path(const char *u)
{
	const char *p;
	char *out, *o;

	if (strncmp(u, "file://", 7) != 0)
		return strdup(u);
	p = u + 7;
	if (*p != '/') {
		p = strchr(p, '/');
		if (!p)
			return NULL;
	}
	out = malloc(strlen(p) + 1);
	if (!out)
		return NULL;
	for (o = out; *p; p++) {
		if (p[0] == '%' && p[1] && p[2]) {
			char hex[3] = { p[1], p[2], 0 };
			char *end;
			long v = strtol(hex, &end, 16);
			if (*end == 0 && v > 0) {
				*o++ = (char)v;
				p += 2;
				continue;
			}
		}
		*o++ = *p;
	}
	*o = 0;
	return out;
}

int scimg_int_vhd_cand_add(struct scimg_ctx *ctx, struct scimg_vhd_cands *c,
			   const char *stored, const char *from, int is_url)
{
	char *path, *q;
	int ret;

	if (!stored || !*stored)
		return 0;
	path = is_url ? url_to_path(stored) : strdup(stored);
	if (!path)
		return is_url ? 0 : scimg_int_err(ctx, -ENOMEM, "out of memory");
	/* 1. the basename beside the image */
	ret = cand_push(ctx, c, scimg_int_vhd_basename(path), from, stored);
	if (ret < 0)
		goto out;
	if (is_url) {
		/* 2. a POSIX absolute path as is */
		if (path[0] == '/')
			ret = cand_push(ctx, c, path, from, stored);
		goto out;
	}
	/* 2. a Windows relative path, with '/' separators */
	if (path[0] == '\\' || (path[0] && path[1] == ':'))
		goto out;
	for (q = path; *q; q++)
		if (*q == '\\')
			*q = '/';
	q = path;
	while (q[0] == '.' && q[1] == '/')
		q += 2;
	ret = cand_push(ctx, c, q, from, stored);
out:
	free(path);
	return ret;
}

void scimg_int_vhd_cands_free(struct scimg_vhd_cands *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->c[i].name);
		free(c->c[i].shown);
	}
	c->n = 0;
}

int scimg_int_vhd_open_parent(struct scimg_image *img,
			      struct scimg_vhd_cands *c,
			      const char *format, const char *wanted,
			      struct scimg_image **out)
{
	struct scimg_ctx *ctx = img->ctx;
	char looked[640], refused[1024];
	size_t i, used = 0;
	int ret, nrefused = 0;

	*out = NULL;
	if (c->n == 0)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': differencing image names no parent (no usable parent locator or parent name)",
				     img->path);
	looked[0] = refused[0] = 0;
	/* the first candidate that exists; a candidate that is refused (it
	 * would leave the image's directory) is never looked at */
	for (i = 0; i < c->n; i++) {
		ret = scimg_int_open_child(img, c->c[i].name, format, 0, out);
		if (ret == 0) {
			c->opened = i;
			return 0;
		}
		if (ret == -EPERM && !nrefused++)
			snprintf(refused, sizeof(refused), "'%s' (from the %s): %s",
				 c->c[i].name, c->c[i].from, scimg_ctx_errmsg(ctx));
		else if (ret == -ENOENT || ret == -ENOTDIR) {
			if (used < sizeof(looked)) {
				int n = snprintf(looked + used, sizeof(looked) - used, "%s'%s'",
						 used ? ", " : "", c->c[i].name);
				if (n > 0)
					used += (size_t)n;
			}
		} else if (ret != -EPERM) {
			scimg_int_err_prefix(ctx, "'%s': parent '%s' (from the %s)",
					     img->path, c->c[i].name, c->c[i].from);
			return ret;
		}
	}
	if (nrefused && !used)
		return scimg_int_err(ctx, -EPERM, "'%s': parent %s", img->path, refused);
	if (nrefused)
		return scimg_int_err(ctx, -ENOENT,
				     "'%s': parent image '%s' not found (looked for %s beside it); parent %s",
				     img->path, wanted, looked, refused);
	return scimg_int_err(ctx, -ENOENT,
			     "'%s': parent image '%s' not found (looked for %s); copy the parent beside the image",
			     img->path, wanted, looked);
}

int scimg_int_vhd_random(struct scimg_ctx *ctx, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return scimg_int_err(ctx, -errno, "no random numbers: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void scimg_int_vhd_guid_str(const uint8_t g[16], int mixed, char out[37])
{
	if (mixed)
		snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 scimg_le32(g), scimg_le16(g + 4), scimg_le16(g + 6),
			 g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
	else
		snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7],
			 g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* CHS geometry by the algorithm of the VHD specification (appendix). */
void scimg_int_vhd_geometry(uint64_t size, uint16_t *cyl, uint8_t *heads,
			    uint8_t *spt)
{
	uint64_t total = size / 512, cth;
	uint32_t h, s;

	if (total > UINT64_C(65535) * 16 * 255)
		total = UINT64_C(65535) * 16 * 255;
	if (total >= UINT64_C(65535) * 16 * 63) {
		s = 255;
		h = 16;
		cth = total / s;
	} else {
		s = 17;
		cth = total / s;
		h = (uint32_t)((cth + 1023) / 1024);
		if (h < 4)
			h = 4;
		if (cth >= (uint64_t)h * 1024 || h > 16) {
			s = 31;
			h = 16;
			cth = total / s;
		}
		if (cth >= (uint64_t)h * 1024) {
			s = 63;
			h = 16;
			cth = total / s;
		}
	}
	*cyl = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*spt = (uint8_t)s;
}
