/* test-digest.c - lib/package/digest.c: the SHA-256 passes run in a thread
 * of their own (the SCI build's) give what the same pass gives in the
 * calling thread; a job ended early (abort) or whose context is cancelled
 * ends without a digest, and its thread is joined. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "package/package.h"
#include "unit.h"

int main(void)
{
	char path[] = "/tmp/scimg-test-digest.XXXXXX";
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct scimg_source *src = NULL;
	struct scimg_image *img = NULL;
	struct scimg_sha256_job *job = NULL;
	scimg_sha256_hex a, b, c;
	const size_t len = (5u << 20) + 333; /* not a whole number of chunks */
	uint8_t *buf = malloc(len);
	int fd, i;

	CHECK(ctx && buf);
	if (!ctx || !buf)
		UNIT_DONE();
	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)(k * 2654435761u >> 13);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, len) == (ssize_t)len);
	close(fd);

	/* a byte range: the thread's digest is the calling thread's */
	CHECK(scimg_int_source_open(ctx, path, &src) == 0);
	CHECK(scimg_int_sha256_source(src, 7, len - 7, a) == 0);
	CHECK(scimg_int_sha256_source_start(src, 7, len - 7, &job) == 0);
	CHECK(scimg_int_sha256_wait(job, b) == 0);
	CHECK(strcmp(a, b) == 0 && strlen(a) == 64);
	/* and both are the buffer's */
	CHECK(scimg_int_sha256_buf(ctx, buf + 7, len - 7, c) == 0);
	CHECK(strcmp(a, c) == 0);

	/* guest content of a raw image: the file's bytes */
	CHECK(scimg_image_open(ctx, path, "raw", &img) == 0);
	if (img) {
		CHECK(scimg_int_sha256_image_start(img, &job) == 0);
		CHECK(scimg_int_sha256_wait(job, b) == 0);
		CHECK(scimg_int_sha256_buf(ctx, buf, len, c) == 0);
		CHECK(strcmp(b, c) == 0);
	}

	/* abort, at once or a little later: no digest, nothing recorded,
	 * the thread joined (valgrind/helgrind would see it otherwise) */
	for (i = 0; i < 3; i++) {
		scimg_ctx_clear_error(ctx);
		CHECK(scimg_int_sha256_source_start(src, 0, len, &job) == 0);
		if (i)
			usleep(1000 * (useconds_t)i);
		scimg_int_sha256_abort(job);
		CHECK(scimg_ctx_errcode(ctx) == 0);
	}
	scimg_int_sha256_abort(NULL);

	/* a cancelled context ends the pass with -ECANCELED, named by wait */
	scimg_ctx_cancel(ctx);
	CHECK(scimg_int_sha256_source_start(src, 0, len, &job) == 0);
	CHECK(scimg_int_sha256_wait(job, b) == -ECANCELED);
	CHECK(scimg_ctx_errcode(ctx) == -ECANCELED);
	CHECK(strstr(scimg_ctx_errmsg(ctx), "interrupted") != NULL);
	if (img) {
		CHECK(scimg_int_sha256_image_start(img, &job) == 0);
		CHECK(scimg_int_sha256_wait(job, b) == -ECANCELED);
	}

	scimg_image_close(img);
	scimg_int_source_close(src);
	unlink(path);
	free(buf);
	scimg_ctx_free(ctx);
	UNIT_DONE();
}
