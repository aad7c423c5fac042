/* ctx.c - library context, error recording, -o option parsing. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"

struct scimg_ctx *scimg_ctx_new(void)
{
	struct scimg_ctx *ctx = calloc(1, sizeof(*ctx));
	return ctx;
}

void scimg_ctx_free(struct scimg_ctx *ctx)
{
	if (ctx)
		scimg_int_http_ctx_release(ctx);
	free(ctx);
}

int scimg_ctx_errcode(const struct scimg_ctx *ctx)
{
	return ctx->errcode;
}

const char *scimg_ctx_errmsg(const struct scimg_ctx *ctx)
{
	return ctx->errmsg[0] ? ctx->errmsg : "no error";
}

void scimg_ctx_clear_error(struct scimg_ctx *ctx)
{
	ctx->errcode = 0;
	ctx->errmsg[0] = '\0';
}

void scimg_ctx_set_flags(struct scimg_ctx *ctx, unsigned flags)
{
	ctx->flags = flags;
}

unsigned scimg_ctx_get_flags(const struct scimg_ctx *ctx)
{
	return ctx->flags;
}

void scimg_ctx_cancel(struct scimg_ctx *ctx)
{
	ctx->cancelled = 1;
}

/* Worker threads of the convert engine may fail at the same time; the
 * message buffer is written under this lock. */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

/* Where errors of this thread go instead of the context (worker threads). */
static __thread char *err_redirect;
static __thread size_t err_redirect_len;

void scimg_int_err_redirect(char *buf, size_t len)
{
	err_redirect = buf;
	err_redirect_len = len;
}

size_t scimg_int_utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

size_t scimg_int_escape_text(char *out, size_t outlen, const char *in)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = strlen(in), o = 0, l;

	if (!outlen)
		return 0;
	while (*p) {
		l = scimg_int_utf8_len(p, n);
		if (l == 1 && (*p < 0x20 || *p == 0x7f))
			l = 0;
		if (l == 0) {
			/* a control character or a byte that is not UTF-8 */
			if (o + 4 >= outlen)
				break;
			snprintf(out + o, 5, "\\x%02x", *p);
			o += 4;
			p++;
			n--;
			continue;
		}
		if (o + l >= outlen)
			break;
		memcpy(out + o, p, l);
		o += l;
		p += l;
		n -= l;
	}
	out[o] = 0;
	return o;
}

/* File names in messages come from images: no control characters (a
 * terminal escape, a forged line) and valid UTF-8 only. */
static void sanitize(char *msg, size_t size)
{
	char tmp[2048];

	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			goto escape;
	return;
escape:
	/* the escaped text fits in SIZE bytes: it was cut there */
	memcpy(msg, tmp, scimg_int_escape_text(tmp, sizeof(tmp) < size ? sizeof(tmp) : size, msg) + 1);
}

int scimg_int_err(struct scimg_ctx *ctx, int err, const char *fmt, ...)
{
	va_list ap;

	if (err >= 0)
		err = -EIO;
	if (err_redirect) {
		va_start(ap, fmt);
		vsnprintf(err_redirect, err_redirect_len, fmt, ap);
		va_end(ap);
		sanitize(err_redirect, err_redirect_len);
		return err;
	}
	pthread_mutex_lock(&err_lock);
	ctx->errcode = err;
	va_start(ap, fmt);
	vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
	va_end(ap);
	sanitize(ctx->errmsg, sizeof(ctx->errmsg));
	pthread_mutex_unlock(&err_lock);
	return err;
}

void scimg_int_err_prefix(struct scimg_ctx *ctx, const char *fmt, ...)
{
	char pre[512], old[sizeof(ctx->errmsg)];
	va_list ap;
	size_t pl;

	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	sanitize(pre, sizeof(pre));

	memcpy(old, ctx->errmsg, sizeof(old));
	pl = strlen(pre);
	if (pl > sizeof(ctx->errmsg) - 3)
		pl = sizeof(ctx->errmsg) - 3;
	memcpy(ctx->errmsg, pre, pl);
	memcpy(ctx->errmsg + pl, ": ", 2);
	pl += 2;
	memcpy(ctx->errmsg + pl, old, sizeof(ctx->errmsg) - pl - 1);
	ctx->errmsg[sizeof(ctx->errmsg) - 1] = '\0';
}

