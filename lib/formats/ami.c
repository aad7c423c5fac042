/* formats/ami.c - EC2 instance-store AMI bundles (ec2-bundle-image /
 * ec2-unbundle): the reader, and the format's registration.
 *
 * The image path is the manifest (PREFIX.manifest.xml, local or a URL); its
 * parts are read from the manifest's directory and may not name anything
 * outside it.  `scimg info` needs neither the key nor the parts: it shows
 * the manifest, checks the signature when a key or certificate is given,
 * and lists missing parts.  Reading the image needs the user's private key
 * (-I privatekey=FILE).
 *
 * Reading is a stream, never a temporary copy: part (read whole, at most
 * 16 MiB, and its SHA-1 checked before any byte of it is used) ->
 * AES-128-CBC -> gunzip -> tar (libarchive, which also handles GNU sparse
 * members: their holes are reported as holes).  The SHA-1 of the whole tar
 * stream and the bundled size are checked when the stream ends, which
 * happens during the read of the last byte or the block status of a final
 * hole, so a conversion fails - and leaves nothing - when they do not match.
 *
 * Random access: the stream cannot seek.  Reads at or after the current
 * position move forward (skipping what is not asked for); a read before it
 * restarts the stream from part 0.  The copy engine reads in increasing
 * order, so a conversion passes over the bundle once.
 *
 * Memory: one part buffer (<= 16 MiB) plus a few 256 KiB buffers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <zlib.h>

#include "ami-int.h"
#include "formats.h"

#define CHUNK (256u << 10)
#define HEAD_BYTES (128u << 10)
/* tar headers, padding, GNU sparse maps: the tar stream may exceed the
 * member's size by this much before it is refused as a bomb */
#define TAR_SLACK (UINT64_C(64) << 20)

struct ami_reader {
	struct ami_manifest m;
	EVP_PKEY *key, *cert;
	const char *keyfile, *certfile;
	int sig_verified;
	int have_aes;
	uint8_t aes_key[16], aes_iv[16];

	/* the stream */
	int active;
	size_t part;                 /* next part to load */
	uint8_t *pbuf;
	size_t pcap, plen, ppos;
	uint64_t bundled;            /* part bytes loaded */
	EVP_CIPHER_CTX *cc;
	int cfinal;
	uint8_t *dbuf;
	size_t dlen, dpos;
	uint64_t dtotal;             /* decrypted bytes */
	z_stream zs;
	int zinit, zend, gz_done;
	uint8_t *tbuf;
	EVP_MD_CTX *sha;
	uint64_t tar_bytes;
	struct archive *ar;
	int cb_err;
	char *member;

	/* position in the member */
	const uint8_t *blk;
	size_t blk_len;
	uint64_t blk_off, prev_end;
	int data_eof, verified;
};

/* ---- probe ------------------------------------------------------------ */

static int ami_probe(const struct scimg_probe *p)
{
	const char *h = (const char *)p->head, *e = h + p->head_len;
	int score;

	if (p->file_size > AMI_MAX_MANIFEST || p->head_len < 10)
		return 0;
	if (e - h >= 3 && memcmp(h, "\xef\xbb\xbf", 3) == 0)
		h += 3;
	for (;;) {
		while (h < e && (*h == ' ' || *h == '\t' || *h == '\r' || *h == '\n'))
			h++;
		if (e - h >= 5 && memcmp(h, "<?xml", 5) == 0) {
			const char *c = memmem(h, (size_t)(e - h), "?>", 2);
			if (!c)
				return 0;
			h = c + 2;
		} else if (e - h >= 4 && memcmp(h, "<!--", 4) == 0) {
			const char *c = memmem(h, (size_t)(e - h), "-->", 3);
			if (!c)
				return 0;
			h = c + 3;
		} else {
			break;
		}
	}
	if (e - h < 10 || memcmp(h, "<manifest", 9) != 0 ||
	    !(h[9] == '>' || h[9] == ' ' || h[9] == '\t' || h[9] == '\r' || h[9] == '\n'))
		return 0;
	score = 60;
	if (memmem(h, (size_t)(e - h), "<parts", 6) ||
	    memmem(h, (size_t)(e - h), "encrypted_key", 13))
		score = 90;
	return score;
}

