/* source/http.c - http:// and https:// byte sources through libcurl.
 *
 * Every read is a Range request ("Range: bytes=A-B", answer 206 with a
 * Content-Range that must match), unless the server ignores Range (below).  A small block cache (CACHE_BLOCKS blocks
 * of BLOCK bytes) serves the many small reads of format parsers, and a
 * read-ahead that doubles while reads stay sequential (up to MAX_RA blocks
 * per request) keeps large sequential copies at few requests.
 *
 * Every wait is bounded (struct scimg_http_limits, set on the context):
 * connecting and the first byte of each answer (connect_timeout_ms), the
 * rate of every answer (low_speed_limit over low_speed_time_ms), each read
 * with its retries (request_timeout_ms) and every request of the context
 * together (total_timeout_ms).  A timeout is never retried: the message
 * names the limit that was hit.  Answers are bounded too: headers to
 * HDR_MAX_BYTES and HDR_MAX_LINES per answer, an error answer (4xx, 5xx)
 * is abandoned after its headers (its body is never read), a 206 body
 * beyond what was asked for is refused.
 *
 * Transient failures - a reset or refused connection, a short body, HTTP
 * 408/429/5xx - are retried max_retries times with a backoff of 0.25 s
 * doubling up to 4 s (or the server's Retry-After, up to 30 s), as long as
 * the deadlines leave time for it.  Other 4xx answers fail at once with the
 * URL and the status.
 *
 * A server that ignores Range (answers 200 to the first request, as
 * python's http.server does) is used in one of two ways.  A file of at
 * most WHOLE_MAX bytes (a manifest, an AMI part) is read whole into memory
 * from that first answer and serves every read.  A larger one, whose
 * Content-Length must be given, is read as a stream: that first answer is
 * dropped after its headers and one GET without Range is read front to
 * back as reads ask for it, paused (CURL_WRITEFUNC_PAUSE, curl_multi)
 * between them.  The last STREAM_WINDOW bytes before the position are
 * kept, so parsers may step back a little; the first STREAM_HEAD bytes
 * and the last STREAM_TAIL bytes of the file are kept once passed (the
 * probe reads the head and the last 4 KiB, the VHD and VMDK footers are
 * there); the tail is also kept on the context, so a second source of the
 * same URL, size and ETag (the command's probe, then the convert) does not
 * read the whole file again for it.  A read further back starts the GET
 * again from the first byte, at most STREAM_MAX_PASSES GETs per source:
 * a format read out of order (a qcow2 whose clusters are out of order)
 * then fails with a message that says the server lacks Range support.
 * Raw, OVA (with its streamOptimized VMDK) and gce-tar are read in one
 * GET (two when the format is probed: the tail comes first).
 *   Why not spool the file to a temporary file for random access: it
 * writes a copy of the whole image to $TMPDIR (often a tmpfs, so memory)
 * without being asked; a user who wants that can download first, choosing
 * where.  The stream needs no disk and 9 MiB of memory.
 *   Each GET of the stream is held to the same rules as a Range request:
 * connect_timeout_ms to its first byte, the low-speed limit while it is
 * read (the time between reads, when it is paused, does not count),
 * request_timeout_ms per read and per STREAM_STEP bytes of it (skipping
 * forward included), total_timeout_ms, the header bounds, redirects and
 * address checks.  Its Content-Length and ETag must be those of the first
 * answer, and the bytes kept from an earlier GET (head, tail) must come
 * again the same; a body shorter than its Content-Length (or a dropped connection,
 * a 408, 429 or 5xx) starts the GET again and skips to where it was,
 * max_retries times per read; more bytes than the Content-Length are
 * refused.  When the server gives an ETag, later answers must carry the
 * same one (the file must not change while being read).
 *
 * Redirects: at most max_redirects per request, to http and https only.
 * The address of every connection is checked as it is opened (the
 * CURLOPT_OPENSOCKETFUNCTION sees the address actually connected to, so a
 * DNS answer that changes between requests is caught too): once a source
 * connected to a public address, it connects only to public addresses; a
 * source whose URL is itself loopback (or private, link-local) may connect
 * to that class and to public addresses.  The first address each host name
 * connected to is also remembered on the context: a later source naming
 * the same host (an AMI part beside its manifest, a backing file) may not
 * land on another non-public class.  Through a proxy, the address checked
 * is the proxy's.
 *
 * Memory: CACHE_BLOCKS * BLOCK + MAX_RA * BLOCK bytes per source (6 MiB);
 * a stream STREAM_WINDOW + STREAM_HEAD + STREAM_TAIL (9 MiB) instead, and
 * up to TAILS_MAX * STREAM_TAIL on the context.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "scimg-int.h"

#define BLOCK (256u << 10)
#define CACHE_BLOCKS 16u
#define MAX_RA 8u
#define WHOLE_MAX (16u << 20)       /* largest file read whole (no Range) */
#define STREAM_WINDOW (8u << 20)    /* a stream's bytes kept behind its position */
#define STREAM_HEAD (1u << 20)      /* a stream's first bytes, kept */
#define STREAM_TAIL (64u << 10)     /* a stream's last bytes, kept once passed */
#define STREAM_STEP (2u << 20)      /* request_timeout_ms is per this much */
#define STREAM_MAX_PASSES 3u        /* GETs of a stream for reads going back */
#define HDR_MAX_BYTES (64u << 10)   /* per answer */
#define HDR_MAX_LINES 100u          /* per answer */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 4000
#define RETRY_AFTER_MAX_MS 30000

static const struct scimg_http_limits default_limits = {
	.size = sizeof(struct scimg_http_limits),
	.connect_timeout_ms = 10000,
	.low_speed_limit = 1024,
	.low_speed_time_ms = 30000,
	.request_timeout_ms = 120000,
	.total_timeout_ms = 0,
	.max_retries = 5,
	.max_redirects = 5,
};

/* Why an attempt was stopped by us (not by the server). */
enum stop {
	STOP_NONE = 0,
	STOP_CONNECT,     /* connect_timeout_ms before the first byte */
	STOP_LOW_SPEED,
	STOP_REQUEST,     /* request_timeout_ms */
	STOP_TOTAL,       /* total_timeout_ms */
	STOP_HDR_BYTES,
	STOP_HDR_LINES,
	STOP_HTTP_ERROR,  /* a 4xx/5xx answer: its headers are all we need */
	STOP_ADDRESS,     /* connection to a refused address class */
};

struct cblock {
	uint64_t idx;
	size_t len;
	uint64_t used;  /* LRU tick; 0 = empty */
	uint8_t *data;
};

struct scimg_int_http_pin {
	struct scimg_int_http_pin *next;
	int cls;
	char host[];
};

/* The last bytes of a file read as a stream, kept on the context: another
 * source of the same URL (the command's probe, then the convert) need not
 * read the whole file again to probe its tail.  At most TAILS_MAX. */
struct scimg_int_http_tail {
	struct scimg_int_http_tail *next;
	uint64_t size;
	char etag[256];
	size_t len;
	uint8_t data[STREAM_TAIL];
	char url[];
};
#define TAILS_MAX 4u

