/* source/http.c - http:// and https:// byte sources through libcurl.
 *
 * Every read is a Range request ("Range: bytes=A-B", answer 206 with a
 * Content-Range that must match).  A small block cache (CACHE_BLOCKS blocks
 * of BLOCK bytes) serves the many small reads of format parsers, and a
 * read-ahead that doubles while reads stay sequential (up to MAX_RA blocks
 * per request) keeps large sequential copies at few requests.
 *
 * Transient failures - a dropped connection, a timeout, a short body, HTTP
 * 408/429/5xx - are retried with exponential backoff (RETRIES times,
 * resuming after the bytes already received).  Other 4xx answers fail at
 * once with the URL and the status.  A server that ignores Range (answers
 * 200 to a partial request) is refused: scimg never downloads a whole image
 * to read part of it.  When the server gives an ETag, later answers must
 * carry the same one (the file must not change while being read).
 *
 * Memory: CACHE_BLOCKS * BLOCK + MAX_RA * BLOCK bytes per source (6 MiB).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "scimg-int.h"

#define BLOCK (256u << 10)
#define CACHE_BLOCKS 16u
#define MAX_RA 8u
#define RETRIES 6

struct cblock {
	uint64_t idx;
	size_t len;
	uint64_t used;  /* LRU tick; 0 = empty */
	uint8_t *data;
};

struct http_source {
	CURL *curl;
	char *url;
	char etag[256];
	int have_etag;
	struct cblock cache[CACHE_BLOCKS];
	uint64_t tick;
	uint64_t last_miss;  /* block index of the last miss + 1 (0 = none) */
	unsigned ra;
	uint8_t *fetchbuf;   /* MAX_RA * BLOCK */
	char errbuf[CURL_ERROR_SIZE];