/* ---- the stream ------------------------------------------------------- */

static void stream_free(struct ami_reader *r)
{
	if (r->ar)
		archive_read_free(r->ar);
	r->ar = NULL;
	if (r->zinit)
		inflateEnd(&r->zs);
	r->zinit = 0;
	EVP_CIPHER_CTX_free(r->cc);
	r->cc = NULL;
	EVP_MD_CTX_free(r->sha);
	r->sha = NULL;
	free(r->member);
	r->member = NULL;
	r->active = 0;
}

static const char *part_name(const struct ami_reader *r, size_t i)
{
	return r->m.parts[i].filename;
}

/* Read part I whole and check its SHA-1. */
static int load_part(struct scimg_image *img, struct ami_reader *r, size_t i)
{
	struct scimg_ctx *ctx = img->ctx;
	struct scimg_source *s = NULL;
	uint8_t md[20];
	char *path = NULL;
	int ret;

	ret = scimg_int_ref_open(img, part_name(r, i), &s);
	if (ret < 0) {
		scimg_int_err_prefix(ctx, "'%s': part %zu '%s' (<image>/<parts>/<part index='%zu'>)",
				     img->path, i, part_name(r, i), i);
		goto out;
	}
	if (s->size == 0 || s->size > AMI_MAX_PART_SIZE) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': part %zu '%s' is %llu bytes, expected 1 to %u (ec2-bundle-image writes %u-byte parts)",
				    img->path, i, part_name(r, i),
				    (unsigned long long)s->size, AMI_MAX_PART_SIZE, AMI_PART_SIZE);
		goto out;
	}
	if (r->pcap < s->size) {
		uint8_t *nb = realloc(r->pbuf, (size_t)s->size);
		if (!nb) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto out;
		}
		r->pbuf = nb;
		r->pcap = (size_t)s->size;
	}
	ret = scimg_int_source_read(s, r->pbuf, (size_t)s->size, 0, "part");
	if (ret < 0)
		goto out;
	if (!EVP_Digest(r->pbuf, (size_t)s->size, md, NULL, EVP_sha1(), NULL)) {
		ret = scimg_int_err(ctx, -EIO, "SHA-1 failed");
		goto out;
	}
	if (memcmp(md, r->m.parts[i].digest, 20) != 0) {
		char a[41], b[41];
		scimg_int_ami_hex(md, 20, a);
		scimg_int_ami_hex(r->m.parts[i].digest, 20, b);
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': part %zu '%s' has SHA-1 %s, but <image>/<parts>/<part index='%zu'>/<digest> says %s (damaged or altered part)",
				    img->path, i, part_name(r, i), a, i, b);
		goto out;
	}
	r->plen = (size_t)s->size;
	r->ppos = 0;
	r->bundled += s->size;
	ret = 0;
out:
	scimg_int_source_close(s);
	free(path);
	return ret;
}

/* Make decrypted bytes available in dbuf; *eof when there are no more. */
static int fill(struct scimg_image *img, struct ami_reader *r, int *eof)
{
	int outl, ret;

	*eof = 0;
	while (r->dpos == r->dlen) {
		if (r->cfinal) {
			*eof = 1;
			return 0;
		}
		r->dpos = r->dlen = 0;
		if (r->ppos == r->plen) {
			if (r->part < r->m.nparts) {
				ret = load_part(img, r, r->part);
				if (ret < 0)
					return ret;
				r->part++;
				continue;
			}
			if (EVP_DecryptFinal_ex(r->cc, r->dbuf, &outl) != 1)
				return scimg_int_err(img->ctx, -EINVAL,
						     "'%s': decryption failed at the end of the last part '%s' (bad padding): a part is missing from the manifest, or the bundle is damaged",
						     img->path, part_name(r, r->m.nparts - 1));
			r->cfinal = 1;
			r->dlen = (size_t)outl;
		} else {
			size_t n = r->plen - r->ppos;
			if (n > CHUNK)
				n = CHUNK;
			if (EVP_DecryptUpdate(r->cc, r->dbuf, &outl, r->pbuf + r->ppos,
					      (int)n) != 1)
				return scimg_int_err(img->ctx, -EIO, "'%s': AES decryption failed",
						     img->path);
			r->ppos += n;
			r->dlen = (size_t)outl;
		}
		if (r->dtotal == 0 && r->dlen >= 2 &&
		    (r->dbuf[0] != 0x1f || r->dbuf[1] != 0x8b))
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': decrypted part 0 '%s' is not gzip data: the key and IV from <image>/<user_encrypted_key> and <user_encrypted_iv> do not open this bundle (wrong or altered key)",
					     img->path, part_name(r, 0));
		r->dtotal += r->dlen;
	}
	return 0;
}

