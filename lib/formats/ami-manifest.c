/* formats/ami-manifest.c - parse and check an EC2 AMI bundle manifest;
 * key, certificate and signature helpers shared by ami.c and ami-write.c.
 *
 * The manifest is parsed by libxml2 with network access off, without
 * entity substitution and without loading any DTD; a manifest with a
 * DOCTYPE is refused outright (ec2-bundle-image never writes one, and it is
 * the only way to declare entities).  Every value is checked before use and
 * messages name the element (<image>/<parts>/<part index='3'>/<digest>).
 * Versions 3, 2007-08-29 and 2007-10-10 are read (the ones ec2-ami-tools
 * knew); unknown elements are ignored.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ami-int.h"

#define MAX_TEXT 4096
#define MAX_LIST 1024

struct mctx {
	struct scimg_ctx *ctx;
	const char *name;
};

void scimg_int_ami_hex(const uint8_t *p, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * len] = '\0';
}

static int is_el(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0;
}

/* The only child element NAME of PARENT (NULL when absent); a second one is
 * an error. */
static int find_child(struct mctx *mc, xmlNodePtr parent, const char *path,
		      const char *name, int required, xmlNodePtr *out)
{
	xmlNodePtr c, found = NULL;

	*out = NULL;
	for (c = parent->children; c; c = c->next) {
		if (!is_el(c, name))
			continue;
		if (found)
			return scimg_int_err(mc->ctx, -EINVAL,
					     "'%s': AMI manifest has more than one %s<%s> element",
					     mc->name, path, name);
		found = c;
	}
	if (!found && required)
		return scimg_int_err(mc->ctx, -EINVAL,
				     "'%s': AMI manifest has no %s<%s> element",
				     mc->name, path, name);
	*out = found;
	return 0;
}

/* Text of element N (which must hold no element), trimmed. */
static int node_text(struct mctx *mc, xmlNodePtr n, const char *path,
		     size_t max, char **out)
{
	xmlNodePtr c;
	xmlChar *t;
	char *s, *b, *e;

	*out = NULL;
	for (c = n->children; c; c = c->next)
		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE &&
		    c->type != XML_COMMENT_NODE)
			return scimg_int_err(mc->ctx, -EINVAL,
					     "'%s': AMI manifest element %s holds markup, expected text",
					     mc->name, path);
	t = xmlNodeGetContent(n);
	if (!t)
		t = xmlStrdup(BAD_CAST "");
	if (!t)
		return scimg_int_err(mc->ctx, -ENOMEM, "out of memory");
	b = (char *)t;
	while (*b && isspace((unsigned char)*b))
		b++;
	e = b + strlen(b);
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	if ((size_t)(e - b) > max) {
		xmlFree(t);
		return scimg_int_err(mc->ctx, -EINVAL,
				     "'%s': AMI manifest element %s is %zu characters long, more than %zu",
				     mc->name, path, (size_t)(e - b), max);
	}
	s = strndup(b, (size_t)(e - b));
	xmlFree(t);
	if (!s)
		return scimg_int_err(mc->ctx, -ENOMEM, "out of memory");
	*out = s;
	return 0;
}

static int get_text(struct mctx *mc, xmlNodePtr parent, const char *ppath,
		    const char *name, int required, size_t max, char **out)
{
	char path[256];
	xmlNodePtr n;
	int ret;

	*out = NULL;
	ret = find_child(mc, parent, ppath, name, required, &n);
	if (ret < 0 || !n)
		return ret;
	snprintf(path, sizeof(path), "%s<%s>", ppath, name);
	ret = node_text(mc, n, path, max, out);
	if (ret == 0 && required && !**out) {
		free(*out);
		*out = NULL;
		return scimg_int_err(mc->ctx, -EINVAL, "'%s': AMI manifest element %s is empty",
				     mc->name, path);
	}
	return ret;
}

