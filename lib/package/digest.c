/* package/digest.c - SHA-256 of buffers, byte ranges and guest content
 * (OpenSSL EVP). */
#include <openssl/evp.h>
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

int scimg_int_sha256_source(struct scimg_source *src, uint64_t off,
			    uint64_t len, scimg_sha256_hex out)
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
		if ((ret = scimg_int_check_cancel(ctx)) < 0)
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

int scimg_int_sha256_image(struct scimg_image *img, scimg_sha256_hex out)
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

		if ((ret = scimg_int_check_cancel(ctx)) < 0)
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