/* Produce up to CAP bytes of the tar stream into OUT (*got = 0 at end). */
static int produce(struct scimg_image *img, struct ami_reader *r, uint8_t *out,
		   size_t cap, size_t *got)
{
	int eof, ret, zr;

	*got = 0;
	while (*got == 0) {
		if (r->gz_done)
			return 0;
		if (r->zend) {
			if ((ret = fill(img, r, &eof)) < 0)
				return ret;
			if (eof) {
				r->gz_done = 1;
				return 0;
			}
			if (r->dbuf[r->dpos] != 0x1f)
				return scimg_int_err(img->ctx, -EINVAL,
						     "'%s': %llu bytes of data follow the end of the compressed stream (in part %zu '%s')",
						     img->path,
						     (unsigned long long)(r->dlen - r->dpos),
						     r->part - 1, part_name(r, r->part - 1));
			inflateReset(&r->zs);
			r->zend = 0;
		}
		if (r->zs.avail_in == 0) {
			if ((ret = fill(img, r, &eof)) < 0)
				return ret;
			if (eof)
				return scimg_int_err(img->ctx, -EINVAL,
						     "'%s': the compressed stream ends before its end marker (a part is missing from the manifest or truncated)",
						     img->path);
			r->zs.next_in = r->dbuf + r->dpos;
			r->zs.avail_in = (uInt)(r->dlen - r->dpos);
			r->dpos = r->dlen;
		}
		r->zs.next_out = out;
		r->zs.avail_out = (uInt)cap;
		zr = inflate(&r->zs, Z_NO_FLUSH);
		*got = cap - r->zs.avail_out;
		if (zr == Z_STREAM_END) {
			r->zend = 1;
			r->dpos = r->dlen - r->zs.avail_in;
			r->zs.avail_in = 0;
		} else if (zr != Z_OK && zr != Z_BUF_ERROR) {
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': gzip data is corrupt (%s) near part %zu '%s': damaged part or wrong key",
					     img->path, r->zs.msg ? r->zs.msg : "inflate error",
					     r->part ? r->part - 1 : 0,
					     part_name(r, r->part ? r->part - 1 : 0));
		}
	}
	r->tar_bytes += *got;
	if (r->tar_bytes > r->m.size + TAR_SLACK)
		return scimg_int_err(img->ctx, -EFBIG,
				     "'%s': the tar stream exceeds the <image>/<size> of %llu bytes by more than %llu bytes",
				     img->path, (unsigned long long)r->m.size,
				     (unsigned long long)TAR_SLACK);
	if (EVP_DigestUpdate(r->sha, out, *got) != 1)
		return scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
	return 0;
}

static la_ssize_t ar_read(struct archive *a, void *opaque, const void **buf)
{
	struct scimg_image *img = opaque;
	struct ami_reader *r = img->priv;
	size_t n;
	int ret;

	ret = produce(img, r, r->tbuf, CHUNK, &n);
	if (ret < 0) {
		r->cb_err = ret;
		archive_set_error(a, EIO, "%s", scimg_ctx_errmsg(img->ctx));
		return -1;
	}
	*buf = r->tbuf;
	return (la_ssize_t)n;
}

static int ar_fail(struct scimg_image *img, struct ami_reader *r, const char *what)
{
	if (r->cb_err)
		return r->cb_err;
	return scimg_int_err(img->ctx, -EINVAL, "'%s': %s: %s", img->path, what,
			     archive_error_string(r->ar) ? archive_error_string(r->ar)
							 : "tar error");
}

/* A path inside the tar must be relative and must not climb. */
static int safe_member_name(const char *p)
{
	const char *s = p;

	if (!p || !*p || *p == '/')
		return 0;
	while (*s) {
		size_t l = strcspn(s, "/");
		if (l == 2 && s[0] == '.' && s[1] == '.')
			return 0;
		s += l;
		while (*s == '/')
			s++;
	}
	return 1;
}

