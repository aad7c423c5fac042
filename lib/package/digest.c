/* package/digest.c - SHA-256 of buffers, byte ranges and guest content
 * (OpenSSL EVP), in the calling thread or in a thread of their own (the
 * SCI build hashes its input while the guest fix's appliance runs, and the
 * fixed disk's content while its tar member is written). */
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "package.h"

#define DIGEST_CHUNK (1u << 20)

void scimg_int_sha256_hex(const uint8_t md[32], scimg_sha256_hex out)
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

int scimg_int_sha256_buf(struct scimg_ctx *ctx, const void *buf, size_t len,
			 scimg_sha256_hex out)
{
	uint8_t md[32];
	unsigned mdlen = 0;

	if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return scimg_int_err(ctx, -EIO, "SHA-256 failed");
	scimg_int_sha256_hex(md, out);
	return 0;
}

/* STOP (may be NULL): set by another thread, the pass ends with
 * -ECANCELED at the next chunk */
static int stopped(struct scimg_ctx *ctx, const int *stop)
{
	if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
		return scimg_int_err(ctx, -ECANCELED, "interrupted");
	return scimg_int_check_cancel(ctx);
}

static int sha256_source(struct scimg_source *src, uint64_t off, uint64_t len,
			 const int *stop, scimg_sha256_hex out)
{
	struct scimg_ctx *ctx = src->ctx;
	EVP_MD_CTX *mdc = EVP_MD_CTX_new();
	uint8_t *buf = malloc(DIGEST_CHUNK), md[32];
	int ret = 0;

	if (!mdc || !buf || !EVP_DigestInit_ex(mdc, EVP_sha256(), NULL)) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	while (len) {
		size_t n = len < DIGEST_CHUNK ? (size_t)len : DIGEST_CHUNK;
		if ((ret = stopped(ctx, stop)) < 0)
			goto out;
		if ((ret = scimg_int_source_read(src, buf, n, off, "data")) < 0)
			goto out;
		EVP_DigestUpdate(mdc, buf, n);
		off += n;
		len -= n;
	}
	EVP_DigestFinal_ex(mdc, md, NULL);
	scimg_int_sha256_hex(md, out);
out:
	EVP_MD_CTX_free(mdc);
	free(buf);
	return ret;
}

int scimg_int_sha256_source(struct scimg_source *src, uint64_t off,
			    uint64_t len, scimg_sha256_hex out)
{
	return sha256_source(src, off, len, NULL, out);
}

static int sha256_image(struct scimg_image *img, const int *stop, scimg_sha256_hex out)
{
	struct scimg_ctx *ctx = img->ctx;
	EVP_MD_CTX *mdc = EVP_MD_CTX_new();
	uint8_t *buf = malloc(DIGEST_CHUNK), *zero = calloc(1, DIGEST_CHUNK), md[32];
	uint64_t pos = 0;
	int ret = 0;

	if (!mdc || !buf || !zero || !EVP_DigestInit_ex(mdc, EVP_sha256(), NULL)) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	while (pos < img->size) {
		struct scimg_extent e;
		uint64_t left;

		if ((ret = stopped(ctx, stop)) < 0)
			goto out;
		ret = scimg_image_block_status(img, pos, img->size - pos, &e);
		if (ret < 0)
			goto out;
		left = e.length;
		while (left) {
			size_t n = left < DIGEST_CHUNK ? (size_t)left : DIGEST_CHUNK;
			if (e.type == SCIMG_EXTENT_DATA) {
				if ((ret = scimg_image_pread(img, buf, n, pos)) < 0)
					goto out;
				EVP_DigestUpdate(mdc, buf, n);
			} else {
				EVP_DigestUpdate(mdc, zero, n);
			}
			pos += n;
			left -= n;
		}
	}
	EVP_DigestFinal_ex(mdc, md, NULL);
	scimg_int_sha256_hex(md, out);
out:
	EVP_MD_CTX_free(mdc);
	free(buf);
	free(zero);
	return ret;
}

int scimg_int_sha256_image(struct scimg_image *img, scimg_sha256_hex out)
{
	return sha256_image(img, NULL, out);
}

/* ---- in a thread of their own ------------------------------------------ */

struct scimg_sha256_job {
	struct scimg_ctx *ctx;
	struct scimg_source *src; /* a byte range of SRC, or */
	uint64_t off, len;
	struct scimg_image *img;  /* the guest content of IMG */
	pthread_t thread;
	int running;              /* THREAD is to be joined */
	int stop;                 /* set (atomically) to end the pass early */
	int ret;
	scimg_sha256_hex hex;
	char err[sizeof(((struct scimg_ctx *)0)->errmsg)];
};

static void *job_main(void *opaque)
{
	struct scimg_sha256_job *j = opaque;

	/* the context's message belongs to the thread that started the job */
	scimg_int_err_redirect(j->err, sizeof(j->err));
	if (j->img)
		j->ret = sha256_image(j->img, &j->stop, j->hex);
	else
		j->ret = sha256_source(j->src, j->off, j->len, &j->stop, j->hex);
	scimg_int_err_redirect(NULL, 0);
	return NULL;
}

static int job_start(struct scimg_ctx *ctx, struct scimg_source *src, uint64_t off,
		     uint64_t len, struct scimg_image *img, struct scimg_sha256_job **out)
{
	struct scimg_sha256_job *j = calloc(1, sizeof(*j));
	sigset_t all, old;

	*out = NULL;
	if (!j)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	j->ctx = ctx;
	j->src = src;
	j->off = off;
	j->len = len;
	j->img = img;
	/* signals (SIGINT, SIGTERM) stay with the threads that handled them
	 * before: the thread starts with all of them blocked */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&j->thread, NULL, job_main, j) == 0)
		j->running = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!j->running)
		job_main(j); /* no thread to be had: the pass runs here and now */
	*out = j;
	return 0;
}

int scimg_int_sha256_source_start(struct scimg_source *src, uint64_t off, uint64_t len,
				  struct scimg_sha256_job **out)
{
	return job_start(src->ctx, src, off, len, NULL, out);
}

int scimg_int_sha256_image_start(struct scimg_image *img, struct scimg_sha256_job **out)
{
	return job_start(img->ctx, NULL, 0, 0, img, out);
}

int scimg_int_sha256_wait(struct scimg_sha256_job *j, scimg_sha256_hex out)
{
	int ret;

	if (j->running)
		pthread_join(j->thread, NULL);
	ret = j->ret;
	if (ret < 0)
		scimg_int_err(j->ctx, ret, "%s", j->err);
	else
		memcpy(out, j->hex, sizeof(scimg_sha256_hex));
	free(j);
	return ret;
}

void scimg_int_sha256_abort(struct scimg_sha256_job *j)
{
	if (!j)
		return;
	__atomic_store_n(&j->stop, 1, __ATOMIC_RELEASE);
	if (j->running)
		pthread_join(j->thread, NULL);
	free(j);
}
