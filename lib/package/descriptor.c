/* package/descriptor.c - supercloud.xml <-> the descriptor model (a json-c
 * object, see package.h), through libxml2.
 *
 * Reading never touches the network, never expands entities and refuses any
 * document type declaration; every descriptor read or written is validated
 * against docs/sci-1.xsd, compiled in from the build tree.
 */
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "package.h"

static const char sci_xsd[] =
#include "lib/package/sci-xsd.h"
	;

/* ---- schema validation ------------------------------------------------ */

struct verr {
	char msg[512];
	int n;
};

static void verr_cb(void *opaque, xmlErrorPtr e)
{
	struct verr *v = opaque;
	size_t l;

	if (v->n++ || !e || !e->message)
		return;
	snprintf(v->msg, sizeof(v->msg), "line %d: %s", e->line, e->message);
	l = strlen(v->msg);
	while (l && (v->msg[l - 1] == '\n' || v->msg[l - 1] == ' '))
		v->msg[--l] = '\0';
}

/* 0 valid, 1 invalid (message in V), < 0 error */
static int validate(struct scimg_ctx *ctx, xmlDocPtr doc, struct verr *v)
{
	xmlSchemaParserCtxtPtr pc = NULL;
	xmlSchemaPtr schema = NULL;
	xmlSchemaValidCtxtPtr vc = NULL;
	struct verr perr = { .n = 0 };
	int ret;

	pc = xmlSchemaNewMemParserCtxt(sci_xsd, (int)sizeof(sci_xsd) - 1);
	if (!pc) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	xmlSchemaSetParserStructuredErrors(pc, verr_cb, &perr);
	schema = xmlSchemaParse(pc);
	if (!schema) {
		ret = scimg_int_err(ctx, -EIO, "internal error: the built-in SCI schema does not compile: %s",
				    perr.msg);
		goto out;
	}
	vc = xmlSchemaNewValidCtxt(schema);
	if (!vc) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	memset(v, 0, sizeof(*v));
	xmlSchemaSetValidStructuredErrors(vc, verr_cb, v);
	ret = xmlSchemaValidateDoc(vc, doc);
	if (ret > 0 || (ret == 0 && v->n)) {
		if (!v->msg[0])
			snprintf(v->msg, sizeof(v->msg), "not valid against the SCI v1 schema");
		ret = 1;
	} else if (ret < 0) {
		ret = scimg_int_err(ctx, -EIO, "internal error validating the descriptor");
	}
out:
	xmlSchemaFreeValidCtxt(vc);
	xmlSchemaFree(schema);
	xmlSchemaFreeParserCtxt(pc);
	return ret;
}

/* ---- model -> XML ----------------------------------------------------- */