static int stream_start(struct scimg_image *img, struct ami_reader *r)
{
	struct archive_entry *e;
	const char *name;
	int ret;

	stream_free(r);
	memset(&r->zs, 0, sizeof(r->zs));
	if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	r->zinit = 1;
	r->cc = EVP_CIPHER_CTX_new();
	r->sha = EVP_MD_CTX_new();
	if (!r->cc || !r->sha || EVP_DigestInit_ex(r->sha, EVP_sha1(), NULL) != 1 ||
	    EVP_DecryptInit_ex(r->cc, EVP_aes_128_cbc(), NULL, r->aes_key, r->aes_iv) != 1) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "could not set up AES-128-CBC and SHA-1");
		goto fail;
	}
	r->part = 0;
	r->plen = r->ppos = 0;
	r->bundled = 0;
	r->cfinal = 0;
	r->dlen = r->dpos = 0;
	r->dtotal = 0;
	r->zend = r->gz_done = 0;
	r->tar_bytes = 0;
	r->cb_err = 0;
	r->blk = NULL;
	r->blk_len = 0;
	r->blk_off = r->prev_end = 0;
	r->data_eof = r->verified = 0;
	r->ar = archive_read_new();
	if (!r->ar) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	archive_read_support_format_tar(r->ar);
	archive_read_support_format_gnutar(r->ar);
	if (archive_read_open2(r->ar, img, NULL, ar_read, NULL, NULL) != ARCHIVE_OK) {
		ret = ar_fail(img, r, "the decrypted, decompressed data is not a tar archive");
		goto fail;
	}
	ret = archive_read_next_header(r->ar, &e);
	if (ret == ARCHIVE_EOF) {
		ret = scimg_int_err(img->ctx, -EINVAL, "'%s': the bundle's tar archive is empty",
				    img->path);
		goto fail;
	}
	if (ret != ARCHIVE_OK && ret != ARCHIVE_WARN) {
		ret = ar_fail(img, r, "the decrypted, decompressed data is not a tar archive");
		goto fail;
	}
	name = archive_entry_pathname(e);
	r->member = strdup(name ? name : "");
	if (!r->member) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	if (!safe_member_name(name)) {
		ret = scimg_int_err(img->ctx, -EPERM,
				    "'%s': the bundle's tar member '%s' has an absolute path or '..'; refused",
				    img->path, r->member);
		goto fail;
	}
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) ||
	    archive_entry_symlink(e)) {
		ret = scimg_int_err(img->ctx, -EPERM,
				    "'%s': the bundle's tar member '%s' is not a regular file (link, device or directory); refused",
				    img->path, r->member);
		goto fail;
	}
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
	    (uint64_t)archive_entry_size(e) != r->m.size) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': the bundle's tar member '%s' is %lld bytes, but <image>/<size> says %llu",
				    img->path, r->member, (long long)archive_entry_size(e),
				    (unsigned long long)r->m.size);
		goto fail;
	}
	r->active = 1;
	return 0;
fail:
	stream_free(r);
	return ret;
}

/* The member's data is over: there must be nothing but the end of the
 * archive, and the digests and sizes must match. */
static int stream_finish(struct scimg_image *img, struct ami_reader *r)
{
	struct archive_entry *e;
	uint8_t md[20];
	unsigned mdl = 0;
	size_t n;
	int ret;

	ret = archive_read_next_header(r->ar, &e);
	if (ret == ARCHIVE_OK || ret == ARCHIVE_WARN) {
		const char *nm = archive_entry_pathname(e);
		return scimg_int_err(img->ctx, -EPERM,
				     "'%s': the bundle's tar holds more than one file ('%s' follows '%s'); refused",
				     img->path, nm ? nm : "?", r->member);
	}
	if (ret != ARCHIVE_EOF)
		return ar_fail(img, r, "tar archive");
	do {
		ret = produce(img, r, r->tbuf, CHUNK, &n);
		if (ret < 0)
			return ret;
	} while (n);
	if (r->part != r->m.nparts || r->ppos != r->plen)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': the compressed stream ends in part %zu '%s' of %zu: the parts after it are not part of the image",
				     img->path, r->part - 1, part_name(r, r->part - 1),
				     r->m.nparts);
	if (EVP_DigestFinal_ex(r->sha, md, &mdl) != 1)
		return scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
	if (memcmp(md, r->m.digest, 20) != 0) {
		char a[41], b[41];
		scimg_int_ami_hex(md, 20, a);
		scimg_int_ami_hex(r->m.digest, 20, b);
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': the tar stream has SHA-1 %s, but <image>/<digest> says %s",
				     img->path, a, b);
	}
	if (r->bundled != r->m.bundled_size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': the parts hold %llu bytes, but <image>/<bundled_size> says %llu",
				     img->path, (unsigned long long)r->bundled,
				     (unsigned long long)r->m.bundled_size);
	r->verified = 1;
	return 0;
}