static int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int get_u64(struct mctx *mc, xmlNodePtr parent, const char *ppath,
		   const char *name, uint64_t *out)
{
	char *t;
	int ret = get_text(mc, parent, ppath, name, 1, 64, &t);

	if (ret < 0)
		return ret;
	if (parse_u64(t, out) < 0)
		ret = scimg_int_err(mc->ctx, -EINVAL,
				    "'%s': AMI manifest %s<%s> is '%s', expected a decimal number",
				    mc->name, ppath, name, t);
	free(t);
	return ret;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex text of PATH into bytes (exactly EXACT bytes when EXACT > 0). */
static int get_hex_text(struct mctx *mc, const char *path, const char *t,
			size_t exact, size_t max, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(t), i;
	uint8_t *b;

	*out = NULL;
	*outlen = 0;
	if (n == 0 || n % 2 || (exact && n != exact * 2) || n / 2 > max)
		goto bad;
	for (i = 0; i < n; i++)
		if (hexval((unsigned char)t[i]) < 0)
			goto bad;
	b = malloc(n / 2);
	if (!b)
		return scimg_int_err(mc->ctx, -ENOMEM, "out of memory");
	for (i = 0; i < n / 2; i++)
		b[i] = (uint8_t)(hexval((unsigned char)t[2 * i]) << 4 |
				 hexval((unsigned char)t[2 * i + 1]));
	*out = b;
	*outlen = n / 2;
	return 0;
bad:
	if (exact)
		return scimg_int_err(mc->ctx, -EINVAL,
				     "'%s': AMI manifest %s is '%.80s', expected %zu hex digits",
				     mc->name, path, t, exact * 2);
	return scimg_int_err(mc->ctx, -EINVAL,
			     "'%s': AMI manifest %s is not an even number of hex digits (at most %zu)",
			     mc->name, path, max * 2);
}

static int get_hex(struct mctx *mc, xmlNodePtr parent, const char *ppath,
		   const char *name, size_t exact, size_t max, uint8_t **out,
		   size_t *outlen)
{
	char path[256], *t;
	int ret;

	snprintf(path, sizeof(path), "%s<%s>", ppath, name);
	ret = get_text(mc, parent, ppath, name, 1, max * 2 + 2, &t);
	if (ret < 0)
		return ret;
	ret = get_hex_text(mc, path, t, exact, max, out, outlen);
	free(t);
	return ret;
}

/* An optional "algorithm" attribute of N must be WANT. */
static int check_algorithm(struct mctx *mc, xmlNodePtr n, const char *path,
			   const char *want)
{
	xmlChar *a = xmlGetProp(n, BAD_CAST "algorithm");
	int ret = 0;

	if (a && strcasecmp((const char *)a, want) != 0)
		ret = scimg_int_err(mc->ctx, -ENOTSUP,
				    "'%s': AMI manifest %s algorithm is '%.40s', expected %s",
				    mc->name, path, (const char *)a, want);
	xmlFree(a);
	return ret;
}

/* Children NAME of PARENT as a list of strings. */
static int get_list(struct mctx *mc, xmlNodePtr parent, const char *ppath,
		    const char *name, char ***out, size_t *n)
{
	xmlNodePtr c;
	char path[256];
	int ret;

	*out = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s<%s>", ppath, name);
	for (c = parent->children; c; c = c->next) {
		char **nl, *t;

		if (!is_el(c, name))
			continue;
		if (*n >= MAX_LIST)
			return scimg_int_err(mc->ctx, -EINVAL,
					     "'%s': AMI manifest has more than %d %s elements",
					     mc->name, MAX_LIST, path);
		ret = node_text(mc, c, path, MAX_TEXT, &t);
		if (ret < 0)
			return ret;
		nl = realloc(*out, (*n + 1) * sizeof(*nl));
		if (!nl) {
			free(t);
			return scimg_int_err(mc->ctx, -ENOMEM, "out of memory");
		}
		*out = nl;
		nl[(*n)++] = t;
	}
	return 0;
}

/* A part's file name must stay in the manifest's directory. */
static int check_filename(struct mctx *mc, const char *path, const char *f)
{
	const char *s = f;

	if (*f == '/' || strstr(f, "://") || strchr(f, '\\'))
		goto bad;
	while (*s) {
		size_t l = strcspn(s, "/");
		if (l == 2 && s[0] == '.' && s[1] == '.')
			goto bad;
		s += l;
		while (*s == '/')
			s++;
	}
	return 0;
bad:
	return scimg_int_err(mc->ctx, -EPERM,
			     "'%s': AMI manifest %s '%s' points outside the manifest's directory",
			     mc->name, path, f);
}

static int parse_parts(struct mctx *mc, xmlNodePtr image, struct ami_manifest *m)
{
	xmlNodePtr parts, c;
	xmlChar *a;
	uint64_t count;
	size_t seen = 0;
	int ret;

	ret = find_child(mc, image, "<image>/", "parts", 1, &parts);
	if (ret < 0)
		return ret;
	a = xmlGetProp(parts, BAD_CAST "count");
	if (!a || parse_u64((const char *)a, &count) < 0 || count == 0 ||
	    count > AMI_MAX_PARTS) {
		ret = scimg_int_err(mc->ctx, -EINVAL,
				    "'%s': AMI manifest <image>/<parts> count is '%.40s', expected 1 to %u",
				    mc->name, a ? (const char *)a : "(missing)", AMI_MAX_PARTS);
		xmlFree(a);
		return ret;
	}
	xmlFree(a);
	m->parts = calloc((size_t)count, sizeof(*m->parts));
	if (!m->parts)
		return scimg_int_err(mc->ctx, -ENOMEM, "out of memory");
	m->nparts = (size_t)count;
	for (c = parts->children; c; c = c->next) {
		char path[128], *t;
		uint64_t idx;
		xmlNodePtr d;
		uint8_t *dig;
		size_t dl;

		if (!is_el(c, "part"))
			continue;
		a = xmlGetProp(c, BAD_CAST "index");
		if (!a || parse_u64((const char *)a, &idx) < 0 || idx >= count) {
			ret = scimg_int_err(mc->ctx, -EINVAL,
					    "'%s': AMI manifest <image>/<parts>/<part> index is '%.40s', expected 0 to %llu",
					    mc->name, a ? (const char *)a : "(missing)",
					    (unsigned long long)count - 1);
			xmlFree(a);
			return ret;
		}
		xmlFree(a);
		snprintf(path, sizeof(path), "<image>/<parts>/<part index='%llu'>/",
			 (unsigned long long)idx);
		if (m->parts[idx].filename)
			return scimg_int_err(mc->ctx, -EINVAL,
					     "'%s': AMI manifest has two <part index='%llu'> elements",
					     mc->name, (unsigned long long)idx);
		if (++seen > count)
			break;
		ret = get_text(mc, c, path, "filename", 1, 1024, &m->parts[idx].filename);
		if (ret < 0)
			return ret;
		{
			char fpath[160];
			snprintf(fpath, sizeof(fpath), "%s<filename>", path);
			ret = check_filename(mc, fpath, m->parts[idx].filename);
			if (ret < 0)
				return ret;
		}
		ret = find_child(mc, c, path, "digest", 1, &d);
		if (ret < 0)
			return ret;
		{
			char dpath[160];
			snprintf(dpath, sizeof(dpath), "%s<digest>", path);
			ret = check_algorithm(mc, d, dpath, "SHA1");
			if (ret < 0)
				return ret;
			ret = node_text(mc, d, dpath, 64, &t);
			if (ret < 0)
				return ret;
			ret = get_hex_text(mc, dpath, t, 20, 20, &dig, &dl);
			free(t);
			if (ret < 0)
				return ret;
		}
		memcpy(m->parts[idx].digest, dig, 20);
		free(dig);
	}
	if (seen != count)
		return scimg_int_err(mc->ctx, -EINVAL,
				     "'%s': AMI manifest <image>/<parts> count is %llu but it lists %zu%s <part> elements",
				     mc->name, (unsigned long long)count, seen,
				     seen > count ? " or more" : "");
	return 0;
}

static int parse_machine_configuration(struct mctx *mc, xmlNodePtr root,
				       struct ami_manifest *m)
{
	xmlNodePtr n, bdm, c;
	const char *p = "<machine_configuration>/";
	int ret;

	ret = find_child(mc, root, "", "machine_configuration", 0, &n);
	if (ret < 0 || !n)
		return ret;
	if ((ret = get_text(mc, n, p, "architecture", 0, 64, &m->arch)) < 0 ||
	    (ret = get_text(mc, n, p, "kernel_id", 0, 256, &m->kernel_id)) < 0 ||
	    (ret = get_text(mc, n, p, "ramdisk_id", 0, 256, &m->ramdisk_id)) < 0)
		return ret;
	ret = find_child(mc, n, p, "product_codes", 0, &c);
	if (ret < 0)
		return ret;
	if (c && (ret = get_list(mc, c, "<machine_configuration>/<product_codes>/",
				 "product_code", &m->product_codes,
				 &m->n_product_codes)) < 0)
		return ret;
	ret = find_child(mc, n, p, "block_device_mapping", 0, &bdm);
	if (ret < 0 || !bdm)
		return ret;
	for (c = bdm->children; c; c = c->next) {
		const char *mp = "<machine_configuration>/<block_device_mapping>/<mapping>/";
		struct ami_bdm *nb;

		if (!is_el(c, "mapping"))
			continue;
		if (m->n_bdm >= MAX_LIST)
			return scimg_int_err(mc->ctx, -EINVAL,
					     "'%s': AMI manifest has more than %d block device mappings",
					     mc->name, MAX_LIST);
		nb = realloc(m->bdm, (m->n_bdm + 1) * sizeof(*nb));
		if (!nb)
			return scimg_int_err(mc->ctx, -ENOMEM, "out of memory");
		m->bdm = nb;
		memset(&nb[m->n_bdm], 0, sizeof(*nb));
		m->n_bdm++;
		if ((ret = get_text(mc, c, mp, "virtual", 1, 256, &nb[m->n_bdm - 1].virt)) < 0 ||
		    (ret = get_text(mc, c, mp, "device", 1, 256, &nb[m->n_bdm - 1].device)) < 0)
			return ret;
	}
	return 0;
}

static int parse_image(struct mctx *mc, xmlNodePtr root, struct ami_manifest *m)
{
	xmlNodePtr img, n;
	const char *p = "<image>/";
	char *t;
	uint8_t *dig;
	size_t dl;
	int ret;

	ret = find_child(mc, root, "", "image", 1, &img);
	if (ret < 0)
		return ret;
	if ((ret = get_text(mc, img, p, "name", 1, 1024, &m->name)) < 0 ||
	    (ret = get_text(mc, img, p, "user", 1, 256, &m->user)) < 0 ||
	    (ret = get_text(mc, img, p, "type", 0, 64, &m->type)) < 0 ||
	    (ret = get_text(mc, img, p, "kernel_name", 0, 1024, &m->kernel_name)) < 0)
		return ret;
	ret = find_child(mc, img, p, "ancestry", 0, &n);
	if (ret < 0)
		return ret;
	if (n && (ret = get_list(mc, n, "<image>/<ancestry>/", "ancestor_ami_id",
				 &m->ancestry, &m->n_ancestry)) < 0)
		return ret;
	ret = find_child(mc, img, p, "digest", 1, &n);
	if (ret < 0)
		return ret;
	if ((ret = check_algorithm(mc, n, "<image>/<digest>", "SHA1")) < 0)
		return ret;
	ret = node_text(mc, n, "<image>/<digest>", 64, &t);
	if (ret < 0)
		return ret;
	ret = get_hex_text(mc, "<image>/<digest>", t, 20, 20, &dig, &dl);
	free(t);
	if (ret < 0)
		return ret;
	memcpy(m->digest, dig, 20);
	free(dig);
	if ((ret = get_u64(mc, img, p, "size", &m->size)) < 0 ||
	    (ret = get_u64(mc, img, p, "bundled_size", &m->bundled_size)) < 0)
		return ret;
	if (m->size > SCIMG_MAX_VIRTUAL_SIZE)
		return scimg_int_err(mc->ctx, -EFBIG,
				     "'%s': AMI manifest <image>/<size> %llu exceeds the supported maximum %llu",
				     mc->name, (unsigned long long)m->size,
				     (unsigned long long)SCIMG_MAX_VIRTUAL_SIZE);
	ret = find_child(mc, img, p, "ec2_encrypted_key", 1, &n);
	if (ret < 0)
		return ret;
	if ((ret = check_algorithm(mc, n, "<image>/<ec2_encrypted_key>", "AES-128-CBC")) < 0)
		return ret;
	ret = find_child(mc, img, p, "user_encrypted_key", 1, &n);
	if (ret < 0)
		return ret;
	if ((ret = check_algorithm(mc, n, "<image>/<user_encrypted_key>", "AES-128-CBC")) < 0)
		return ret;
	if ((ret = get_hex(mc, img, p, "ec2_encrypted_key", 0, AMI_MAX_RSA_BYTES,
			   &m->ec2_key, &m->ec2_key_len)) < 0 ||
	    (ret = get_hex(mc, img, p, "user_encrypted_key", 0, AMI_MAX_RSA_BYTES,
			   &m->user_key, &m->user_key_len)) < 0 ||
	    (ret = get_hex(mc, img, p, "ec2_encrypted_iv", 0, AMI_MAX_RSA_BYTES,
			   &m->ec2_iv, &m->ec2_iv_len)) < 0 ||
	    (ret = get_hex(mc, img, p, "user_encrypted_iv", 0, AMI_MAX_RSA_BYTES,
			   &m->user_iv, &m->user_iv_len)) < 0)
		return ret;
	return parse_parts(mc, img, m);
}

/* The text ec2-ami-tools signs: from the first "<NAME>" to the first
 * "</NAME>" of the file. */
static void signed_range(const struct ami_manifest *m, const char *name,
			 const char **p, size_t *len)
{
	char open[64], close[64];
	const char *a, *b;

	*p = NULL;
	*len = 0;
	snprintf(open, sizeof(open), "<%s>", name);
	snprintf(close, sizeof(close), "</%s>", name);
	a = strstr(m->raw, open);
	if (!a)
		return;
	b = strstr(a, close);
	if (!b)
		return;
	*p = a;
	*len = (size_t)(b - a) + strlen(close);
}

int scimg_int_ami_manifest_parse(struct scimg_ctx *ctx, const char *name,
				 char *raw, size_t len, struct ami_manifest *m)
{
	struct mctx mc = { ctx, name };
	xmlParserCtxtPtr pc = NULL;
	xmlDocPtr doc = NULL;
	xmlNodePtr root, b;
	char *sig = NULL;
	int ret;

	m->raw = raw;
	m->raw_len = len;
	if (len > INT32_MAX || strlen(raw) != len)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': AMI manifest contains a NUL byte (at offset %zu)",
				     name, strlen(raw));
	pc = xmlNewParserCtxt();
	if (!pc)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	/* no XML_PARSE_NOENT (no entity substitution), no DTDLOAD/DTDATTR,
	 * no network; errors are collected, never printed */
	doc = xmlCtxtReadMemory(pc, raw, (int)len, NULL, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR |
				XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlCtxtGetLastError(pc);
		char msg[256] = "unknown error";
		if (e && e->message) {
			size_t l;
			snprintf(msg, sizeof(msg), "%s", e->message);
			l = strlen(msg);
			while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
				msg[--l] = '\0';
		}
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': AMI manifest is not well-formed XML (line %d): %s",
				    name, e ? e->line : 0, msg);
		goto out;
	}
	if (doc->intSubset || doc->extSubset) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': AMI manifest has a <!DOCTYPE> declaration; refused (manifests have none, and it could declare entities)",
				    name);
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !is_el(root, "manifest")) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': root element is <%s>, expected <manifest>",
				    name, root ? (const char *)root->name : "(none)");
		goto out;
	}
	ret = get_text(&mc, root, "", "version", 1, 64, &m->version_text);
	if (ret < 0)
		goto out;
	if (!strcmp(m->version_text, "3"))
		m->version = AMI_V3;
	else if (!strcmp(m->version_text, "2007-08-29"))
		m->version = AMI_V20070829;
	else if (!strcmp(m->version_text, "2007-10-10"))
		m->version = AMI_V20071010;
	else {
		ret = scimg_int_err(ctx, -ENOTSUP,
				    "'%s': AMI manifest <version> is '%s', expected 3, 2007-08-29 or 2007-10-10",
				    name, m->version_text);
		goto out;
	}
	ret = find_child(&mc, root, "", "bundler", 0, &b);
	if (ret < 0)
		goto out;
	if (b && ((ret = get_text(&mc, b, "<bundler>/", "name", 0, 256, &m->bundler_name)) < 0 ||
		  (ret = get_text(&mc, b, "<bundler>/", "version", 0, 256, &m->bundler_version)) < 0 ||
		  (ret = get_text(&mc, b, "<bundler>/", "release", 0, 256, &m->bundler_release)) < 0))
		goto out;
	if ((ret = parse_machine_configuration(&mc, root, m)) < 0 ||
	    (ret = parse_image(&mc, root, m)) < 0)
		goto out;
	ret = get_text(&mc, root, "", "signature", 1, AMI_MAX_RSA_BYTES * 2 + 2, &sig);
	if (ret < 0)
		goto out;
	ret = get_hex_text(&mc, "<signature>", sig, 0, AMI_MAX_RSA_BYTES,
			   &m->signature, &m->signature_len);
	if (ret < 0)
		goto out;
	signed_range(m, "machine_configuration", &m->signed_mc, &m->signed_mc_len);
	signed_range(m, "image", &m->signed_image, &m->signed_image_len);
	ret = 0;