static json_object *jget(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Set attribute NAME from the model's KEY when present. */
static void attr(xmlNodePtr n, const char *name, json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	char num[32];

	if (!v)
		return;
	switch (json_object_get_type(v)) {
	case json_type_boolean:
		xmlNewProp(n, BAD_CAST name, BAD_CAST(json_object_get_boolean(v) ? "true" : "false"));
		break;
	case json_type_int:
		snprintf(num, sizeof(num), "%" PRIu64, json_object_get_uint64(v));
		xmlNewProp(n, BAD_CAST name, BAD_CAST num);
		break;
	case json_type_string:
		xmlNewProp(n, BAD_CAST name, BAD_CAST json_object_get_string(v));
		break;
	default:
		break;
	}
}

static xmlNodePtr child(xmlNodePtr parent, xmlNsPtr ns, const char *name,
			const char *text)
{
	return xmlNewTextChild(parent, ns, BAD_CAST name, BAD_CAST text);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static size_t alen(json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

int scimg_int_desc_write(struct scimg_ctx *ctx, json_object *d, char **xml,
			 size_t *len)
{
	xmlDocPtr doc;
	xmlNodePtr root, n, k, c;
	xmlNsPtr ns;
	json_object *o, *a;
	struct verr v;
	xmlChar *mem = NULL;
	int memlen = 0, ret;
	size_t i, j;

	*xml = NULL;
	*len = 0;
	xmlInitParser();
	doc = xmlNewDoc(BAD_CAST "1.0");
	if (!doc)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	root = xmlNewNode(NULL, BAD_CAST "supercloud");
	ns = xmlNewNs(root, BAD_CAST SCI_NS, NULL);
	xmlSetNs(root, ns);
	xmlDocSetRootElement(doc, root);
	xmlNewProp(root, BAD_CAST "schema-version", BAD_CAST "1");

	child(root, ns, "name", jstr(d, "name") ? jstr(d, "name") : "");
	child(root, ns, "created", jstr(d, "created") ? jstr(d, "created") : "");
	o = jget(d, "creator");
	n = child(root, ns, "creator", NULL);
	attr(n, "name", o, "name");
	attr(n, "version", o, "version");

	o = jget(d, "source");
	n = xmlNewChild(root, ns, BAD_CAST "source", NULL);
	attr(n, "format", o, "format");
	attr(n, "subformat", o, "subformat");
	attr(n, "size", o, "size");
	attr(n, "sha256", o, "sha256");
	child(n, ns, "origin", jstr(o, "origin") ? jstr(o, "origin") : "");

	o = jget(d, "guest");
	n = xmlNewChild(root, ns, BAD_CAST "guest", NULL);
	attr(n, "inspected", o, "inspected");
	if (!jget(o, "inspected"))
		xmlNewProp(n, BAD_CAST "inspected", BAD_CAST "false");
	static const char *const gattrs[] = { "os", "distro", "version", "arch", "product",
					      "root", "initramfs-tool", "bootloader" };
	for (i = 0; i < SCIMG_ARRAY_SIZE(gattrs); i++)
		attr(n, gattrs[i], o, gattrs[i]);
	a = jget(o, "kernels");
	for (i = 0; i < alen(a); i++) {
		json_object *ko = json_object_array_get_idx(a, i), *drv;
		k = xmlNewChild(n, ns, BAD_CAST "kernel", NULL);
		attr(k, "version", ko, "version");
		attr(k, "default", ko, "default");
		attr(k, "path", ko, "path");
		attr(k, "initrd", ko, "initrd");
		attr(k, "compression", ko, "compression");
		drv = jget(ko, "drivers");
		if (drv && json_object_is_type(drv, json_type_object)) {
			json_object_object_foreach(drv, dn, dw) {
				c = xmlNewChild(k, ns, BAD_CAST "driver", NULL);
				xmlNewProp(c, BAD_CAST "name", BAD_CAST dn);
				xmlNewProp(c, BAD_CAST "where", BAD_CAST json_object_get_string(dw));
			}
		}
	}

	o = jget(d, "boot");
	n = xmlNewChild(root, ns, BAD_CAST "boot", NULL);
	a = jget(o, "methods");
	for (i = 0; i < alen(a); i++) {
		json_object *mo = json_object_array_get_idx(a, i);
		k = xmlNewChild(n, ns, BAD_CAST "method", NULL);
		attr(k, "name", mo, "name");
		attr(k, "loader", mo, "loader");
		attr(k, "basis", mo, "basis");
	}
	if (jstr(o, "cmdline"))
		child(n, ns, "cmdline", jstr(o, "cmdline"));

	n = xmlNewChild(root, ns, BAD_CAST "disks", NULL);
	a = jget(d, "disks");
	for (i = 0; i < alen(a); i++) {
		static const char *const dattrs[] = { "index", "member", "format", "virtual-size",
						      "member-size", "member-sha256", "content-sha256" };
		json_object *dobj = json_object_array_get_idx(a, i);
		k = xmlNewChild(n, ns, BAD_CAST "disk", NULL);
		for (j = 0; j < SCIMG_ARRAY_SIZE(dattrs); j++)
			attr(k, dattrs[j], dobj, dattrs[j]);
	}
	n = xmlNewChild(root, ns, BAD_CAST "files", NULL);
	a = jget(d, "files");
	for (i = 0; i < alen(a); i++) {
		json_object *fo = json_object_array_get_idx(a, i);
		k = xmlNewChild(n, ns, BAD_CAST "file", NULL);
		attr(k, "member", fo, "member");
		attr(k, "size", fo, "size");
		attr(k, "sha256", fo, "sha256");
	}
	n = xmlNewChild(root, ns, BAD_CAST "changes", NULL);
	a = jget(d, "changes");
	for (i = 0; i < alen(a); i++) {
		json_object *co = json_object_array_get_idx(a, i);
		k = child(n, ns, "change", jstr(co, "text") ? jstr(co, "text") : "");
		attr(k, "kind", co, "kind");
		attr(k, "path", co, "path");
	}

	ret = validate(ctx, doc, &v);
	if (ret == 1) {
		ret = scimg_int_err(ctx, -EINVAL, "the descriptor to write is not valid: %s", v.msg);
		goto out;
	}
	if (ret < 0)
		goto out;
	xmlDocDumpFormatMemoryEnc(doc, &mem, &memlen, "UTF-8", 1);
	if (!mem || memlen <= 0) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	*xml = malloc((size_t)memlen + 1);
	if (!*xml) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(*xml, mem, (size_t)memlen);
	(*xml)[memlen] = '\0';
	*len = (size_t)memlen;
	ret = 0;
out:
	xmlFree(mem);
	xmlFreeDoc(doc);
	return ret;
}

/* ---- XML -> model ----------------------------------------------------- */

static int is_el(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* add attribute NAME of N to O as a string / number / boolean */
enum { A_STR, A_U64, A_BOOL };
static void jattr(json_object *o, xmlNodePtr n, const char *name, int type)
{
	xmlChar *s = xmlGetProp(n, BAD_CAST name);

	if (!s)
		return;
	if (type == A_U64)
		json_object_object_add(o, name,
				       json_object_new_uint64(strtoull((const char *)s, NULL, 10)));
	else if (type == A_BOOL)
		json_object_object_add(o, name,
				       json_object_new_boolean(strcmp((const char *)s, "true") == 0 ||
							       strcmp((const char *)s, "1") == 0));
	else
		json_object_object_add(o, name, json_object_new_string((const char *)s));
	xmlFree(s);
}

static void jtext(json_object *o, const char *key, xmlNodePtr n)
{
	xmlChar *s = xmlNodeGetContent(n);

	json_object_object_add(o, key, json_object_new_string(s ? (const char *)s : ""));
	xmlFree(s);
}

static json_object *model_from_doc(xmlNodePtr root)
{
	json_object *d = json_object_new_object(), *o, *a;
	xmlNodePtr n, k, c;

	json_object_object_add(d, "schema-version", json_object_new_int(SCI_SCHEMA_VERSION));
	for (n = root->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (is_el(n, "name") || is_el(n, "created")) {
			jtext(d, (const char *)n->name, n);
		} else if (is_el(n, "creator")) {
			o = json_object_new_object();
			jattr(o, n, "name", A_STR);
			jattr(o, n, "version", A_STR);
			json_object_object_add(d, "creator", o);
		} else if (is_el(n, "source")) {
			o = json_object_new_object();
			jattr(o, n, "format", A_STR);
			jattr(o, n, "subformat", A_STR);
			jattr(o, n, "size", A_U64);
			jattr(o, n, "sha256", A_STR);
			for (k = n->children; k; k = k->next)
				if (is_el(k, "origin"))
					jtext(o, "origin", k);
			json_object_object_add(d, "source", o);
		} else if (is_el(n, "guest")) {
			static const char *const ga[] = { "os", "distro", "version", "arch", "product",
							  "root", "initramfs-tool", "bootloader" };
			size_t i;
			o = json_object_new_object();
			jattr(o, n, "inspected", A_BOOL);
			for (i = 0; i < SCIMG_ARRAY_SIZE(ga); i++)
				jattr(o, n, ga[i], A_STR);
			a = json_object_new_array();
			for (k = n->children; k; k = k->next) {
				json_object *ko, *drv;
				if (!is_el(k, "kernel"))
					continue;
				ko = json_object_new_object();
				jattr(ko, k, "version", A_STR);
				jattr(ko, k, "default", A_BOOL);
				if (!jget(ko, "default"))
					json_object_object_add(ko, "default", json_object_new_boolean(0));
				jattr(ko, k, "path", A_STR);
				jattr(ko, k, "initrd", A_STR);
				jattr(ko, k, "compression", A_STR);
				drv = json_object_new_object();
				for (c = k->children; c; c = c->next) {
					xmlChar *dn, *dw;
					if (!is_el(c, "driver"))
						continue;
					dn = xmlGetProp(c, BAD_CAST "name");
					dw = xmlGetProp(c, BAD_CAST "where");
					if (dn && dw)
						json_object_object_add(drv, (const char *)dn,
								       json_object_new_string((const char *)dw));
					xmlFree(dn);
					xmlFree(dw);
				}
				json_object_object_add(ko, "drivers", drv);
				json_object_array_add(a, ko);
			}
			json_object_object_add(o, "kernels", a);
			json_object_object_add(d, "guest", o);
		} else if (is_el(n, "boot")) {
			o = json_object_new_object();
			a = json_object_new_array();
			for (k = n->children; k; k = k->next) {
				if (is_el(k, "method")) {
					json_object *mo = json_object_new_object();
					jattr(mo, k, "name", A_STR);
					jattr(mo, k, "loader", A_STR);
					jattr(mo, k, "basis", A_STR);
					json_object_array_add(a, mo);
				} else if (is_el(k, "cmdline")) {
					jtext(o, "cmdline", k);
				}
			}
			json_object_object_add(o, "methods", a);
			json_object_object_add(d, "boot", o);
		} else if (is_el(n, "disks")) {
			a = json_object_new_array();
			for (k = n->children; k; k = k->next) {
				if (!is_el(k, "disk"))
					continue;
				o = json_object_new_object();
				jattr(o, k, "index", A_U64);
				jattr(o, k, "member", A_STR);
				jattr(o, k, "format", A_STR);
				jattr(o, k, "virtual-size", A_U64);
				jattr(o, k, "member-size", A_U64);
				jattr(o, k, "member-sha256", A_STR);
				jattr(o, k, "content-sha256", A_STR);
				json_object_array_add(a, o);
			}
			json_object_object_add(d, "disks", a);
		} else if (is_el(n, "files")) {
			a = json_object_new_array();
			for (k = n->children; k; k = k->next) {
				if (!is_el(k, "file"))
					continue;
				o = json_object_new_object();
				jattr(o, k, "member", A_STR);
				jattr(o, k, "size", A_U64);
				jattr(o, k, "sha256", A_STR);
				json_object_array_add(a, o);
			}
			json_object_object_add(d, "files", a);
		} else if (is_el(n, "changes")) {
			a = json_object_new_array();
			for (k = n->children; k; k = k->next) {
				if (!is_el(k, "change"))
					continue;
				o = json_object_new_object();
				jattr(o, k, "kind", A_STR);
				jattr(o, k, "path", A_STR);
				jtext(o, "text", k);
				json_object_array_add(a, o);
			}
			json_object_object_add(d, "changes", a);
		}
	}
	return d;
}

int scimg_int_desc_parse(struct scimg_ctx *ctx, const char *what,
			 const void *xml, size_t len, json_object **out,
			 int *kind)
{
	xmlParserCtxtPtr pc = NULL;
	xmlDocPtr doc = NULL;
	xmlNodePtr root;
	xmlChar *ver = NULL;
	struct verr v;
	int ret, k = SCI_DESC_ERR_XML;

	*out = NULL;
	xmlInitParser();
	if (len > SCI_MAX_SMALL_MEMBER || len > INT32_MAX) {
		ret = scimg_int_err(ctx, -EFBIG, "'%s': descriptor of %zu bytes is larger than %u",
				    what, len, SCI_MAX_SMALL_MEMBER);
		goto out;
	}
	if (memmem(xml, len, "<!DOCTYPE", 9) || memmem(xml, len, "<!ENTITY", 8)) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': descriptor has a document type declaration, which SCI v1 forbids",
				    what);
		goto out;
	}
	pc = xmlNewParserCtxt();
	if (!pc) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	/* no XML_PARSE_NOENT (entities stay unexpanded), no DTD loading, no
	 * network, no huge documents */
	doc = xmlCtxtReadMemory(pc, xml, (int)len, what, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
				XML_PARSE_NOCDATA);
	if (!doc || !pc->wellFormed) {
		xmlErrorPtr e = xmlCtxtGetLastError(pc);
		char m[256] = "not well-formed";
		if (e && e->message) {
			snprintf(m, sizeof(m), "%s", e->message);
			if (strlen(m) && m[strlen(m) - 1] == '\n')
				m[strlen(m) - 1] = '\0';
		}
		ret = scimg_int_err(ctx, -EINVAL, "'%s': descriptor is not well-formed XML: line %d: %s",
				    what, e ? e->line : 0, m);
		goto out;
	}
	if (doc->intSubset || doc->extSubset) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': descriptor has a document type declaration, which SCI v1 forbids",
				    what);
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || strcmp((const char *)root->name, "supercloud") != 0) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': descriptor root element is '%s', expected 'supercloud'",
				    what, root ? (const char *)root->name : "(none)");
		goto out;
	}
	ver = xmlGetProp(root, BAD_CAST "schema-version");
	if (!root->ns || strcmp((const char *)root->ns->href, SCI_NS) != 0 ||
	    (ver && strcmp((const char *)ver, "1") != 0)) {
		k = SCI_DESC_ERR_SCHEMA;
		ret = scimg_int_err(ctx, -ENOTSUP,
				    "'%s': descriptor is schema version '%s' in namespace '%s', this reader knows version 1 ('%s')",
				    what, ver ? (const char *)ver : "?",
				    root->ns ? (const char *)root->ns->href : "(none)", SCI_NS);
		goto out;
	}
	k = SCI_DESC_ERR_SCHEMA;
	ret = validate(ctx, doc, &v);
	if (ret == 1) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': descriptor is not valid against the SCI v1 schema: %s",
				    what, v.msg);
		goto out;
	}
	if (ret < 0)
		goto out;
	*out = model_from_doc(root);
	ret = 0;
	k = 0;
out:
	if (kind)
		*kind = k;
	xmlFree(ver);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(pc);
	return ret;
}