struct http_source {
	CURL *curl;
	char *url;
	char *host;          /* host name of URL (lower case), for the pins */
	char etag[256];
	int have_etag;
	struct cblock cache[CACHE_BLOCKS];
	uint64_t tick;
	uint64_t last_miss;  /* block index of the last miss + 1 (0 = none) */
	unsigned ra;
	uint8_t *fetchbuf;   /* MAX_RA * BLOCK */
	/* a server without Range support: the whole file (at most
	 * WHOLE_MAX bytes), read by the first request */
	uint8_t *whole;
	size_t whole_len, whole_cap;
	int accept_whole, whole_too_big, is_whole;
	/* a server without Range support and a larger file: one GET read as
	 * a stream (see the top comment) */
	int want_stream, is_stream;
	uint64_t src_size;
	int64_t content_length;  /* of the answer in progress; -1: none */
	CURLM *multi;
	int in_multi, paused, done, checked;
	CURLcode done_rc;
	unsigned passes;
	uint8_t *ring;           /* STREAM_WINDOW: byte X at ring[X % STREAM_WINDOW] */
	uint64_t win_start, win_end;  /* stream bytes held; win_end = position */
	uint64_t need_from;      /* on_body pauses rather than overwrite this */
	uint8_t *head, *tail;    /* STREAM_HEAD, STREAM_TAIL */
	size_t head_len, tail_len;
	int tail_kept;           /* on the context's list */
	uint64_t tail_off;
	char stream_msg[512];    /* why on_body stopped a stream */
	char errbuf[CURL_ERROR_SIZE];
	struct scimg_http_limits lim;
	int origin;          /* class of the first connection; -1 before it */

	/* state of the transfer in progress */
	uint8_t *dst;
	size_t want, got;
	int overflow;
	long status;
	char reason[96];
	char content_range[128];
	char resp_etag[256];
	char location[512];
	long retry_after_ms;
	unsigned hdr_bytes, hdr_lines;
	struct scimg_ctx *ctx;
	/* deadlines and counters of the attempt (CLOCK_MONOTONIC ms) */
	int64_t t_attempt, t_req_end, t_total_end;
	int64_t ls_t;        /* start of the current low-speed window */
	uint64_t rx, ls_rx;  /* bytes received (headers and body) */
	int first_byte;
	enum stop stop;
	char stop_msg[1024];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The nearer of the request's and the whole transfer's deadlines (ms on
 * now_ms()'s clock), or 0 when neither is set. */
static int64_t next_deadline(const struct http_source *h)
{
	int64_t end = h->t_req_end;

	if (h->t_total_end && (!end || h->t_total_end < end))
		end = h->t_total_end;
	return end;
}

/* "10", "0.5", "2.25" seconds */
static const char *secs(unsigned ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%u", ms / 1000);
	else if (ms % 100 == 0)
		snprintf(buf, len, "%u.%u", ms / 1000, (ms % 1000) / 100);
	else
		snprintf(buf, len, "%u.%03u", ms / 1000, ms % 1000);
	return buf;
}

/* ---- limits on the context ---------------------------------------------- */

static void limits_of(const struct scimg_ctx *ctx, struct scimg_http_limits *l)
{
	*l = ctx->http_limits.size ? ctx->http_limits : default_limits;
}

int scimg_ctx_get_http_limits(const struct scimg_ctx *ctx,
			      struct scimg_http_limits *limits)
{
	struct scimg_http_limits cur;
	size_t n;

	if (!limits || limits->size < offsetof(struct scimg_http_limits, connect_timeout_ms) +
	    sizeof(unsigned))
		return -EINVAL;
	limits_of(ctx, &cur);
	n = limits->size < sizeof(cur) ? limits->size : sizeof(cur);
	/* a newer caller's fields past ours are left as they are */
	memcpy((char *)limits + sizeof(size_t), (char *)&cur + sizeof(size_t),
	       n - sizeof(size_t));
	return 0;
}

int scimg_ctx_set_http_limits(struct scimg_ctx *ctx,
			      const struct scimg_http_limits *limits)
{
	struct scimg_http_limits cur;
	size_t n, i;

	if (!limits || limits->size < offsetof(struct scimg_http_limits, connect_timeout_ms) +
	    sizeof(unsigned))
		return scimg_int_err(ctx, -EINVAL, "http limits: size %zu is too small",
				     limits ? limits->size : 0);
	for (i = sizeof(cur); i < limits->size; i++)
		if (((const unsigned char *)limits)[i])
			return scimg_int_err(ctx, -EINVAL,
					     "http limits: a field at byte %zu is unknown to this libscimg",
					     i);
	limits_of(ctx, &cur);
	n = limits->size < sizeof(cur) ? limits->size : sizeof(cur);
	memcpy((char *)&cur + sizeof(size_t), (const char *)limits + sizeof(size_t),
	       n - sizeof(size_t));
	cur.size = sizeof(cur);
	ctx->http_limits = cur;
	__atomic_store_n(&ctx->http_t0_ms, 0, __ATOMIC_SEQ_CST);
	return 0;
}

void scimg_int_http_ctx_release(struct scimg_ctx *ctx)
{
	struct scimg_int_http_pin *p, *n;

	pthread_mutex_lock(&pin_lock);
	for (p = ctx->http_pins; p; p = n) {
		n = p->next;
		free(p);
	}
	ctx->http_pins = NULL;
	while (ctx->http_tails) {
		struct scimg_int_http_tail *t = ctx->http_tails;
		ctx->http_tails = t->next;
		free(t);
	}
	pthread_mutex_unlock(&pin_lock);
}

/* ---- address classes ----------------------------------------------------- */

static int v4_class(uint32_t a) /* host byte order */
{
	uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16);

	if (b0 == 0)
		return SCIMG_ADDR_UNSPECIFIED;
	if (b0 == 127)
		return SCIMG_ADDR_LOOPBACK;
	if (b0 == 169 && b1 == 254)
		return SCIMG_ADDR_LINKLOCAL;
	if (b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) ||
	    (b0 == 192 && b1 == 168) || (b0 == 100 && (b1 & 0xc0) == 64))
		return SCIMG_ADDR_PRIVATE;
	/* 192.0.0/24 (IETF protocol assignments), 198.18/15 (benchmarking),
	 * multicast 224/4, 240/4 and broadcast */
	if ((a & 0xffffff00u) == 0xc0000000u || (b0 == 198 && (b1 & 0xfe) == 18) ||
	    b0 >= 224)
		return SCIMG_ADDR_RESERVED;
	return SCIMG_ADDR_PUBLIC;
}