static int next_block(struct scimg_image *img, struct ami_reader *r)
{
	const void *b;
	size_t sz;
	la_int64_t o;
	int ret;

	r->prev_end = r->blk_off + r->blk_len;
	for (;;) {
		ret = archive_read_data_block(r->ar, &b, &sz, &o);
		if (ret == ARCHIVE_EOF) {
			r->data_eof = 1;
			r->blk = NULL;
			r->blk_off = r->m.size;
			r->blk_len = 0;
			if (r->prev_end > r->m.size)
				r->prev_end = r->m.size;
			return stream_finish(img, r);
		}
		if (ret != ARCHIVE_OK && ret != ARCHIVE_WARN)
			return ar_fail(img, r, "reading the bundle's tar member");
		if (o < 0 || (uint64_t)o < r->prev_end || (uint64_t)o > r->m.size ||
		    sz > r->m.size - (uint64_t)o)
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': tar member data at offset %lld (%zu bytes) lies outside the file or goes backwards",
					     img->path, (long long)o, sz);
		if (sz == 0)
			continue;
		r->blk = b;
		r->blk_len = sz;
		r->blk_off = (uint64_t)o;
		return 0;
	}
}

/* Position the stream so that OFF is in the current block or gap. */
static int seek_to(struct scimg_image *img, struct ami_reader *r, uint64_t off)
{
	int ret;

	if (!r->active || off < r->prev_end) {
		ret = stream_start(img, r);
		if (ret < 0)
			return ret;
	}
	while (!r->data_eof && off >= r->blk_off + r->blk_len) {
		ret = next_block(img, r);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int need_key(struct scimg_image *img, struct ami_reader *r)
{
	if (!r->have_aes)
		return scimg_int_err(img->ctx, -ENOKEY,
				     "'%s': reading an AMI bundle's image needs the user's private key: give -I privatekey=FILE",
				     img->path);
	return 0;
}

static int ami_pread(struct scimg_image *img, void *buf, size_t len,
		     uint64_t off)
{
	struct ami_reader *r = img->priv;
	uint8_t *p = buf;
	int ret;

	if ((ret = need_key(img, r)) < 0)
		return ret;
	while (len) {
		size_t n;

		ret = seek_to(img, r, off);
		if (ret < 0)
			goto fail;
		if (off < r->blk_off) {
			uint64_t gap = r->blk_off - off;
			n = gap < len ? (size_t)gap : len;
			memset(p, 0, n);
		} else {
			n = (size_t)(r->blk_off + r->blk_len - off);
			if (n > len)
				n = len;
			memcpy(p, r->blk + (off - r->blk_off), n);
		}
		p += n;
		off += n;
		len -= n;
	}
	/* the last byte: make the stream end and be verified now */
	while (off == r->m.size && !r->data_eof) {
		ret = next_block(img, r);
		if (ret < 0)
			goto fail;
		if (!r->data_eof) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': tar member has data past its size", img->path);
			goto fail;
		}
	}
	return 0;
fail:
	stream_free(r);
	return ret;
}

static int ami_block_status(struct scimg_image *img, uint64_t off, uint64_t len,
			    struct scimg_extent *ext)
{
	struct ami_reader *r = img->priv;
	int ret;

	ext->offset = off;
	ext->length = len;
	ext->type = SCIMG_EXTENT_DATA;
	if (!r->have_aes || (r->active && off < r->prev_end) || (!r->active && off != 0))
		return 0;
	ret = seek_to(img, r, off);
	if (ret < 0) {
		stream_free(r);
		return ret;
	}
	if (off < r->blk_off) {
		ext->type = SCIMG_EXTENT_HOLE;
		if (r->blk_off - off < len)
			ext->length = r->blk_off - off;
	} else if (r->blk_off + r->blk_len - off < len) {
		ext->length = r->blk_off + r->blk_len - off;
	}
	return 0;
}

/* ---- open ------------------------------------------------------------- */

static int rsa_decrypt_hex16(struct scimg_image *img, struct ami_reader *r,
			     const uint8_t *in, size_t inlen, const char *elem,
			     uint8_t out[16])
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(r->key, NULL);
	uint8_t buf[AMI_MAX_RSA_BYTES];
	size_t outlen = sizeof(buf), i;
	int ok;

	if (!pc)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ok = EVP_PKEY_decrypt_init(pc) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
	     (size_t)EVP_PKEY_get_size(r->key) <= sizeof(buf) &&
	     EVP_PKEY_decrypt(pc, buf, &outlen, in, inlen) == 1;
	EVP_PKEY_CTX_free(pc);
	/* ec2-bundle-image encrypts the 32-character hex string */
	if (ok && outlen == 32) {
		for (i = 0; i < 32 && ok; i++)
			ok = (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
			     (buf[i] >= 'A' && buf[i] <= 'F');
	} else {
		ok = 0;
	}
	if (!ok)
		return scimg_int_err(img->ctx, -EKEYREJECTED,
				     "'%s': AMI manifest <image>/<%s> cannot be decrypted with privatekey '%s' to a 128-bit hex key: the bundle was made for another key, or the element was altered",
				     img->path, elem, r->keyfile);
	for (i = 0; i < 16; i++) {
		char h[3] = { (char)buf[2 * i], (char)buf[2 * i + 1], 0 };
		out[i] = (uint8_t)strtoul(h, NULL, 16);
	}
	return 0;
}

static int check_signature(struct scimg_image *img, struct ami_reader *r)
{
	EVP_PKEY *pub = r->cert ? r->cert : r->key;
	const char *what = r->cert ? "cert" : "privatekey";
	const char *file = r->cert ? r->certfile : r->keyfile;
	int ok;

	if (!pub)
		return 0;
	if (!r->m.signed_image || (r->m.version != AMI_V3 && !r->m.signed_mc &&
				   strstr(r->m.raw, "machine_configuration")))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': cannot find the signed text of <machine_configuration> and <image> (they must appear as plain '<image>' ... '</image>' tags)",
				     img->path);
	ok = scimg_int_ami_verify(pub, r->m.signed_mc ? r->m.signed_mc : "",
				  r->m.signed_mc_len, r->m.signed_image,
				  r->m.signed_image_len, r->m.signature,
				  r->m.signature_len);
	if (ok < 0)
		return scimg_int_err(img->ctx, ok, "out of memory");
	if (!ok)
		return scimg_int_err(img->ctx, -EBADMSG,
				     "'%s': AMI manifest <signature> does not match <machine_configuration> and <image> under %s '%s': the manifest was altered, or signed by another key",
				     img->path, what, file);
	r->sig_verified = 1;
	return 0;
}

