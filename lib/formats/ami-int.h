/* ami-int.h - shared internals of the EC2 AMI bundle format (ami.c reads,
 * ami-write.c writes, ami-manifest.c parses and prints the manifest).
 *
 * An instance-store AMI bundle, as ec2-bundle-image writes it:
 *   image file -> tar (one member) -> SHA-1 of the tar stream (<image>/<digest>)
 *   -> gzip -> AES-128-CBC (random key and IV, PKCS#7 padding, no salt
 *   header) -> split into 10 MiB files PREFIX.part.N (N zero-padded to the
 *   number of digits of the part count) + PREFIX.manifest.xml.
 * The key and IV are 32-character lowercase hex strings; each is encrypted
 * with RSA PKCS#1 v1.5 under the user's and under EC2's certificate and the
 * results are stored hex-encoded.  <signature> is the hex RSA-SHA1 signature
 * of the text of <machine_configuration>...</machine_configuration>
 * followed by <image>...</image>, exactly as they appear in the file.
 */
#ifndef SCIMG_AMI_INT_H
#define SCIMG_AMI_INT_H

#include <openssl/evp.h>

#include "scimg-int.h"

#define AMI_PART_SIZE (10u << 20)       /* what ec2-bundle-image writes */
#define AMI_MAX_PART_SIZE (16u << 20)   /* largest part the reader buffers */
#define AMI_MAX_MANIFEST (16u << 20)
#define AMI_MAX_PARTS 200000u
#define AMI_MAX_RSA_BYTES 2048u         /* 16384-bit keys */

enum {
	AMI_V3 = 3,
	AMI_V20070829 = 20070829,
	AMI_V20071010 = 20071010,
};

struct ami_part {
	char *filename;      /* as in the manifest */
	uint8_t digest[20];  /* SHA-1 */
};

struct ami_bdm {
	char *virt;
	char *device;
};

struct ami_manifest {
	int version;
	char *version_text;
	char *bundler_name, *bundler_version, *bundler_release;
	/* machine_configuration (absent in version 3) */
	char *arch, *kernel_id, *ramdisk_id;
	char **product_codes;
	size_t n_product_codes;
	struct ami_bdm *bdm;
	size_t n_bdm;
	/* image */
	char *name, *user, *type, *kernel_name;
	char **ancestry;
	size_t n_ancestry;
	uint8_t digest[20];
	uint64_t size, bundled_size;
	uint8_t *ec2_key, *user_key, *ec2_iv, *user_iv;  /* RSA ciphertexts */
	size_t ec2_key_len, user_key_len, ec2_iv_len, user_iv_len;
	struct ami_part *parts;
	size_t nparts;
	uint8_t *signature;
	size_t signature_len;
	/* the signed text: <machine_configuration> and <image> of the file */
	const char *signed_mc, *signed_image;
	size_t signed_mc_len, signed_image_len;
	char *raw;            /* the manifest as read, NUL terminated */
	size_t raw_len;
};

/* Parse and validate the manifest RAW (LEN bytes, taken over by M, which
 * must be zeroed; freed by ami_manifest_free even on failure).  NAME is used
 * in messages, which name the element at fault. */
int scimg_int_ami_manifest_parse(struct scimg_ctx *ctx, const char *name,
				 char *raw, size_t len, struct ami_manifest *m);
void scimg_int_ami_manifest_free(struct ami_manifest *m);

/* Lower-case hex of LEN bytes into OUT (2 * LEN + 1 bytes). */
void scimg_int_ami_hex(const uint8_t *p, size_t len, char *out);

/* Load a PEM private key / the public key of a PEM X.509 certificate.
 * WHAT names the option in messages ("privatekey"). */
int scimg_int_ami_load_key(struct scimg_ctx *ctx, const char *file,
			   const char *what, EVP_PKEY **out);
int scimg_int_ami_load_cert(struct scimg_ctx *ctx, const char *file,
			    const char *what, EVP_PKEY **out);
/* Verify SIG over the concatenation A+B with RSA-SHA1: 1 valid, 0 not,
 * negative errno on error. */
int scimg_int_ami_verify(EVP_PKEY *pub, const char *a, size_t alen,
			 const char *b, size_t blen, const uint8_t *sig,
			 size_t siglen);

/* The writer (ami-write.c), called through scimg_format_ami. */
extern const char *const scimg_int_ami_create_opts[];
int scimg_int_ami_create(struct scimg_image *img, const struct scimg_opts *opts);
int scimg_int_ami_pwrite(struct scimg_image *img, const void *buf, size_t len,
			 uint64_t off);
int scimg_int_ami_finish(struct scimg_image *img);
uint32_t scimg_int_ami_compress_unit(struct scimg_image *img);
int scimg_int_ami_compress(struct scimg_image *img, const void *in, size_t len,
			   void *out, size_t *outlen);
int scimg_int_ami_pwrite_compressed_src(struct scimg_image *img, uint64_t off,
					const void *data, size_t clen,
					const void *in, size_t len);
void scimg_int_ami_writer_close(struct scimg_image *img);

#endif