int scimg_int_addr_class(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return v4_class(ntohl(in->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *b = in6->sin6_addr.s6_addr;
		static const uint8_t zero[16];
		static const uint8_t mapped[12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff };
		static const uint8_t nat64[12] = { 0,0x64,0xff,0x9b, 0,0,0,0, 0,0,0,0 };
		uint32_t v4;
		size_t i;
		int hi = 0;

		if (memcmp(b, zero, 15) == 0)
			return b[15] == 1 ? SCIMG_ADDR_LOOPBACK :
			       b[15] == 0 ? SCIMG_ADDR_UNSPECIFIED : SCIMG_ADDR_RESERVED;
		/* an IPv4 address inside: mapped ::ffff:a.b.c.d, compatible
		 * ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:AABB:CCDD:: */
		if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero, 12) == 0 ||
		    memcmp(b, nat64, 12) == 0) {
			v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
			     (uint32_t)b[14] << 8 | b[15];
			return v4_class(v4);
		}
		if (b[0] == 0x20 && b[1] == 0x02) {
			v4 = (uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 |
			     (uint32_t)b[4] << 8 | b[5];
			return v4_class(v4);
		}
		if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
			return SCIMG_ADDR_LINKLOCAL;
		if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0))
			return SCIMG_ADDR_PRIVATE;
		if (b[0] == 0xff)
			return SCIMG_ADDR_RESERVED;
		/* 64:ff9b:1::/48 (local NAT64), 100::/64 (discard),
		 * 2001:db8::/32 (documentation) */
		for (i = 0; i < 16; i++)
			hi |= b[i];
		if ((b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
		     b[4] == 0 && b[5] == 1) ||
		    (b[0] == 1 && b[1] == 0 && !b[2] && !b[3] && !b[4] && !b[5] &&
		     !b[6] && !b[7]) ||
		    (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8))
			return SCIMG_ADDR_RESERVED;
		return hi ? SCIMG_ADDR_PUBLIC : SCIMG_ADDR_UNSPECIFIED;
	}
	return -1;
}

const char *scimg_int_addr_class_name(int cls)
{
	switch (cls) {
	case SCIMG_ADDR_PUBLIC: return "public";
	case SCIMG_ADDR_LOOPBACK: return "loopback";
	case SCIMG_ADDR_LINKLOCAL: return "link-local";
	case SCIMG_ADDR_PRIVATE: return "private";
	case SCIMG_ADDR_UNSPECIFIED: return "unspecified";
	case SCIMG_ADDR_RESERVED: return "reserved";
	default: return "unknown";
	}
}

/* The class of SA for the checks.  SCIMG_TEST_HTTP_PUBLIC (a test hook: a
 * comma-separated list of IPv4 addresses) makes those addresses count as
 * public, so that tests on loopback can play a public server. */
static int addr_class_checked(const struct sockaddr *sa, char *text, size_t len)
{
	const char *env = getenv("SCIMG_TEST_HTTP_PUBLIC");

	text[0] = '\0';
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text,
			  (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text,
			  (socklen_t)len);
	if (env && *text && sa->sa_family == AF_INET) {
		size_t tl = strlen(text);
		const char *p = env;
		while (*p) {
			size_t l = strcspn(p, ",");
			if (l == tl && strncmp(p, text, l) == 0)
				return SCIMG_ADDR_PUBLIC;
			p += l;
			if (*p == ',')
				p++;
		}
	}
	return scimg_int_addr_class(sa);
}