static void ami_close(struct scimg_image *img)
{
	struct ami_reader *r = img->priv;

	if (img->writing) {
		scimg_int_ami_writer_close(img);
		return;
	}
	if (!r)
		return;
	stream_free(r);
	scimg_int_ami_manifest_free(&r->m);
	EVP_PKEY_free(r->key);
	EVP_PKEY_free(r->cert);
	free(r->pbuf);
	free(r->dbuf);
	free(r->tbuf);
	OPENSSL_cleanse(r->aes_key, sizeof(r->aes_key));
	free(r);
	img->priv = NULL;
}

static int ami_open(struct scimg_image *img)
{
	struct scimg_source *src = img->src;
	struct ami_reader *r;
	char *raw;
	int ret;

	if (src->size == 0 || src->size > AMI_MAX_MANIFEST)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': an AMI manifest is 1 to %u bytes, this file is %llu",
				     img->path, AMI_MAX_MANIFEST, (unsigned long long)src->size);
	r = calloc(1, sizeof(*r));
	raw = malloc((size_t)src->size + 1);
	if (!r || !raw) {
		free(r);
		free(raw);
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	}
	img->priv = r;
	ret = scimg_int_source_read(src, raw, (size_t)src->size, 0, "manifest");
	if (ret < 0) {
		free(raw);
		goto fail;
	}
	raw[src->size] = '\0';
	ret = scimg_int_ami_manifest_parse(img->ctx, img->path, raw, (size_t)src->size, &r->m);
	if (ret < 0)
		goto fail;
	img->size = r->m.size;
	r->keyfile = scimg_int_opts_get(&img->opts, "privatekey");
	r->certfile = scimg_int_opts_get(&img->opts, "cert");
	if (r->keyfile &&
	    (ret = scimg_int_ami_load_key(img->ctx, r->keyfile, "privatekey", &r->key)) < 0)
		goto fail;
	if (r->certfile &&
	    (ret = scimg_int_ami_load_cert(img->ctx, r->certfile, "cert", &r->cert)) < 0)
		goto fail;
	/* the key first: a wrong key is named as such, not as a bad signature */
	if (r->key &&
	    ((ret = rsa_decrypt_hex16(img, r, r->m.user_key, r->m.user_key_len,
				      "user_encrypted_key", r->aes_key)) < 0 ||
	     (ret = rsa_decrypt_hex16(img, r, r->m.user_iv, r->m.user_iv_len,
				      "user_encrypted_iv", r->aes_iv)) < 0))
		goto fail;
	if ((ret = check_signature(img, r)) < 0)
		goto fail;
	if (r->key) {
		r->dbuf = malloc(CHUNK + 32);
		r->tbuf = malloc(CHUNK);
		if (!r->dbuf || !r->tbuf) {
			ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		r->have_aes = 1;
		if (r->m.size == 0) {
			/* nothing will be read: verify the bundle now */
			if ((ret = seek_to(img, r, 0)) < 0)
				goto fail;
		}
	}
	if (strcmp(img->src->ops->name, "file") == 0 &&
	    (img->ctx->flags & SCIMG_CTX_ALLOW_BACKING)) {
		/* parts are read later, one at a time: record the local ones
		 * in the chain now, so that no output replaces them; a part
		 * that cannot be opened is reported when it is read */
		for (size_t i = 0; i < r->m.nparts; i++) {
			struct scimg_source *ps = NULL;
			if (scimg_int_ref_open(img, part_name(r, i), &ps) == 0)
				scimg_int_source_close(ps);
		}
		scimg_ctx_clear_error(img->ctx);
	}
	return 0;
fail:
	ami_close(img);
	return ret;
}