out:
	free(sig);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(pc);
	return ret;
}

static void free_list(char **l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void scimg_int_ami_manifest_free(struct ami_manifest *m)
{
	size_t i;

	free(m->version_text);
	free(m->bundler_name);
	free(m->bundler_version);
	free(m->bundler_release);
	free(m->arch);
	free(m->kernel_id);
	free(m->ramdisk_id);
	free_list(m->product_codes, m->n_product_codes);
	for (i = 0; i < m->n_bdm; i++) {
		free(m->bdm[i].virt);
		free(m->bdm[i].device);
	}
	free(m->bdm);
	free(m->name);
	free(m->user);
	free(m->type);
	free(m->kernel_name);
	free_list(m->ancestry, m->n_ancestry);
	free(m->ec2_key);
	free(m->user_key);
	free(m->ec2_iv);
	free(m->user_iv);
	for (i = 0; i < m->nparts; i++)
		free(m->parts[i].filename);
	free(m->parts);
	free(m->signature);
	free(m->raw);
	memset(m, 0, sizeof(*m));
}

/* ---- keys and signatures -------------------------------------------- */

int scimg_int_ami_load_key(struct scimg_ctx *ctx, const char *file,
			   const char *what, EVP_PKEY **out)
{
	FILE *f;
	EVP_PKEY *k;

	*out = NULL;
	f = fopen(file, "re");
	if (!f)
		return scimg_int_err(ctx, -errno, "%s: could not open '%s': %s",
				     what, file, strerror(errno));
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k)
		return scimg_int_err(ctx, -EINVAL, "%s: '%s' holds no PEM private key", what, file);
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
		EVP_PKEY_free(k);
		return scimg_int_err(ctx, -EINVAL, "%s: '%s' is not an RSA key", what, file);
	}
	*out = k;
	return 0;
}