void scimg_int_err_set(struct scimg_ctx *ctx, int err, const char *msg)
{
	scimg_int_err(ctx, err, "%s", msg);
}

int scimg_int_check_cancel(struct scimg_ctx *ctx)
{
	if (ctx->cancelled)
		return scimg_int_err(ctx, -ECANCELED, "interrupted");
	return 0;
}

/* ---- options ---------------------------------------------------------- */

void scimg_int_opts_free(struct scimg_opts *o)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		free(o->kv[i].key);
		free(o->kv[i].val);
	}
	free(o->kv);
	o->kv = NULL;
	o->n = 0;
}

const char *scimg_int_opts_get(const struct scimg_opts *o, const char *key)
{
	size_t i;

	/* the last one given wins, as with qemu-img */
	for (i = o->n; i-- > 0;)
		if (strcmp(o->kv[i].key, key) == 0)
			return o->kv[i].val;
	return NULL;
}

static int opt_allowed(const char *const *allowed, const char *key)
{
	if (!allowed)
		return 0;
	for (; *allowed; allowed++)
		if (strcmp(*allowed, key) == 0)
			return 1;
	return 0;
}

int scimg_int_opts_parse(struct scimg_ctx *ctx, const char *s,
			 const char *const *allowed, const char *fmtname,
			 struct scimg_opts *out)
{
	char *buf = NULL, *w;
	const char *r;
	int ret = 0;

	out->kv = NULL;
	out->n = 0;
	if (!s || !*s)
		return 0;
	buf = malloc(strlen(s) + 1);
	if (!buf)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	r = s;
	while (*r) {
		char *item, *eq;
		struct scimg_kv *nkv;

		w = buf;
		while (*r) {
			if (*r == ',') {
				if (r[1] == ',') {
					*w++ = ',';
					r += 2;
					continue;
				}
				r++;
				break;
			}
			*w++ = *r++;
		}
		*w = '\0';
		item = buf;
		if (!*item)
			continue;
		eq = strchr(item, '=');
		if (!eq || eq == item) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "option '%s': expected key=value", item);
			goto fail;
		}
		*eq = '\0';
		if (!opt_allowed(allowed, item)) {
			char list[512] = "";
			const char *const *a;
			size_t used = 0;

			for (a = allowed; a && *a; a++) {
				int n = snprintf(list + used, sizeof(list) - used,
						 "%s%s", used ? ", " : "", *a);
				if (n < 0 || (size_t)n >= sizeof(list) - used)
					break;
				used += (size_t)n;
			}
			ret = scimg_int_err(ctx, -EINVAL,
					    "format '%s' has no option '%s' (it accepts: %s)",
					    fmtname, item, used ? list : "none");
			goto fail;
		}
		nkv = realloc(out->kv, (out->n + 1) * sizeof(*nkv));
		if (!nkv) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		out->kv = nkv;
		nkv[out->n].key = strdup(item);
		nkv[out->n].val = strdup(eq + 1);
		out->n++;
		if (!nkv[out->n - 1].key || !nkv[out->n - 1].val) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	free(buf);
	return 0;
fail:
	free(buf);
	scimg_int_opts_free(out);
	return ret;
}

int scimg_int_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case '\0': break;
	case 'b': case 'B': shift = 0; end++; break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case 'p': case 'P': shift = 50; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'B' || *end == 'b') && shift)
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

const char *scimg_version(void)
{
	return SCIMG_VERSION_STRING;
}

int scimg_int_opts_struct_copy(struct scimg_ctx *ctx, void *dst, size_t dst_size,
			       const void *src, const char *what)
{
	size_t n;

	memset(dst, 0, dst_size);
	memcpy(&n, src, sizeof(n));
	if (n < sizeof(size_t))
		return scimg_int_err(ctx, -EINVAL,
				     "struct %s: size is %zu, expected sizeof(struct %s) (%zu): set it after zeroing the struct",
				     what, n, what, dst_size);
	memcpy(dst, src, n < dst_size ? n : dst_size);
	memcpy(dst, &dst_size, sizeof(dst_size));
	return 0;
}