static curl_socket_t on_opensocket(void *opaque, curlsocktype purpose,
				   struct curl_sockaddr *a)
{
	struct http_source *h = opaque;
	char text[INET6_ADDRSTRLEN] = "";
	int cls;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (a->family != AF_INET && a->family != AF_INET6)
		goto refuse_family;
	cls = addr_class_checked(&a->addr, text, sizeof(text));
	if (h->origin < 0) {
		/* the first connection of this source: the class of the
		 * host name's first connection on the context binds it */
		struct scimg_int_http_pin *p;
		int pinned = -1;

		pthread_mutex_lock(&pin_lock);
		for (p = h->ctx->http_pins; p; p = p->next)
			if (h->host && strcmp(p->host, h->host) == 0) {
				pinned = p->cls;
				break;
			}
		if (pinned < 0 && h->host) {
			size_t hl = strlen(h->host) + 1;
			p = malloc(sizeof(*p) + hl);
			if (p) {
				p->cls = cls;
				memcpy(p->host, h->host, hl);
				p->next = h->ctx->http_pins;
				h->ctx->http_pins = p;
			}
		}
		pthread_mutex_unlock(&pin_lock);
		if (pinned >= 0 && cls != pinned && cls != SCIMG_ADDR_PUBLIC) {
			snprintf(h->stop_msg, sizeof(h->stop_msg),
				 "refusing to connect to %s (a %s address): host '%s' was first reached at a %s address",
				 text, scimg_int_addr_class_name(cls), h->host,
				 scimg_int_addr_class_name(pinned));
			h->stop = STOP_ADDRESS;
			return CURL_SOCKET_BAD;
		}
		h->origin = cls;
	} else if (cls != SCIMG_ADDR_PUBLIC && cls != h->origin) {
		snprintf(h->stop_msg, sizeof(h->stop_msg),
			 "refusing to connect to %s (a %s address)%s%s%s: the URL given was reached at a %s address",
			 text, scimg_int_addr_class_name(cls),
			 h->location[0] ? " after a redirect to '" : "",
			 h->location, h->location[0] ? "'" : "",
			 scimg_int_addr_class_name(h->origin));
		h->stop = STOP_ADDRESS;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
refuse_family:
	snprintf(h->stop_msg, sizeof(h->stop_msg),
		 "refusing to connect to an address of family %d", a->family);
	h->stop = STOP_ADDRESS;
	return CURL_SOCKET_BAD;
}

/* ---- callbacks of a transfer --------------------------------------------- */

/* Copy header value V (LEN bytes, after the name and colon) to OUT. */
static void header_value(const char *v, size_t l, char *out, size_t outlen)
{
	while (l && (*v == ' ' || *v == '\t')) {
		v++;
		l--;
	}
	while (l && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
		l--;
	if (l >= outlen)
		l = outlen - 1;
	memcpy(out, v, l);
	out[l] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t n, void *opaque)
{
	struct http_source *h = opaque;
	size_t len = size * n, l;
	char tmp[32];

	h->rx += len;
	h->first_byte = 1;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or 100-continue) */
		const char *sp = memchr(buf, ' ', len);
		h->content_range[0] = '\0';
		h->resp_etag[0] = '\0';
		h->reason[0] = '\0';
		h->status = 0;
		h->retry_after_ms = -1;
		h->content_length = -1;
		h->hdr_bytes = (unsigned)(len < HDR_MAX_BYTES ? len : HDR_MAX_BYTES);
		h->hdr_lines = 1;
		if (sp) {
			const char *end = buf + len;
			h->status = strtol(sp + 1, NULL, 10);
			sp = memchr(sp + 1, ' ', (size_t)(end - sp - 1));
			if (sp) {
				l = (size_t)(end - sp - 1);
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
	if (len > HDR_MAX_BYTES - h->hdr_bytes) {
		h->stop = STOP_HDR_BYTES;
		return 0;
	}
	h->hdr_bytes += (unsigned)len;
	if (++h->hdr_lines > HDR_MAX_LINES) {
		h->stop = STOP_HDR_LINES;
		return 0;
	}
	if ((len == 2 && buf[0] == '\r' && buf[1] == '\n') || (len == 1 && buf[0] == '\n')) {
		/* end of the headers: an error answer's body is of no use */
		if (h->status >= 400) {
			h->stop = STOP_HTTP_ERROR;
			return 0;
		}
		return len;
	}
	if (len > 14 && strncasecmp(buf, "Content-Range:", 14) == 0) {
		header_value(buf + 14, len - 14, h->content_range, sizeof(h->content_range));
	} else if (len > 5 && strncasecmp(buf, "ETag:", 5) == 0) {
		header_value(buf + 5, len - 5, h->resp_etag, sizeof(h->resp_etag));
	} else if (len > 9 && strncasecmp(buf, "Location:", 9) == 0) {
		header_value(buf + 9, len - 9, h->location, sizeof(h->location));
	} else if (len > 15 && strncasecmp(buf, "Content-Length:", 15) == 0) {
		char *end;
		unsigned long long v;
		header_value(buf + 15, len - 15, tmp, sizeof(tmp));
		errno = 0;
		v = strtoull(tmp, &end, 10);
		/* a value that is not a plain number is no length */
		h->content_length = end != tmp && !*end && tmp[0] >= '0' && tmp[0] <= '9' &&
				    !errno && v <= INT64_MAX ? (int64_t)v : -1;
	} else if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
		char *end;
		long v;
		header_value(buf + 12, len - 12, tmp, sizeof(tmp));
		v = strtol(tmp, &end, 10);
		if (end != tmp && !*end && v >= 0)
			h->retry_after_ms = v > RETRY_AFTER_MAX_MS / 1000 ?
					    RETRY_AFTER_MAX_MS : v * 1000;
	}
	return len;
}

/* The body of a stream's answer: kept in the window (and the head and tail
 * buffers); the transfer is paused when the window is full of bytes still
 * needed. */
static size_t stream_body(struct http_source *h, const uint8_t *buf, size_t len)
{
	uint64_t size = h->src_size, x = h->win_end;
	size_t done, n;

	if (h->status != 200)
		return 0;
	if (!h->checked) {
		/* every GET of the stream must be the same file */
		if (h->content_length != (int64_t)size) {
			if (h->content_length < 0)
				snprintf(h->stream_msg, sizeof(h->stream_msg),
					 "the answer has no Content-Length (the file's size, %llu, must be known when it is read as a stream)",
					 (unsigned long long)size);
			else
				snprintf(h->stream_msg, sizeof(h->stream_msg),
					 "changed on the server while being read (size %lld, was %llu)",
					 (long long)h->content_length, (unsigned long long)size);
			return 0;
		}
		if (h->have_etag && h->resp_etag[0] && strcmp(h->etag, h->resp_etag) != 0) {
			snprintf(h->stream_msg, sizeof(h->stream_msg),
				 "changed on the server while being read (ETag %.200s, was %.200s)",
				 h->resp_etag, h->etag);
			return 0;
		}
		h->checked = 1;
	}
	if (len > size - x) {
		snprintf(h->stream_msg, sizeof(h->stream_msg),
			 "the server sent more than the Content-Length of %llu bytes",
			 (unsigned long long)size);
		return 0;
	}
	if (x + len > h->need_from + STREAM_WINDOW) {
		if (len > STREAM_WINDOW / 2) {
			snprintf(h->stream_msg, sizeof(h->stream_msg),
				 "internal error: a piece of %zu bytes of the stream", len);
			return 0;
		}
		h->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	/* bytes kept before (an earlier GET, or the context's tail) must come
	 * again the same */
	if ((x < h->head_len &&
	     memcmp(buf, h->head + x, (size_t)(h->head_len - x) < len ?
		    (size_t)(h->head_len - x) : len) != 0) ||
	    (x + len > h->tail_off && x < h->tail_off + h->tail_len &&
	     (x >= h->tail_off ?
	      memcmp(buf, h->tail + (x - h->tail_off),
		     (size_t)(h->tail_off + h->tail_len - x) < len ?
		     (size_t)(h->tail_off + h->tail_len - x) : len) :
	      memcmp(buf + (h->tail_off - x), h->tail,
		     (size_t)(x + len - h->tail_off) < h->tail_len ?
		     (size_t)(x + len - h->tail_off) : h->tail_len)) != 0)) {
		snprintf(h->stream_msg, sizeof(h->stream_msg),
			 "changed on the server while being read (bytes near offset %llu differ from an earlier answer)",
			 (unsigned long long)x);
		return 0;
	}
	/* the first bytes of the file, and its last ones */
	if (x <= h->head_len && h->head_len < STREAM_HEAD && x + len > h->head_len) {
		n = (size_t)(x + len - h->head_len);
		if (n > STREAM_HEAD - h->head_len)
			n = STREAM_HEAD - h->head_len;
		memcpy(h->head + h->head_len, buf + (h->head_len - x), n);
		h->head_len += n;
	}
	if (h->tail_len < size - h->tail_off && x <= h->tail_off + h->tail_len &&
	    h->tail_off + h->tail_len < x + len) {
		uint64_t at = h->tail_off + h->tail_len;
		n = (size_t)(x + len - at);
		memcpy(h->tail + h->tail_len, buf + (at - x), n);
		h->tail_len += n;
	}
	for (done = 0; done < len; done += n) {
		size_t r = (size_t)((x + done) % STREAM_WINDOW);
		n = len - done;
		if (n > STREAM_WINDOW - r)
			n = STREAM_WINDOW - r;
		memcpy(h->ring + r, buf + done, n);
	}
	h->win_end = x + len;
	if (h->win_end - h->win_start > STREAM_WINDOW)
		h->win_start = h->win_end - STREAM_WINDOW;
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *opaque)
{
	struct http_source *h = opaque;
	size_t len = size * n;

	h->first_byte = 1;
	if (h->is_stream) {
		/* a paused piece comes again: counted when taken */
		size_t r = stream_body(h, (const uint8_t *)buf, len);
		if (r == len)
			h->rx += len;
		return r;
	}
	h->rx += len;
	/* only the body of a 206 answer is data; anything else (a 200 with
	 * the whole file) is not stored (error answers stop after their
	 * headers) */
	if (h->status == 200 && h->accept_whole) {
		if (h->content_length > (int64_t)WHOLE_MAX) {
			/* too large to read whole: read it as a stream */
			h->want_stream = 1;
			return 0;
		}
		if (len > WHOLE_MAX - h->whole_len) {
			h->whole_too_big = 1;
			return 0;
		}
		if (h->whole_len + len > h->whole_cap) {
			size_t nc = h->whole_cap ? h->whole_cap : BLOCK;
			uint8_t *nb;
			while (nc < h->whole_len + len)
				nc *= 2;
			if (nc > WHOLE_MAX)
				nc = WHOLE_MAX;
			nb = realloc(h->whole, nc);
			if (!nb)
				return 0;
			h->whole = nb;
			h->whole_cap = nc;
		}
		memcpy(h->whole + h->whole_len, buf, len);
		h->whole_len += len;
		return len;
	}
	if (h->status != 206)
		return 0;
	if (len > h->want - h->got) {
		h->overflow = 1;
		return 0;
	}
	memcpy(h->dst + h->got, buf, len);
	h->got += len;
	return len;
}

/* 1 (h->stop set) when a limit of the attempt in progress is hit. */
static int limit_hit(struct http_source *h)
{
	const struct scimg_http_limits *l = &h->lim;
	int64_t t = now_ms();

	if (h->t_total_end && t >= h->t_total_end) {
		h->stop = STOP_TOTAL;
		return 1;
	}
	if (h->t_req_end && t >= h->t_req_end) {
		h->stop = STOP_REQUEST;
		return 1;
	}
	if (!h->first_byte && l->connect_timeout_ms &&
	    t - h->t_attempt >= l->connect_timeout_ms) {
		h->stop = STOP_CONNECT;
		return 1;
	}
	if (l->low_speed_limit && l->low_speed_time_ms &&
	    t - h->ls_t >= l->low_speed_time_ms) {
		uint64_t need = (uint64_t)l->low_speed_limit * l->low_speed_time_ms / 1000;
		if (h->rx - h->ls_rx < need) {
			h->stop = STOP_LOW_SPEED;
			return 1;
		}
		h->ls_t = t;
		h->ls_rx = h->rx;
	}
	return 0;
}

static int on_progress(void *opaque, curl_off_t dt, curl_off_t dn,
		       curl_off_t ut, curl_off_t un)
{
	struct http_source *h = opaque;
	(void)dt; (void)dn; (void)ut; (void)un;

	if (h->ctx->cancelled)
		return 1;
	return limit_hit(h);
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

/* Sleep MS, waking for cancellation. */
static void sleep_ms(struct scimg_ctx *ctx, long ms)
{
	while (ms > 0 && !ctx->cancelled) {
		long s = ms > 100 ? 100 : ms;
		struct timespec ts = { 0, s * 1000000L };
		nanosleep(&ts, NULL);
		ms -= s;
	}
}

/* The message of a stop of ours. */
static int stop_err(struct scimg_source *src, struct http_source *h,
		    size_t len, uint64_t off)
{
	const struct scimg_http_limits *l = &h->lim;
	char a[32];

	switch (h->stop) {
	case STOP_CONNECT:
		return scimg_int_err(src->ctx, -ETIMEDOUT,
				     "'%s': no response within %s s (--http-connect-timeout)",
				     src->name, secs(l->connect_timeout_ms, a, sizeof(a)));
	case STOP_LOW_SPEED:
		return scimg_int_err(src->ctx, -ETIMEDOUT,
				     "'%s': %s: less than %u bytes/s for %s s (--http-low-speed-limit, --http-low-speed-time)",
				     src->name, h->first_byte ? "answer too slow" : "no response",
				     l->low_speed_limit, secs(l->low_speed_time_ms, a, sizeof(a)));
	case STOP_REQUEST:
		return scimg_int_err(src->ctx, -ETIMEDOUT,
				     "'%s': reading %zu bytes at offset %llu took more than %s s (--http-request-timeout)%s",
				     src->name, len, (unsigned long long)off,
				     secs(l->request_timeout_ms, a, sizeof(a)),
				     h->first_byte ? "" : ", no response");
	case STOP_TOTAL:
		return scimg_int_err(src->ctx, -ETIMEDOUT,
				     "'%s': the time for all HTTP requests, %s s, is spent (--http-timeout)%s",
				     src->name, secs(l->total_timeout_ms, a, sizeof(a)),
				     h->first_byte ? "" : ", no response");
	case STOP_HDR_BYTES:
		return scimg_int_err(src->ctx, -EIO,
				     "'%s': answer headers longer than %u bytes (refused)",
				     src->name, HDR_MAX_BYTES);
	case STOP_HDR_LINES:
		return scimg_int_err(src->ctx, -EIO,
				     "'%s': answer with more than %u header lines (refused)",
				     src->name, HDR_MAX_LINES);
	case STOP_ADDRESS:
		return scimg_int_err(src->ctx, -EPERM, "'%s': %s", src->name, h->stop_msg);
	default:
		return scimg_int_err(src->ctx, -EIO, "'%s': transfer stopped", src->name);
	}
}

static int transient_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_COULDNT_CONNECT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* Fetch LEN bytes at OFF into DST.  With SIZE_OUT (the first request), the
 * file's total size is learnt from Content-Range, LEN may exceed it, and
 * *got_out tells how much arrived.  Otherwise exactly LEN bytes must come. */
static int fetch(struct scimg_source *src, struct http_source *h, uint8_t *dst,
		 size_t len, uint64_t off, uint64_t *size_out, size_t *got_out)
{
	struct scimg_ctx *ctx = src->ctx;
	const struct scimg_http_limits *l = &h->lim;
	char range[64], lasterr[CURL_ERROR_SIZE + 64] = "", s1[32];
	int64_t t0, total_t0;
	unsigned attempt;
	long wait = 0;

	h->dst = dst;
	h->want = len;
	h->got = 0;
	h->ctx = ctx;
	t0 = now_ms();
	h->t_req_end = l->request_timeout_ms ? t0 + l->request_timeout_ms : 0;
	h->t_total_end = 0;
	if (l->total_timeout_ms) {
		int64_t zero = 0;
		__atomic_compare_exchange_n(&ctx->http_t0_ms, &zero, t0, 0,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		total_t0 = __atomic_load_n(&ctx->http_t0_ms, __ATOMIC_SEQ_CST);
		h->t_total_end = total_t0 + l->total_timeout_ms;
	}
	for (attempt = 0; attempt <= l->max_retries; attempt++) {
		uint64_t a, b, total;
		size_t start_got = h->got;
		int64_t t, end;
		CURLcode rc;

		if (attempt) {
			/* is there time for the backoff and some of an attempt? */
			t = now_ms();
			end = next_deadline(h);
			if (end && t + wait + 100 >= end)
				return scimg_int_err(ctx, -EIO,
						     "'%s': reading %zu bytes at offset %llu failed (%u attempts, no time left for more within %s s, %s): %s",
						     src->name, len, (unsigned long long)off, attempt,
						     secs(end == h->t_req_end ? l->request_timeout_ms :
							  l->total_timeout_ms, s1, sizeof(s1)),
						     end == h->t_req_end ? "--http-request-timeout" :
						     "--http-timeout", lasterr);
			sleep_ms(ctx, wait);
		}
		if (ctx->cancelled)
			return scimg_int_err(ctx, -ECANCELED, "interrupted");
		h->overflow = 0;
		h->status = 0;
		h->errbuf[0] = '\0';
		h->accept_whole = size_out && off == 0;
		h->whole_len = 0;
		h->whole_too_big = 0;
		h->want_stream = 0;
		h->content_length = -1;
		h->location[0] = '\0';
		h->retry_after_ms = -1;
		h->stop = STOP_NONE;
		h->first_byte = 0;
		h->rx = h->ls_rx = 0;
		h->t_attempt = h->ls_t = now_ms();
		if (h->t_total_end && h->t_attempt >= h->t_total_end) {
			h->stop = STOP_TOTAL;
			return stop_err(src, h, len, off);
		}
		end = next_deadline(h);
		/* libcurl's own timers as a backstop of ours */
		curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS,
				 end ? (long)(end - h->t_attempt + 1000) : 0L);
		snprintf(range, sizeof(range), "%llu-%llu",
			 (unsigned long long)(off + h->got),
			 (unsigned long long)(off + len - 1));
		curl_easy_setopt(h->curl, CURLOPT_RANGE, range);
		rc = curl_easy_perform(h->curl);
		if (ctx->cancelled)
			return scimg_int_err(ctx, -ECANCELED, "interrupted");
		if (rc == CURLE_OPERATION_TIMEDOUT && h->stop == STOP_NONE) {
			t = now_ms();
			h->stop = h->t_total_end && t >= h->t_total_end - 50 ? STOP_TOTAL :
				  h->t_req_end && t >= h->t_req_end - 50 ? STOP_REQUEST :
				  !h->first_byte ? STOP_CONNECT : STOP_LOW_SPEED;
		}
		if (rc != CURLE_OK && h->stop != STOP_NONE && h->stop != STOP_HTTP_ERROR)
			return stop_err(src, h, len, off);
		if (rc == CURLE_UNSUPPORTED_PROTOCOL && h->location[0])
			return scimg_int_err(ctx, -EPERM,
					     "'%s': redirect to '%s' refused: only http:// and https:// are followed",
					     src->name, h->location);
		if (rc == CURLE_TOO_MANY_REDIRECTS)
			return scimg_int_err(ctx, -ELOOP,
					     "'%s': more than %u redirects (--http-max-redirects)%s%s%s",
					     src->name, l->max_redirects,
					     h->location[0] ? ", the last to '" : "", h->location,
					     h->location[0] ? "'" : "");
		if (h->status == 200 && h->accept_whole && h->want_stream) {
			/* larger than WHOLE_MAX, of a known size: a stream */
			if (h->resp_etag[0]) {
				snprintf(h->etag, sizeof(h->etag), "%s", h->resp_etag);
				h->have_etag = 1;
			}
			*size_out = (uint64_t)h->content_length;
			*got_out = 0;
			return 1;
		}
		if (h->status == 200 && h->accept_whole && h->whole_too_big)
			return scimg_int_err(ctx, -ENOTSUP,
					     "'%s': the server does not support Range requests (answered 200 to 'Range: bytes=%s') and gives no Content-Length for a file larger than %u MiB, the most scimg reads whole (a larger file is read as a stream only when its size is known)",
					     src->name, range, WHOLE_MAX >> 20);
		if (h->status == 200 && h->accept_whole && rc == CURLE_OK) {
			/* the whole file: every read is served from memory */
			h->is_whole = 1;
			*size_out = h->whole_len;
			*got_out = 0;
			return 0;
		}
		if (h->status == 200 && !h->accept_whole)
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
		if (h->status >= 300 && h->status < 400 && rc == CURLE_OK)
			return scimg_int_err(ctx, -EIO, "'%s': HTTP %ld %s without a usable Location",
					     src->name, h->status, h->reason);
		if (h->status >= 400) {
			snprintf(lasterr, sizeof(lasterr), "HTTP %ld %s", h->status,
				 h->reason[0] ? h->reason : "error");
			if (h->status == 408 || h->status == 429 ||
			    (h->status >= 500 && h->status != 501 && h->status != 505)) {
				wait = BACKOFF_FIRST_MS << (attempt < 4 ? attempt : 4);
				if (wait > BACKOFF_MAX_MS)
					wait = BACKOFF_MAX_MS;
				if (h->retry_after_ms > wait)
					wait = h->retry_after_ms;
				continue;
			}
			return scimg_int_err(ctx, h->status == 404 || h->status == 410 ? -ENOENT :
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
		if (rc != CURLE_OK && !transient_curl(rc))
			return scimg_int_err(ctx, -EIO, "'%s': %s", src->name,
					     h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		if (rc != CURLE_OK)
			snprintf(lasterr, sizeof(lasterr), "%s",
				 h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		else if (h->status != 206 && h->status != 200)
			return scimg_int_err(ctx, -EIO, "'%s': unexpected answer HTTP %ld %s to 'Range: bytes=%s'",
					     src->name, h->status, h->reason, range);
		else
			snprintf(lasterr, sizeof(lasterr), "short answer (%zu of %zu bytes)",
				 h->got, len);
		wait = BACKOFF_FIRST_MS << (attempt < 4 ? attempt : 4);
		if (wait > BACKOFF_MAX_MS)
			wait = BACKOFF_MAX_MS;
	}
	return scimg_int_err(ctx, -EIO, "'%s': reading %zu bytes at offset %llu failed after %u attempts (--http-retries=%u): %s",
			     src->name, len, (unsigned long long)off, l->max_retries + 1,
			     l->max_retries, lasterr);
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

/* ---- a server without Range support: the file as a stream --------------- */

static void tail_keep(struct scimg_source *src, struct http_source *h);

/* Arm the deadlines of a wait of the stream (as fetch does per attempt). */
static void stream_arm(struct scimg_ctx *ctx, struct http_source *h)
{
	const struct scimg_http_limits *l = &h->lim;
	int64_t t = now_ms();

	h->t_req_end = l->request_timeout_ms ? t + l->request_timeout_ms : 0;
	h->t_total_end = 0;
	if (l->total_timeout_ms) {
		int64_t zero = 0;
		__atomic_compare_exchange_n(&ctx->http_t0_ms, &zero, t, 0,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		h->t_total_end = __atomic_load_n(&ctx->http_t0_ms, __ATOMIC_SEQ_CST) +
				 l->total_timeout_ms;
	}
	/* time spent between reads is not the server's */
	h->ls_t = t;
	h->ls_rx = h->rx;
}

/* (Re)start the GET of the stream: its bytes come again from offset 0. */
static int stream_start(struct scimg_source *src, struct http_source *h)
{
	CURLMcode mc;

	if (h->in_multi) {
		curl_multi_remove_handle(h->multi, h->curl);
		h->in_multi = 0;
	}
	h->win_start = h->win_end = 0;
	h->paused = h->done = h->checked = 0;
	h->done_rc = CURLE_OK;
	h->status = 0;
	h->errbuf[0] = '\0';
	h->stream_msg[0] = '\0';
	h->location[0] = '\0';
	h->retry_after_ms = -1;
	h->content_length = -1;
	h->stop = STOP_NONE;
	h->first_byte = 0;
	h->rx = h->ls_rx = 0;
	h->t_attempt = h->ls_t = now_ms();
	h->passes++;
	curl_easy_setopt(h->curl, CURLOPT_RANGE, NULL);
	/* libcurl's own timer as a backstop of the deadline of all requests
	 * (ours are checked per read; a stream lasts as long as the copy) */
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS,
			 h->t_total_end ? (long)(h->t_total_end - h->t_attempt + 1000) : 0L);
	mc = curl_multi_add_handle(h->multi, h->curl);
	if (mc != CURLM_OK)
		return scimg_int_err(src->ctx, -EIO, "'%s': %s", src->name,
				     curl_multi_strerror(mc));
	h->in_multi = 1;
	return 0;
}

/* The stream ended (or stopped) before the byte needed at OFF: the error,
 * or 1 when it may be retried (LASTERR says why). */
static int stream_ended(struct scimg_source *src, struct http_source *h,
			size_t len, uint64_t off, char *lasterr, size_t errlen)
{
	CURLcode rc = h->done_rc;

	if (h->stream_msg[0])
		return scimg_int_err(src->ctx, -EIO, "'%s': %s", src->name, h->stream_msg);
	if (h->stop != STOP_NONE && h->stop != STOP_HTTP_ERROR)
		return stop_err(src, h, len, off);
	if (rc == CURLE_UNSUPPORTED_PROTOCOL && h->location[0])
		return scimg_int_err(src->ctx, -EPERM,
				     "'%s': redirect to '%s' refused: only http:// and https:// are followed",
				     src->name, h->location);
	if (rc == CURLE_TOO_MANY_REDIRECTS)
		return scimg_int_err(src->ctx, -ELOOP,
				     "'%s': more than %u redirects (--http-max-redirects)",
				     src->name, h->lim.max_redirects);
	if (h->status >= 400) {
		snprintf(lasterr, errlen, "HTTP %ld %s", h->status,
			 h->reason[0] ? h->reason : "error");
		if (h->status == 408 || h->status == 429 ||
		    (h->status >= 500 && h->status != 501 && h->status != 505))
			return 1;
		return scimg_int_err(src->ctx, h->status == 404 || h->status == 410 ? -ENOENT :
				     h->status == 403 || h->status == 401 ? -EACCES : -EIO,
				     "'%s': HTTP %ld %s", src->name, h->status,
				     h->reason[0] ? h->reason : "error");
	}
	if (rc != CURLE_OK && !transient_curl(rc))
		return scimg_int_err(src->ctx, -EIO, "'%s': %s", src->name,
				     h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
	if (h->status != 200 && h->status != 0)
		return scimg_int_err(src->ctx, -EIO,
				     "'%s': unexpected answer HTTP %ld %s to a GET without Range",
				     src->name, h->status, h->reason);
	if (rc != CURLE_OK)
		snprintf(lasterr, errlen, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
	else
		snprintf(lasterr, errlen, "short answer (%llu of %llu bytes)",
			 (unsigned long long)h->win_end, (unsigned long long)src->size);
	return 1;
}

/* Drive the stream until it holds the byte before TARGET (it is at or past
 * OFF, the read of LEN bytes, for messages).  Every wait is bounded as a
 * Range request is: connect_timeout_ms to the first byte of each GET, the
 * low-speed limit, request_timeout_ms per STREAM_STEP bytes (a retry
 * included), total_timeout_ms.  Transient failures restart the GET and skip
 * to where it was, max_retries times per read (*RETRIES). */
static int stream_pump(struct scimg_source *src, struct http_source *h,
		       uint64_t target, size_t len, uint64_t off, unsigned *retries)
{
	struct scimg_ctx *ctx = src->ctx;
	char lasterr[CURL_ERROR_SIZE + 64] = "";
	uint64_t step_rx;
	int ret;

	stream_arm(ctx, h);
	step_rx = h->win_end;
	if (h->paused) {
		/* may deliver the paused piece at once */
		CURLcode pc;
		h->paused = 0;
		pc = curl_easy_pause(h->curl, CURLPAUSE_CONT);
		if (pc != CURLE_OK)
			return scimg_int_err(ctx, -EIO, "'%s': %s", src->name,
					     curl_easy_strerror(pc));
	}
	/* each turn waits at most 100 ms; the deadlines end the loop */
	while (h->win_end < target) {
		CURLMsg *m;
		CURLMcode mc;
		int running = 0, left;

		if (ctx->cancelled)
			return scimg_int_err(ctx, -ECANCELED, "interrupted");
		if (h->win_end - step_rx >= STREAM_STEP) {
			const struct scimg_http_limits *l = &h->lim;
			h->t_req_end = l->request_timeout_ms ? now_ms() + l->request_timeout_ms : 0;
			step_rx = h->win_end;
		}
		if (!h->done && limit_hit(h)) {
			h->done = 1;
			h->done_rc = CURLE_ABORTED_BY_CALLBACK;
		}
		if (h->done) {
			long wait;
			int64_t t, end;

			ret = stream_ended(src, h, len, off, lasterr, sizeof(lasterr));
			if (ret < 0)
				return ret;
			if (*retries >= h->lim.max_retries)
				return scimg_int_err(ctx, -EIO,
						     "'%s': reading %zu bytes at offset %llu failed after %u attempts (--http-retries=%u): %s",
						     src->name, len, (unsigned long long)off,
						     h->lim.max_retries + 1, h->lim.max_retries, lasterr);
			wait = BACKOFF_FIRST_MS << (*retries < 4 ? *retries : 4);
			if (wait > BACKOFF_MAX_MS)
				wait = BACKOFF_MAX_MS;
			if (h->retry_after_ms > wait)
				wait = h->retry_after_ms;
			t = now_ms();
			end = next_deadline(h);
			if (end && t + wait + 100 >= end)
				return scimg_int_err(ctx, -EIO,
						     "'%s': reading %zu bytes at offset %llu failed (%u attempts, no time left for more within the deadlines): %s",
						     src->name, len, (unsigned long long)off,
						     *retries + 1, lasterr);
			(*retries)++;
			sleep_ms(ctx, wait);
			/* no Range: the GET starts again from the first byte */
			h->passes--;
			if ((ret = stream_start(src, h)) < 0)
				return ret;
			step_rx = 0;
			continue;
		}
		if (h->paused)
			return scimg_int_err(ctx, -EIO, "'%s': internal error: stream paused at %llu",
					     src->name, (unsigned long long)h->win_end);
		mc = curl_multi_perform(h->multi, &running);
		if (mc != CURLM_OK)
			return scimg_int_err(ctx, -EIO, "'%s': %s", src->name,
					     curl_multi_strerror(mc));
		while ((m = curl_multi_info_read(h->multi, &left)))
			if (m->msg == CURLMSG_DONE && m->easy_handle == h->curl) {
				h->done = 1;
				h->done_rc = m->data.result;
			}
		if (ctx->cancelled)
			return scimg_int_err(ctx, -ECANCELED, "interrupted");
		if (h->done && h->done_rc == CURLE_OK && h->win_end < src->size &&
		    h->status == 200 && !h->stream_msg[0])
			h->done_rc = CURLE_PARTIAL_FILE;
		if (!h->done && !h->paused && h->win_end < target) {
			mc = curl_multi_poll(h->multi, NULL, 0, 100, NULL);
			if (mc != CURLM_OK)
				return scimg_int_err(ctx, -EIO, "'%s': %s", src->name,
						     curl_multi_strerror(mc));
		}
		if (h->paused && h->win_end < target)
			break;
	}
	return 0;
}

/* Read LEN bytes at OFF of a stream: from the first and last bytes kept,
 * the window, or further on in the stream.  A read behind the window
 * starts the GET again, up to STREAM_MAX_PASSES GETs in all. */
static int stream_pread(struct scimg_source *src, struct http_source *h,
			uint8_t *p, size_t len, uint64_t off)
{
	unsigned retries = 0;
	uint64_t from = off;
	size_t n;
	int ret;

	if (off > src->size || len > src->size - off)
		return scimg_int_err(src->ctx, -EIO, "'%s': unexpected end of data at offset %llu",
				     src->name, (unsigned long long)off);
	/* each turn copies bytes, or makes the stream move on; a stream
	 * ends (every wait is bounded) and restarts are bounded */
	while (len) {
		if (off < h->head_len) {
			n = (size_t)(h->head_len - off) < len ? (size_t)(h->head_len - off) : len;
			memcpy(p, h->head + off, n);
		} else if (off >= h->tail_off && off - h->tail_off < h->tail_len) {
			n = (size_t)(h->tail_len - (off - h->tail_off));
			if (n > len)
				n = len;
			memcpy(p, h->tail + (off - h->tail_off), n);
		} else if (h->in_multi && off >= h->win_start && off < h->win_end) {
			size_t r = (size_t)(off % STREAM_WINDOW);
			n = (size_t)(h->win_end - off) < len ? (size_t)(h->win_end - off) : len;
			if (n > STREAM_WINDOW - r)
				n = STREAM_WINDOW - r;
			memcpy(p, h->ring + r, n);
		} else if (!h->in_multi || off < h->win_start) {
			if (h->passes >= STREAM_MAX_PASSES)
				return scimg_int_err(src->ctx, -ENOTSUP,
						     "'%s': the server does not support Range requests, so this file of more than %u MiB is read as a stream, front to back; its format reads it out of order (offset %llu with the stream at %llu, after %u GETs), which needs a server with Range support (or download the file first)",
						     src->name, WHOLE_MAX >> 20, (unsigned long long)off,
						     (unsigned long long)h->win_end, h->passes);
			if ((ret = stream_start(src, h)) < 0)
				return ret;
			continue;
		} else {
			uint64_t target = off + (len < STREAM_WINDOW / 2 ? len : STREAM_WINDOW / 2);
			h->need_from = off;
			ret = stream_pump(src, h, target, len, from, &retries);
			if (ret < 0)
				return ret;
			if (!h->tail_kept && h->tail_len == src->size - h->tail_off)
				tail_keep(src, h);
			continue;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Keep the tail of H on the context (once it is complete). */
static void tail_keep(struct scimg_source *src, struct http_source *h)
{
	struct scimg_int_http_tail *t, **pp;
	size_t ul = strlen(h->url) + 1;
	unsigned n = 0;

	h->tail_kept = 1;
	t = malloc(sizeof(*t) + ul);
	if (!t)
		return; /* only an optimisation */
	t->size = src->size;
	snprintf(t->etag, sizeof(t->etag), "%s", h->have_etag ? h->etag : "");
	t->len = h->tail_len;
	memcpy(t->data, h->tail, h->tail_len);
	memcpy(t->url, h->url, ul);
	pthread_mutex_lock(&pin_lock);
	t->next = src->ctx->http_tails;
	src->ctx->http_tails = t;
	/* the oldest beyond TAILS_MAX go */
	for (pp = &t->next; *pp; n++) {
		if (n + 1 >= TAILS_MAX) {
			struct scimg_int_http_tail *o = *pp;
			*pp = o->next;
			free(o);
		} else {
			pp = &(*pp)->next;
		}
	}
	pthread_mutex_unlock(&pin_lock);
}

/* The tail of H from the context, when the same file was read before. */
static void tail_lookup(struct scimg_source *src, struct http_source *h)
{
	struct scimg_int_http_tail *t;

	pthread_mutex_lock(&pin_lock);
	for (t = src->ctx->http_tails; t; t = t->next)
		if (strcmp(t->url, h->url) == 0 && t->size == src->size &&
		    strcmp(t->etag, h->have_etag ? h->etag : "") == 0 &&
		    t->len == src->size - h->tail_off) {
			memcpy(h->tail, t->data, t->len);
			h->tail_len = t->len;
			h->tail_kept = 1;
			break;
		}
	pthread_mutex_unlock(&pin_lock);
}

/* Turn H into a stream of SIZE bytes: the block cache gives way to the
 * window.  The GET is started by the first read. */
static int stream_init(struct scimg_source *src, struct http_source *h, uint64_t size)
{
	unsigned i;

	for (i = 0; i < CACHE_BLOCKS; i++) {
		free(h->cache[i].data);
		h->cache[i].data = NULL;
	}
	free(h->fetchbuf);
	h->fetchbuf = NULL;
	h->is_stream = 1;
	h->src_size = size;
	h->tail_off = size > STREAM_TAIL ? size - STREAM_TAIL : 0;
	h->multi = curl_multi_init();
	h->ring = malloc(STREAM_WINDOW);
	h->head = malloc(STREAM_HEAD);
	h->tail = malloc(STREAM_TAIL);
	if (!h->multi || !h->ring || !h->head || !h->tail)
		return scimg_int_err(src->ctx, -ENOMEM, "out of memory");
	src->size = size;
	tail_lookup(src, h);
	return 0;
}

static int http_pread(struct scimg_source *src, void *buf, size_t len,
		      uint64_t off)
{
	struct http_source *h = src->priv;
	uint8_t *p = buf;
	int ret;

	if (h->is_stream)
		return stream_pread(src, h, p, len, off);

	if (h->is_whole) {
		if (off > h->whole_len || len > h->whole_len - off)
			return scimg_int_err(src->ctx, -EIO,
					     "'%s': unexpected end of data at offset %llu",
					     src->name, (unsigned long long)off);
		memcpy(p, h->whole + off, len);
		return 0;
	}
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
	if (h->multi && h->in_multi)
		curl_multi_remove_handle(h->multi, h->curl);
	if (h->curl)
		curl_easy_cleanup(h->curl);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	for (i = 0; i < CACHE_BLOCKS; i++)
		free(h->cache[i].data);
	free(h->fetchbuf);
	free(h->ring);
	free(h->head);
	free(h->tail);
	free(h->whole);
	free(h->url);
	free(h->host);
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

	limits_of(ctx, &h->lim);
	h->origin = -1;
	h->ctx = ctx;
	{
		CURLU *u = curl_url();
		char *host = NULL;
		if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
			h->host = strdup(host);
			for (char *c = h->host; c && *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
		}
		curl_free(host);
		curl_url_cleanup(u);
	}
	h->curl = curl_easy_init();
	if (!h->curl)
		goto nomem;
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h->curl, CURLOPT_MAXREDIRS, (long)h->lim.max_redirects);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "scimg/" SCIMG_VERSION_STRING);
	/* the connect timeout, the low-speed limit and the deadlines are
	 * watched by on_progress (which names the limit hit); libcurl's
	 * connect timeout is a backstop */
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 h->lim.connect_timeout_ms ? (long)h->lim.connect_timeout_ms + 1000L : 0L);
	curl_easy_setopt(h->curl, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	curl_easy_setopt(h->curl, CURLOPT_OPENSOCKETDATA, h);
	/* a redirect never carries credentials to another host */
	curl_easy_setopt(h->curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
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
	if (ret == 1 && (ret = stream_init(src, h, size)) < 0)
		goto fail;
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