	/* state of the transfer in progress */
	uint8_t *dst;
	size_t want, got;
	int overflow;
	long status;
	char reason[96];
	char content_range[128];
	char resp_etag[256];
	struct scimg_ctx *ctx;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_header(char *buf, size_t size, size_t n, void *opaque)
{
	struct http_source *h = opaque;
	size_t len = size * n, l;
	const char *v;

	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or 100-continue) */
		const char *sp = memchr(buf, ' ', len);
		h->content_range[0] = '\0';
		h->resp_etag[0] = '\0';
		h->reason[0] = '\0';
		h->status = 0;
		if (sp) {
			const char *end = buf + len;
			h->status = strtol(sp + 1, NULL, 10);
			sp = memchr(sp + 1, ' ', (size_t)(end - sp - 1));
			if (sp) {
				l = (size_t)(end - sp - 1);
				while (l && (sp[l] == '\r' || sp[l] == '\n'))
					l--;
				if (l >= sizeof(h->reason))
					l = sizeof(h->reason) - 1;
				memcpy(h->reason, sp + 1, l);
				h->reason[l] = '\0';
				/* strip trailing CR/LF */
				while ((l = strlen(h->reason)) &&
				       (h->reason[l - 1] == '\r' || h->reason[l - 1] == '\n'))
					h->reason[l - 1] = '\0';
			}
		}
		return len;
	}
	if (len > 14 && strncasecmp(buf, "Content-Range:", 14) == 0) {
		v = buf + 14;
		l = len - 14;
		while (l && (*v == ' ' || *v == '\t')) {
			v++;
			l--;
		}
		while (l && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
			l--;
		if (l >= sizeof(h->content_range))
			l = sizeof(h->content_range) - 1;
		memcpy(h->content_range, v, l);
		h->content_range[l] = '\0';
	} else if (len > 5 && strncasecmp(buf, "ETag:", 5) == 0) {
		v = buf + 5;
		l = len - 5;
		while (l && (*v == ' ' || *v == '\t')) {
			v++;
			l--;
		}
		while (l && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
			l--;
		if (l >= sizeof(h->resp_etag))
			l = sizeof(h->resp_etag) - 1;
		memcpy(h->resp_etag, v, l);
		h->resp_etag[l] = '\0';
	}
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *opaque)
{
	struct http_source *h = opaque;
	size_t len = size * n;

	/* only the body of a 206 answer is data; anything else (an error
	 * page, a 200 with the whole file) is not stored */
	if (h->status != 206)
		return h->status == 200 ? 0 : len;
	if (len > h->want - h->got) {
		h->overflow = 1;
		return 0;
	}
	memcpy(h->dst + h->got, buf, len);
	h->got += len;
	return len;
}

static int on_progress(void *opaque, curl_off_t dt, curl_off_t dn,
		       curl_off_t ut, curl_off_t un)
{
	struct http_source *h = opaque;
	(void)dt; (void)dn; (void)ut; (void)un;
	return h->ctx->cancelled ? 1 : 0;
}

/* Parse "bytes A-B/T" (or "bytes * /T" for 416) into its numbers. */
static int parse_content_range(const char *s, uint64_t *a, uint64_t *b,
			       uint64_t *total)
{
	unsigned long long x, y, t;
	char tail;

	if (sscanf(s, "bytes %llu-%llu/%llu%c", &x, &y, &t, &tail) == 3) {
		if (y < x || y >= t)
			return -1;
		*a = x;
		*b = y;
		*total = t;
		return 0;
	}
	if (sscanf(s, "bytes */%llu%c", &t, &tail) == 1) {
		*a = *b = UINT64_MAX;
		*total = t;
		return 0;
	}
	return -1;
}

static void backoff(int attempt)
{
	struct timespec ts;
	long ms = 100L << (attempt < 5 ? attempt : 5); /* 100 ms .. 3.2 s */

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* Fetch LEN bytes at OFF into DST.  With SIZE_OUT (the first request), the
 * file's total size is learnt from Content-Range, LEN may exceed it, and
 * *got_out tells how much arrived.  Otherwise exactly LEN bytes must come. */
static int fetch(struct scimg_source *src, struct http_source *h, uint8_t *dst,
		 size_t len, uint64_t off, uint64_t *size_out, size_t *got_out)
{
	struct scimg_ctx *ctx = src->ctx;
	char range[64], lasterr[CURL_ERROR_SIZE + 64] = "";
	int attempt;

	h->dst = dst;
	h->want = len;
	h->got = 0;
	h->ctx = ctx;
	for (attempt = 0; attempt < RETRIES; attempt++) {
		uint64_t a, b, total;
		size_t start_got = h->got;
		CURLcode rc;

		if (attempt)
			backoff(attempt - 1);
		if (ctx->cancelled)
			return scimg_int_err(ctx, -ECANCELED, "interrupted");
		h->overflow = 0;
		h->status = 0;
		h->errbuf[0] = '\0';
		snprintf(range, sizeof(range), "%llu-%llu",
			 (unsigned long long)(off + h->got),
			 (unsigned long long)(off + len - 1));
		curl_easy_setopt(h->curl, CURLOPT_RANGE, range);
		rc = curl_easy_perform(h->curl);
		if (rc == CURLE_ABORTED_BY_CALLBACK && ctx->cancelled)
			return scimg_int_err(ctx, -ECANCELED, "interrupted");
		if (h->status == 200)
			return scimg_int_err(ctx, -ENOTSUP,
					     "'%s': the server does not support Range requests (answered 200 to 'Range: bytes=%s'); scimg reads remote images only by ranges",
					     src->name, range);
		if (h->status == 416 && size_out && off == 0 && h->got == 0 &&
		    parse_content_range(h->content_range, &a, &b, &total) == 0 &&
		    total == 0) {
			*size_out = 0;
			*got_out = 0;
			return 0;
		}
		if (h->status >= 400) {
			if (h->status == 408 || h->status == 429 || h->status >= 500) {
				snprintf(lasterr, sizeof(lasterr), "HTTP %ld %s",
					 h->status, h->reason);
				continue;
			}
			return scimg_int_err(ctx, h->status == 404 ? -ENOENT :
					     h->status == 403 || h->status == 401 ? -EACCES : -EIO,
					     "'%s': HTTP %ld %s", src->name, h->status,
					     h->reason[0] ? h->reason : "error");
		}
		if (h->overflow)
			return scimg_int_err(ctx, -EIO,
					     "'%s': the server sent more than the %zu bytes asked for at offset %llu",
					     src->name, len, (unsigned long long)off);
		if (h->status == 206) {
			if (parse_content_range(h->content_range, &a, &b, &total) < 0 ||
			    a != off + start_got)
				return scimg_int_err(ctx, -EIO,
						     "'%s': bad Content-Range '%s' in the answer to 'Range: bytes=%s'",
						     src->name, h->content_range, range);
			if (size_out) {
				if (!h->have_etag && h->resp_etag[0]) {
					snprintf(h->etag, sizeof(h->etag), "%s", h->resp_etag);
					h->have_etag = 1;
				}
				*size_out = total;
				if (h->got >= len || off + h->got >= total) {
					*got_out = h->got;
					return 0;
				}
			} else {
				if (total != src->size)
					return scimg_int_err(ctx, -EIO,
							     "'%s' changed on the server while being read (size %llu, was %llu)",
							     src->name, (unsigned long long)total,
							     (unsigned long long)src->size);
				if (h->have_etag && h->resp_etag[0] &&
				    strcmp(h->etag, h->resp_etag) != 0)
					return scimg_int_err(ctx, -EIO,
							     "'%s' changed on the server while being read (ETag %s, was %s)",
							     src->name, h->resp_etag, h->etag);
				if (h->got == len)
					return 0;
			}
		}
		/* transport error or short body: retry after what we have */
		if (rc != CURLE_OK)
			snprintf(lasterr, sizeof(lasterr), "%s",
				 h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		else
			snprintf(lasterr, sizeof(lasterr), "short answer (%zu of %zu bytes)",
				 h->got, len);
	}
	return scimg_int_err(ctx, -EIO, "'%s': reading %zu bytes at offset %llu failed after %d attempts: %s",
			     src->name, len, (unsigned long long)off, RETRIES, lasterr);
}

static struct cblock *cache_find(struct http_source *h, uint64_t idx)
{
	unsigned i;

	for (i = 0; i < CACHE_BLOCKS; i++)
		if (h->cache[i].used && h->cache[i].idx == idx) {
			h->cache[i].used = ++h->tick;
			return &h->cache[i];
		}
	return NULL;
}

static struct cblock *cache_victim(struct http_source *h)
{
	struct cblock *v = &h->cache[0];
	unsigned i;

	for (i = 1; i < CACHE_BLOCKS; i++)
		if (h->cache[i].used < v->used)
			v = &h->cache[i];
	return v;
}

static void cache_store(struct http_source *h, uint64_t idx, const uint8_t *p,
			size_t len)
{
	struct cblock *c = cache_find(h, idx);

	if (!c)
		c = cache_victim(h);
	memcpy(c->data, p, len);
	c->idx = idx;
	c->len = len;
	c->used = ++h->tick;
}

static int http_pread(struct scimg_source *src, void *buf, size_t len,
		      uint64_t off)
{
	struct http_source *h = src->priv;
	uint8_t *p = buf;
	int ret;

	while (len) {
		uint64_t idx = off / BLOCK;
		size_t in = (size_t)(off % BLOCK), n;
		struct cblock *c = cache_find(h, idx);

		if (!c) {
			uint64_t nblk = (src->size + BLOCK - 1) / BLOCK, start, end;
			unsigned k, count;

			h->ra = (h->last_miss && h->last_miss == idx) ?
				(h->ra * 2 > MAX_RA ? MAX_RA : h->ra * 2) : 1;
			count = h->ra;
			if (idx + count > nblk)
				count = (unsigned)(nblk - idx);
			start = idx * BLOCK;
			end = (idx + count) * BLOCK;
			if (end > src->size)
				end = src->size;
			ret = fetch(src, h, h->fetchbuf, (size_t)(end - start), start,
				    NULL, NULL);
			if (ret < 0)
				return ret;
			for (k = 0; k < count; k++) {
				uint64_t bs = (idx + k) * BLOCK;
				size_t bl = (size_t)((end - bs) < BLOCK ? end - bs : BLOCK);
				cache_store(h, idx + k, h->fetchbuf + k * BLOCK, bl);
			}
			h->last_miss = idx + count;
			c = cache_find(h, idx);
			if (!c)
				return scimg_int_err(src->ctx, -EIO, "'%s': internal cache error",
						     src->name);
		}
		if (in >= c->len)
			return scimg_int_err(src->ctx, -EIO,
					     "'%s': unexpected end of data at offset %llu",
					     src->name, (unsigned long long)off);
		n = c->len - in;
		if (n > len)
			n = len;
		memcpy(p, c->data + in, n);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void http_close(struct scimg_source *src)
{
	struct http_source *h = src->priv;
	unsigned i;

	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	for (i = 0; i < CACHE_BLOCKS; i++)
		free(h->cache[i].data);
	free(h->fetchbuf);
	free(h->url);
	free(h);
}

static const struct scimg_source_ops http_ops = {
	.name = "http",
	.pread = http_pread,
	.block_status = NULL,
	.close = http_close,
};

int scimg_int_http_source_open(struct scimg_ctx *ctx, const char *url,
			       struct scimg_source **out)
{
	struct scimg_source *src = NULL;
	struct http_source *h = NULL;
	uint64_t size = 0;
	size_t got = 0, i;
	const char *hs, *q, *slash;
	int ret;

	*out = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return scimg_int_err(ctx, -EIO, "could not initialise libcurl: %s",
				     curl_easy_strerror(curl_init_rc));
	for (i = 0; url[i]; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
			return scimg_int_err(ctx, -EINVAL,
					     "'%s': URL contains a space or control character (percent-encode it)",
					     url);
	src = calloc(1, sizeof(*src));
	h = calloc(1, sizeof(*h));
	if (!src || !h)
		goto nomem;
	src->ctx = ctx;
	src->ops = &http_ops;
	src->priv = h;
	src->name = strdup(url);
	h->url = strdup(url);
	h->fetchbuf = malloc((size_t)MAX_RA * BLOCK);
	if (!src->name || !h->url || !h->fetchbuf)
		goto nomem;
	for (i = 0; i < CACHE_BLOCKS; i++) {
		h->cache[i].data = malloc(BLOCK);
		if (!h->cache[i].data)
			goto nomem;
	}
	/* directory: up to the last '/' of the path (query dropped) */
	hs = strstr(url, "://") + 3;
	q = hs + strcspn(hs, "?#");
	slash = NULL;
	for (const char *c = hs; c < q; c++)
		if (*c == '/')
			slash = c;
	if (!slash)
		src->dir = strndup(url, (size_t)(q - url));
	else
		src->dir = strndup(url, (size_t)(slash - url));
	if (!src->dir)
		goto nomem;

	h->curl = curl_easy_init();
	if (!h->curl)
		goto nomem;
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h->curl, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "scimg/" SCIMG_VERSION_STRING);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	/* identity encoding: byte ranges of the file itself */
	curl_easy_setopt(h->curl, CURLOPT_ACCEPT_ENCODING, NULL);

	/* The first request learns the size and fills the first block. */
	ret = fetch(src, h, h->fetchbuf, BLOCK, 0, &size, &got);
	if (ret < 0)
		goto fail;
	src->size = size;
	if (got > 0)
		cache_store(h, 0, h->fetchbuf, got);
	*out = src;
	return 0;
nomem:
	ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
fail:
	if (src) {
		http_close(src);
		free(src->name);
		free(src->dir);
		free(src);
	} else {
		free(h);
	}
	return ret;
}
