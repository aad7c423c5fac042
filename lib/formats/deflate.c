/* deflate.c - per-thread compressor state shared by the format writers.
 *
 * Compressing writers run on the convert engine's worker threads, one unit
 * (a 64 KiB grain or cluster) at a time.  Setting up a compressor costs
 * more than compressing such a unit (zlib's deflateInit2 allocates ~270 KiB,
 * libdeflate's compressors more), so each thread keeps its own, made on
 * first use and freed by a pthread key destructor when the thread ends.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/deflate.h"

struct thread_state {
	struct libdeflate_compressor *c1, *c6;
	z_stream zs;
	int zs_ok;
	z_stream gz;   /* raw deflate, 32 KiB window, at gz_level */
	int gz_ok, gz_level;
};

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static int state_key_ok;

static void state_free(void *arg)
{
	struct thread_state *t = arg;

	if (t->c1)
		libdeflate_free_compressor(t->c1);
	if (t->c6)
		libdeflate_free_compressor(t->c6);
	if (t->zs_ok)
		deflateEnd(&t->zs);
	if (t->gz_ok)
		deflateEnd(&t->gz);
	free(t);
}

static void state_key_init(void)
{
	state_key_ok = pthread_key_create(&state_key, state_free) == 0;
}

static struct thread_state *thread_state(void)
{
	struct thread_state *t;

	pthread_once(&state_once, state_key_init);
	if (!state_key_ok)
		return NULL;
	t = pthread_getspecific(state_key);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (t && pthread_setspecific(state_key, t) != 0) {
			free(t);
			t = NULL;
		}
	}
	return t;
}

struct libdeflate_compressor *scimg_int_thread_deflater(int level)
{
	struct thread_state *t = thread_state();
	struct libdeflate_compressor **slot;

	if (!t || (level != 1 && level != 6))
		return NULL;
	slot = level == 1 ? &t->c1 : &t->c6;
	if (!*slot)
		*slot = libdeflate_alloc_compressor(level);
	return *slot;
}

z_stream *scimg_int_thread_qcow2_zstream(void)
{
	struct thread_state *t = thread_state();

	if (!t)
		return NULL;
	if (!t->zs_ok) {
		memset(&t->zs, 0, sizeof(t->zs));
		if (deflateInit2(&t->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return NULL;
		t->zs_ok = 1;
	} else if (deflateReset(&t->zs) != Z_OK) {
		return NULL;
	}
	return &t->zs;
}

z_stream *scimg_int_thread_gzip_zstream(int level)
{
	struct thread_state *t = thread_state();

	if (!t)
		return NULL;
	if (t->gz_ok && t->gz_level != level) {
		deflateEnd(&t->gz);
		t->gz_ok = 0;
	}
	if (!t->gz_ok) {
		memset(&t->gz, 0, sizeof(t->gz));
		if (deflateInit2(&t->gz, level, Z_DEFLATED, -MAX_WBITS, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return NULL;
		t->gz_ok = 1;
		t->gz_level = level;
	} else if (deflateReset(&t->gz) != Z_OK) {
		return NULL;
	}
	return &t->gz;
}

size_t scimg_int_deflate_stored(const void *in, size_t len, void *out)
{
	const uint8_t *p = in;
	uint8_t *o = out;

	while (len) {
		size_t k = len < 65535 ? len : 65535;

		/* BFINAL 0, BTYPE 00, then LEN and its complement, from a byte
		 * boundary */
		o[0] = 0;
		o[1] = (uint8_t)k;
		o[2] = (uint8_t)(k >> 8);
		o[3] = (uint8_t)~k;
		o[4] = (uint8_t)(~k >> 8);
		memcpy(o + 5, p, k);
		o += 5 + k;
		p += k;
		len -= k;
	}
	return (size_t)(o - (uint8_t *)out);
}

int scimg_int_deflate_shrinks(const void *in, size_t len, void *scratch,
			      size_t scratch_len)
{
	struct libdeflate_compressor *c = scimg_int_thread_deflater(1);

	if (!c || len == 0 || scratch_len < len)
		return 1;
	/* 0 from libdeflate: the output did not fit in LEN bytes */
	return libdeflate_deflate_compress(c, in, len, scratch, len) != 0;
}