/* ---- info ------------------------------------------------------------- */

static void add_str(json_object *o, const char *k, const char *v)
{
	if (v)
		json_object_object_add(o, k, json_object_new_string(v));
}

static json_object *str_array(char **l, size_t n)
{
	json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; a && i < n; i++)
		json_object_array_add(a, json_object_new_string(l[i]));
	return a;
}

static int ami_info(struct scimg_image *img, json_object *info)
{
	json_object *o = scimg_int_info_details(info);
	struct ami_reader *r = img->priv;
	struct ami_manifest *m = &r->m;
	json_object *parts, *missing, *b;
	char hex[41], content[160];
	size_t i, nmissing = 0;

	if (!o)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	add_str(o, "manifest-version", m->version_text);
	if (m->bundler_name || m->bundler_version || m->bundler_release) {
		b = json_object_new_object();
		add_str(b, "name", m->bundler_name);
		add_str(b, "version", m->bundler_version);
		add_str(b, "release", m->bundler_release);
		json_object_object_add(o, "bundler", b);
	}
	add_str(o, "name", m->name);
	add_str(o, "user", m->user);
	add_str(o, "image-type", m->type ? m->type : "machine");
	add_str(o, "architecture", m->arch ? m->arch :
		m->version == AMI_V3 ? "i386 (version 3 default)" : NULL);
	add_str(o, "kernel-id", m->kernel_id);
	add_str(o, "ramdisk-id", m->ramdisk_id);
	add_str(o, "kernel-name", m->kernel_name);
	if (m->n_product_codes)
		json_object_object_add(o, "product-codes",
				       str_array(m->product_codes, m->n_product_codes));
	if (m->n_ancestry)
		json_object_object_add(o, "ancestry", str_array(m->ancestry, m->n_ancestry));
	if (m->n_bdm) {
		b = json_object_new_object();
		for (i = 0; i < m->n_bdm; i++)
			add_str(b, m->bdm[i].virt, m->bdm[i].device);
		json_object_object_add(o, "block-device-mapping", b);
	}
	scimg_int_ami_hex(m->digest, 20, hex);
	add_str(o, "image-digest-sha1", hex);
	json_object_object_add(o, "image-size", json_object_new_int64((int64_t)m->size));
	json_object_object_add(o, "bundled-size", json_object_new_int64((int64_t)m->bundled_size));
	add_str(o, "cipher", "AES-128-CBC");
	json_object_object_add(o, "user-key-bits",
			       json_object_new_int((int)m->user_key_len * 8));
	json_object_object_add(o, "ec2-key-bits", json_object_new_int((int)m->ec2_key_len * 8));
	add_str(o, "signature", r->sig_verified ?
		(r->cert ? "valid (checked with cert)" : "valid (checked with privatekey)") :
		"not checked (give -I cert=FILE or privatekey=FILE)");
	json_object_object_add(o, "parts-count", json_object_new_int64((int64_t)m->nparts));
	parts = json_object_new_array();
	missing = json_object_new_array();
	for (i = 0; i < m->nparts; i++) {
		json_object *p = json_object_new_object();
		struct scimg_source *s = NULL;
		char *path = NULL;
		int present;

		json_object_object_add(p, "index", json_object_new_int64((int64_t)i));
		add_str(p, "filename", m->parts[i].filename);
		scimg_int_ami_hex(m->parts[i].digest, 20, hex);
		add_str(p, "digest-sha1", hex);
		present = scimg_int_ref_open(img, m->parts[i].filename, &s) == 0;
		if (present) {
			json_object_object_add(p, "size", json_object_new_int64((int64_t)s->size));
			scimg_int_info_add_file(img, info, s);
		}
		json_object_object_add(p, "present", json_object_new_boolean(present));
		if (!present) {
			json_object_array_add(missing, json_object_new_string(m->parts[i].filename));
			nmissing++;
		}
		scimg_int_source_close(s);
		free(path);
		json_object_array_add(parts, p);
	}
	scimg_ctx_clear_error(img->ctx);
	json_object_object_add(o, "parts", parts);
	if (nmissing)
		json_object_object_add(o, "missing-parts", missing);
	else
		json_object_put(missing);
	if (!r->have_aes) {
		add_str(o, "content", "unknown (reading the image needs -I privatekey=FILE)");
	} else if (nmissing) {
		add_str(o, "content", "unknown (parts are missing)");
	} else {
		size_t hl = m->size < HEAD_BYTES ? (size_t)m->size : HEAD_BYTES;
		uint8_t *h = malloc(hl ? hl : 1);

		if (!h)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		if (ami_pread(img, h, hl, 0) == 0) {
			add_str(o, "tar-member", r->member);
			add_str(o, "content", scimg_int_detect_content(h, hl, content,
								       sizeof(content)));
		} else {
			add_str(o, "content", "unknown (the image could not be read)");
			add_str(o, "read-error", scimg_ctx_errmsg(img->ctx));
			scimg_ctx_clear_error(img->ctx);
		}
		free(h);
	}
	return 0;
}

static const char *const ami_open_opts[] = { "privatekey", "cert", NULL };

const struct scimg_format scimg_format_ami = {
	.name = "ami",
	.description = "EC2 instance-store AMI bundle (manifest + encrypted parts)",
	SCIMG_FORMAT_READER(ami),
	.info = ami_info,
	.open_opts = ami_open_opts,
	.create_opts = scimg_int_ami_create_opts,
	SCIMG_FORMAT_WRITER(scimg_int_ami),
	.compress_unit = scimg_int_ami_compress_unit,
	.compress = scimg_int_ami_compress,
	.pwrite_compressed_src = scimg_int_ami_pwrite_compressed_src,
	.flags = SCIMG_FMT_SEQUENTIAL_WRITE | SCIMG_FMT_OUTPUT_DIR |
		 SCIMG_FMT_ALWAYS_COMPRESSED,
};