int scimg_int_ami_load_cert(struct scimg_ctx *ctx, const char *file,
			    const char *what, EVP_PKEY **out)
{
	FILE *f;
	X509 *x;
	EVP_PKEY *k;

	*out = NULL;
	f = fopen(file, "re");
	if (!f)
		return scimg_int_err(ctx, -errno, "%s: could not open '%s': %s",
				     what, file, strerror(errno));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		return scimg_int_err(ctx, -EINVAL, "%s: '%s' holds no PEM X.509 certificate",
				     what, file);
	k = X509_get_pubkey(x);
	X509_free(x);
	if (!k)
		return scimg_int_err(ctx, -EINVAL, "%s: '%s': could not read the public key",
				     what, file);
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
		EVP_PKEY_free(k);
		return scimg_int_err(ctx, -EINVAL, "%s: '%s' does not hold an RSA key", what, file);
	}
	*out = k;
	return 0;
}

int scimg_int_ami_verify(EVP_PKEY *pub, const char *a, size_t alen,
			 const char *b, size_t blen, const uint8_t *sig,
			 size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	if (!md)
		return -ENOMEM;
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha1(), NULL, pub) == 1 &&
	     EVP_DigestVerifyUpdate(md, a, alen) == 1 &&
	     EVP_DigestVerifyUpdate(md, b, blen) == 1 &&
	     EVP_DigestVerifyFinal(md, sig, siglen) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 1 : 0;
}
