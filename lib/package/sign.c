/* package/sign.c - detached CMS (PKCS#7) signatures over supercloud.xml,
 * through OpenSSL: DER SignedData, SHA-256, signer certificate included. */
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "package.h"

/* The last OpenSSL error as text (static buffer per call site is fine:
 * the library is not re-entered from here). */
static const char *ossl_err(char *buf, size_t len)
{
	const char *data = NULL;
	int flags = 0;
	unsigned long e = ERR_peek_last_error_data(&data, &flags);

	if (!e) {
		snprintf(buf, len, "unknown error");
	} else {
		const char *r = ERR_reason_error_string(e);
		snprintf(buf, len, "%s%s%s", r ? r : "error",
			 data && *data && (flags & ERR_TXT_STRING) ? ": " : "",
			 data && (flags & ERR_TXT_STRING) ? data : "");
	}
	ERR_clear_error();
	return buf;
}

int scimg_int_sign(struct scimg_ctx *ctx, const void *data, size_t len,
		   const char *key_path, const char *cert_path, uint8_t **sig,
		   size_t *siglen)
{
	BIO *kb = NULL, *cb = NULL, *in = NULL, *out = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	CMS_ContentInfo *cms = NULL;
	BUF_MEM *mem;
	char eb[256];
	int ret;

	*sig = NULL;
	*siglen = 0;
	ERR_clear_error();
	if (!(kb = BIO_new_file(key_path, "r"))) {
		ret = scimg_int_err(ctx, -ENOENT, "could not open the signing key '%s': %s",
				    key_path, ossl_err(eb, sizeof(eb)));
		goto out;
	}
	if (!(key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL))) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': not a PEM private key (or it is encrypted): %s",
				    key_path, ossl_err(eb, sizeof(eb)));
		goto out;
	}
	if (!(cb = BIO_new_file(cert_path, "r"))) {
		ret = scimg_int_err(ctx, -ENOENT, "could not open the signing certificate '%s': %s",
				    cert_path, ossl_err(eb, sizeof(eb)));
		goto out;
	}
	if (!(cert = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': not a PEM certificate: %s",
				    cert_path, ossl_err(eb, sizeof(eb)));
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ret = scimg_int_err(ctx, -EINVAL, "the key '%s' does not match the certificate '%s'",
				    key_path, cert_path);
		ERR_clear_error();
		goto out;
	}
	in = BIO_new_mem_buf(data, (int)len);
	out = BIO_new(BIO_s_mem());
	if (!in || !out) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	/* SHA-256 explicitly (not the library default) */
	cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_DETACHED | CMS_BINARY | CMS_PARTIAL);
	if (!cms || !CMS_add1_signer(cms, cert, key, EVP_sha256(), CMS_BINARY) ||
	    !CMS_final(cms, in, NULL, CMS_DETACHED | CMS_BINARY)) {
		ret = scimg_int_err(ctx, -EINVAL, "could not sign with '%s': %s", key_path,
				    ossl_err(eb, sizeof(eb)));
		goto out;
	}
	if (!i2d_CMS_bio(out, cms)) {
		ret = scimg_int_err(ctx, -EIO, "could not encode the signature: %s",
				    ossl_err(eb, sizeof(eb)));
		goto out;
	}
	BIO_get_mem_ptr(out, &mem);
	*sig = malloc(mem->length ? mem->length : 1);
	if (!*sig) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(*sig, mem->data, mem->length);
	*siglen = mem->length;
	ret = 0;
out:
	CMS_ContentInfo_free(cms);
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(kb);
	BIO_free(cb);
	BIO_free(in);
	BIO_free(out);
	return ret;
}

static char *subject_of(CMS_ContentInfo *cms)
{
	STACK_OF(X509) *signers = CMS_get0_signers(cms);
	char *s = NULL;

	if (signers && sk_X509_num(signers) > 0) {
		char *one = X509_NAME_oneline(X509_get_subject_name(sk_X509_value(signers, 0)),
					      NULL, 0);
		if (one) {
			s = strdup(one);
			OPENSSL_free(one);
		}
	}
	sk_X509_free(signers);
	return s;
}

int scimg_int_verify(struct scimg_ctx *ctx, const void *data, size_t len,
		     const void *sig, size_t siglen, const char *trust_path,
		     char **why, char **signer)
{
	const unsigned char *p = sig;
	CMS_ContentInfo *cms = NULL;
	X509_STORE *store = NULL;
	BIO *in = NULL;
	char eb[256];
	int ret, r;

	*why = NULL;
	if (signer)
		*signer = NULL;
	ERR_clear_error();
	if (trust_path) {
		store = X509_STORE_new();
		if (!store)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		if (X509_STORE_load_file(store, trust_path) != 1) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "could not load trusted certificates from '%s': %s",
					    trust_path, ossl_err(eb, sizeof(eb)));
			X509_STORE_free(store);
			return ret;
		}
		X509_STORE_set_purpose(store, X509_PURPOSE_ANY);
	}
	if (siglen > INT32_MAX || !(cms = d2i_CMS_ContentInfo(NULL, &p, (long)siglen)) ||
	    (size_t)(p - (const unsigned char *)sig) != siglen) {
		*why = strdup("not a DER CMS structure");
		ret = SCI_SIG_BAD;
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed || !CMS_is_detached(cms)) {
		*why = strdup("not a detached CMS SignedData");
		ret = SCI_SIG_BAD;
		goto out;
	}
	in = BIO_new_mem_buf(data, (int)len);
	if (!in) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	/* first the signature itself, then the signer's trust */
	r = CMS_verify(cms, NULL, NULL, in, NULL, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY);
	if (signer)
		*signer = subject_of(cms);
	if (r != 1) {
		char m[300];
		snprintf(m, sizeof(m), "signature does not match supercloud.xml: %s",
			 ossl_err(eb, sizeof(eb)));
		*why = strdup(m);
		ret = SCI_SIG_BAD;
		goto out;
	}
	if (!store) {
		ret = SCI_SIG_UNCHECKED;
		goto out;
	}
	BIO_reset(in);
	if (CMS_verify(cms, NULL, store, in, NULL, CMS_BINARY) != 1) {
		char m[300];
		snprintf(m, sizeof(m), "signer is not trusted by '%s': %s", trust_path,
			 ossl_err(eb, sizeof(eb)));
		*why = strdup(m);
		ret = SCI_SIG_UNTRUSTED;
		goto out;
	}
	ret = SCI_SIG_OK;
out:
	ERR_clear_error();
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	X509_STORE_free(store);
	return ret;
}
